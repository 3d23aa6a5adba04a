//! Intake's configuration, parsed once, every problem reported together.
//!
//! Precedence, as for every service: flag, then `SCANFLEET_*` variable,
//! then the YAML file (`--config`), then the default. The file also holds
//! the structured parts: webhook endpoints ([`webhooks`]) and schedules
//! ([`schedules`]). Everything is validated in one pass, and every problem
//! (a bad flag, an unreadable secret file, a bad selector in the third
//! schedule) is reported at once, named by flag or YAML path.

mod file;
mod flags;
mod schedules;
mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use scanfleet_bus::NatsSettings;
use scanfleet_edge_access::AccessSettings;
use scanfleet_kube_access::ClusterReach;
use scanfleet_process_lifecycle::{
    ListenerSecurity, LogFormat, ServingLimits, read_yaml_file, setting,
};
use scanfleet_scan_intents::{ClusterName, IntakeLimits, LockedInputs};

pub use file::{
    FileCluster, FileConfig, FileEndpoint, FileProfile, FileSchedule, FileScheduler, FileWebhooks,
};
pub use flags::Args;
use schedules::ClusterChoice;
pub use schedules::SchedulerConfig;
pub use webhooks::WebhookConfig;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to reach NATS.
    pub nats: NatsSettings,
    /// The default cluster.
    pub cluster: ClusterName,
    /// Kubeconfig for the pod directory.
    pub kubeconfig: Option<PathBuf>,
    /// The pod directory runs as the pod's own ServiceAccount.
    pub in_cluster: bool,
    /// The registry's other clusters: submissions may name them; the
    /// ones intake can reach get their own pod directory.
    pub other_clusters: Vec<KnownCluster>,
    /// gRPC address.
    pub grpc_listen: SocketAddr,
    /// Default scan timeout.
    pub default_timeout: Duration,
    /// Cap on requested timeouts.
    pub max_timeout: Duration,
    /// Request validation limits.
    pub limits: IntakeLimits,
    /// How logs are written.
    pub log_format: LogFormat,
    /// HTTP address (webhooks, health, metrics).
    pub http_listen: Option<SocketAddr>,
    /// Connection limits of both listeners.
    pub serving: ServingLimits,
    /// TLS (or, if asked for, plaintext) of both listeners.
    pub security: ListenerSecurity,
    /// Who may call the gRPC API, and how fast.
    pub access: AccessSettings,
    /// Registry webhooks, when configured.
    pub webhooks: Option<WebhookConfig>,
    /// Periodic scans, when configured.
    pub scheduler: Option<SchedulerConfig>,
    /// Profiles to check submissions against.
    pub profiles: Option<PathBuf>,
    /// Inputs no caller may override.
    pub locked_inputs: LockedInputs,
}

/// A cluster of the registry besides the default one.
#[derive(Debug, Clone)]
pub struct KnownCluster {
    /// Its name.
    pub name: ClusterName,
    /// How intake reaches it for label selectors; `None`: by name only
    /// (submissions name containers by `k8s://` URI).
    pub reach: Option<ClusterReach>,
}

impl Config {
    /// Every cluster submissions may name, the default one first.
    pub fn known_clusters(&self) -> Vec<&ClusterName> {
        std::iter::once(&self.cluster)
            .chain(self.other_clusters.iter().map(|c| &c.name))
            .collect()
    }
}

/// The one wording of a cluster name the registry does not have, for
/// submissions and schedules alike.
pub fn unknown_cluster(name: &str, known: &[&ClusterName]) -> String {
    let names: Vec<&str> = known.iter().map(|c| c.as_str()).collect();
    format!(
        "unknown cluster {name:?}; known clusters: {}",
        names.join(", ")
    )
}

/// The registry's entries, every problem named by entry.
fn other_clusters(
    entries: &[FileCluster],
    default: Option<&ClusterName>,
    errors: &mut Vec<String>,
) -> Vec<KnownCluster> {
    let mut seen = std::collections::BTreeSet::new();
    let mut known = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("clusters[{i}] ({})", entry.name);
        let Ok(name) =
            ClusterName::new(&entry.name).map_err(|e| errors.push(format!("{at}.name: {e}")))
        else {
            continue;
        };
        if default == Some(&name) {
            errors.push(format!(
                "{at}: is the default cluster (--cluster); reach it with --kubeconfig or --in-cluster"
            ));
            continue;
        }
        if !seen.insert(entry.name.clone()) {
            errors.push(format!("{at}: named twice"));
            continue;
        }
        let reach = match (&entry.kubeconfig, entry.in_cluster) {
            (None, None) => None,
            (kubeconfig, in_cluster) => {
                match ClusterReach::from_entry(kubeconfig.clone(), in_cluster, &at, errors) {
                    Some(reach) => Some(reach),
                    None => continue,
                }
            }
        };
        known.push(KnownCluster { name, reach });
    }
    known
}

