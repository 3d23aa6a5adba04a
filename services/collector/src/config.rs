//! The collector's configuration: flags or environment variables, parsed
//! once into typed values, with every problem reported together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use scanfleet_bus::{NatsArgs, NatsSettings};
use scanfleet_trust::{AgeIdentities, PublicKey, TrustedKeys};

/// Command-line and environment options.
#[derive(Debug, clap::Parser)]
#[command(
    name = "scanfleet-collector",
    version,
    about = "Verifies and stores scanfleet results"
)]
pub struct Args {
    /// How to reach NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Result store: sqlite://PATH (default, embedded) or postgres://…
    #[arg(
        long,
        env = "SCANFLEET_STORE_URL",
        default_value = "sqlite://scanfleet-results.db"
    )]
    pub store_url: String,
    /// A trusted signing public key (SPKI PEM); repeat for rotation.
    #[arg(
        long = "trusted-key",
        env = "SCANFLEET_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    pub trusted_keys: Vec<PathBuf>,
    /// age identity file to decrypt encrypted results; may be repeated.
    #[arg(
        long = "age-identity",
        env = "SCANFLEET_AGE_IDENTITIES",
        value_delimiter = ','
    )]
    pub age_identities: Vec<PathBuf>,
    /// gRPC `Results` listen address (port 0 picks one).
    #[arg(long, env = "SCANFLEET_GRPC_LISTEN", default_value = "127.0.0.1:50052")]
    pub grpc_listen: SocketAddr,
    /// HTTP API, health and metrics listen address (port 0 picks one).
    #[arg(long, env = "SCANFLEET_HTTP_LISTEN", default_value = "127.0.0.1:8082")]
    pub http_listen: SocketAddr,
    /// Delete results that finished longer ago than this many days (0 keeps all).
    #[arg(long, env = "SCANFLEET_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,
    /// Stream replicas when declaring the bus topology.
    #[arg(long, env = "SCANFLEET_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Largest event, envelope or report accepted, in bytes.
    #[arg(long, env = "SCANFLEET_MAX_EVENT_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_event_bytes: usize,
    /// Log format.
    #[arg(long, env = "SCANFLEET_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// The validated configuration.
pub struct Config {
    /// How to reach NATS.
    pub nats: NatsSettings,
    /// Store URL.
    pub store_url: String,
    /// Keys whose signatures are accepted.
    pub trusted: TrustedKeys,
    /// Identities for encrypted results.
    pub identities: Option<AgeIdentities>,
    /// gRPC address.
    pub grpc_listen: SocketAddr,
    /// HTTP address.
    pub http_listen: SocketAddr,
    /// Retention, if any.
    pub retention: Option<Duration>,
    /// Stream replicas.
    pub stream_replicas: usize,
    /// Size bound.
    pub max_event_bytes: usize,
    /// Emit JSON logs.
    pub json_logs: bool,
}

const MAX_KEY_FILE: u64 = 64 * 1024;

fn read_small(path: &std::path::Path) -> Result<String, String> {
    scanfleet_bus::read_small_file(path, MAX_KEY_FILE)
}

impl Config {
    /// Validates everything and reports all problems at once.
    ///
    /// # Errors
    /// One line per problem.
    pub fn from_args(args: Args) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let nats = args.nats.settings(&mut errors);
        if !(args.store_url.starts_with("sqlite:")
            || args.store_url.starts_with("postgres:")
            || args.store_url.starts_with("postgresql:"))
        {
            errors.push("--store-url: expected sqlite://PATH or postgres://…".into());
        }
        let mut trusted = TrustedKeys::new();
        if args.trusted_keys.is_empty() {
            errors.push(
                "--trusted-key: at least one signing public key is required; without one every result would be quarantined"
                    .into(),
            );
        }
        for path in &args.trusted_keys {
            match read_small(path).and_then(|pem| {
                PublicKey::from_spki_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
            }) {
                Ok(key) => trusted.insert(key),
                Err(e) => errors.push(format!("--trusted-key: {e}")),
            }
        }
        let mut identity_text = String::new();
        for path in &args.age_identities {
            match read_small(path).and_then(|text| {
                AgeIdentities::parse(&text)
                    .map(|_| text)
                    .map_err(|e| format!("{}: {e}", path.display()))
            }) {
                Ok(text) => {
                    identity_text.push_str(&text);
                    identity_text.push('\n');
                }
                Err(e) => errors.push(format!("--age-identity: {e}")),
            }
        }
        let identities = if identity_text.is_empty() {
            None
        } else {
            AgeIdentities::parse(&identity_text).ok()
        };
        if args.stream_replicas == 0 || args.stream_replicas > 5 {
            errors.push("--stream-replicas: must be 1 to 5".into());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            nats,
            store_url: args.store_url,
            trusted,
            identities,
            grpc_listen: args.grpc_listen,
            http_listen: args.http_listen,
            retention: (args.retention_days > 0)
                .then(|| Duration::from_secs(u64::from(args.retention_days) * 86_400)),
            stream_replicas: args.stream_replicas,
            max_event_bytes: args.max_event_bytes,
            json_logs: args.log_format == "json",
        })
    }
}
