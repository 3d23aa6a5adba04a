//! Intake's command line: every flag with its `SCANFLEET_*` variable. No
//! flag carries a clap default, so that "not given" falls through to the
//! YAML file and then to the default (see `scanfleet_process_lifecycle::configuration`).

use std::net::SocketAddr;
use std::path::PathBuf;

use scanfleet_bus::NatsArgs;
use scanfleet_edge_access::AccessArgs;
use scanfleet_process_lifecycle::{LogFormat, ServingArgs, TlsArgs};

/// Command-line and environment options.
#[derive(Debug, clap::Parser)]
#[command(name = "scanfleet-intake", version, about = "Queues scan intents")]
pub struct Args {
    /// How to reach NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Name of the cluster targets without an explicit cluster belong to
    /// [default: default]
    #[arg(long, env = "SCANFLEET_CLUSTER")]
    pub cluster: Option<String>,
    /// Kubeconfig of intake's own identity (needs list/watch on pods, and
    /// `system:auth-delegator` unless --access-kubeconfig names another
    /// identity for reviewing callers); without it, only k8s:// targets are
    /// accepted.
    #[arg(long, env = "SCANFLEET_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Run the pod directory as the pod's own ServiceAccount (in a
    /// cluster, instead of --kubeconfig) [default: false]
    #[arg(long, env = "SCANFLEET_IN_CLUSTER", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub in_cluster: Option<bool>,
    /// gRPC `Intake` listen address, port 0 picks one [default:
    /// 127.0.0.1:50051]
    #[arg(long, env = "SCANFLEET_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,
    /// Scan deadline when a request sets no timeout, in seconds [default:
    /// 600]
    #[arg(long = "default-timeout", env = "SCANFLEET_DEFAULT_TIMEOUT")]
    pub default_timeout_secs: Option<u64>,
    /// Longest deadline a request may ask for, in seconds [default: 3600]
    #[arg(long = "max-timeout", env = "SCANFLEET_MAX_TIMEOUT")]
    pub max_timeout_secs: Option<u64>,
    /// Most requests in one SubmitBatch [default: 100]
    #[arg(long, env = "SCANFLEET_MAX_BATCH")]
    pub max_batch: Option<usize>,
    /// Log format [default: text]
    #[arg(long, env = "SCANFLEET_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// HTTP listen address for webhooks, `/healthz`, `/readyz` and
    /// `/metrics` (port 0 picks one); no HTTP server without it.
    #[arg(long, env = "SCANFLEET_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// The profile directory the workers hold (`<dir>/<name>/inspec.yml`);
    /// with it, a submission naming an unknown profile, another edition or
    /// an input the profile does not declare is refused before queueing.
    #[arg(long, env = "SCANFLEET_PROFILES")]
    pub profiles: Option<PathBuf>,
    /// Profile inputs no caller may override: `*` for all, or a
    /// comma-separated list of names [default: none]
    #[arg(long, env = "SCANFLEET_LOCKED_INPUTS")]
    pub locked_inputs: Option<String>,
    /// Connection limits of both listeners.
    #[command(flatten)]
    pub serving: ServingArgs,
    /// TLS of both listeners.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Who may call the gRPC API.
    #[command(flatten)]
    pub access: AccessArgs,
    /// YAML file with any setting above plus webhook endpoints and
    /// schedules (see docs/intake.md).
    #[arg(long, env = "SCANFLEET_INTAKE_CONFIG")]
    pub config: Option<PathBuf>,
}
