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

use crate::drift_recording::{DriftRecorder, Recorded};
use crate::ingest::{Ingestor, Opened, Rejection, ReportSource};
use crate::metrics::Metrics;
use crate::reports_at_rest::ReportsAtRest;

pub use scanfleet_bus::headers::{HEADER_QUARANTINE_DETAIL, HEADER_QUARANTINE_REASON};

/// How long an unavailable database delays a redelivery.
const STORE_RETRY_DELAY: Duration = Duration::from_secs(1);

/// The most events verified and stored in one transaction. Only events
/// already delivered are batched (the loop never waits to fill a batch), so
/// at a trickle each event is its own batch and latency stays one commit;
/// under a flood one commit serves up to this many.
const MAX_STORE_BATCH: usize = 64;

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
    /// Drift reports, recorded once a result is stored.
    pub drift: DriftRecorder,
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

/// A verified event ready to store, or how it ends without being stored.
type Prepared = Result<(StoredResult, Option<scanfleet_result_store::Report>), Outcome>;

/// A delivered batch, verified, in delivery order.
struct VerifiedBatch {
    delivered: Vec<jetstream::Message>,
    prepared: Vec<Prepared>,
    spans: Vec<tracing::Span>,
}

/// Waits for a batch's write; a write that panicked is logged (its events
/// were not acknowledged, so they come back).
async fn finish(writing: Option<tokio::task::JoinHandle<()>>) {
    if let Some(Err(e)) = match writing {
        Some(w) => Some(w.await),
        None => None,
    } {
        tracing::error!(error = %e, "storing a batch failed; its events will be redelivered");
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl ResultConsumer {
    /// Consumes until `shutdown` resolves; the batch being written then is
    /// finished (stored and acknowledged) first.
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
        let messages = consumer
            .stream()
            .max_messages_per_batch(MAX_STORE_BATCH)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .map_err(|e| ConsumeError::Bus(e.to_string()))?;
        let mut batches = messages.ready_chunks(MAX_STORE_BATCH);
        let this = Arc::new(self);
        // The write (and acknowledgements) of the previous batch, running
        // while this one is verified: verification is the runtime's work,
        // the write mostly the database's, so the two overlap.
        let mut writing: Option<tokio::task::JoinHandle<()>> = None;
        tokio::pin!(shutdown);
        loop {
            let next = tokio::select! {
                () = &mut shutdown => break,
                next = batches.next() => next,
            };
            let Some(batch) = next else {
                finish(writing).await;
                return Err(ConsumeError::Bus("results stream ended".into()));
            };
            let mut delivered = Vec::with_capacity(batch.len());
            for next in batch {
                match next {
                    Err(e) => tracing::warn!(error = %e, "results stream hiccup"),
                    Ok(m) => delivered.push(m),
                }
            }
            let verified = this.verify_batch(delivered, &results).await;
            // One write at a time, in delivery order.
            finish(writing.take()).await;
            let (this, results) = (this.clone(), results.clone());
            writing = Some(tokio::spawn(async move {
                this.settle_batch(verified, &results).await;
            }));
        }
        finish(writing).await;
        Ok(())
    }

    /// Verifies each delivered event of a batch (nothing is stored yet).
    async fn verify_batch(
        &self,
        delivered: Vec<jetstream::Message>,
        results: &ResultStream,
    ) -> VerifiedBatch {
        let mut prepared = Vec::with_capacity(delivered.len());
        let mut spans = Vec::with_capacity(delivered.len());
        for message in &delivered {
            // The scan's trace, from the worker's headers (untrusted until
            // the signature verifies; used only to label logs).
            let incoming = IncomingResult::read(message);
            let span = tracing::info_span!(
                "result",
                scan_id = %incoming.scan_id,
                trace_id = incoming.trace_id.as_deref().unwrap_or_default(),
            );
            prepared.push(
                self.prepare(message, &incoming, results)
                    .instrument(span.clone())
                    .await,
            );
            spans.push(span);
        }
        VerifiedBatch {
            delivered,
            prepared,
            spans,
        }
    }

    /// Stores the verified events of a batch in one transaction, then
    /// acknowledges each as its outcome requires.
    async fn settle_batch(&self, batch: VerifiedBatch, results: &ResultStream) {
        let outcomes = self.store(batch.prepared).await;
        let settled = batch.delivered.iter().zip(outcomes).zip(batch.spans).map(
            |((message, outcome), span)| self.settle(message, outcome, results).instrument(span),
        );
        futures::future::join_all(settled).await;
    }

    /// Acknowledges one message as its outcome requires.
    async fn settle(&self, message: &jetstream::Message, outcome: Outcome, results: &ResultStream) {
        let ack = match outcome {
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
    /// within the size limit, and builds the row to store.
    async fn prepare(
        &self,
        message: &jetstream::Message,
        incoming: &IncomingResult,
        results: &ResultStream,
    ) -> Prepared {
        let encoding = match &incoming.encoding {
            Ok(e) => *e,
            Err(unknown) => {
                return Err(Outcome::Quarantine(Rejection::UnknownEncoding(
                    unknown.0.clone(),
                )));
            }
        };
        let opened = match self.ingestor.open(&message.payload, encoding) {
            Ok(o) => o,
            Err(r) => return Err(Outcome::Quarantine(r)),
        };
        if let Err(r) = self.ingestor.check_place(
            message.subject.as_str(),
            incoming.place.as_ref(),
            &opened.statement,
        ) {
            return Err(Outcome::Quarantine(r));
        }
        let Opened {
            envelope,
            verified,
            statement,
            report,
        } = opened;
        // Moved, not copied: a report is tens of kilobytes.
        let report = match report {
            ReportSource::Inline(body) => Some(body),
            ReportSource::Absent => None,
            ReportSource::Object(name) => {
                match self.report_object(results, &name, encoding).await {
                    Ok(body) => Some(body),
                    Err(outcome) => return Err(outcome),
                }
            }
        };
        let (row, report) = StoredResult::from_verified(
            &envelope,
            &verified,
            &statement,
            report.as_deref(),
            now_ms(),
        )
        .map_err(|e| Outcome::Quarantine(Rejection::Unstorable(e.to_string())))?;
        let report = report
            .map(|r| self.at_rest.seal(r))
            .transpose()
            .map_err(|e| Outcome::Quarantine(Rejection::Unstorable(e.to_string())))?;
        Ok((row, report))
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

    /// Stores every verified event of a batch in one transaction and gives
    /// each event its outcome, in order. A database failure leaves every
    /// event of the batch for redelivery (nothing of it was committed).
    async fn store(&self, prepared: Vec<Prepared>) -> Vec<Outcome> {
        let rows: Vec<_> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .map(|(row, report)| (row, report.as_ref()))
            .collect();
        let stored = if rows.is_empty() {
            Ok(Vec::new())
        } else {
            let span = tracing::info_span!("store_results", count = rows.len());
            self.store.upsert_batch(&rows).instrument(span).await
        };
        let stored = match stored {
            Ok(upserts) => Some(upserts),
            Err(e) => {
                if matches!(e, StoreError::Unavailable(_)) {
                    self.metrics
                        .store_unavailable
                        .fetch_add(rows.len() as u64, Ordering::Relaxed);
                    tracing::warn!(error = %e, count = rows.len(), "database unavailable; results stay on the stream");
                } else {
                    tracing::error!(error = %e, count = rows.len(), "storing failed; retrying later");
                }
                None
            }
        };
        let matched = match_upserts(prepared, stored);
        let kept: Vec<&StoredResult> = matched
            .iter()
            .filter_map(|m| m.as_ref().ok().map(|((row, _), _)| row))
            .collect();
        let mut drift = self.drift.after_stored_batch(&kept).await.into_iter();
        let mut outcomes = Vec::with_capacity(matched.len());
        for m in matched {
            let ((row, _report), upsert) = match m {
                Err(outcome) => {
                    outcomes.push(outcome);
                    continue;
                }
                Ok(stored) => stored,
            };
            let drift = drift.next().unwrap_or(Ok(Vec::new()));
            outcomes.push(match upsert {
                Upsert::Inserted => {
                    self.metrics.stored.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(scan_id = %row.scan_id, signer = %row.signer_key_id, "result stored");
                    self.metrics.findings.observe(&row);
                    let outcome = self.drift_outcome(&row, drift, Outcome::Stored);
                    let _ = self.persisted.send(row);
                    outcome
                }
                Upsert::AlreadyStored => {
                    self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                    self.drift_outcome(&row, drift, Outcome::Duplicate)
                }
            });
        }
        outcomes
    }

    /// `done` once the drift reports a stored result completes are
    /// recorded; when the database failed, the event is left for
    /// redelivery (which records them then: the result itself is already
    /// stored).
    fn drift_outcome(
        &self,
        row: &StoredResult,
        recorded: Result<Vec<Recorded>, StoreError>,
        done: Outcome,
    ) -> Outcome {
        match recorded {
            Ok(recorded) => {
                for r in &recorded {
                    self.metrics.drift_reports.add(1);
                    self.metrics.drifted_controls.add(r.drifted as u64);
                }
                done
            }
            Err(e) => {
                tracing::warn!(error = %e, scan_id = %row.scan_id, "drift not recorded; retrying later");
                Outcome::RetryLater
            }
        }
    }
}

/// Pairs each verified event with what the store did to it, in order; the
/// others keep the outcome verification gave them. Without `stored` (the
/// transaction failed) every verified event is left for redelivery: none
/// of them is acknowledged.
fn match_upserts<T>(
    prepared: Vec<Result<T, Outcome>>,
    stored: Option<Vec<Upsert>>,
) -> Vec<Result<(T, Upsert), Outcome>> {
    let mut stored = stored.map(Vec::into_iter);
    prepared
        .into_iter()
        .map(|p| {
            let row = p?;
            match stored.as_mut().and_then(Iterator::next) {
                Some(upsert) => Ok((row, upsert)),
                None => Err(Outcome::RetryLater),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(m: &Result<(&str, Upsert), Outcome>) -> String {
        match m {
            Ok((row, upsert)) => format!("{row}:{upsert:?}"),
            Err(Outcome::Quarantine(r)) => format!("quarantine:{}", r.label()),
            Err(Outcome::RetryLater) => "retry".into(),
            Err(Outcome::Stored) => "stored".into(),
            Err(Outcome::Duplicate) => "duplicate".into(),
        }
    }

    fn batch() -> Vec<Result<&'static str, Outcome>> {
        vec![
            Ok("a"),
            Err(Outcome::Quarantine(Rejection::NotAnEvent("junk".into()))),
            Ok("b"),
            Ok("c"),
        ]
    }

    /// One event of a batch fails verification: the others are stored
    /// (each with its own upsert, in order) and that one is quarantined.
    #[test]
    fn a_rejected_event_is_quarantined_and_the_rest_of_its_batch_stored() {
        let stored = Some(vec![
            Upsert::Inserted,
            Upsert::AlreadyStored,
            Upsert::Inserted,
        ]);
        let got: Vec<String> = match_upserts(batch(), stored).iter().map(label).collect();
        assert_eq!(
            got,
            [
                "a:Inserted",
                "quarantine:malformed_event",
                "b:AlreadyStored",
                "c:Inserted"
            ]
        );
    }

    /// The transaction failed: no verified event of the batch is
    /// acknowledged (each waits for redelivery); the rejected one is still
    /// quarantined, since storing has nothing to do with it.
    #[test]
    fn a_store_failure_acknowledges_nothing_of_the_batch() {
        let got: Vec<String> = match_upserts(batch(), None).iter().map(label).collect();
        assert_eq!(
            got,
            ["retry", "quarantine:malformed_event", "retry", "retry"]
        );
    }

    /// Fewer upserts than verified events (never expected) leaves the
    /// unmatched ones for redelivery rather than acknowledging them.
    #[test]
    fn an_event_without_an_upsert_is_not_acknowledged() {
        let got: Vec<String> = match_upserts(batch(), Some(vec![Upsert::Inserted]))
            .iter()
            .map(label)
            .collect();
        assert_eq!(
            got,
            ["a:Inserted", "quarantine:malformed_event", "retry", "retry"]
        );
    }
}
