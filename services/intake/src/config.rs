//! Intake's configuration, parsed once, every problem reported together.
//!
//! Flags and environment variables carry the process settings; an optional
//! YAML file (`--config`) carries the structured parts: webhook endpoints
//! and schedules. Both are validated in one pass, and every problem (a bad
//! flag, an unreadable secret file, a bad selector in the third schedule)
//! is reported at once, named by flag or YAML path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scanfleet_bus::{NatsArgs, NatsSettings};
use scanfleet_registry_events::{Endpoint, Limits, SharedSecretAuth, WebhookSecret};
use scanfleet_scan_intents::schedule::Cadence;
use scanfleet_scan_intents::{
    ClusterName, ContainerName, CronExpr, ImageDigest, IntakeLimits, JitterSeed, LabelSelector,
    NamespaceName, ProfileName, ProfilePin, ProfileRef, Schedule, SelectorLimits,
};
use serde::Deserialize;

use crate::periodic_scans::PeriodicScan;
use crate::push_watches::WatchLimits;
use crate::registry_webhooks::WebhookRoute;

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
    /// HTTP listen address for webhooks, `/healthz`, `/readyz` and
    /// `/metrics` (port 0 picks one); no HTTP server without it.
    #[arg(long, env = "SCANFLEET_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// YAML file with webhook endpoints and schedules (see
    /// docs/intake.md).
    #[arg(long, env = "SCANFLEET_INTAKE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The profile directory the workers hold (`<dir>/<name>/inspec.yml`);
    /// with it, a submission naming an unknown profile, another edition or
    /// an input the profile does not declare is refused before queueing.
    #[arg(long, env = "SCANFLEET_PROFILES")]
    pub profiles: Option<PathBuf>,
}

/// The YAML file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Registry webhooks.
    #[serde(default)]
    pub webhooks: Option<FileWebhooks>,
    /// Periodic scans.
    #[serde(default)]
    pub scheduler: Option<FileScheduler>,
}

/// `webhooks:` in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWebhooks {
    /// The profile pushed images are scanned with.
    pub profile: FileProfile,
    /// Largest body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Most events per delivery.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// `Retry-After` on 429 / 503, in seconds.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
    /// How long a push waits for a pod running its digest, in seconds.
    #[serde(default = "default_watch_ttl")]
    pub watch_ttl_secs: u64,
    /// Most pushes waiting for pods at once.
    #[serde(default = "default_max_watches")]
    pub max_pending_watches: usize,
    /// Route name (`distribution`, `harbor`, `ghcr`) to endpoint.
    pub endpoints: BTreeMap<String, FileEndpoint>,
}

fn default_max_body() -> usize {
    Limits::default().max_body_bytes
}
fn default_max_events() -> usize {
    Limits::default().max_events
}
fn default_retry_after() -> u64 {
    30
}
fn default_watch_ttl() -> u64 {
    WatchLimits::default().ttl.as_secs()
}
fn default_max_watches() -> usize {
    WatchLimits::default().max_pending
}

/// One endpoint in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEndpoint {
    /// File holding the secret: the full expected header value for
    /// Distribution and Harbor (e.g. `Bearer …`), the webhook secret for
    /// GHCR. One trailing newline is ignored.
    pub secret_file: PathBuf,
    /// Header carrying the shared secret (Distribution, Harbor); default
    /// `Authorization`. Not used by GHCR.
    #[serde(default)]
    pub header: Option<String>,
}

/// A profile reference in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileProfile {
    /// Profile name.
    pub name: String,
    /// Released version (or `digest`).
    #[serde(default)]
    pub version: Option<String>,
    /// Content digest (or `version`).
    #[serde(default)]
    pub digest: Option<String>,
}

/// `scheduler:` in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileScheduler {
    /// Jitter seed; replicas that should agree on fire times share it.
    #[serde(default)]
    pub seed: u64,
    /// The schedules.
    #[serde(default)]
    pub schedules: Vec<FileSchedule>,
}

