//! Where each cluster's fleet-wide Kubernetes API budget is kept: one entry
//! per cluster in the KV bucket `API_BUDGETS`, keyed by cluster name and
//! written compare-and-set on the entry's revision, so two workers leasing
//! at once can never both spend the same permits (one of them re-reads).
//!
//! The value is opaque here: its format and arithmetic belong to
//! `scanfleet_kube_access::fleet_budget`.

use async_nats::jetstream::{self, kv};
use bytes::Bytes;

use crate::BusError;
use crate::topology::API_BUDGETS_BUCKET;

/// One cluster's stored budget as read.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetEntry {
    /// The stored state (opaque bytes).
    pub value: Bytes,
    /// The revision a write must name to replace it.
    pub revision: u64,
}

/// What a compare-and-set write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetWrite {
    /// Stored: the caller now owns what it wrote.
    Stored,
    /// Someone wrote first; read again and re-decide.
    Conflict,
}

/// Reads and writes the budget entries.
#[derive(Clone)]
pub struct ApiBudgetBook {
    kv: kv::Store,
}

impl std::fmt::Debug for ApiBudgetBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiBudgetBook")
    }
}

impl ApiBudgetBook {
    /// Opens the bucket declared by the topology.
    ///
    /// # Errors
    /// [`BusError::Topology`] when the bucket does not exist or cannot be
    /// looked up.
    pub async fn open(js: &jetstream::Context) -> Result<Self, BusError> {
        let kv = js
            .get_key_value(API_BUDGETS_BUCKET)
            .await
            .map_err(|e| BusError::Topology {
                what: API_BUDGETS_BUCKET.into(),
                reason: e.to_string(),
            })?;
        Ok(Self { kv })
    }

    /// The cluster's entry; `None` when it has none yet (or it was removed).
    ///
    /// # Errors
    /// [`BusError::Consume`] when the bucket cannot be read (NATS down).
    pub async fn read(&self, cluster: &str) -> Result<Option<BudgetEntry>, BusError> {
        let entry = self
            .kv
            .entry(cluster)
            .await
            .map_err(|e| BusError::Consume(format!("API budget of {cluster}: {e}")))?;
        Ok(entry.and_then(|e| {
            (e.operation == kv::Operation::Put).then_some(BudgetEntry {
                value: e.value,
                revision: e.revision,
            })
        }))
    }

    /// Writes `value` if the entry is still at `revision` (`None`: only if
    /// the cluster has no entry).
    ///
    /// # Errors
    /// [`BusError::Publish`] when the write could not be made or confirmed
    /// (NATS down); its effect is then unknown, which only loses capacity.
    pub async fn write(
        &self,
        cluster: &str,
        value: Vec<u8>,
        revision: Option<u64>,
    ) -> Result<BudgetWrite, BusError> {
        let failed =
            |e: &dyn std::fmt::Display| BusError::Publish(format!("API budget of {cluster}: {e}"));
        match revision {
            Some(rev) => match self.kv.update(cluster, value.into(), rev).await {
                Ok(_) => Ok(BudgetWrite::Stored),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    Ok(BudgetWrite::Conflict)
                }
                Err(e) => Err(failed(&e)),
            },
            None => match self.kv.create(cluster, value.into()).await {
                Ok(_) => Ok(BudgetWrite::Stored),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    Ok(BudgetWrite::Conflict)
                }
                Err(e) => Err(failed(&e)),
            },
        }
    }
}
