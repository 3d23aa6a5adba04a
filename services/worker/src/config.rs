//! The worker's configuration: flags, environment variables and an optional
//! YAML file, parsed once, with every problem reported together.
//!
//! Precedence, as for every service: flag, then `SCANFLEET_*` variable,
//! then the YAML file (every flag's setting under its snake_case name),
//! then the built-in default. The file also holds what is awkward on a
//! command line (the cluster's fleet-wide API budget, approach policy, timing).
//! The clusters it serves, one or a registry of several, are read in
//! `served_clusters.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use scanfleet_bus::{NatsArgs, NatsSettings, read_small_file};
use scanfleet_process_lifecycle::{
    ListenerSecurity, LogFormat, ServingArgs, ServingFile, ServingLimits, TlsArgs, TlsFile, setting,
};
use scanfleet_scan_intents::LockedInputs;
use scanfleet_trust::{AgeRecipient, SigningKey};
use serde::Deserialize;

use crate::image_config::{FileImages, ImageArgs};
use crate::image_scanner::ImageScanSettings;
use crate::served_clusters::{
    FileApproaches, FileCluster, FileKube, ServedCluster, registry, single_cluster,
};

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
    /// Profile inputs no intent may override: `*` for all, or a
    /// comma-separated list of names (checked again here, whatever intake
    /// allowed) [default: none]
    #[arg(long, env = "SCANFLEET_LOCKED_INPUTS")]
    pub locked_inputs: Option<String>,
    /// Scans run at once.
    #[arg(long, env = "SCANFLEET_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Image of the debug approach's ephemeral container, by digest
    /// (`repo@sha256:…`): the worker's fence admits exactly this image
    /// [default: the scanner image kubesim serves]
    #[arg(long, env = "SCANFLEET_DEBUG_IMAGE")]
    pub debug_image: Option<String>,
    /// Health, readiness and metrics listen address (port 0 picks one).
    #[arg(long, env = "SCANFLEET_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Name in results and logs (default: host name and process id).
    #[arg(long, env = "SCANFLEET_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Log format [default: text]
    #[arg(long, env = "SCANFLEET_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Connection limits of the health and metrics listener.
    #[command(flatten)]
    pub serving: ServingArgs,
    /// TLS of the health and metrics listener.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// How images are pulled for image scans.
    #[command(flatten)]
    pub images: ImageArgs,
}

/// The YAML file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    nats: scanfleet_bus::NatsFile,
    pub(crate) cluster: Option<String>,
    pub(crate) kubeconfig: Option<PathBuf>,
    signing_key: Option<PathBuf>,
    encrypt_to: Option<PathBuf>,
    profiles: Option<PathBuf>,
    thresholds: Option<PathBuf>,
    locked_inputs: Option<String>,
    concurrency: Option<usize>,
    http_listen: Option<SocketAddr>,
    worker_id: Option<String>,
    log_format: Option<LogFormat>,
    max_connections: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    tls_client_ca_file: Option<PathBuf>,
    require_client_certificate: Option<bool>,
    insecure_plaintext: Option<bool>,
    default_timeout_secs: Option<u64>,
    drain_grace_secs: Option<u64>,
    sweep_interval_secs: Option<u64>,
    /// Lease renewal period; keep it well under the consumer's ack wait.
    progress_interval_ms: Option<u64>,
    /// How long an idle pull waits for work.
    idle_poll_ms: Option<u64>,
    pub(crate) kube: Option<FileKube>,
    pub(crate) approaches: Option<FileApproaches>,
    /// The cluster registry, when this worker serves more than one cluster.
    pub(crate) clusters: Option<Vec<FileCluster>>,
    #[serde(default)]
    images: FileImages,
}

