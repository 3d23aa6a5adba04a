//! How a scanfleet service process starts, serves and stops, shared by
//! intake, the worker and the collector so that they behave alike for
//! operators:
//!
//! - [`configuration`]: one precedence rule (flag, then `SCANFLEET_*`
//!   variable, then the YAML file, then the default), YAML read with
//!   `marked-yaml` (line and column in every message), every problem
//!   reported at once, exit code 2;
//! - [`logging`]: logs on stderr, text or JSON, so stdout carries only the
//!   "listening" line scripts parse;
//! - [`shutdown`]: one signal for SIGTERM and SIGINT that each service
//!   drains on;
//! - [`supervision`]: critical tasks; one ending outside shutdown ends the
//!   process non-zero;
//! - [`serving`]: every listener capped and timed (slow clients cannot hold
//!   a port), for axum and tonic alike, and TLS (reloaded from disk,
//!   optional mTLS) unless plaintext is explicitly asked for;
//! - [`metrics`]: Prometheus exposition on `prometheus-client`, the
//!   `build_info` gauge and histogram buckets that reach the deadlines;
//! - [`entry_point`]: the whole `main` of a service binary.
//!
//! What it is not: it knows no bus, no cluster and no store; services hand
//! it their tasks, routers and registries.

pub mod configuration;
pub mod entry_point;
pub mod exposition_format;
pub mod logging;
pub mod metrics;
pub mod serving;
pub mod shutdown;
pub mod supervision;

pub use configuration::{EXIT_INVALID_CONFIG, invalid_config, read_yaml_file, setting};
pub use entry_point::{Service, exit_code, main};
pub use logging::{LogFormat, init_logging};
pub use serving::{
    Listener, ListenerSecurity, ServingArgs, ServingFile, ServingLimits, TlsArgs, TlsFile,
    serve_grpc, serve_http,
};
pub use shutdown::shutdown_on_signal;
pub use supervision::{CriticalTasks, TaskHandles};
