//! Publishing scan intents with the outcomes producers must tell apart.
//!
//! A producer (intake, scheduler) needs to know more than "ok or error":
//! a duplicate publish is success, an intent already queued for the same
//! subject is success ("already queued"), a full queue is backpressure that
//! must reach the caller as 429 / `RESOURCE_EXHAUSTED`, and a timeout is
//! retried with the *same* message id so the retry cannot double-queue.

use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, ErrorCode};
use bytes::Bytes;

use crate::headers::{HEADER_SCAN_ID, HEADER_TRACEPARENT, Headers};

/// One intent as it goes on the queue. The payload is opaque here; the
/// subject and message id carry the intent domain's routing and dedupe
/// rules (`scanfleet_scan_intents::intent_subject`, `DedupeKey::msg_id`).
#[derive(Debug, Clone)]
pub struct OutgoingIntent<'a> {
    /// `scan.intents.<class>.<cluster>.<namespace>.<tail>`.
    pub subject: &'a str,
    /// The `Nats-Msg-Id`: the intent's natural key for this occasion.
    pub msg_id: &'a str,
    /// The scan id, as a header for routing and dead letters.
    pub scan_id: &'a str,
    /// The W3C `traceparent` that starts the scan's trace.
    pub traceparent: &'a str,
    /// The encoded intent.
    pub payload: Bytes,
}

/// What happened to an intent that was offered to the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored as a new message.
    Queued {
        /// Stream sequence.
        sequence: u64,
    },
    /// The same message id was published inside the duplicate window; the
    /// original stands.
    Duplicate {
        /// Sequence of the original.
        sequence: u64,
    },
    /// An intent with the same subject (same dedupe key) is pending or
    /// running; this one was coalesced into it.
    AlreadyQueued,
}

/// Why an intent was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The queue is at its limit: backpressure, retry later.
    #[error("scan queue is full: {0}")]
    QueueFull(String),
    /// Larger than the server's max payload; retrying cannot help.
    #[error("intent is too large for the bus: {0}")]
    TooLarge(String),
    /// The bus did not answer within the bounded retries and time budget.
    #[error("bus unavailable after {attempts} attempts in {waited:?}: {last}")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// Time spent, at most the queue's budget.
        waited: Duration,
        /// The last error.
        last: String,
    },
    /// Anything else the server refused.
    #[error("bus refused the intent: {0}")]
    Rejected(String),
}

/// Publishes intents to `SCAN_INTENTS`.
#[derive(Clone)]
pub struct IntentQueue {
    js: jetstream::Context,
    attempts: u32,
    first_backoff: Duration,
    budget: Duration,
}

/// How long one offer may take in all, retries included. Callers are
/// webhook senders and API clients holding a request open: GitHub gives up
/// after 10 s, so a bus outage must turn into a retryable 503 / UNAVAILABLE
/// well before that rather than a sender-side timeout.
pub const DEFAULT_ENQUEUE_BUDGET: Duration = Duration::from_secs(5);

impl IntentQueue {
    /// A queue over a JetStream context, retrying transient failures three
    /// times (100 ms, 200 ms, 400 ms apart) within [`DEFAULT_ENQUEUE_BUDGET`].
    pub fn new(js: jetstream::Context) -> Self {
        Self {
            js,
            attempts: 4,
            first_backoff: Duration::from_millis(100),
            budget: DEFAULT_ENQUEUE_BUDGET,
        }
    }

    /// The same queue with another overall time budget per offer.
    #[must_use]
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Offers one intent. Its `msg_id` must be the intent's natural key so
    /// that retries (here and by the caller) are deduplicated by the server.
    ///
    /// # Errors
    /// [`EnqueueError`]; only `Unavailable` is worth retrying later.
    pub async fn enqueue(&self, intent: OutgoingIntent<'_>) -> Result<Enqueued, EnqueueError> {
        let OutgoingIntent {
            subject,
            msg_id,
            scan_id,
            traceparent,
            payload,
        } = intent;
        let headers = Headers::new()
            .with(HEADER_SCAN_ID, scan_id)
            .with(HEADER_TRACEPARENT, traceparent)
            .into_map();
        let started = tokio::time::Instant::now();
        let deadline = started + self.budget;
        let mut delay = self.first_backoff;
        let mut last = String::new();
        let mut attempts = 0;
        for attempt in 1..=self.attempts {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                break;
            }
            attempts = attempt;
            let message = PublishMessage::build()
                .payload(payload.clone())
                .headers(headers.clone())
                .message_id(msg_id);
            // A publish cut off here may still reach the server once it is
            // back; the msg-id makes the caller's retry a duplicate, not a
            // second intent.
            let publish = async {
                match self.js.send_publish(subject.to_owned(), message).await {
                    Ok(ack) => ack.await,
                    Err(e) => Err(e),
                }
            };
            let Ok(result) = tokio::time::timeout(remaining, publish).await else {
                last = format!("no acknowledgement within the {:?} budget", self.budget);
                break;
            };
            match result {
                Ok(ack) if ack.duplicate => {
                    return Ok(Enqueued::Duplicate {
                        sequence: ack.sequence,
                    });
                }
                Ok(ack) => {
                    return Ok(Enqueued::Queued {
                        sequence: ack.sequence,
                    });
                }
                Err(e) => match classify(&e) {
                    Failure::PerSubjectLimit => return Ok(Enqueued::AlreadyQueued),
                    Failure::Full(reason) => return Err(EnqueueError::QueueFull(reason)),
                    Failure::TooLarge => return Err(EnqueueError::TooLarge(e.to_string())),
                    Failure::Fatal => return Err(EnqueueError::Rejected(e.to_string())),
                    Failure::Transient => {
                        last = e.to_string();
                        if attempt < self.attempts {
                            tokio::time::sleep_until(
                                deadline.min(tokio::time::Instant::now() + delay),
                            )
                            .await;
                            delay *= 2;
                        }
                    }
                },
            }
        }
        Err(EnqueueError::Unavailable {
            attempts,
            waited: started.elapsed(),
            last,
        })
    }
}

enum Failure {
    PerSubjectLimit,
    Full(String),
    TooLarge,
    Transient,
    Fatal,
}

fn classify(error: &PublishError) -> Failure {
    match error.kind() {
        // StreamNotFound is transient for a stream we declared: in a cluster
        // it is what publishers see during a leader election.
        PublishErrorKind::TimedOut
        | PublishErrorKind::StreamNotFound
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::MaxAckPending => Failure::Transient,
        PublishErrorKind::MaxPayloadExceeded => Failure::TooLarge,
        PublishErrorKind::Other => {
            let Some(js_error) =
                std::error::Error::source(error).and_then(|s| s.downcast_ref::<jetstream::Error>())
            else {
                return Failure::Fatal;
            };
            if js_error.error_code() != ErrorCode::STREAM_STORE_FAILED {
                return Failure::Fatal;
            }
            // 10077 covers both limits; only the description tells the
            // per-subject limit (coalescing, success) from a full stream
            // (backpressure). The server text is stable: nats-server's
            // ErrMaxMsgsPerSubject.
            let text = js_error.to_string();
            if text.contains("per subject") {
                Failure::PerSubjectLimit
            } else {
                Failure::Full(text)
            }
        }
        _ => Failure::Fatal,
    }
}
