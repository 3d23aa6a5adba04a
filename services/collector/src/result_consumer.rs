//! The loop that moves results from the bus into the store.
//!
//! Exactly-once *effect*: a result is acknowledged only after the upsert
//! (keyed by scan id) committed, so a crash or a redelivery re-runs an upsert
//! that changes nothing. When the database is down the message is NAKed with a
//! delay and stays on the stream; the consumer's unlimited `max_deliver`
//! means the backlog is persisted when the database returns.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::Instrument;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures::StreamExt;
use scanfleet_bus::topology::{
    COLLECTOR_CONSUMER, QUARANTINE_SUBJECT_PREFIX, REPORTS_BUCKET, RESULTS_STREAM,
};
use scanfleet_result_store::{ResultStore, StoreError, StoredResult, Upsert};
use tokio::io::AsyncReadExt;
use tokio::sync::broadcast;

use crate::ingest::{Encoding, HEADER_ENCODING, Ingestor, Rejection, ReportSource};
use crate::metrics::Metrics;

/// Header on quarantined events: the rejection label.
pub const HEADER_QUARANTINE_REASON: &str = "Scanfleet-Quarantine-Reason";
/// Header on quarantined events: the full explanation.
pub const HEADER_QUARANTINE_DETAIL: &str = "Scanfleet-Quarantine-Detail";

/// How long an unavailable database delays a redelivery.
const STORE_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Why the consumer loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The bus failed in a way the loop cannot ride out.
    #[error("results consumer: {0}")]
    Bus(String),
}

/// Everything the loop needs.
pub struct ResultConsumer {
    /// JetStream context.
    pub js: jetstream::Context,
    /// Where results go.
    pub store: Arc<ResultStore>,
    /// Verification.
    pub ingestor: Arc<Ingestor>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Newly stored results, for `Watch`.
    pub persisted: broadcast::Sender<StoredResult>,
}

