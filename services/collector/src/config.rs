//! The collector's configuration: flags, environment variables and an
//! optional YAML file (`--config`), parsed once into typed values, with every
//! problem reported together. Precedence, as for every service: flag, then
//! `SCANFLEET_*` variable, then the file, then the default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use scanfleet_bus::{NatsArgs, NatsSettings};
use scanfleet_edge_access::settings::FileMappedUser;
use scanfleet_edge_access::{AccessArgs, AccessFile, AccessSettings};
use scanfleet_process_lifecycle::{
    ListenerSecurity, LogFormat, ServingArgs, ServingFile, ServingLimits, TlsArgs, TlsFile,
    read_yaml_file, setting,
};
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
    /// YAML file with any of the settings below (snake_case keys).
    #[arg(long, env = "SCANFLEET_COLLECTOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Result store: sqlite://PATH (embedded) or postgres://… [default:
    /// sqlite://scanfleet-results.db]
    #[arg(long, env = "SCANFLEET_STORE_URL")]
    pub store_url: Option<String>,
    /// File holding the store URL (one line), for a URL with a password:
    /// kept out of the environment and the process list. Wins over
    /// `store_url` in the YAML file; not together with --store-url.
    #[arg(long, env = "SCANFLEET_STORE_URL_FILE")]
    pub store_url_file: Option<PathBuf>,
    /// A trusted signing public key (SPKI PEM); repeat for rotation.
    #[arg(
        long = "trusted-key",
        env = "SCANFLEET_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    pub trusted_keys: Vec<PathBuf>,
    /// Refuse results that were not age-encrypted on the bus (quarantined
    /// `unencrypted`), and keep reports encrypted in the store, decrypted
    /// only for authorized readers; needs --age-identity [default: false]
    #[arg(long, env = "SCANFLEET_REQUIRE_ENCRYPTION", num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub require_encryption: Option<bool>,
    /// age identity file to decrypt encrypted results; may be repeated.
    #[arg(
        long = "age-identity",
        env = "SCANFLEET_AGE_IDENTITIES",
        value_delimiter = ','
    )]
    pub age_identities: Vec<PathBuf>,
    /// gRPC `Results` listen address, port 0 picks one [default:
    /// 127.0.0.1:50052]
    #[arg(long, env = "SCANFLEET_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,
    /// HTTP API, health and metrics listen address [default: 127.0.0.1:8082]
    #[arg(long, env = "SCANFLEET_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Delete results that finished longer ago than this many days, 0 keeps
    /// all [default: 30]
    #[arg(long, env = "SCANFLEET_RETENTION_DAYS")]
    pub retention_days: Option<u32>,
    /// Largest event, envelope or report accepted, in bytes [default: 16 MiB]
    #[arg(long, env = "SCANFLEET_MAX_EVENT_BYTES")]
    pub max_event_bytes: Option<usize>,
    /// Log format [default: text]
    #[arg(long, env = "SCANFLEET_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Most workloads shown as finding series on /metrics; results for more
    /// are counted in `finding_workloads_dropped_total` [default: 10000]
    #[arg(long, env = "SCANFLEET_MAX_FINDING_WORKLOADS")]
    pub max_finding_workloads: Option<usize>,
    /// Workloads last scanned longer ago than this many hours stand out as
    /// stale on the dashboard [default: 24]
    #[arg(long, env = "SCANFLEET_STALE_AFTER_HOURS")]
    pub stale_after_hours: Option<u32>,
    /// How long a dashboard login lasts, in minutes [default: 15]
    #[arg(long, env = "SCANFLEET_SESSION_TTL_MINUTES")]
    pub session_ttl_minutes: Option<u32>,
    /// Connection limits of the gRPC and HTTP listeners.
    #[command(flatten)]
    pub serving: ServingArgs,
    /// TLS of the gRPC and HTTP listeners.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Who may read results.
    #[command(flatten)]
    pub access: AccessArgs,
}

