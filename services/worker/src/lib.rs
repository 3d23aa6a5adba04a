//! The scan worker.
//!
//! [`intent_loop`] claims intents (only as many as there are free slots),
//! runs a [`Scanner`], publishes the signed result ([`result_publisher`]) and
//! acknowledges only after the publish is confirmed. [`kube_scanner`] is the
//! Kubernetes scanner (a secure scan session per intent), which hands image
//! intents to [`image_scanner`] (pull by digest, unpack, scan the root;
//! logins from [`registry_logins`]); [`worker_service`]
//! wires bus, cluster and HTTP edge together for the binary, configured by
//! [`config`]. A worker holds no state: everything it needs to resume lives
//! in the intent stream, so workers can be killed at any time.

pub mod config;

pub mod image_config;
pub mod image_scanner;
pub mod intent_loop;
pub mod kube_scanner;
pub mod metrics;
pub mod recent_image_scans;
pub mod registry_logins;
pub mod result_publisher;
pub mod scanner;
pub mod served_clusters;
pub mod worker_service;

pub use intent_loop::{IntentLoop, Lane, LoopConfig, LoopError};
pub use metrics::WorkerMetrics;
pub use scanner::{ScanFailure, ScanOutput, Scanner};

pub use result_publisher::{PublishError, PublishedResult, ReportLocation, ResultPublisher};
