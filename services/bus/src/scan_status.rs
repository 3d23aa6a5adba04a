//! Where each scan is in its life, for `GetScan` and `scanfleet watch`.
//!
//! A JetStream KV bucket keyed by scan id. Intake writes `queued` before it
//! publishes the intent (so a fast worker's `running` is never overwritten),
//! workers advance it. Writes are compare-and-set and never move a scan
//! backwards (e.g. a redelivered intent cannot turn `completed` into
//! `running`), so concurrent writers need no coordination.

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};

use crate::BusError;
use crate::topology::STATUS_BUCKET;

/// The states a scan moves through; later variants rank higher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanState {
    /// Accepted by intake, waiting for a worker.
    Queued,
    /// A worker holds it.
    Running,
    /// A transient failure; it will be retried.
    Retrying,
    /// The result is published.
    Completed,
    /// It could not complete; a failed result may exist.
    Failed,
}

impl ScanState {
    fn terminal(self) -> bool {
        matches!(self, ScanState::Completed | ScanState::Failed)
    }
}

/// One scan's status record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStatusRecord {
    /// Current state.
    pub state: ScanState,
    /// Unix milliseconds of the last change.
    pub updated_at_ms: i64,
    /// Human-readable detail (failure reason, retry cause).
    #[serde(default)]
    pub message: String,
    /// The serialized intent, as intake queued it (opaque to the bus).
    #[serde(default, with = "hex_bytes")]
    pub intent: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Reads and advances scan states.
#[derive(Clone)]
pub struct ScanStatusBook {
    kv: kv::Store,
}

impl ScanStatusBook {
    /// Opens the bucket declared by the topology.
    ///
    /// # Errors
    /// [`BusError::Topology`] when the bucket does not exist.
    pub async fn open(js: &jetstream::Context) -> Result<Self, BusError> {
        let kv = js
            .get_key_value(STATUS_BUCKET)
            .await
            .map_err(|e| BusError::Topology {
                what: STATUS_BUCKET.into(),
                reason: e.to_string(),
            })?;
        Ok(Self { kv })
    }

    /// The current record, if the scan is known.
    ///
    /// # Errors
    /// [`BusError::Consume`] when the bucket cannot be read.
    pub async fn get(&self, scan_id: &str) -> Result<Option<ScanStatusRecord>, BusError> {
        let Some(value) = self
            .kv
            .get(scan_id)
            .await
            .map_err(|e| BusError::Consume(e.to_string()))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&value)
            .map(Some)
            .map_err(|e| BusError::Consume(format!("status of {scan_id}: {e}")))
    }

    /// Moves a scan to `state` unless it is already in a terminal state or
    /// further along; `intent` is kept from the earlier record when `None`.
    /// Returns whether the record changed.
    ///
    /// # Errors
    /// [`BusError::Publish`] when the bucket cannot be written.
    pub async fn advance(
        &self,
        scan_id: &str,
        state: ScanState,
        message: &str,
        intent: Option<&[u8]>,
    ) -> Result<bool, BusError> {
        for attempt in 0..32u64 {
            let entry = self
                .kv
                .entry(scan_id)
                .await
                .map_err(|e| BusError::Publish(e.to_string()))?;
            let previous: Option<ScanStatusRecord> = entry
                .as_ref()
                .filter(|e| e.operation == kv::Operation::Put)
                .and_then(|e| serde_json::from_slice(&e.value).ok());
            if let Some(p) = &previous {
                // Retrying may follow Running and vice versa; nothing leaves
                // a terminal state and nothing goes back to Queued.
                if p.state.terminal()
                    || (state == ScanState::Queued && p.state != ScanState::Queued)
                {
                    return Ok(false);
                }
            }
            let record = ScanStatusRecord {
                state,
                updated_at_ms: now_ms(),
                message: message.to_owned(),
                intent: intent
                    .map(<[u8]>::to_vec)
                    .or_else(|| previous.map(|p| p.intent))
                    .unwrap_or_default(),
            };
            let value = serde_json::to_vec(&record).expect("status serializes");
            let written = match &entry {
                Some(e) => self
                    .kv
                    .update(scan_id, value.into(), e.revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => self
                    .kv
                    .create(scan_id, value.into())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(()) => return Ok(true),
                // Someone else wrote in between: read again and re-decide,
                // after a short pause that differs per attempt.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(1 + attempt * 3)).await;
                }
            }
        }
        Err(BusError::Publish(format!(
            "status of {scan_id}: too much contention"
        )))
    }
}
