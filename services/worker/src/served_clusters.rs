//! The clusters a worker serves: its cluster registry, and each cluster's
//! own settings (how to reach it, its fleet-wide API budget and how it is
//! leased, its approach policy). Split from `config.rs` so the registry's
//! rules read in one place.
//!
//! A worker serves one cluster (`--cluster`, `--kubeconfig`, `kube`,
//! `approaches`) or several: the file's `clusters:` registry names each
//! cluster with how to reach it (`kubeconfig` from a mounted Secret, or
//! `in_cluster: true`), its budget and its approach policy. The two forms
//! exclude each other, so no setting silently applies to a cluster it was
//! not written for.

use std::path::PathBuf;
use std::time::Duration;

use scanfleet_kube_access::fleet_budget::{BudgetLimits, Standing};
use scanfleet_kube_access::{ClusterReach, ThrottleConfig};
use scanfleet_process_lifecycle::setting;
use scanfleet_scan_intents::{ClusterName, ImageDigest};
use scanfleet_scan_session::{ApproachPolicy, SessionConfig};
use serde::Deserialize;

use crate::config::{Args, FileConfig};
use scanfleet_fleet_budget::FleetBudgetSettings;

/// One entry of the cluster registry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileCluster {
    name: String,
    kubeconfig: Option<PathBuf>,
    in_cluster: Option<bool>,
    #[serde(default)]
    kube: FileKube,
    #[serde(default)]
    approaches: FileApproaches,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileKube {
    /// The cluster's budget for the whole fleet, not each worker's.
    qps: Option<f64>,
    burst: Option<u32>,
    max_retries: Option<u32>,
    /// Most permits one lease from the fleet budget takes.
    lease_max: Option<u32>,
    /// How long leased, unspent permits stay usable.
    lease_ttl_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileApproaches {
    allow_debug: Option<bool>,
    debug_image: Option<String>,
    sidecar_container: Option<String>,
    debug_start_timeout_secs: Option<u64>,
}

/// One cluster this worker serves, with everything that is the cluster's
/// own: how to reach it, its fleet-wide API budget and its approach policy.
#[derive(Clone)]
pub struct ServedCluster {
    /// Its name, as intents carry it.
    pub name: ClusterName,
    /// How the worker's own identity reaches it.
    pub reach: ClusterReach,
    /// This process's smoother (QPS of the fleet budget, burst of one
    /// lease) and retry policy, under [`ServedCluster::budget`].
    pub throttle: ThrottleConfig,
    /// The cluster's API budget for the whole fleet and how it is leased.
    pub budget: FleetBudgetSettings,
    /// Scan-session settings (approach policy, debug image).
    pub session: SessionConfig,
}

/// The fleet budget from `kube.qps`/`kube.burst`, and this process's
/// smoother under it: the budget's QPS, with a burst of one lease, so one
/// worker never spends the fleet's whole burst in an instant.
fn throttle(
    file: &FileKube,
    at: &str,
    errors: &mut Vec<String>,
) -> (ThrottleConfig, FleetBudgetSettings) {
    let defaults = ThrottleConfig::default();
    let fleet = ThrottleConfig {
        qps: file.qps.unwrap_or(defaults.qps),
        burst: file.burst.unwrap_or(defaults.burst),
        max_retries: file.max_retries.unwrap_or(defaults.max_retries),
        ..defaults
    };
    if let Err(e) = fleet.validate() {
        errors.push(format!("{at}: {e}"));
    }
    let limits = BudgetLimits {
        qps: fleet.qps,
        burst: fleet.burst.max(1),
        in_flight: Duration::ZERO,
        standing: Standing::Configured,
    };
    let mut budget = FleetBudgetSettings::new(limits);
    if let Some(n) = file.lease_max {
        if n == 0 || n > limits.burst {
            errors.push(format!(
                "{at}.lease_max: {n} must be between 1 and {at}.burst ({})",
                limits.burst
            ));
        }
        budget.lease_max = n.clamp(1, limits.burst);
    }
    if let Some(ms) = file.lease_ttl_ms {
        if !(10..=10_000).contains(&ms) {
            errors.push(format!(
                "{at}.lease_ttl_ms: {ms} must be between 10 and 10000"
            ));
        }
        budget = budget.with_lease_ttl(Duration::from_millis(ms));
    }
    let local = ThrottleConfig {
        burst: budget.lease_max,
        ..fleet
    };
    (local, budget)
}

/// The debug approach's image: one that is configured must be a reference
/// by digest, never a tag, so the image that runs beside a target is
/// exactly the one the fence admits. Unset, it is the session's default
/// (kubesim's scanner, which tests run against). `given` lists where it
/// may be set, first wins; a problem names the setting it came from.
fn debug_image(given: [(&str, Option<String>); 2], errors: &mut Vec<String>) -> String {
    let Some((setting, image)) = given
        .into_iter()
        .find_map(|(setting, image)| Some((setting, image?)))
    else {
        return SessionConfig::default().debug_image;
    };
    if ImageDigest::from_image_id(&image).is_none() {
        errors.push(format!(
            "{setting} {image:?}: name the image by digest \
             (repo@sha256:<64 lowercase hex>), not by tag"
        ));
    }
    image
}

fn session(file: FileApproaches, debug_image: String) -> SessionConfig {
    let defaults = SessionConfig::default();
    SessionConfig {
        policy: ApproachPolicy {
            allow_debug: file.allow_debug.unwrap_or(true),
            sidecar_container: file
                .sidecar_container
                .unwrap_or(defaults.policy.sidecar_container),
        },
        debug_image,
        debug_start_timeout: file
            .debug_start_timeout_secs
            .map_or(defaults.debug_start_timeout, Duration::from_secs),
        ..defaults
    }
}

/// The one cluster of `--cluster`, `--kubeconfig` (none: in-cluster),
/// `kube` and `approaches`.
pub(crate) fn single_cluster(
    args: &mut Args,
    file: &mut FileConfig,
    errors: &mut Vec<String>,
) -> Option<ServedCluster> {
    let name = setting(args.cluster.take(), file.cluster.take(), "default".into());
    let name = ClusterName::new(&name)
        .map_err(|e| errors.push(format!("--cluster {name:?}: {e}")))
        .ok();
    let reach = match args.kubeconfig.take().or(file.kubeconfig.take()) {
        Some(k) if !k.is_file() => {
            errors.push(format!("--kubeconfig: {} is not a file", k.display()));
            None
        }
        Some(k) => Some(ClusterReach::Kubeconfig(k)),
        None => Some(ClusterReach::InCluster),
    };
    let (throttle, budget) = throttle(&file.kube.take().unwrap_or_default(), "kube", errors);
    let approaches = file.approaches.take().unwrap_or_default();
    let image = debug_image(
        [
            ("--debug-image", args.debug_image.clone()),
            ("approaches.debug_image", approaches.debug_image.clone()),
        ],
        errors,
    );
    Some(ServedCluster {
        name: name?,
        reach: reach?,
        throttle,
        budget,
        session: session(approaches, image),
    })
}

/// The clusters of the file's `clusters:` registry, every problem named by
/// entry. `--debug-image` is the default of entries that name none.
pub(crate) fn registry(
    args: &Args,
    file: &FileConfig,
    entries: Vec<FileCluster>,
    errors: &mut Vec<String>,
) -> Vec<ServedCluster> {
    let single = [
        (
            "--cluster",
            args.cluster.is_some() || file.cluster.is_some(),
        ),
        (
            "--kubeconfig",
            args.kubeconfig.is_some() || file.kubeconfig.is_some(),
        ),
        ("kube", file.kube.is_some()),
        ("approaches", file.approaches.is_some()),
    ];
    for (setting, given) in single {
        if given {
            errors.push(format!(
                "{setting}: set per cluster in the clusters: registry, not beside it"
            ));
        }
    }
    if entries.is_empty() {
        errors.push("clusters: name at least one cluster".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut served = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let at = format!("clusters[{i}] ({})", entry.name);
        let name = ClusterName::new(&entry.name)
            .map_err(|e| errors.push(format!("{at}.name: {e}")))
            .ok();
        if !seen.insert(entry.name.clone()) {
            errors.push(format!("{at}: named twice"));
        }
        let reach = ClusterReach::from_entry(entry.kubeconfig, entry.in_cluster, &at, errors);
        let (throttle, budget) = throttle(&entry.kube, &format!("{at}.kube"), errors);
        let image = debug_image(
            [
                (
                    &format!("{at}.approaches.debug_image"),
                    entry.approaches.debug_image.clone(),
                ),
                ("--debug-image", args.debug_image.clone()),
            ],
            errors,
        );
        if let (Some(name), Some(reach)) = (name, reach) {
            served.push(ServedCluster {
                name,
                reach,
                throttle,
                budget,
                session: session(entry.approaches, image),
            });
        }
    }
    served
}

#[cfg(test)]
mod fleet_budget_settings {
    use super::*;

    #[test]
    fn leases_default_to_an_eighth_of_the_burst_and_bad_ones_are_named() {
        let mut errors = Vec::new();
        let file: FileKube = from_json(r#"{"qps": 20, "burst": 20}"#);
        let (local, budget) = throttle(&file, "kube", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(budget.lease_max, 2);
        assert_eq!((local.qps, local.burst), (20.0, 2));
        assert_eq!(
            budget.limits.in_flight,
            Duration::from_millis(400),
            "lease time 100 ms + delivery 300 ms held back: 12 of the burst of 20"
        );
        assert_eq!(budget.limits.capacity(), 12.0);
        let file: FileKube = from_json(r#"{"burst": 4, "lease_max": 9, "lease_ttl_ms": 1}"#);
        throttle(&file, "kube", &mut errors);
        let all = errors.join("\n");
        assert!(
            all.contains("kube.lease_max: 9 must be between 1 and kube.burst (4)"),
            "{all}"
        );
        assert!(all.contains("kube.lease_ttl_ms: 1"), "{all}");
    }

    fn from_json(text: &str) -> FileKube {
        serde_json::from_str(text).unwrap()
    }
}

#[cfg(test)]
mod registry_entries {
    use clap::Parser;
    use scanfleet_trust::SigningKey;

    use crate::config::{Args, Config};

    fn config(dir: &std::path::Path, yaml: &str, flags: &[&str]) -> Result<Config, String> {
        let key = dir.join("signing.pem");
        std::fs::write(&key, SigningKey::generate().to_pkcs8_pem().as_bytes()).unwrap();
        let file = dir.join("worker.yml");
        std::fs::write(
            &file,
            format!(
                "signing_key: {}\nprofiles: {}\ninsecure_plaintext: true\n{yaml}",
                key.display(),
                dir.display()
            ),
        )
        .unwrap();
        let mut argv = vec!["scanfleet-worker", "--config", file.to_str().unwrap()];
        argv.extend(flags);
        Config::from_args(Args::parse_from(argv)).map_err(|e| e.join("\n"))
    }

    #[test]
    fn each_cluster_gets_its_own_reach_budget_and_policy() {
        let dir = tempfile::tempdir().unwrap();
        let east = dir.path().join("east.kubeconfig");
        std::fs::write(&east, "apiVersion: v1\n").unwrap();
        let yaml = format!(
            "clusters:\n  - name: east\n    kubeconfig: {}\n    kube: {{qps: 5, burst: 10}}\n    approaches: {{allow_debug: false}}\n  - name: west\n    in_cluster: true\n",
            east.display()
        );
        let config = config(dir.path(), &yaml, &[]).unwrap();
        let [east_c, west_c] = &config.clusters[..] else {
            panic!("two clusters");
        };
        assert_eq!(east_c.name.as_str(), "east");
        assert_eq!(
            east_c.reach,
            scanfleet_kube_access::ClusterReach::Kubeconfig(east)
        );
        assert_eq!(
            (east_c.budget.limits.qps, east_c.budget.limits.burst),
            (5.0, 10)
        );
        assert!(!east_c.session.policy.allow_debug);
        assert_eq!(west_c.reach, scanfleet_kube_access::ClusterReach::InCluster);
        assert_eq!(
            (west_c.budget.limits.qps, west_c.budget.limits.burst),
            (20.0, 40),
            "the default budget"
        );
        assert!(west_c.session.policy.allow_debug);
    }

    #[test]
    fn a_broken_registry_is_named_entry_by_entry() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "kube: {qps: 3}\nclusters:\n  - name: east\n  - name: East\n    in_cluster: true\n  - name: west\n    in_cluster: true\n    kube: {qps: 0}\n  - name: west\n    in_cluster: true\n    approaches: {debug_image: \"scanner:latest\"}\n";
        let all = config(dir.path(), yaml, &["--cluster", "x"]).unwrap_err();
        for needle in [
            "--cluster: set per cluster in the clusters: registry",
            "kube: set per cluster in the clusters: registry",
            "clusters[0] (east): say how to reach the cluster",
            "clusters[1] (East).name",
            "clusters[2] (west).kube:",
            "clusters[3] (west): named twice",
            "clusters[3] (west).approaches.debug_image \"scanner:latest\": name the image by digest",
        ] {
            assert!(all.contains(needle), "{needle} missing from:\n{all}");
        }
        let all = config(dir.path(), "clusters: []\n", &[]).unwrap_err();
        assert!(all.contains("clusters: name at least one cluster"), "{all}");
    }
}
