//! The worker's main loop: claim intents, scan, publish, acknowledge.
//!
//! - **Claim only what can run.** The loop pulls at most as many intents as
//!   it has free slots, high priority first, so nothing sits leased in a
//!   client buffer while its ack-wait clock runs (the failure mode peers hit).
//! - **Keep the lease.** While a scan runs, the loop sends in-progress acks
//!   every `progress_interval`, so a long scan is not redelivered elsewhere.
//! - **Acknowledge after the effect.** A result is published and its PubAck
//!   awaited before the intent is double-acked; a crash in between causes a
//!   republish that the stream or the collector deduplicates.
//! - **Fail precisely.** Permanent failures publish a failed result (when the
//!   scanner can describe the target) and terminate into the dead-letter
//!   stream with the reason; transient ones are NAKed with a delay; the
//!   consumer's `max_deliver` turns endless retries into dead letters.
//! - **Drain on shutdown.** Stop pulling, give running scans a grace period,
//!   then NAK the rest so they are redelivered at once, not after ack-wait.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures::StreamExt;
use scanfleet_bus::topology::{INTENTS_STREAM, PriorityClass};
use scanfleet_bus::{ScanState, ScanStatusBook, dead_letter_and_terminate};
use scanfleet_scan_intents::{ClusterName, Intent, intent_wire};
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use crate::metrics::WorkerMetrics;
use crate::result_publisher::ResultPublisher;
use crate::scanner::{ScanFailure, ScanOutput, Scanner};

/// Tunables of the loop.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// Scans running at once on this worker.
    pub concurrency: usize,
    /// How often a running scan renews its lease (about ack_wait / 3).
    pub progress_interval: Duration,
    /// On shutdown, how long running scans may take to finish.
    pub drain_grace: Duration,
    /// NAK delays for transient failures, indexed by delivery count; the
    /// last entry repeats.
    pub retry_backoff: Vec<Duration>,
    /// How long one idle pull waits for work.
    pub idle_poll: Duration,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            progress_interval: Duration::from_secs(20),
            drain_grace: Duration::from_secs(60),
            retry_backoff: vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
            ],
            idle_poll: Duration::from_secs(5),
        }
    }
}

/// Why the loop stopped without being asked to.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// The intent consumers cannot be reached.
    #[error("intent consumers unavailable: {0}")]
    Bus(String),
}

/// One cluster's part of the loop: the scanner that reaches the cluster.
/// Each lane pulls from its cluster's own consumers with its own
/// `concurrency` slots, so a busy cluster never holds another's back and
/// an idle lane always has a pull outstanding (which is how intake tells a
/// served cluster from one no worker serves).
pub struct Lane<S: Scanner> {
    /// The cluster whose intents this lane claims.
    pub cluster: ClusterName,
    /// What scans them.
    pub scanner: Arc<S>,
}

/// One worker's intent loop, over every cluster it serves.
pub struct IntentLoop<S: Scanner> {
    /// Connection for raw acks (TERM with a reason).
    pub client: async_nats::Client,
    /// JetStream context.
    pub js: jetstream::Context,
    /// One lane per cluster served.
    pub lanes: Vec<Lane<S>>,
    /// How results leave.
    pub publisher: Arc<ResultPublisher>,
    /// Counters.
    pub metrics: Arc<WorkerMetrics>,
    /// Where scan states are recorded for `GetScan`; optional so the loop
    /// also runs where no one asks.
    pub status: Option<ScanStatusBook>,
    /// Tunables (`concurrency` is per lane).
    pub config: LoopConfig,
}

struct TaskContext<S: Scanner> {
    client: async_nats::Client,
    js: jetstream::Context,
    scanner: Arc<S>,
    publisher: Arc<ResultPublisher>,
    metrics: Arc<WorkerMetrics>,
    status: Option<ScanStatusBook>,
    config: LoopConfig,
}

impl<S: Scanner> TaskContext<S> {
    /// Records a state change; a status write failure never fails a scan.
    /// `intent` keeps the intent on the record when intake's `queued` write
    /// has not landed yet (intake records after the stream accepted it).
    async fn record(&self, scan_id: &str, state: ScanState, message: &str, intent: Option<&[u8]>) {
        if let Some(book) = &self.status
            && let Err(e) = book.advance(scan_id, state, message, intent).await
        {
            tracing::warn!(error = %e, ?state, "cannot record scan state");
        }
    }
}

/// A lane's two consumers, high first.
struct Consumers {
    high: PullConsumer,
    low: PullConsumer,
}

