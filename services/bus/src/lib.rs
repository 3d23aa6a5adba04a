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
//! Main items: [`TopologyConfig::ensure`] (the bootstrap, admin only),
//! [`check_topology`] (what services run at start-up), [`BusIdentity`],
//! [`IntentQueue`], [`ResultStream`], [`Headers`], [`forward_dead_letters`],
//! [`dead_letter_and_terminate`].

pub mod api_budgets;
pub mod bootstrap;
pub mod connection;
pub mod dead_letters;
pub mod headers;
pub mod identity;
pub mod intent_queue;
pub mod nats_args;
pub mod result_stream;
pub mod scan_status;
pub mod topology;
pub mod topology_args;
pub mod topology_check;
pub mod trace_headers;

pub use api_budgets::{ApiBudgetBook, BudgetEntry, BudgetWrite};
pub use bootstrap::{Provision, Provisioned, consumer_info};
pub use connection::{NatsAuth, NatsSettings, connect};
pub use dead_letters::{dead_letter_and_terminate, forward_dead_letters};
pub use headers::{HEADER_ENCODING, HEADER_SCAN_ID, HEADER_TRACEPARENT, Headers};
pub use identity::{BusIdentity, Required, UserNkey};
pub use intent_queue::{EnqueueError, Enqueued, IntentQueue, OutgoingIntent};
pub use nats_args::{NatsArgs, NatsFile, read_small_file};
pub use result_stream::{
    IncomingResult, OutgoingResult, PayloadEncoding, ReportObject, ResultAck, ResultStream,
    ResultStreamError,
};
pub use scan_status::{ScanState, ScanStatusBook, ScanStatusRecord};
pub use topology::{PriorityClass, TopologyConfig, default_cluster};
pub use topology_args::TopologyArgs;
pub use topology_check::{check_cluster_consumers, check_topology};

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
    /// Streams, consumers or buckets a service needs do not exist.
    #[error(
        "the bus topology is incomplete: missing {}; create it once with `scanfleet bus init` \
         (it needs the NATS admin identity; services may not create streams)",
        missing.join(", ")
    )]
    TopologyMissing {
        /// Each missing part, e.g. `stream SCAN_QUARANTINE`.
        missing: Vec<String>,
    },
    /// Consuming failed.
    #[error("bus consume: {0}")]
    Consume(String),
    /// Publishing failed.
    #[error("bus publish: {0}")]
    Publish(String),
    /// Connecting failed for a reason retrying will not fix (credentials,
    /// TLS, a bad URL).
    #[error("bus connect: {0}")]
    Connect(String),
    /// No server answered within the connection attempts: NATS is down or
    /// out of reach, which may pass (a CLI exits 3, a service retries).
    #[error("bus connect: {0}")]
    Unreachable(String),
}
