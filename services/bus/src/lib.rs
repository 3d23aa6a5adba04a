//! scanfleet's NATS JetStream adapter.
//!
//! It owns the bus topology (streams, consumers, subjects), every header
//! scanfleet writes ([`headers`]), publishing intents with outcomes
//! producers can act on (queued, duplicate, already queued, full), the
//! result message protocol ([`result_stream`]), and moving dead intents
//! into the dead-letter stream. It knows
//! subjects and headers, not what an intent or a result means: payloads are
//! opaque bytes, so the wire format stays with `scanfleet-contracts` and
//! `scanfleet-trust`.
//!
//! Main items: [`TopologyConfig::ensure`], [`IntentQueue`], [`ResultStream`],
//! [`Headers`], [`forward_dead_letters`], [`dead_letter_and_terminate`].

pub mod connection;
pub mod dead_letters;
pub mod headers;
pub mod intent_queue;
pub mod nats_args;
pub mod result_stream;
pub mod scan_status;
pub mod topology;
pub mod trace_headers;

pub use connection::{NatsAuth, NatsSettings, connect};
pub use dead_letters::{dead_letter_and_terminate, forward_dead_letters};
pub use headers::{HEADER_ENCODING, HEADER_SCAN_ID, HEADER_TRACEPARENT, Headers};
pub use intent_queue::{EnqueueError, Enqueued, IntentQueue, OutgoingIntent};
pub use nats_args::{NatsArgs, read_small_file};
pub use result_stream::{
    IncomingResult, OutgoingResult, PayloadEncoding, ReportObject, ResultAck, ResultStream,
    ResultStreamError,
};
pub use scan_status::{ScanState, ScanStatusBook, ScanStatusRecord};
pub use topology::{PriorityClass, TopologyConfig};

/// Failures of the bus adapter, by the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Creating or reading a stream or consumer failed.
    #[error("bus topology: {what}: {reason}")]
    Topology {
        /// The stream or consumer.
        what: String,
        /// The server's or client's explanation.
        reason: String,
    },
    /// Consuming failed.
    #[error("bus consume: {0}")]
    Consume(String),
    /// Publishing failed.
    #[error("bus publish: {0}")]
    Publish(String),
    /// Connecting failed.
    #[error("bus connect: {0}")]
    Connect(String),
}