impl<S: Scanner> IntentLoop<S> {
    /// Runs until `shutdown` flips to true, then drains every lane.
    ///
    /// # Errors
    /// [`LoopError`] when a lane's consumers cannot be reached.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), LoopError> {
        let stream = self
            .js
            .get_stream(INTENTS_STREAM)
            .await
            .map_err(|e| LoopError::Bus(e.to_string()))?;
        let mut lanes = Vec::new();
        for lane in self.lanes {
            let consumer = |class: PriorityClass| {
                let name = class.consumer_name(&lane.cluster);
                let stream = &stream;
                async move {
                    stream
                        .get_consumer::<jetstream::consumer::pull::Config>(&name)
                        .await
                        .map_err(|e| LoopError::Bus(format!("{name}: {e}")))
                }
            };
            let consumers = Consumers {
                high: consumer(PriorityClass::High).await?,
                low: consumer(PriorityClass::Low).await?,
            };
            let ctx = Arc::new(TaskContext {
                client: self.client.clone(),
                js: self.js.clone(),
                scanner: lane.scanner,
                publisher: self.publisher.clone(),
                metrics: self.metrics.clone(),
                status: self.status.clone(),
                config: self.config.clone(),
            });
            lanes.push(run_lane(ctx, consumers, shutdown.clone()));
        }
        futures::future::join_all(lanes).await;
        let _ = self.client.flush().await;
        Ok(())
    }
}

/// One lane: claim what its free slots can run, high first; on shutdown,
/// drain.
async fn run_lane<S: Scanner>(
    ctx: Arc<TaskContext<S>>,
    Consumers { high, low }: Consumers,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(ctx.config.concurrency.max(1)));
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    'pull: loop {
        if *shutdown.borrow() {
            break;
        }
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("semaphore is never closed"),
            _ = shutdown.changed() => break 'pull,
        };
        let mut permits = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        let mut messages = fetch_now(&high, permits.len()).await;
        if messages.is_empty() {
            messages = fetch_now(&low, permits.len()).await;
        }
        if messages.is_empty() {
            // Block on the high class only; low work is picked up by the
            // no-wait fetch on the next round, at most `idle_poll` later.
            messages = tokio::select! {
                m = fetch_wait(&high, permits.len(), ctx.config.idle_poll) => m,
                _ = shutdown.changed() => break 'pull,
            };
        }
        while tasks.try_join_next().is_some() {}
        for message in messages {
            let Some(permit) = permits.pop() else {
                // Cannot happen: we never fetch more than we hold.
                let _ = message.ack_with(AckKind::Nak(None)).await;
                continue;
            };
            let ctx = ctx.clone();
            let cancel = cancel_rx.clone();
            tasks.spawn(async move {
                handle(ctx, message, cancel).await;
                drop(permit);
            });
        }
    }

    // Drain: let running scans finish within the grace period, then make
    // the rest give up and NAK.
    let deadline = tokio::time::Instant::now() + ctx.config.drain_grace;
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => {
                let _ = cancel_tx.send(true);
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
}

async fn fetch_now(consumer: &PullConsumer, max: usize) -> Vec<jetstream::Message> {
    match consumer.fetch().max_messages(max).messages().await {
        Ok(batch) => batch.filter_map(|m| async { m.ok() }).collect().await,
        Err(e) => {
            tracing::warn!(error = %e, "fetch failed");
            Vec::new()
        }
    }
}

async fn fetch_wait(
    consumer: &PullConsumer,
    max: usize,
    wait: Duration,
) -> Vec<jetstream::Message> {
    match consumer
        .batch()
        .max_messages(max)
        .expires(wait)
        .messages()
        .await
    {
        Ok(batch) => batch.filter_map(|m| async { m.ok() }).collect().await,
        Err(e) => {
            tracing::warn!(error = %e, "pull failed");
            tokio::time::sleep(wait).await;
            Vec::new()
        }
    }
}

fn backoff(config: &LoopConfig, delivered: i64) -> Duration {
    let index = usize::try_from(delivered.max(1) - 1).unwrap_or(0);
    config
        .retry_backoff
        .get(index)
        .or(config.retry_backoff.last())
        .copied()
        .unwrap_or(Duration::from_secs(5))
}

/// One claimed intent: decoded, with the trace it continues.
struct Claim {
    intent: Intent,
    traceparent: Option<String>,
    delivered: i64,
}

async fn handle<S: Scanner>(
    ctx: Arc<TaskContext<S>>,
    message: jetstream::Message,
    cancel: watch::Receiver<bool>,
) {
    let Some(claim) = claim(&ctx, &message).await else {
        return;
    };
    let trace_id = claim
        .traceparent
        .as_deref()
        .and_then(scanfleet_bus::trace_headers::trace_id)
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!(
        "scan",
        scan_id = %claim.intent.id,
        trace_id = %trace_id,
        delivery = claim.delivered
    );
    async move {
        let scan_id = claim.intent.id.to_string();
        if claim.intent.deadline.is_some_and(|d| d < SystemTime::now()) {
            terminate(&ctx, &message, "deadline passed before the scan started").await;
            return;
        }
        ctx.record(&scan_id, ScanState::Running, "", Some(&message.payload))
            .await;
        let outcome = scan_with_lease(&ctx, &message, &claim.intent, cancel).await;
        settle(&ctx, &message, &claim, outcome).await;
    }
    .instrument(span)
    .await;
}

