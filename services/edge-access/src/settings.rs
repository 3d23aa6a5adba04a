//! The flags, variables and YAML keys of the edge's access control, shared
//! by intake and the collector (same precedence as every setting: flag,
//! `SCANFLEET_*` variable, YAML file, default).
//!
//! The mapping from client-certificate subjects to users is structured, so
//! it lives only in the file:
//!
//! ```yaml
//! client_certificate_users:
//!   "CN=release-pipeline, O=example":
//!     user: ci:release-pipeline
//!     groups: [ci]
//! # the subjects of authenticating proxies (e.g. an OIDC proxy in front of
//! # the dashboard) whose X-Remote-User / X-Remote-Group headers name the
//! # end user, as kube-apiserver's --requestheader-allowed-names does
//! authenticating_proxies:
//!   - "CN=oauth2-proxy, O=example"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use scanfleet_process_lifecycle::setting;

use crate::caller_limits::RateLimit;

/// The flags and `SCANFLEET_*` variables, flattened into a service's
/// arguments. Unset values fall back to the YAML file, then the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccessArgs {
    /// Kubeconfig of the identity that reviews callers (needs
    /// `system:auth-delegator`) [default: the service's --kubeconfig, else
    /// the in-cluster ServiceAccount]
    #[arg(long, env = "SCANFLEET_ACCESS_KUBECONFIG")]
    pub access_kubeconfig: Option<PathBuf>,
    /// Audience bearer tokens must be issued for (TokenReview) [default:
    /// scanfleet]
    #[arg(long, env = "SCANFLEET_TOKEN_AUDIENCE")]
    pub token_audience: Option<String>,
    /// Seconds a TokenReview or SubjectAccessReview answer is reused; a
    /// revoked permission stops working within this time [default: 10]
    #[arg(
        long = "access-cache-ttl",
        env = "SCANFLEET_ACCESS_CACHE_TTL",
        value_name = "SECS"
    )]
    pub access_cache_ttl_secs: Option<u64>,
    /// Most review answers kept at once [default: 10000]
    #[arg(long, env = "SCANFLEET_ACCESS_CACHE_SIZE")]
    pub access_cache_size: Option<usize>,
    /// Requests per second each caller may make [default: 20]
    #[arg(long, env = "SCANFLEET_RATE_LIMIT")]
    pub rate_limit: Option<u32>,
    /// Requests a caller may make at once after a pause [default: 40]
    #[arg(long, env = "SCANFLEET_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
}

/// One mapped client-certificate identity, as written.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMappedUser {
    /// The user name RBAC knows.
    pub user: String,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The same settings as YAML keys, copied into each service's file schema.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessFile {
    /// See [`AccessArgs::access_kubeconfig`].
    pub access_kubeconfig: Option<PathBuf>,
    /// See [`AccessArgs::token_audience`].
    pub token_audience: Option<String>,
    /// See [`AccessArgs::access_cache_ttl_secs`].
    pub access_cache_ttl_secs: Option<u64>,
    /// See [`AccessArgs::access_cache_size`].
    pub access_cache_size: Option<usize>,
    /// See [`AccessArgs::rate_limit`].
    pub rate_limit: Option<u32>,
    /// See [`AccessArgs::rate_limit_burst`].
    pub rate_limit_burst: Option<u32>,
    /// Verified client-certificate subject → user.
    #[serde(default)]
    pub client_certificate_users: BTreeMap<String, FileMappedUser>,
    /// Verified client-certificate subjects of authenticating proxies.
    #[serde(default)]
    pub authenticating_proxies: Vec<String>,
}

/// A user a client certificate stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedUser {
    /// The user name.
    pub name: String,
    /// Its groups.
    pub groups: Vec<String>,
}

/// The settled access configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSettings {
    /// The reviewer identity's kubeconfig, when set explicitly.
    pub kubeconfig: Option<PathBuf>,
    /// Token audience.
    pub audience: String,
    /// How long answers are reused.
    pub cache_ttl: Duration,
    /// How many answers are kept.
    pub cache_size: usize,
    /// Per-caller rate.
    pub rate_limit: RateLimit,
    /// Client-certificate subjects to users.
    pub certificate_users: BTreeMap<String, MappedUser>,
    /// Client-certificate subjects whose `X-Remote-User` is believed.
    pub proxy_subjects: BTreeSet<String>,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            audience: "scanfleet".into(),
            cache_ttl: Duration::from_secs(10),
            cache_size: 10_000,
            rate_limit: RateLimit::default(),
            certificate_users: BTreeMap::new(),
            proxy_subjects: BTreeSet::new(),
        }
    }
}