/// The YAML file, as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    nats: scanfleet_bus::NatsFile,
    store_url: Option<String>,
    store_url_file: Option<PathBuf>,
    #[serde(default)]
    trusted_keys: Vec<PathBuf>,
    #[serde(default)]
    age_identities: Vec<PathBuf>,
    grpc_listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    retention_days: Option<u32>,
    max_event_bytes: Option<usize>,
    log_format: Option<LogFormat>,
    max_finding_workloads: Option<usize>,
    stale_after_hours: Option<u32>,
    session_ttl_minutes: Option<u32>,
    max_connections: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    tls_client_ca_file: Option<PathBuf>,
    require_client_certificate: Option<bool>,
    insecure_plaintext: Option<bool>,
    require_encryption: Option<bool>,
    access_kubeconfig: Option<PathBuf>,
    token_audience: Option<String>,
    access_cache_ttl_secs: Option<u64>,
    access_cache_size: Option<usize>,
    rate_limit: Option<u32>,
    rate_limit_burst: Option<u32>,
    #[serde(default)]
    client_certificate_users: std::collections::BTreeMap<String, FileMappedUser>,
    #[serde(default)]
    authenticating_proxies: Vec<String>,
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
    /// Size bound.
    pub max_event_bytes: usize,
    /// How logs are written.
    pub log_format: LogFormat,
    /// Connection limits of both listeners.
    pub serving: ServingLimits,
    /// The bound on workloads shown as finding series.
    pub max_finding_workloads: usize,
    /// The dashboard's staleness cutoff and login lifetime.
    pub dashboard: crate::dashboard::DashboardSettings,
    /// TLS (or, if asked for, plaintext) of both listeners.
    pub security: ListenerSecurity,
    /// Who may read results, and how fast.
    pub access: AccessSettings,
    /// Only encrypted results are accepted, and reports are kept
    /// encrypted at rest.
    pub require_encryption: bool,
}

const MAX_KEY_FILE: u64 = 64 * 1024;

fn read_small(path: &std::path::Path) -> Result<String, String> {
    scanfleet_bus::read_small_file(path, MAX_KEY_FILE)
}

/// The store URL: `--store-url`, or the content of a `--store-url-file`
/// (flag, variable or YAML), or the YAML's `store_url`, or the default. The
/// URL may carry a password, so no message here repeats it.
fn store_url(
    flag: Option<String>,
    flag_file: Option<PathBuf>,
    file: &FileConfig,
    errors: &mut Vec<String>,
) -> String {
    if file.store_url.is_some() && file.store_url_file.is_some() {
        errors.push("store_url and store_url_file: give one of them in the file".into());
    }
    let url_file = flag_file.or_else(|| file.store_url_file.clone());
    match (flag, url_file) {
        (Some(_), Some(_)) => {
            errors.push("--store-url and --store-url-file: give one of them".into());
            String::new()
        }
        (Some(url), None) => url,
        (None, Some(path)) => match read_small(&path) {
            Ok(text) if text.trim().is_empty() => {
                errors.push(format!("--store-url-file: {} is empty", path.display()));
                String::new()
            }
            Ok(text) => text.trim().to_owned(),
            Err(e) => {
                errors.push(format!("--store-url-file: {e}"));
                String::new()
            }
        },
        (None, None) => file
            .store_url
            .clone()
            .unwrap_or_else(|| "sqlite://scanfleet-results.db".into()),
    }
}

