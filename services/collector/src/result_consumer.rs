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

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures::StreamExt;
use scanfleet_bus::topology::{COLLECTOR_CONSUMER, RESULTS_STREAM};
use scanfleet_bus::{IncomingResult, PayloadEncoding, ReportObject, ResultStream};
use scanfleet_result_store::{ResultStore, StoreError, StoredResult, Upsert};
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::ingest::{Ingestor, Rejection, ReportSource};
use crate::metrics::Metrics;
use crate::reports_at_rest::ReportsAtRest;

pub use scanfleet_bus::headers::{HEADER_QUARANTINE_DETAIL, HEADER_QUARANTINE_REASON};

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
    /// How reports are kept (encrypted with `require_encryption`).
    pub at_rest: ReportsAtRest,
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
        let results = ResultStream::new(self.js.clone());
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
            let incoming = IncomingResult::read(&message);
            let span = tracing::info_span!(
                "result",
                scan_id = %incoming.scan_id,
                trace_id = incoming.trace_id.as_deref().unwrap_or_default(),
            );
            self.settle(&message, &incoming, &results)
                .instrument(span)
                .await;
        }
    }

    /// Handles one message and acknowledges it as its outcome requires.
    async fn settle(
        &self,
        message: &jetstream::Message,
        incoming: &IncomingResult,
        results: &ResultStream,
    ) {
        let ack = match self.handle(message, incoming, results).await {
            Outcome::Stored | Outcome::Duplicate => message.double_ack().await,
            Outcome::Quarantine(rejection) => {
                self.metrics.quarantined(rejection.label());
                tracing::warn!(reason = rejection.label(), detail = %rejection, subject = %message.subject, "result quarantined");
                let detail: String = rejection.to_string().chars().take(512).collect();
                if let Err(e) = results
                    .quarantine(message, rejection.label(), &detail)
                    .await
                {
                    // Not quarantined, so not acknowledged: it comes back.
                    tracing::error!(error = %e, "cannot quarantine; leaving the event on the stream");
                    let _ = message
                        .ack_with(AckKind::Nak(Some(STORE_RETRY_DELAY)))
                        .await;
                    return;
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

    /// Verifies in the order trust requires (decrypt, verify, then read the
    /// statement), checks the subject against it, fetches a report object
    /// within the size limit, and stores.
    async fn handle(
        &self,
        message: &jetstream::Message,
        incoming: &IncomingResult,
        results: &ResultStream,
    ) -> Outcome {
        let encoding = match &incoming.encoding {
            Ok(e) => *e,
            Err(unknown) => {
                return Outcome::Quarantine(Rejection::UnknownEncoding(unknown.0.clone()));
            }
        };
        let opened = match self.ingestor.open(&message.payload, encoding) {
            Ok(o) => o,
            Err(r) => return Outcome::Quarantine(r),
        };
        if let Err(r) = self.ingestor.check_place(
            message.subject.as_str(),
            incoming.place.as_ref(),
            &opened.statement,
        ) {
            return Outcome::Quarantine(r);
        }
        let report = match &opened.report {
            ReportSource::Inline(body) => Some(body.clone()),
            ReportSource::Absent => None,
            ReportSource::Object(name) => match self.report_object(results, name, encoding).await {
                Ok(body) => Some(body),
                Err(outcome) => return outcome,
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
        let report = match report.map(|r| self.at_rest.seal(r)).transpose() {
            Ok(report) => report,
            Err(e) => return Outcome::Quarantine(Rejection::Unstorable(e.to_string())),
        };
        let span = tracing::info_span!("store_result", scan_id = %row.scan_id);
        self.store(row, report).instrument(span).await
    }

    /// A report from the object store, never read past the event limit.
    async fn report_object(
        &self,
        results: &ResultStream,
        name: &str,
        encoding: PayloadEncoding,
    ) -> Result<Vec<u8>, Outcome> {
        match results.read_report(name, self.ingestor.max_bytes()).await {
            Ok(ReportObject::Found(body)) => match encoding {
                PayloadEncoding::Plain => Ok(body),
                PayloadEncoding::Age => self.ingestor.decrypt(&body).map_err(Outcome::Quarantine),
            },
            Ok(ReportObject::Missing) => Err(Outcome::Quarantine(Rejection::ReportMissing(
                name.to_owned(),
            ))),
            Ok(ReportObject::TooLarge { size, limit }) => {
                Err(Outcome::Quarantine(Rejection::ReportTooLarge {
                    size,
                    limit,
                }))
            }
            Err(e) => {
                tracing::warn!(error = %e, "report bucket unavailable; retrying later");
                Err(Outcome::RetryLater)
            }
        }
    }

    async fn store(
        &self,
        row: StoredResult,
        report: Option<scanfleet_result_store::Report>,
    ) -> Outcome {
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
}