/// One schedule in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSchedule {
    /// RFC 1123 label, unique.
    pub name: String,
    /// Namespace to scan.
    pub namespace: String,
    /// Label selector (empty: every pod).
    #[serde(default)]
    pub selector: String,
    /// Only this container of each pod.
    #[serde(default)]
    pub container: Option<String>,
    /// Every so many seconds (or `cron`).
    #[serde(default)]
    pub interval_secs: Option<u64>,
    /// Five-field cron expression, UTC (or `interval_secs`).
    #[serde(default)]
    pub cron: Option<String>,
    /// Up to this many seconds of deterministic jitter per slot.
    #[serde(default)]
    pub jitter_secs: u64,
    /// The profile to scan with.
    pub profile: FileProfile,
}

/// Registry webhooks, validated.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The profile pushed images are scanned with.
    pub profile: ProfileRef,
    /// Routes by name.
    pub routes: BTreeMap<String, WebhookRoute>,
    /// `Retry-After` on backpressure.
    pub retry_after: Duration,
    /// Push watch bounds.
    pub watch_limits: WatchLimits,
}

/// Schedules, validated.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Jitter seed.
    pub seed: JitterSeed,
    /// The schedules.
    pub scans: Vec<PeriodicScan>,
}

fn profile(p: &FileProfile, at: &str, errors: &mut Vec<String>) -> Option<ProfileRef> {
    let name = ProfileName::new(&p.name)
        .map_err(|e| errors.push(format!("{at}.name {:?}: {e}", p.name)))
        .ok();
    let pin = match (&p.version, &p.digest) {
        (Some(v), None) => ProfilePin::version(v)
            .map_err(|e| errors.push(format!("{at}.version {v:?}: {e}")))
            .ok(),
        (None, Some(d)) => ImageDigest::parse(d)
            .map(ProfilePin::Digest)
            .map_err(|e| errors.push(format!("{at}.digest {d:?}: {e}")))
            .ok(),
        _ => {
            errors.push(format!("{at}: set exactly one of version or digest"));
            None
        }
    };
    Some(ProfileRef {
        name: name?,
        pin: pin?,
    })
}

/// Reads a secret file; the value is never logged or echoed.
fn secret(path: &Path, at: &str, errors: &mut Vec<String>) -> Option<WebhookSecret> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            errors.push(format!("{at}.secret_file {}: {e}", path.display()));
            return None;
        }
    };
    let mut bytes = bytes;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    WebhookSecret::new(bytes)
        .map_err(|e| errors.push(format!("{at}.secret_file {}: {e}", path.display())))
        .ok()
}

