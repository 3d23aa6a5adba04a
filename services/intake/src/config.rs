//! Intake's configuration, parsed once, every problem reported together.

use std::net::SocketAddr;
use std::time::Duration;

use scanfleet_bus::{NatsArgs, NatsSettings};
use scanfleet_scan_intents::{ClusterName, IntakeLimits};

/// Command-line and environment options.
#[derive(Debug, clap::Parser)]
#[command(name = "scanfleet-intake", version, about = "Queues scan intents")]
pub struct Args {
    /// How to reach NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Name of the cluster targets without an explicit cluster belong to.
    #[arg(long, env = "SCANFLEET_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// Kubeconfig of intake's own identity (needs list/watch on pods);
    /// without it, only k8s:// targets are accepted.
    #[arg(long, env = "SCANFLEET_KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// gRPC `Intake` listen address (port 0 picks one).
    #[arg(long, env = "SCANFLEET_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
    pub grpc_listen: SocketAddr,
    /// Scan deadline when a request sets no timeout, in seconds.
    #[arg(long, env = "SCANFLEET_DEFAULT_TIMEOUT", default_value_t = 600)]
    pub default_timeout_secs: u64,
    /// Longest deadline a request may ask for, in seconds.
    #[arg(long, env = "SCANFLEET_MAX_TIMEOUT", default_value_t = 3600)]
    pub max_timeout_secs: u64,
    /// Most requests in one SubmitBatch.
    #[arg(long, env = "SCANFLEET_MAX_BATCH", default_value_t = 100)]
    pub max_batch: usize,
    /// Stream replicas when declaring the bus topology.
    #[arg(long, env = "SCANFLEET_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Log format.
    #[arg(long, env = "SCANFLEET_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to reach NATS.
    pub nats: NatsSettings,
    /// The default cluster.
    pub cluster: ClusterName,
    /// Kubeconfig for the pod directory.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// gRPC address.
    pub grpc_listen: SocketAddr,
    /// Default scan timeout.
    pub default_timeout: Duration,
    /// Cap on requested timeouts.
    pub max_timeout: Duration,
    /// Request validation limits.
    pub limits: IntakeLimits,
    /// Stream replicas.
    pub stream_replicas: usize,
    /// Emit JSON logs.
    pub json_logs: bool,
}

impl Config {
    /// Validates everything and reports all problems at once.
    ///
    /// # Errors
    /// One line per problem.
    pub fn from_args(args: Args) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let nats = args.nats.settings(&mut errors);
        let cluster = ClusterName::new(&args.cluster)
            .map_err(|e| errors.push(format!("--cluster {:?}: {e}", args.cluster)))
            .ok();
        if args.default_timeout_secs == 0 || args.default_timeout_secs > args.max_timeout_secs {
            errors.push(format!(
                "--default-timeout: must be 1..={} seconds (--max-timeout)",
                args.max_timeout_secs
            ));
        }
        if let Some(k) = &args.kubeconfig
            && !k.is_file()
        {
            errors.push(format!("--kubeconfig: {} is not a file", k.display()));
        }
        if args.max_batch == 0 {
            errors.push("--max-batch: must be at least 1".into());
        }
        if args.stream_replicas == 0 || args.stream_replicas > 5 {
            errors.push("--stream-replicas: must be 1 to 5".into());
        }
        match (errors.is_empty(), cluster) {
            (true, Some(cluster)) => Ok(Self {
                nats,
                cluster,
                kubeconfig: args.kubeconfig,
                grpc_listen: args.grpc_listen,
                default_timeout: Duration::from_secs(args.default_timeout_secs),
                max_timeout: Duration::from_secs(args.max_timeout_secs),
                limits: IntakeLimits {
                    max_batch: args.max_batch,
                    ..IntakeLimits::default()
                },
                stream_replicas: args.stream_replicas,
                json_logs: args.log_format == "json",
            }),
            _ => Err(errors),
        }
    }
}