impl Config {
    /// A collector beside everything else on one machine, as tests and
    /// benchmarks embed it: OS-chosen loopback ports, `store_url`, one
    /// trusted key, plus `extra` flags. It goes through [`Config::from_args`]
    /// so it is validated exactly like a deployed one.
    ///
    /// # Errors
    /// One line per problem.
    pub fn loopback(
        nats_url: &str,
        store_url: &str,
        trusted_key: &std::path::Path,
        extra: &[String],
    ) -> Result<Self, Vec<String>> {
        let mut argv = vec![
            "scanfleet-collector".to_owned(),
            "--nats-url".into(),
            nats_url.into(),
            "--store-url".into(),
            store_url.into(),
            "--trusted-key".into(),
            trusted_key.display().to_string(),
            "--grpc-listen".into(),
            "127.0.0.1:0".into(),
            "--http-listen".into(),
            "127.0.0.1:0".into(),
        ];
        argv.extend_from_slice(extra);
        Self::from_args(<Args as clap::Parser>::parse_from(argv))
    }

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
        let store_url = store_url(args.store_url, args.store_url_file, &file, &mut errors);
        let trusted_keys = if args.trusted_keys.is_empty() {
            file.trusted_keys
        } else {
            args.trusted_keys
        };
        let age_identities = if args.age_identities.is_empty() {
            file.age_identities
        } else {
            args.age_identities
        };
        let retention_days = setting(args.retention_days, file.retention_days, 30);
        let log_format = setting(args.log_format, file.log_format, LogFormat::Text);
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
                tls_cert_file: file.tls_cert_file,
                tls_key_file: file.tls_key_file,
                tls_client_ca_file: file.tls_client_ca_file,
                require_client_certificate: file.require_client_certificate,
                insecure_plaintext: file.insecure_plaintext,
            },
            &mut errors,
        );
        // Empty only when reading it failed, which is reported already.
        let known_scheme = ["sqlite:", "postgres:", "postgresql:"]
            .iter()
            .any(|scheme| store_url.starts_with(scheme));
        if !store_url.is_empty() && !known_scheme {
            errors.push("--store-url: expected sqlite://PATH or postgres://…".into());
        }
        let trusted = trusted_keys_from(&trusted_keys, &mut errors);
        let identities = identities_from(&age_identities, &mut errors);
        let require_encryption = setting(args.require_encryption, file.require_encryption, false);
        if require_encryption && identities.is_none() {
            errors.push(
                "require_encryption: needs --age-identity (the collector decrypts results and \
                 keeps reports encrypted to it)"
                    .into(),
            );
        }
        let access = args.access.settle(
            AccessFile {
                access_kubeconfig: file.access_kubeconfig,
                token_audience: file.token_audience,
                access_cache_ttl_secs: file.access_cache_ttl_secs,
                access_cache_size: file.access_cache_size,
                rate_limit: file.rate_limit,
                rate_limit_burst: file.rate_limit_burst,
                client_certificate_users: file.client_certificate_users,
                authenticating_proxies: file.authenticating_proxies,
            },
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            nats,
            store_url,
            trusted,
            identities,
            grpc_listen: setting(
                args.grpc_listen,
                file.grpc_listen,
                SocketAddr::from(([127, 0, 0, 1], 50052)),
            ),
            http_listen: setting(
                args.http_listen,
                file.http_listen,
                SocketAddr::from(([127, 0, 0, 1], 8082)),
            ),
            retention: (retention_days > 0)
                .then(|| Duration::from_secs(u64::from(retention_days) * 86_400)),
            max_event_bytes: setting(args.max_event_bytes, file.max_event_bytes, 16 * 1024 * 1024),
            log_format,
            serving,
            max_finding_workloads: setting(
                args.max_finding_workloads,
                file.max_finding_workloads,
                crate::finding_metrics::DEFAULT_MAX_WORKLOADS,
            ),
            dashboard: crate::dashboard::DashboardSettings {
                stale_after: Duration::from_secs(
                    u64::from(setting(args.stale_after_hours, file.stale_after_hours, 24).max(1))
                        * 3600,
                ),
                session_ttl: Duration::from_secs(
                    u64::from(
                        setting(args.session_ttl_minutes, file.session_ttl_minutes, 15)
                            .clamp(1, 720),
                    ) * 60,
                ),
            },
            security,
            access,
            require_encryption,
        })
    }
}

/// The signing keys whose results are accepted (at least one).
fn trusted_keys_from(paths: &[PathBuf], errors: &mut Vec<String>) -> TrustedKeys {
    let mut trusted = TrustedKeys::new();
    if paths.is_empty() {
        errors.push(
            "--trusted-key: at least one signing public key is required; without one every result would be quarantined"
                .into(),
        );
    }
    for path in paths {
        match read_small(path).and_then(|pem| {
            PublicKey::from_spki_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
        }) {
            Ok(key) => trusted.insert(key),
            Err(e) => errors.push(format!("--trusted-key: {e}")),
        }
    }
    trusted
}