fn webhooks(w: &FileWebhooks, errors: &mut Vec<String>) -> Option<WebhookConfig> {
    let profile = profile(&w.profile, "webhooks.profile", errors);
    if w.max_body_bytes == 0 || w.max_body_bytes > 16 * 1024 * 1024 {
        errors.push("webhooks.max_body_bytes: must be 1 to 16 MiB".into());
    }
    if w.max_events == 0 {
        errors.push("webhooks.max_events: must be at least 1".into());
    }
    if w.retry_after_secs == 0 || w.retry_after_secs > 3600 {
        errors.push("webhooks.retry_after_secs: must be 1 to 3600".into());
    }
    if w.watch_ttl_secs == 0 {
        errors.push("webhooks.watch_ttl_secs: must be at least 1".into());
    }
    if w.max_pending_watches == 0 {
        errors.push("webhooks.max_pending_watches: must be at least 1".into());
    }
    if w.endpoints.is_empty() {
        errors.push(
            "webhooks.endpoints: configure at least one of distribution, harbor, ghcr".into(),
        );
    }
    let limits = Limits {
        max_body_bytes: w.max_body_bytes,
        max_events: w.max_events,
    };
    let mut routes = BTreeMap::new();
    for (name, e) in &w.endpoints {
        let at = format!("webhooks.endpoints.{name}");
        let secret = secret(&e.secret_file, &at, errors);
        let header = e.header.clone().unwrap_or_else(|| "Authorization".into());
        let endpoint = match name.as_str() {
            "distribution" | "harbor" => {
                if header.is_empty()
                    || !header
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    errors.push(format!("{at}.header {header:?}: not a header name"));
                }
                secret.map(|s| {
                    let auth = SharedSecretAuth::new(header, s);
                    if name == "distribution" {
                        Endpoint::distribution(auth, limits)
                    } else {
                        Endpoint::harbor(auth, limits)
                    }
                })
            }
            "ghcr" => {
                if e.header.is_some() {
                    errors.push(format!(
                        "{at}.header: GHCR is authenticated by X-Hub-Signature-256; remove header"
                    ));
                }
                secret.map(|s| Endpoint::ghcr(s, limits))
            }
            other => {
                errors.push(format!(
                    "webhooks.endpoints: unknown registry {other:?} (expected distribution, harbor or ghcr)"
                ));
                None
            }
        };
        if let Some(endpoint) = endpoint {
            routes.insert(
                name.clone(),
                WebhookRoute {
                    endpoint,
                    max_body_bytes: w.max_body_bytes,
                },
            );
        }
    }
    Some(WebhookConfig {
        profile: profile?,
        routes,
        retry_after: Duration::from_secs(w.retry_after_secs),
        watch_limits: WatchLimits {
            ttl: Duration::from_secs(w.watch_ttl_secs),
            max_pending: w.max_pending_watches,
        },
    })
}

