//! The scan worker.
//!
//! [`intent_loop`] claims intents (only as many as there are free slots),
//! runs a [`Scanner`], publishes the signed result ([`result_publisher`]) and
//! acknowledges only after the publish is confirmed. The Kubernetes scanner
//! (secure scan sessions) and the binary's wiring arrive with the scan
//! session work. A worker holds no state: everything it needs to resume lives
//! in the intent stream, so workers can be killed at any time.

pub mod intent_loop;
pub mod metrics;
pub mod result_publisher;
pub mod scanner;

pub use intent_loop::{IntentLoop, LoopConfig, LoopError};
pub use metrics::WorkerMetrics;
pub use scanner::{ScanFailure, ScanOutput, Scanner};

pub use result_publisher::{PublishError, PublishedResult, ReportLocation, ResultPublisher};