/// The validated configuration.
pub struct Config {
    /// How to reach NATS.
    pub nats: NatsSettings,
    /// The clusters this worker serves (at least one, names unique).
    pub clusters: Vec<ServedCluster>,
    /// Signing key.
    pub signing_key: SigningKey,
    /// Encryption recipients.
    pub recipients: Vec<AgeRecipient>,
    /// Profiles directory.
    pub profiles: PathBuf,
    /// Thresholds directory.
    pub thresholds: Option<PathBuf>,
    /// Inputs no intent may override.
    pub locked_inputs: LockedInputs,
    /// Scans at once.
    pub concurrency: usize,
    /// HTTP listen address.
    pub http_listen: SocketAddr,
    /// Worker id.
    pub worker_id: String,
    /// How logs are written.
    pub log_format: LogFormat,
    /// Connection limits of the HTTP listener.
    pub serving: ServingLimits,
    /// TLS (or, if asked for, plaintext) of the HTTP listener.
    pub security: ListenerSecurity,
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
    /// Registries and unpack limits of image scans.
    pub images: ImageScanSettings,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field(
                "clusters",
                &self
                    .clusters
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("worker_id", &self.worker_id)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

const MAX_FILE: u64 = 64 * 1024;

/// Reads a small file through `parse`, naming `flag` in the problem.
fn read_with<T>(
    flag: &str,
    path: &std::path::Path,
    parse: impl FnOnce(&str) -> Result<T, String>,
    errors: &mut Vec<String>,
) -> Option<T> {
    match read_small_file(path, MAX_FILE)
        .and_then(|text| parse(&text).map_err(|e| format!("{}: {e}", path.display())))
    {
        Ok(value) => Some(value),
        Err(e) => {
            errors.push(format!("{flag}: {e}"));
            None
        }
    }
}

fn signing_key(path: Option<&std::path::Path>, errors: &mut Vec<String>) -> Option<SigningKey> {
    let Some(path) = path else {
        errors.push("--signing-key: required (results are always signed)".into());
        return None;
    };
    read_with(
        "--signing-key",
        path,
        |pem| SigningKey::from_pkcs8_pem(pem).map_err(|e| e.to_string()),
        errors,
    )
}

fn recipients(path: Option<&std::path::Path>, errors: &mut Vec<String>) -> Vec<AgeRecipient> {
    let Some(path) = path else {
        return Vec::new();
    };
    let Some(text) = read_with("--encrypt-to", path, |t| Ok(t.to_owned()), errors) else {
        return Vec::new();
    };
    let mut recipients = Vec::new();
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
    recipients
}

/// Host name and process id: unique enough among one cluster's workers.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// Checks the settings that name directories.
fn check_places(
    profiles: &std::path::Path,
    thresholds: Option<&PathBuf>,
    concurrency: usize,
    errors: &mut Vec<String>,
) {
    if !profiles.is_dir() {
        errors.push(format!(
            "--profiles: {} is not a directory",
            profiles.display()
        ));
    }
    if let Some(t) = thresholds
        && !t.is_dir()
    {
        errors.push(format!("--thresholds: {} is not a directory", t.display()));
    }
    if concurrency == 0 || concurrency > 256 {
        errors.push(format!("concurrency {concurrency}: must be 1 to 256"));
    }
}

impl Config {
    /// Validates everything and reports all problems at once.
    ///
    /// # Errors
    /// One line per problem.
    pub fn from_args(mut args: Args) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let mut file: FileConfig = match &args.config {
            None => FileConfig::default(),
            Some(path) => scanfleet_process_lifecycle::read_yaml_file(path, &mut errors),
        };
        let nats = args.nats.settle(&file.nats, &mut errors);
        let clusters = match file.clusters.take() {
            Some(entries) => registry(&args, &file, entries, &mut errors),
            None => single_cluster(&mut args, &mut file, &mut errors)
                .into_iter()
                .collect(),
        };
        let profiles = setting(args.profiles, file.profiles, PathBuf::from("profiles"));
        let thresholds = args.thresholds.or(file.thresholds);
        let locked_inputs = LockedInputs::parse(&setting(
            args.locked_inputs,
            file.locked_inputs,
            String::new(),
        ))
        .unwrap_or_else(|e| {
            errors.push(format!("--locked-inputs: {e}"));
            LockedInputs::None
        });
        let concurrency = setting(args.concurrency, file.concurrency, 4);
        check_places(&profiles, thresholds.as_ref(), concurrency, &mut errors);
        let signing_key = signing_key(
            args.signing_key.or(file.signing_key).as_deref(),
            &mut errors,
        );
        let recipients = recipients(args.encrypt_to.or(file.encrypt_to).as_deref(), &mut errors);
        let serving = args.serving.settle(
            ServingFile {
                max_connections: file.max_connections,
                header_read_timeout_secs: file.header_read_timeout_secs,
                idle_timeout_secs: file.idle_timeout_secs,
            },
            &mut errors,
        );
        let security = args.tls.settle(
            TlsFile {
                tls_cert_file: file.tls_cert_file.clone(),
                tls_key_file: file.tls_key_file.clone(),
                tls_client_ca_file: file.tls_client_ca_file.clone(),
                require_client_certificate: file.require_client_certificate,
                insecure_plaintext: file.insecure_plaintext,
            },
            &mut errors,
        );
        let images = args.images.settle(file.images, &mut errors);
        let signing_key = match (errors.is_empty(), signing_key) {
            (true, Some(k)) if !clusters.is_empty() => k,
            _ => return Err(errors),
        };
        Ok(Self {
            nats,
            clusters,
            signing_key,
            recipients,
            profiles,
            thresholds,
            locked_inputs,
            concurrency,
            http_listen: setting(
                args.http_listen,
                file.http_listen,
                SocketAddr::from(([127, 0, 0, 1], 9090)),
            ),
            worker_id: args
                .worker_id
                .or(file.worker_id)
                .unwrap_or_else(default_worker_id),
            log_format: setting(args.log_format, file.log_format, LogFormat::Text),
            serving,
            security,
            default_timeout: Duration::from_secs(file.default_timeout_secs.unwrap_or(600)),
            drain_grace: Duration::from_secs(file.drain_grace_secs.unwrap_or(60)),
            sweep_interval: Duration::from_secs(file.sweep_interval_secs.unwrap_or(300)),
            progress_interval: Duration::from_millis(file.progress_interval_ms.unwrap_or(20_000)),
            idle_poll: Duration::from_millis(file.idle_poll_ms.unwrap_or(5_000)),
            images,
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
            "--debug-image",
            "kubesim.local/scanner:1.0",
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
            "--debug-image \"kubesim.local/scanner:1.0\": name the image by digest",
        ] {
            assert!(all.contains(needle), "{needle} missing from:\n{all}");
        }
    }
}

#[cfg(test)]
mod precedence {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_flag_wins_over_the_file_which_wins_over_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("signing.pem");
        std::fs::write(&key, SigningKey::generate().to_pkcs8_pem().as_bytes()).unwrap();
        let file = dir.path().join("worker.yml");
        std::fs::write(
            &file,
            format!(
                "signing_key: {}\nprofiles: {}\nconcurrency: 9\ncluster: from-file\nlog_format: json\ninsecure_plaintext: true\n",
                key.display(),
                dir.path().display()
            ),
        )
        .unwrap();
        let config = Config::from_args(Args::parse_from([
            "scanfleet-worker",
            "--config",
            file.to_str().unwrap(),
            "--cluster",
            "from-flag",
        ]))
        .map_err(|e| e.join("; "))
        .unwrap();
        let [cluster] = &config.clusters[..] else {
            panic!("one cluster");
        };
        assert_eq!(cluster.name.as_str(), "from-flag", "the flag wins");
        assert_eq!(config.concurrency, 9, "the file wins over the default");
        assert_eq!(
            (cluster.budget.limits.qps, cluster.budget.limits.burst),
            (20.0, 40),
            "kube.qps/burst default to the fleet budget 20/40"
        );
        assert_eq!(
            (cluster.throttle.qps, cluster.throttle.burst),
            (20.0, 5),
            "the local smoother: the budget's QPS, one lease's burst"
        );
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.http_listen.port(), 9090, "the default");
    }
}
