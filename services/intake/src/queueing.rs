//! Queueing one intent: the one path every trigger takes (the gRPC API,
//! registry pushes and schedule fires).
//!
//! The order is fixed and the same for all of them:
//!
//! 1. **Route** with the domain's rule (`scanfleet_scan_intents::route`):
//!    subject and `Nats-Msg-Id` from the intent and its occasion.
//! 2. **Publish** with a fresh W3C `traceparent` that starts the scan's
//!    trace; the bus builds the headers.
//! 3. **Record `queued`** in the status book, with the intent, only when the
//!    stream stored a *new* message. A duplicate or coalesced offer has no
//!    scan of its own, and a refused one never existed, so neither leaves a
//!    status record behind. A worker that claims the intent before this
//!    write lands records `running` with the intent itself, and the
//!    forward-only book then keeps `running`.
//!
//! A failed status write is logged, not returned: the intent is on the
//! stream and will run, and the worker's own writes fill the record.

use std::time::SystemTime;

use rand_core::RngCore;
use scanfleet_bus::trace_headers::{new_traceparent, trace_id};
use scanfleet_bus::{
    EnqueueError, Enqueued, IntentQueue, OutgoingIntent, ScanState, ScanStatusBook,
};
use scanfleet_scan_intents::{Intent, Occasion, RandomSource, ScanId, intent_wire, route};

/// The operating system's generator, for scan ids.
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn next_u64(&mut self) -> u64 {
        rand_core::OsRng.next_u64()
    }
}

/// A new scan id for now.
pub fn new_scan_id() -> ScanId {
    ScanId::generate(SystemTime::now(), &mut OsRandom)
}

/// Publishes intents and records them as queued.
#[derive(Clone)]
pub struct IntentQueueing {
    queue: IntentQueue,
    status: ScanStatusBook,
}

impl IntentQueueing {
    /// Queueing over the bus's intent queue and status book.
    pub fn new(queue: IntentQueue, status: ScanStatusBook) -> Self {
        Self { queue, status }
    }

    /// Offers `intent`, published because of `occasion`, in the order the
    /// module documents.
    ///
    /// # Errors
    /// The queue's refusal: full (backpressure), unavailable, too large.
    pub async fn offer(
        &self,
        intent: &Intent,
        occasion: &Occasion<'_>,
    ) -> Result<Enqueued, EnqueueError> {
        let routing = route(intent, occasion);
        let scan_id = intent.id.to_string();
        let bytes = intent_wire::encode(intent);
        let traceparent = new_traceparent();
        let outcome = self
            .queue
            .enqueue(OutgoingIntent {
                subject: &routing.subject,
                msg_id: &routing.msg_id,
                scan_id: &scan_id,
                traceparent: &traceparent,
                payload: bytes.clone().into(),
            })
            .await?;
        if let Enqueued::Queued { .. } = outcome {
            if let Err(e) = self
                .status
                .advance(&scan_id, ScanState::Queued, "", Some(&bytes))
                .await
            {
                tracing::warn!(scan_id = %scan_id, error = %e, "status book not updated");
            }
            tracing::debug!(
                scan_id = %scan_id,
                subject = %routing.subject,
                trace_id = trace_id(&traceparent).unwrap_or_default(),
                "intent queued"
            );
        }
        Ok(outcome)
    }
}
