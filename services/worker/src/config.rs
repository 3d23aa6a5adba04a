//! The worker's configuration: flags, environment variables and an optional
//! YAML file, parsed once, with every problem reported together.
//!
//! Precedence: a flag or `SCANFLEET_*` variable wins over the file, which
//! wins over the built-in default; the file holds what is awkward on a
//! command line (per-cluster throttle, approach policy).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use scanfleet_bus::{NatsArgs, NatsSettings, read_small_file};
use scanfleet_kube_access::ThrottleConfig;
use scanfleet_scan_session::{ApproachPolicy, SessionConfig};
use scanfleet_trust::{AgeRecipient, SigningKey};
use serde::Deserialize;

/// Command-line and environment options.
#[derive(Debug, clap::Parser)]
#[command(
    name = "scanfleet-worker",
    version,
    about = "Claims scan intents, scans, publishes signed results"
)]
pub struct Args {
    /// How to reach NATS.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// YAML file with further settings (see docs/worker.md).
    #[arg(long, env = "SCANFLEET_WORKER_CONFIG")]
    pub config: Option<PathBuf>,
    /// The cluster this worker scans (intents for others are refused).
    #[arg(long, env = "SCANFLEET_CLUSTER")]
    pub cluster: Option<String>,
    /// Kubeconfig of the worker's own identity; without it, the in-cluster
    /// ServiceAccount.
    #[arg(long, env = "SCANFLEET_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Ed25519 signing key (PKCS#8 PEM, mode 0600).
    #[arg(long, env = "SCANFLEET_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// age recipients (`age1…`, one per line) to encrypt results to.
    #[arg(long, env = "SCANFLEET_ENCRYPT_TO")]
    pub encrypt_to: Option<PathBuf>,
    /// Directory holding one subdirectory per profile.
    #[arg(long, env = "SCANFLEET_PROFILES")]
    pub profiles: Option<PathBuf>,
    /// Directory holding `<name>.yml` threshold files.
    #[arg(long, env = "SCANFLEET_THRESHOLDS")]
    pub thresholds: Option<PathBuf>,
    /// Scans run at once.
    #[arg(long, env = "SCANFLEET_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Health, readiness and metrics listen address (port 0 picks one).
    #[arg(long, env = "SCANFLEET_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Name in results and logs (default: host name and process id).
    #[arg(long, env = "SCANFLEET_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Log format.
    #[arg(long, env = "SCANFLEET_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

/// The YAML file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    cluster: Option<String>,
    concurrency: Option<usize>,
    default_timeout_secs: Option<u64>,
    drain_grace_secs: Option<u64>,
    sweep_interval_secs: Option<u64>,
    /// Lease renewal period; keep it well under the consumer's ack wait.
    progress_interval_ms: Option<u64>,
    /// How long an idle pull waits for work.
    idle_poll_ms: Option<u64>,
    #[serde(default)]
    kube: FileKube,
    #[serde(default)]
    approaches: FileApproaches,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKube {
    qps: Option<f64>,
    burst: Option<u32>,
    max_retries: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApproaches {
    allow_debug: Option<bool>,
    debug_image: Option<String>,
    sidecar_container: Option<String>,
    debug_start_timeout_secs: Option<u64>,
}

/// The validated configuration.
pub struct Config {
    /// How to reach NATS.
    pub nats: NatsSettings,
    /// Cluster name.
    pub cluster: String,
    /// Kubeconfig (none: in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// Signing key.
    pub signing_key: SigningKey,
    /// Encryption recipients.
    pub recipients: Vec<AgeRecipient>,
    /// Profiles directory.
    pub profiles: PathBuf,
    /// Thresholds directory.
    pub thresholds: Option<PathBuf>,
    /// Scans at once.
    pub concurrency: usize,
    /// HTTP listen address.
    pub http_listen: SocketAddr,
    /// Worker id.
    pub worker_id: String,
    /// JSON logs.
    pub json_logs: bool,
    /// Scan deadline when an intent has none.
    pub default_timeout: Duration,
    /// Drain grace on SIGTERM.
    pub drain_grace: Duration,
    /// Sweeper period.
    pub sweep_interval: Duration,
    /// Lease renewal period.
    pub progress_interval: Duration,
    /// Idle pull wait.
    pub idle_poll: Duration,
    /// Per-cluster API throttle.
    pub throttle: ThrottleConfig,
    /// Scan-session settings.
    pub session: SessionConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("cluster", &self.cluster)
            .field("worker_id", &self.worker_id)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

const MAX_FILE: u64 = 64 * 1024;

impl Config {
    /// Validates everything and reports all problems at once.
    ///
    /// # Errors
    /// One line per problem.
    pub fn from_args(args: Args) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let nats = args.nats.settings(&mut errors);
        let file: FileConfig = match &args.config {
            None => FileConfig::default(),
            Some(path) => match read_small_file(path, MAX_FILE).and_then(|t| {
                serde_yaml::from_str(&t).map_err(|e| format!("{}: {e}", path.display()))
            }) {
                Ok(f) => f,
                Err(e) => {
                    errors.push(format!("--config: {e}"));
                    FileConfig::default()
                }
            },
        };
        let cluster = args
            .cluster
            .or(file.cluster)
            .unwrap_or_else(|| "default".into());
        if cluster.is_empty() || cluster.contains(['.', ' ', '*', '>']) {
            errors.push(format!(
                "cluster {cluster:?}: must be a non-empty NATS subject token"
            ));
        }
        if let Some(k) = &args.kubeconfig
            && !k.is_file()
        {
            errors.push(format!("--kubeconfig: {} is not a file", k.display()));
        }
        let signing_key = match &args.signing_key {
            None => {
                errors.push("--signing-key: required (results are always signed)".into());
                None
            }
            Some(path) => match read_small_file(path, MAX_FILE).and_then(|pem| {
                SigningKey::from_pkcs8_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
            }) {
                Ok(k) => Some(k),
                Err(e) => {
                    errors.push(format!("--signing-key: {e}"));
                    None
                }
            },
        };
        let mut recipients = Vec::new();
        if let Some(path) = &args.encrypt_to {
            match read_small_file(path, MAX_FILE) {
                Ok(text) => {
                    for (i, line) in text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .enumerate()
                    {
                        match AgeRecipient::parse(line, i) {
                            Ok(r) => recipients.push(r),
                            Err(e) => errors.push(format!("--encrypt-to {}: {e}", path.display())),
                        }
                    }
                }
                Err(e) => errors.push(format!("--encrypt-to: {e}")),
            }
        }
        let profiles = args.profiles.unwrap_or_else(|| PathBuf::from("profiles"));
        if !profiles.is_dir() {
            errors.push(format!(
                "--profiles: {} is not a directory",
                profiles.display()
            ));
        }
        if let Some(t) = &args.thresholds
            && !t.is_dir()
        {
            errors.push(format!("--thresholds: {} is not a directory", t.display()));
        }
        let concurrency = args.concurrency.or(file.concurrency).unwrap_or(4);
        if concurrency == 0 || concurrency > 256 {
            errors.push(format!("concurrency {concurrency}: must be 1 to 256"));
        }
        let defaults = ThrottleConfig::default();
        let throttle = ThrottleConfig {
            qps: file.kube.qps.unwrap_or(defaults.qps),
            burst: file.kube.burst.unwrap_or(defaults.burst),
            max_retries: file.kube.max_retries.unwrap_or(defaults.max_retries),
            ..defaults
        };
        if let Err(e) = throttle.validate() {
            errors.push(format!("kube: {e}"));
        }
        let session_defaults = SessionConfig::default();
        let session = SessionConfig {
            policy: ApproachPolicy {
                allow_debug: file.approaches.allow_debug.unwrap_or(true),
                sidecar_container: file
                    .approaches
                    .sidecar_container
                    .unwrap_or(session_defaults.policy.sidecar_container),
            },
            debug_image: file
                .approaches
                .debug_image
                .unwrap_or(session_defaults.debug_image),
            debug_start_timeout: file
                .approaches
                .debug_start_timeout_secs
                .map_or(session_defaults.debug_start_timeout, Duration::from_secs),
            ..session_defaults
        };
        let worker_id = args.worker_id.unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "worker".into());
            format!("{host}-{}", std::process::id())
        });
        let signing_key = match (errors.is_empty(), signing_key) {
            (true, Some(k)) => k,
            _ => return Err(errors),
        };
        Ok(Self {
            nats,
            cluster,
            kubeconfig: args.kubeconfig,
            signing_key,
            recipients,
            profiles,
            thresholds: args.thresholds,
            concurrency,
            http_listen: args
                .http_listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9090))),
            worker_id,
            json_logs: args.log_format.as_deref() == Some("json"),
            default_timeout: Duration::from_secs(file.default_timeout_secs.unwrap_or(600)),
            drain_grace: Duration::from_secs(file.drain_grace_secs.unwrap_or(60)),
            sweep_interval: Duration::from_secs(file.sweep_interval_secs.unwrap_or(300)),
            progress_interval: Duration::from_millis(file.progress_interval_ms.unwrap_or(20_000)),
            idle_poll: Duration::from_millis(file.idle_poll_ms.unwrap_or(5_000)),
            throttle,
            session,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let bad_yaml = dir.path().join("worker.yml");
        std::fs::write(&bad_yaml, "kube: {qps: 0}\nbogus: 1\n").unwrap();
        let args = Args::parse_from([
            "scanfleet-worker",
            "--nats-url",
            "http://x",
            "--config",
            bad_yaml.to_str().unwrap(),
            "--profiles",
            "/nonexistent",
            "--concurrency",
            "0",
        ]);
        let errors = Config::from_args(args).unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "--nats-url",
            "--config",
            "unknown field `bogus`",
            "--signing-key",
            "--profiles",
            "concurrency 0",
        ] {
            assert!(all.contains(needle), "{needle} missing from:\n{all}");
        }
    }
}
