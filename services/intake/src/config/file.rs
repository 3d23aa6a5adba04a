//! Intake's YAML file as written (`--config`): every flag's setting under
//! its snake_case name, plus what a command line cannot carry well: the
//! registry webhook endpoints and the schedules. Unknown keys are refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use scanfleet_edge_access::AccessFile;
use scanfleet_edge_access::settings::FileMappedUser;
use scanfleet_process_lifecycle::{LogFormat, ServingFile, TlsFile};
use scanfleet_registry_events::Limits;
use serde::Deserialize;

use crate::push_watches::WatchLimits;

/// The YAML file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The NATS connection (`nats:` with `url`, `nkey_file`, `ca`, …).
    #[serde(default)]
    pub nats: scanfleet_bus::NatsFile,
    /// `--cluster`.
    pub cluster: Option<String>,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--in-cluster`.
    pub in_cluster: Option<bool>,
    /// `--profiles`.
    pub profiles: Option<PathBuf>,
    /// `--locked-inputs`.
    pub locked_inputs: Option<String>,
    /// `--grpc-listen`.
    pub grpc_listen: Option<SocketAddr>,
    /// `--default-timeout-secs`.
    pub default_timeout_secs: Option<u64>,
    /// `--max-timeout-secs`.
    pub max_timeout_secs: Option<u64>,
    /// `--max-batch`.
    pub max_batch: Option<usize>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--http-listen`.
    pub http_listen: Option<SocketAddr>,
    /// `--max-connections`.
    pub max_connections: Option<usize>,
    /// `--header-read-timeout`.
    pub header_read_timeout_secs: Option<u64>,
    /// `--idle-timeout`.
    pub idle_timeout_secs: Option<u64>,
    /// `--tls-cert-file`.
    pub tls_cert_file: Option<PathBuf>,
    /// `--tls-key-file`.
    pub tls_key_file: Option<PathBuf>,
    /// `--tls-client-ca-file`.
    pub tls_client_ca_file: Option<PathBuf>,
    /// `--require-client-certificate`.
    pub require_client_certificate: Option<bool>,
    /// `--insecure-plaintext`.
    pub insecure_plaintext: Option<bool>,
    /// `--access-kubeconfig`.
    pub access_kubeconfig: Option<PathBuf>,
    /// `--token-audience`.
    pub token_audience: Option<String>,
    /// `--access-cache-ttl`.
    pub access_cache_ttl_secs: Option<u64>,
    /// `--access-cache-size`.
    pub access_cache_size: Option<usize>,
    /// `--rate-limit`.
    pub rate_limit: Option<u32>,
    /// `--rate-limit-burst`.
    pub rate_limit_burst: Option<u32>,
    /// Verified client-certificate subject → user (file only).
    #[serde(default)]
    pub client_certificate_users: BTreeMap<String, FileMappedUser>,
    /// Authenticating proxies' certificate subjects (file only).
    #[serde(default)]
    pub authenticating_proxies: Vec<String>,
    /// Registry webhooks.
    #[serde(default)]
    pub webhooks: Option<FileWebhooks>,
    /// Periodic scans.
    #[serde(default)]
    pub scheduler: Option<FileScheduler>,
    /// The other clusters the fleet scans (the cluster registry), beside
    /// the default one of `--cluster`.
    #[serde(default)]
    pub clusters: Vec<FileCluster>,
}

/// One entry of the cluster registry. The same file the workers read may
/// be mounted here: intake reads the name and how to reach the cluster,
/// and ignores the workers' `kube` budget and `approaches` policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCluster {
    /// The cluster's name, as submissions and intents carry it.
    pub name: String,
    /// A kubeconfig for its pod directory (label selectors).
    pub kubeconfig: Option<PathBuf>,
    /// Its pod directory runs as intake's own ServiceAccount.
    pub in_cluster: Option<bool>,
    /// The workers' API budget (not intake's).
    #[serde(default)]
    pub kube: Option<serde::de::IgnoredAny>,
    /// The workers' approach policy (not intake's).
    #[serde(default)]
    pub approaches: Option<serde::de::IgnoredAny>,
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
    /// A push for a digest no pod runs: `watch` (default) for its first
    /// pod, `image` to scan the image itself now, or `both`.
    #[serde(default)]
    pub unmatched: crate::push_matching::UnmatchedPush,
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
    /// Only in these clusters of the registry (default: every cluster
    /// intake reaches).
    #[serde(default)]
    pub clusters: Option<Vec<String>>,
}

impl FileConfig {
    /// The access-control keys, as the shared settings read them.
    pub fn access(&self) -> AccessFile {
        AccessFile {
            access_kubeconfig: self.access_kubeconfig.clone(),
            token_audience: self.token_audience.clone(),
            access_cache_ttl_secs: self.access_cache_ttl_secs,
            access_cache_size: self.access_cache_size,
            rate_limit: self.rate_limit,
            rate_limit_burst: self.rate_limit_burst,
            client_certificate_users: self.client_certificate_users.clone(),
            authenticating_proxies: self.authenticating_proxies.clone(),
        }
    }

    /// The TLS keys, as the shared settings read them.
    pub fn tls(&self) -> TlsFile {
        TlsFile {
            tls_cert_file: self.tls_cert_file.clone(),
            tls_key_file: self.tls_key_file.clone(),
            tls_client_ca_file: self.tls_client_ca_file.clone(),
            require_client_certificate: self.require_client_certificate,
            insecure_plaintext: self.insecure_plaintext,
        }
    }

    /// The listener limits written in the file.
    pub fn serving(&self) -> ServingFile {
        ServingFile {
            max_connections: self.max_connections,
            header_read_timeout_secs: self.header_read_timeout_secs,
            idle_timeout_secs: self.idle_timeout_secs,
        }
    }
}