/// The process settings, settled by the precedence rule.
struct Process {
    cluster: Option<ClusterName>,
    kubeconfig: Option<PathBuf>,
    in_cluster: bool,
    profiles: Option<PathBuf>,
    locked_inputs: LockedInputs,
    grpc_listen: SocketAddr,
    default_timeout_secs: u64,
    max_timeout_secs: u64,
    max_batch: usize,
    log_format: LogFormat,
    http_listen: Option<SocketAddr>,
}

impl Process {
    /// Whether intake watches pods (with some identity).
    fn has_pod_directory(&self) -> bool {
        self.kubeconfig.is_some() || self.in_cluster
    }
}

fn settle(args: &Args, file: &FileConfig, errors: &mut Vec<String>) -> Process {
    let cluster = setting(args.cluster.clone(), file.cluster.clone(), "default".into());
    let p = Process {
        cluster: ClusterName::new(&cluster)
            .map_err(|e| errors.push(format!("--cluster {cluster:?}: {e}")))
            .ok(),
        kubeconfig: args.kubeconfig.clone().or(file.kubeconfig.clone()),
        in_cluster: setting(args.in_cluster, file.in_cluster, false),
        profiles: args.profiles.clone().or(file.profiles.clone()),
        locked_inputs: LockedInputs::parse(&setting(
            args.locked_inputs.clone(),
            file.locked_inputs.clone(),
            String::new(),
        ))
        .unwrap_or_else(|e| {
            errors.push(format!("--locked-inputs: {e}"));
            LockedInputs::None
        }),
        grpc_listen: setting(
            args.grpc_listen,
            file.grpc_listen,
            SocketAddr::from(([127, 0, 0, 1], 50051)),
        ),
        default_timeout_secs: setting(args.default_timeout_secs, file.default_timeout_secs, 600),
        max_timeout_secs: setting(args.max_timeout_secs, file.max_timeout_secs, 3600),
        max_batch: setting(args.max_batch, file.max_batch, 100),
        log_format: setting(args.log_format, file.log_format, LogFormat::Text),
        http_listen: args.http_listen.or(file.http_listen),
    };
    if p.default_timeout_secs == 0 || p.default_timeout_secs > p.max_timeout_secs {
        errors.push(format!(
            "--default-timeout-secs {}: must be 1..={} seconds (--max-timeout-secs)",
            p.default_timeout_secs, p.max_timeout_secs
        ));
    }
    if let Some(k) = &p.kubeconfig
        && !k.is_file()
    {
        errors.push(format!("--kubeconfig: {} is not a file", k.display()));
    }
    if p.kubeconfig.is_some() && p.in_cluster {
        errors
            .push("--kubeconfig and --in-cluster: give one identity for the pod directory".into());
    }
    if let Some(dir) = &p.profiles
        && !dir.is_dir()
    {
        errors.push(format!("--profiles: {} is not a directory", dir.display()));
    }
    if p.max_batch == 0 {
        errors.push("--max-batch: must be at least 1".into());
    }
    p
}

/// What webhooks and schedules need from the process settings.
fn check_prerequisites(
    file: &FileConfig,
    p: &Process,
    has_schedules: bool,
    errors: &mut Vec<String>,
) {
    if file.webhooks.is_some() {
        if p.http_listen.is_none() {
            errors.push("webhooks: need --http-listen to receive them".into());
        }
        if !p.has_pod_directory() {
            errors.push(
                "webhooks: need --kubeconfig or --in-cluster (pushes are matched against running pods)"
                    .into(),
            );
        }
    }
    if has_schedules && !p.has_pod_directory() {
        errors.push(
            "scheduler: need --kubeconfig or --in-cluster (schedules expand to running pods)"
                .into(),
        );
    }
}

