//! The scan worker.
//!
//! Today this crate holds how a worker publishes results
//! ([`result_publisher`]); the intent loop and the scan session wiring arrive
//! with secure scan sessions. A worker holds no state: everything it needs to
//! resume lives in the intent stream, so workers can be killed at any time.

pub mod result_publisher;

pub use result_publisher::{PublishError, PublishedResult, ReportLocation, ResultPublisher};