fn schedules(s: &FileScheduler, errors: &mut Vec<String>) -> SchedulerConfig {
    let mut scans = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, f) in s.schedules.iter().enumerate() {
        let at = format!("scheduler.schedules[{i}]");
        let before = errors.len();
        if !names.insert(f.name.clone()) {
            errors.push(format!(
                "{at}.name {:?}: used by an earlier schedule",
                f.name
            ));
        }
        let namespace = NamespaceName::new(&f.namespace)
            .map_err(|e| errors.push(format!("{at}.namespace {:?}: {e}", f.namespace)))
            .ok();
        let selector = LabelSelector::parse(&f.selector, &SelectorLimits::default())
            .map_err(|e| errors.push(format!("{at}.selector {:?}: {e}", f.selector)))
            .ok();
        let container = match &f.container {
            None => Some(None),
            Some(c) => ContainerName::new(c)
                .map(Some)
                .map_err(|e| errors.push(format!("{at}.container {c:?}: {e}")))
                .ok(),
        };
        let cadence = match (&f.interval_secs, &f.cron) {
            (Some(n), None) => Some(Cadence::Every(Duration::from_secs(*n))),
            (None, Some(c)) => CronExpr::parse(c)
                .map(Cadence::Cron)
                .map_err(|e| errors.push(format!("{at}.cron {c:?}: {e}")))
                .ok(),
            _ => {
                errors.push(format!("{at}: set exactly one of interval_secs or cron"));
                None
            }
        };
        let profile = profile(&f.profile, &format!("{at}.profile"), errors);
        if errors.len() > before {
            continue;
        }
        let (Some(namespace), Some(selector), Some(container), Some(cadence), Some(profile)) =
            (namespace, selector, container, cadence, profile)
        else {
            continue;
        };
        match Schedule::new(
            &f.name,
            namespace,
            selector,
            container,
            cadence,
            Duration::from_secs(f.jitter_secs),
        ) {
            Ok(schedule) => scans.push(PeriodicScan { schedule, profile }),
            Err(e) => errors.push(format!("{at}: {e}")),
        }
    }
    SchedulerConfig {
        seed: JitterSeed(s.seed),
        scans,
    }
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
    /// HTTP address (webhooks, health, metrics).
    pub http_listen: Option<SocketAddr>,
    /// Registry webhooks, when configured.
    pub webhooks: Option<WebhookConfig>,
    /// Periodic scans, when configured.
    pub scheduler: Option<SchedulerConfig>,
    /// Profiles to check submissions against.
    pub profiles: Option<PathBuf>,
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
        if let Some(p) = &args.profiles
            && !p.is_dir()
        {
            errors.push(format!("--profiles: {} is not a directory", p.display()));
        }
        if args.max_batch == 0 {
            errors.push("--max-batch: must be at least 1".into());
        }
        if args.stream_replicas == 0 || args.stream_replicas > 5 {
            errors.push("--stream-replicas: must be 1 to 5".into());
        }
        let file = match &args.config {
            None => FileConfig::default(),
            Some(path) => match std::fs::read_to_string(path) {
                Err(e) => {
                    errors.push(format!("--config {}: {e}", path.display()));
                    FileConfig::default()
                }
                Ok(text) => serde_yaml::from_str::<Option<FileConfig>>(&text)
                    .map(Option::unwrap_or_default)
                    .unwrap_or_else(|e| {
                        errors.push(format!("--config {}: {e}", path.display()));
                        FileConfig::default()
                    }),
            },
        };
        let webhooks = file
            .webhooks
            .as_ref()
            .and_then(|w| webhooks(w, &mut errors));
        let scheduler = file.scheduler.as_ref().map(|s| schedules(s, &mut errors));
        if file.webhooks.is_some() {
            if args.http_listen.is_none() {
                errors.push("webhooks: need --http-listen to receive them".into());
            }
            if args.kubeconfig.is_none() {
                errors.push(
                    "webhooks: need --kubeconfig (pushes are matched against running pods)".into(),
                );
            }
        }
        if scheduler.as_ref().is_some_and(|s| !s.scans.is_empty()) && args.kubeconfig.is_none() {
            errors.push("scheduler: need --kubeconfig (schedules expand to running pods)".into());
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
                    max_timeout: Duration::from_secs(args.max_timeout_secs),
                    ..IntakeLimits::default()
                },
                stream_replicas: args.stream_replicas,
                json_logs: args.log_format == "json",
                http_listen: args.http_listen,
                webhooks,
                scheduler,
                profiles: args.profiles,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn every_problem_in_flags_and_file_is_reported_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intake.yaml");
        std::fs::write(
            &path,
            "webhooks:\n  profile: {name: cis}\n  endpoints:\n    distribution: {secret_file: /nonexistent/secret}\n    quay: {secret_file: /x}\nscheduler:\n  schedules:\n    - {name: Bad_Name, namespace: apps, interval_secs: 10, profile: {name: cis, version: '1'}}\n    - {name: ok, namespace: apps, selector: 'a in (', cron: '0 3 * * *', profile: {name: cis, version: '1'}}\n",
        )
        .unwrap();
        let errors = Config::from_args(Args::parse_from([
            "scanfleet-intake",
            "--cluster",
            "Not A Name",
            "--config",
            path.to_str().unwrap(),
        ]))
        .unwrap_err();
        let text = errors.join("\n");
        for expected in [
            "--cluster",
            "webhooks.profile: set exactly one of version or digest",
            "webhooks.endpoints.distribution.secret_file /nonexistent/secret",
            "unknown registry \"quay\"",
            "scheduler.schedules[0]",
            "scheduler.schedules[1].selector",
            "webhooks: need --http-listen",
            "webhooks: need --kubeconfig",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intake.yaml");
        std::fs::write(&path, "webhook: {}\n").unwrap();
        let errors = Config::from_args(Args::parse_from([
            "scanfleet-intake",
            "--config",
            path.to_str().unwrap(),
        ]))
        .unwrap_err();
        assert!(errors[0].contains("unknown field `webhook`"), "{errors:?}");
    }
}