/// Counts the delivery and decodes the intent; a malformed one is
/// dead-lettered with every broken rule named, never scanned.
async fn claim<S: Scanner>(ctx: &TaskContext<S>, message: &jetstream::Message) -> Option<Claim> {
    let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
    if delivered > 1 {
        ctx.metrics.redeliveries.fetch_add(1, Ordering::Relaxed);
    } else if let Ok(info) = message.info() {
        let waited = time::OffsetDateTime::now_utc() - info.published;
        if let Ok(waited) = Duration::try_from(waited) {
            ctx.metrics.queue_wait.observe(waited);
        }
    }
    let intent = match intent_wire::decode(message.payload.as_ref()) {
        Ok(i) => i,
        Err(e) => {
            terminate(ctx, message, &format!("malformed intent: {e}")).await;
            return None;
        }
    };
    // The trace started at intake continues here and onto the result.
    let traceparent = message
        .headers
        .as_ref()
        .and_then(|h| h.get(scanfleet_bus::HEADER_TRACEPARENT))
        .map(|v| v.as_str().to_owned())
        .filter(|t| scanfleet_bus::trace_headers::trace_id(t).is_some());
    Some(Claim {
        intent,
        traceparent,
        delivered,
    })
}

/// Runs the scan while renewing the intent's lease; `None` when a draining
/// worker gave up on it.
async fn scan_with_lease<S: Scanner>(
    ctx: &TaskContext<S>,
    message: &jetstream::Message,
    intent: &Intent,
    mut cancel: watch::Receiver<bool>,
) -> Option<Result<ScanOutput, ScanFailure>> {
    ctx.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let progress = async {
        let mut tick = tokio::time::interval(ctx.config.progress_interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = message.ack_with(AckKind::Progress).await {
                tracing::warn!(error = %e, "lease renewal failed");
            }
        }
    };
    let outcome = tokio::select! {
        r = ctx.scanner.scan(intent) => Some(r),
        () = progress => None,
        _ = cancel.wait_for(|c| *c) => None,
    };
    ctx.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    ctx.metrics.scan_duration.observe(started.elapsed());
    outcome
}

/// Publishes, acknowledges, retries or dead-letters, by outcome.
async fn settle<S: Scanner>(
    ctx: &TaskContext<S>,
    message: &jetstream::Message,
    claim: &Claim,
    outcome: Option<Result<ScanOutput, ScanFailure>>,
) {
    let scan_id = claim.intent.id.to_string();
    let traceparent = claim.traceparent.as_deref();
    match outcome {
        None => {
            tracing::info!("draining: scan abandoned and returned to the queue");
            let _ = message.ack_with(AckKind::Nak(None)).await;
            ctx.record(
                &scan_id,
                ScanState::Retrying,
                "returned to the queue by a draining worker",
                None,
            )
            .await;
            ctx.metrics.drained.fetch_add(1, Ordering::Relaxed);
        }
        Some(Ok(output)) => {
            match ctx
                .publisher
                .publish_traced(&output.statement, output.report.as_deref(), traceparent)
                .await
            {
                Ok(published) => {
                    if let Err(e) = message.double_ack().await {
                        // The result is out; a redelivery republishes the
                        // same scan id, which is deduplicated.
                        tracing::warn!(error = %e, "intent ack not confirmed");
                    }
                    tracing::info!(
                        sequence = published.sequence,
                        duplicate = published.duplicate,
                        "result published"
                    );
                    ctx.record(&scan_id, ScanState::Completed, "", None).await;
                    ctx.metrics.completed.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "publishing the result failed; retrying the intent");
                    let why = format!("publishing the result failed: {e}");
                    ctx.record(&scan_id, ScanState::Retrying, &why, None).await;
                    retry(ctx, message, claim.delivered, None).await;
                }
            }
        }
        Some(Err(ScanFailure::Transient {
            reason,
            retry_after,
        })) => {
            tracing::warn!(%reason, "transient scan failure");
            ctx.record(&scan_id, ScanState::Retrying, &reason, None)
                .await;
            retry(ctx, message, claim.delivered, retry_after).await;
        }
        Some(Err(ScanFailure::Permanent {
            reason,
            failed_result,
        })) => {
            tracing::warn!(%reason, "permanent scan failure");
            if let Some(statement) = failed_result
                && let Err(e) = ctx
                    .publisher
                    .publish_traced(&statement, None, traceparent)
                    .await
            {
                tracing::warn!(error = %e, "publishing the failed result failed; retrying");
                retry(ctx, message, claim.delivered, None).await;
                return;
            }
            ctx.record(&scan_id, ScanState::Failed, &reason, None).await;
            terminate(ctx, message, &reason).await;
        }
    }
}

async fn retry<S: Scanner>(
    ctx: &TaskContext<S>,
    message: &jetstream::Message,
    delivered: i64,
    retry_after: Option<Duration>,
) {
    let delay = retry_after.unwrap_or_else(|| backoff(&ctx.config, delivered));
    let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
    ctx.metrics.retried.fetch_add(1, Ordering::Relaxed);
}

async fn terminate<S: Scanner>(ctx: &TaskContext<S>, message: &jetstream::Message, reason: &str) {
    match dead_letter_and_terminate(&ctx.js, &ctx.client, message, reason).await {
        Ok(()) => {
            ctx.metrics.failed_permanent.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot dead-letter the intent; it will be redelivered");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await;
        }
    }
}