enum Outcome {
    Stored,
    Duplicate,
    Quarantine(Rejection),
    RetryLater,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl ResultConsumer {
    /// Consumes until `shutdown` resolves.
    ///
    /// # Errors
    /// [`ConsumeError`] when the consumer cannot be reached or its stream ends.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ConsumeError> {
        let consumer: PullConsumer = self
            .js
            .get_stream(RESULTS_STREAM)
            .await
            .map_err(|e| ConsumeError::Bus(e.to_string()))?
            .get_consumer(COLLECTOR_CONSUMER)
            .await
            .map_err(|e| ConsumeError::Bus(e.to_string()))?;
        let reports = self
            .js
            .get_object_store(REPORTS_BUCKET)
            .await
            .map_err(|e| ConsumeError::Bus(e.to_string()))?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(32)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .map_err(|e| ConsumeError::Bus(e.to_string()))?;
        tokio::pin!(shutdown);
        loop {
            let next = tokio::select! {
                () = &mut shutdown => return Ok(()),
                next = messages.next() => next,
            };
            let message = match next {
                None => return Err(ConsumeError::Bus("results stream ended".into())),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "results stream hiccup");
                    continue;
                }
                Some(Ok(m)) => m,
            };
            // The scan's trace, from the worker's headers (untrusted until
            // the signature verifies; used only to label logs).
            let header = |name: &str| {
                message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().chars().take(64).collect::<String>())
                    .unwrap_or_default()
            };
            let traceparent = header(scanfleet_bus::HEADER_TRACEPARENT);
            let span = tracing::info_span!(
                "result",
                scan_id = %header(scanfleet_bus::HEADER_SCAN_ID),
                trace_id = scanfleet_bus::trace_headers::trace_id(&traceparent).unwrap_or_default(),
            );
            let outcome = self
                .handle(&message, &reports)
                .instrument(span.clone())
                .await;
            if matches!(outcome, Outcome::Stored) {
                span.in_scope(|| tracing::info!("result stored"));
            }
            let ack = match outcome {
                Outcome::Stored | Outcome::Duplicate => message.double_ack().await,
                Outcome::Quarantine(rejection) => {
                    self.metrics.quarantined(rejection.label());
                    tracing::warn!(reason = rejection.label(), detail = %rejection, subject = %message.subject, "result quarantined");
                    if let Err(e) = self.quarantine(&message, &rejection).await {
                        // Not quarantined, so not acknowledged: it comes back.
                        tracing::error!(error = %e, "cannot quarantine; leaving the event on the stream");
                        let _ = message
                            .ack_with(AckKind::Nak(Some(STORE_RETRY_DELAY)))
                            .await;
                        continue;
                    }
                    message.double_ack().await
                }
                Outcome::RetryLater => {
                    message
                        .ack_with(AckKind::Nak(Some(STORE_RETRY_DELAY)))
                        .await
                }
            };
            if let Err(e) = ack {
                tracing::warn!(error = %e, "acknowledgement failed; the event will be redelivered");
            }
        }
    }

    async fn handle(
        &self,
        message: &jetstream::Message,
        reports: &jetstream::object_store::ObjectStore,
    ) -> Outcome {
        let encoding = match Encoding::from_header(
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(HEADER_ENCODING))
                .map(|v| v.as_str()),
        ) {
            Ok(e) => e,
            Err(r) => return Outcome::Quarantine(r),
        };
        let opened = match self.ingestor.open(&message.payload, encoding) {
            Ok(o) => o,
            Err(r) => return Outcome::Quarantine(r),
        };
        let report = match &opened.report {
            ReportSource::Inline(body) => Some(body.clone()),
            ReportSource::Absent => None,
            ReportSource::Object(name) => match read_object(reports, name).await {
                Ok(Some(body)) => {
                    let body = match encoding {
                        Encoding::Plain => body,
                        Encoding::Age => match self.ingestor.decrypt(&body) {
                            Ok(b) => b,
                            Err(r) => return Outcome::Quarantine(r),
                        },
                    };
                    Some(body)
                }
                Ok(None) => return Outcome::Quarantine(Rejection::ReportMissing(name.clone())),
                Err(e) => {
                    tracing::warn!(error = %e, "report bucket unavailable; retrying later");
                    return Outcome::RetryLater;
                }
            },
        };
        let (row, report) = match StoredResult::from_verified(
            &opened.envelope,
            &opened.verified,
            &opened.statement,
            report.as_deref(),
            now_ms(),
        ) {
            Ok(r) => r,
            Err(e) => return Outcome::Quarantine(Rejection::Unstorable(e.to_string())),
        };
        let scan_id = row.scan_id.clone();
        let span = tracing::info_span!("store_result", scan_id = %scan_id);
        let _guard = span.enter();
        match self.store.upsert(&row, report.as_ref()).await {
            Ok(Upsert::Inserted) => {
                self.metrics.stored.fetch_add(1, Ordering::Relaxed);
                tracing::info!(signer = %row.signer_key_id, "result stored");
                let _ = self.persisted.send(row);
                Outcome::Stored
            }
            Ok(Upsert::AlreadyStored) => {
                self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                Outcome::Duplicate
            }
            Err(StoreError::Unavailable(e)) => {
                self.metrics
                    .store_unavailable
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "database unavailable; result stays on the stream");
                Outcome::RetryLater
            }
            Err(e) => {
                tracing::error!(error = %e, "storing failed; retrying later");
                Outcome::RetryLater
            }
        }
    }

    async fn quarantine(
        &self,
        message: &jetstream::Message,
        rejection: &Rejection,
    ) -> Result<(), String> {
        let mut headers = message.headers.clone().unwrap_or_default();
        headers.insert(HEADER_QUARANTINE_REASON, rejection.label());
        let detail: String = rejection
            .to_string()
            .chars()
            .filter(|c| !c.is_control())
            .take(512)
            .collect();
        headers.insert(HEADER_QUARANTINE_DETAIL, detail.as_str());
        let subject = format!("{QUARANTINE_SUBJECT_PREFIX}.{}", rejection.label());
        self.js
            .publish_with_headers(subject, headers, message.payload.clone())
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

async fn read_object(
    reports: &jetstream::object_store::ObjectStore,
    name: &str,
) -> Result<Option<Vec<u8>>, String> {
    match reports.get(name).await {
        Ok(mut object) => {
            let mut body = Vec::new();
            object
                .read_to_end(&mut body)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Some(body))
        }
        Err(e) if e.kind() == jetstream::object_store::GetErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}