impl AccessArgs {
    /// Settles flags over the file over the defaults, appending every
    /// problem to `errors`.
    pub fn settle(self, file: AccessFile, errors: &mut Vec<String>) -> AccessSettings {
        let defaults = AccessSettings::default();
        let audience = setting(self.token_audience, file.token_audience, defaults.audience);
        if audience.trim().is_empty() {
            errors.push("token_audience: must not be empty".into());
        }
        let ttl = setting(
            self.access_cache_ttl_secs,
            file.access_cache_ttl_secs,
            defaults.cache_ttl.as_secs(),
        );
        if ttl > 300 {
            errors.push(format!(
                "access_cache_ttl_secs {ttl}: at most 300 (a revoked permission must stop working soon)"
            ));
        }
        let size = setting(
            self.access_cache_size,
            file.access_cache_size,
            defaults.cache_size,
        );
        if size == 0 || size > 1_000_000 {
            errors.push(format!("access_cache_size {size}: must be 1 to 1000000"));
        }
        let mut rate = |flag: Option<u32>, file: Option<u32>, default: NonZeroU32, name: &str| {
            let v = setting(flag, file, default.get());
            NonZeroU32::new(v).unwrap_or_else(|| {
                errors.push(format!("{name}: must be at least 1"));
                default
            })
        };
        let rate_limit = RateLimit {
            per_second: rate(
                self.rate_limit,
                file.rate_limit,
                defaults.rate_limit.per_second,
                "rate_limit",
            ),
            burst: rate(
                self.rate_limit_burst,
                file.rate_limit_burst,
                defaults.rate_limit.burst,
                "rate_limit_burst",
            ),
        };
        let mut certificate_users = BTreeMap::new();
        for (subject, user) in file.client_certificate_users {
            if subject.trim().is_empty() || user.user.trim().is_empty() {
                errors.push(format!(
                    "client_certificate_users.{subject:?}: subject and user must not be empty"
                ));
                continue;
            }
            certificate_users.insert(
                subject,
                MappedUser {
                    name: user.user,
                    groups: user.groups,
                },
            );
        }
        let mut proxy_subjects = BTreeSet::new();
        for (i, subject) in file.authenticating_proxies.into_iter().enumerate() {
            if subject.trim().is_empty() {
                errors.push(format!("authenticating_proxies[{i}]: must not be empty"));
            } else if certificate_users.contains_key(&subject) {
                // One certificate, one meaning: a proxy that is also a
                // mapped user would act as itself whenever it forgot the
                // header, with whatever that user may do.
                errors.push(format!(
                    "authenticating_proxies[{i}] {subject:?}: also in client_certificate_users; \
                     a proxy's certificate must not be a user"
                ));
            } else {
                proxy_subjects.insert(subject);
            }
        }
        let kubeconfig = self.access_kubeconfig.or(file.access_kubeconfig);
        if let Some(path) = &kubeconfig
            && !path.is_file()
        {
            errors.push(format!(
                "--access-kubeconfig: {} is not a file",
                path.display()
            ));
        }
        AccessSettings {
            kubeconfig,
            audience,
            cache_ttl: Duration::from_secs(ttl),
            cache_size: size,
            rate_limit,
            certificate_users,
            proxy_subjects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_problems() {
        let mut errors = Vec::new();
        let s = AccessArgs::default().settle(AccessFile::default(), &mut errors);
        assert!(errors.is_empty());
        assert_eq!(s, AccessSettings::default());
        let file = AccessFile {
            token_audience: Some(" ".into()),
            access_cache_ttl_secs: Some(3600),
            rate_limit: Some(0),
            client_certificate_users: [(
                "CN=x".to_owned(),
                FileMappedUser {
                    user: String::new(),
                    groups: vec![],
                },
            )]
            .into(),
            authenticating_proxies: vec![" ".into(), "CN=x".into()],
            ..Default::default()
        };
        let mut errors = Vec::new();
        let _ = AccessArgs {
            access_cache_size: Some(0),
            ..Default::default()
        }
        .settle(file, &mut errors);
        let all = errors.join("\n");
        for needle in [
            "token_audience",
            "access_cache_ttl_secs 3600",
            "access_cache_size 0",
            "rate_limit: must be at least 1",
            "client_certificate_users.\"CN=x\"",
            "authenticating_proxies[0]: must not be empty",
        ] {
            assert!(all.contains(needle), "{needle} missing from\n{all}");
        }
    }

    #[test]
    fn a_proxy_certificate_is_not_also_a_user() {
        let file = AccessFile {
            client_certificate_users: [(
                "CN=proxy".to_owned(),
                FileMappedUser {
                    user: "proxy".into(),
                    groups: vec![],
                },
            )]
            .into(),
            authenticating_proxies: vec!["CN=proxy".into(), "CN=oidc".into()],
            ..Default::default()
        };
        let mut errors = Vec::new();
        let s = AccessArgs::default().settle(file, &mut errors);
        assert_eq!(
            errors,
            [
                "authenticating_proxies[0] \"CN=proxy\": also in client_certificate_users; a \
              proxy's certificate must not be a user"
            ]
        );
        assert_eq!(s.proxy_subjects, ["CN=oidc".to_owned()].into());
    }
}