impl Config {
    /// Validates everything and reports all problems at once.
    ///
    /// # Errors
    /// One line per problem.
    pub fn from_args(args: Args) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let file: FileConfig = match &args.config {
            None => FileConfig::default(),
            Some(path) => read_yaml_file(path, &mut errors),
        };
        let nats = args.nats.settle(&file.nats, &mut errors);
        let process = settle(&args, &file, &mut errors);
        let serving = args.serving.clone().settle(file.serving(), &mut errors);
        let security = args.tls.clone().settle(file.tls(), &mut errors);
        let access = args.access.clone().settle(file.access(), &mut errors);
        let webhooks = file
            .webhooks
            .as_ref()
            .and_then(|w| webhooks::webhooks(w, &mut errors));
        let other_clusters = other_clusters(&file.clusters, process.cluster.as_ref(), &mut errors);
        let choice = ClusterChoice {
            known: process
                .cluster
                .iter()
                .chain(other_clusters.iter().map(|c| &c.name))
                .collect(),
            watched: process
                .cluster
                .iter()
                .chain(
                    other_clusters
                        .iter()
                        .filter(|c| c.reach.is_some())
                        .map(|c| &c.name),
                )
                .collect(),
        };
        let scheduler = file
            .scheduler
            .as_ref()
            .map(|s| schedules::schedules(s, &choice, &mut errors));
        let has_schedules = scheduler.as_ref().is_some_and(|s| !s.scans.is_empty());
        check_prerequisites(&file, &process, has_schedules, &mut errors);
        let cluster = match (errors.is_empty(), process.cluster) {
            (true, Some(cluster)) => cluster,
            _ => return Err(errors),
        };
        Ok(Self {
            nats,
            cluster,
            kubeconfig: process.kubeconfig,
            in_cluster: process.in_cluster,
            other_clusters,
            grpc_listen: process.grpc_listen,
            default_timeout: Duration::from_secs(process.default_timeout_secs),
            max_timeout: Duration::from_secs(process.max_timeout_secs),
            limits: IntakeLimits {
                max_batch: process.max_batch,
                max_timeout: Duration::from_secs(process.max_timeout_secs),
                ..IntakeLimits::default()
            },
            log_format: process.log_format,
            http_listen: process.http_listen,
            serving,
            security,
            access,
            webhooks,
            scheduler,
            profiles: process.profiles,
            locked_inputs: process.locked_inputs,
        })
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
    fn in_cluster_is_an_identity_for_the_pod_directory_and_excludes_a_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intake.yaml");
        std::fs::write(
            &path,
            "in_cluster: true\ninsecure_plaintext: true\nscheduler:\n  schedules:\n    - {name: nightly, namespace: apps, cron: '0 3 * * *', profile: {name: cis, version: '1'}}\n",
        )
        .unwrap();
        let config = Config::from_args(Args::parse_from([
            "scanfleet-intake",
            "--config",
            path.to_str().unwrap(),
        ]))
        .map_err(|e| e.join("; "))
        .unwrap();
        assert!(config.in_cluster && config.kubeconfig.is_none());

        let kubeconfig = dir.path().join("intake.kubeconfig");
        std::fs::write(&kubeconfig, "apiVersion: v1\n").unwrap();
        let errors = Config::from_args(Args::parse_from([
            "scanfleet-intake",
            "--config",
            path.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]))
        .unwrap_err();
        assert!(
            errors.join("\n").contains("--kubeconfig and --in-cluster"),
            "{errors:?}"
        );
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

#[cfg(test)]
mod precedence {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_flag_wins_over_the_file_which_wins_over_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("intake.yaml");
        std::fs::write(
            &path,
            "cluster: from-file\ngrpc_listen: 127.0.0.1:7001\nmax_batch: 7\nlog_format: json\nheader_read_timeout_secs: 3\ninsecure_plaintext: true\n",
        )
        .unwrap();
        let config = Config::from_args(Args::parse_from([
            "scanfleet-intake",
            "--config",
            path.to_str().unwrap(),
            "--grpc-listen",
            "127.0.0.1:7002",
        ]))
        .unwrap();
        assert_eq!(config.cluster.as_str(), "from-file");
        assert_eq!(config.grpc_listen.port(), 7002, "the flag wins");
        assert_eq!(config.limits.max_batch, 7, "the file wins over the default");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.serving.header_read_timeout, Duration::from_secs(3));
        assert_eq!(
            config.default_timeout,
            Duration::from_secs(600),
            "the default"
        );
    }
}