/// The age identities of every file, if any.
fn identities_from(paths: &[PathBuf], errors: &mut Vec<String>) -> Option<AgeIdentities> {
    let mut identity_text = String::new();
    for path in paths {
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
    if identity_text.is_empty() {
        None
    } else {
        AgeIdentities::parse(&identity_text).ok()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn key_file(dir: &std::path::Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let key = scanfleet_trust::SigningKey::generate();
        std::fs::write(&path, key.public_key().to_spki_pem()).unwrap();
        path
    }

    #[test]
    fn the_file_fills_in_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_file(dir.path(), "k.pub.pem");
        let file = dir.path().join("collector.yml");
        std::fs::write(
            &file,
            format!(
                "store_url: sqlite:///var/lib/r.db\ntrusted_keys: [{}]\nretention_days: 7\nhttp_listen: 127.0.0.1:9999\ninsecure_plaintext: true\n",
                key.display()
            ),
        )
        .unwrap();
        let config = Config::from_args(Args::parse_from([
            "scanfleet-collector",
            "--config",
            file.to_str().unwrap(),
            "--http-listen",
            "127.0.0.1:7777",
        ]))
        .map_err(|e| e.join("; "))
        .unwrap();
        assert_eq!(config.store_url, "sqlite:///var/lib/r.db");
        assert_eq!(config.retention, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(
            config.http_listen.port(),
            7777,
            "the flag wins over the file"
        );
        assert_eq!(
            config.grpc_listen.port(),
            50052,
            "the default when neither says"
        );
    }

    #[test]
    fn file_and_flag_problems_are_reported_together() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("collector.yml");
        std::fs::write(&file, "store_url: mysql://x\nbogus: 1\n").unwrap();
        let errors = Config::from_args(Args::parse_from([
            "scanfleet-collector",
            "--config",
            file.to_str().unwrap(),
            "--nats-url",
            "ftp://nats.example",
        ]))
        .err()
        .expect("invalid");
        let all = errors.join("\n");
        for needle in ["unknown field `bogus`", "--trusted-key", "--nats-url"] {
            assert!(all.contains(needle), "{needle} missing from:\n{all}");
        }
    }

    #[test]
    fn nats_credentials_come_from_the_file_under_flags() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_file(dir.path(), "k.pub.pem");
        let ca = key_file(dir.path(), "ca.pem");
        let seed = dir.path().join("collector.nk");
        std::fs::write(&seed, scanfleet_bus::UserNkey::generate().seed).unwrap();
        let file = dir.path().join("collector.yml");
        std::fs::write(
            &file,
            format!(
                "trusted_keys: [{}]\ninsecure_plaintext: true\nnats:\n  url: tls://nats.file:4222\n  nkey_file: {}\n  ca: {}\n",
                key.display(),
                seed.display(),
                ca.display()
            ),
        )
        .unwrap();
        let config = Config::from_args(Args::parse_from([
            "scanfleet-collector",
            "--config",
            file.to_str().unwrap(),
        ]))
        .map_err(|e| e.join("; "))
        .unwrap();
        assert_eq!(config.nats.urls, vec!["tls://nats.file:4222".to_owned()]);
        assert!(matches!(
            config.nats.auth,
            scanfleet_bus::NatsAuth::NKey { .. }
        ));
        assert_eq!(config.nats.ca.as_deref(), Some(ca.as_path()));
        let config = Config::from_args(Args::parse_from([
            "scanfleet-collector",
            "--config",
            file.to_str().unwrap(),
            "--nats-url",
            "tls://nats.flag:4222",
        ]))
        .map_err(|e| e.join("; "))
        .unwrap();
        assert_eq!(
            config.nats.urls,
            vec!["tls://nats.flag:4222".to_owned()],
            "the flag wins over the file"
        );

        std::fs::write(&file, "nats:\n  nkey_file: /nonexistent/seed\n  bogus: 1\n").unwrap();
        let errors = Config::from_args(Args::parse_from([
            "scanfleet-collector",
            "--config",
            file.to_str().unwrap(),
        ]))
        .err()
        .expect("invalid")
        .join("\n");
        assert!(errors.contains("unknown field `bogus`"), "{errors}");
    }

    #[test]
    fn a_store_url_file_wins_over_the_files_url_and_is_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_file(dir.path(), "k.pub.pem");
        let file = dir.path().join("collector.yml");
        std::fs::write(
            &file,
            format!(
                "store_url: sqlite:///var/lib/r.db\ntrusted_keys: [{}]\ninsecure_plaintext: true\n",
                key.display()
            ),
        )
        .unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, "postgres://scanfleet:s3cret@db:5432/scanfleet\n").unwrap();
        let args = |extra: &[&str]| {
            let mut argv = vec!["scanfleet-collector", "--config", file.to_str().unwrap()];
            argv.extend_from_slice(extra);
            Config::from_args(Args::parse_from(argv))
        };
        let config = args(&["--store-url-file", url.to_str().unwrap()])
            .map_err(|e| e.join("; "))
            .unwrap();
        assert_eq!(
            config.store_url, "postgres://scanfleet:s3cret@db:5432/scanfleet",
            "the URL file wins over the YAML's store_url, trimmed"
        );

        let both = args(&[
            "--store-url-file",
            url.to_str().unwrap(),
            "--store-url",
            "sqlite://x",
        ])
        .err()
        .expect("both refused")
        .join("\n");
        assert!(both.contains("--store-url and --store-url-file"), "{both}");

        std::fs::write(&url, "mysql://scanfleet:s3cret@db/scanfleet\n").unwrap();
        let bad = args(&["--store-url-file", url.to_str().unwrap()])
            .err()
            .expect("a wrong scheme is refused")
            .join("\n");
        assert!(bad.contains("--store-url: expected"), "{bad}");
        assert!(
            !bad.contains("s3cret"),
            "the password is never repeated: {bad}"
        );

        let missing = args(&["--store-url-file", "/nonexistent/url"])
            .err()
            .expect("a missing file is refused")
            .join("\n");
        assert!(
            missing.contains("--store-url-file: /nonexistent/url"),
            "{missing}"
        );

        std::fs::write(&url, "\n").unwrap();
        let empty = args(&["--store-url-file", url.to_str().unwrap()])
            .err()
            .expect("an empty file is refused")
            .join("\n");
        assert!(empty.contains("is empty"), "{empty}");
    }
}
