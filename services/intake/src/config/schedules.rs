//! The `scheduler:` section, validated: every schedule's namespace,
//! selector, container, cadence, profile and clusters checked, names
//! unique.

use std::time::Duration;

use scanfleet_scan_intents::schedule::Cadence;
use scanfleet_scan_intents::{
    ClusterName, ContainerName, CronExpr, JitterSeed, LabelSelector, NamespaceName, Schedule,
    SelectorLimits,
};

use super::file::{FileSchedule, FileScheduler};
use super::unknown_cluster;
use super::webhooks::profile;
use crate::periodic_scans::PeriodicScan;

/// Schedules, validated.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Jitter seed.
    pub seed: JitterSeed,
    /// The schedules.
    pub scans: Vec<PeriodicScan>,
}

/// The clusters a schedule may name.
pub(super) struct ClusterChoice<'a> {
    /// Every cluster of the registry, the default one first.
    pub known: Vec<&'a ClusterName>,
    /// Those intake watches pods in (the default one's identity is checked
    /// with the other prerequisites).
    pub watched: Vec<&'a ClusterName>,
}

pub(super) fn schedules(
    s: &FileScheduler,
    choice: &ClusterChoice<'_>,
    errors: &mut Vec<String>,
) -> SchedulerConfig {
    let mut scans = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, f) in s.schedules.iter().enumerate() {
        let at = format!("scheduler.schedules[{i}]");
        // Checked apart, so a bad cluster name does not hide the
        // schedule's own problems (those `Schedule::new` finds).
        let clusters = clusters(f, &at, choice, errors);
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
            Ok(schedule) => {
                if let Some(clusters) = clusters {
                    scans.push(PeriodicScan {
                        schedule,
                        profile,
                        clusters,
                    });
                }
            }
            Err(e) => errors.push(format!("{at}: {e}")),
        }
    }
    SchedulerConfig {
        seed: JitterSeed(s.seed),
        scans,
    }
}

/// A schedule's `clusters:`: `Some(None)` when left out (every cluster
/// intake reaches), `None` after reporting a problem. Each name must be a
/// cluster of the registry that intake watches pods in: a schedule expands
/// to running pods, so a name it could never expand in is a mistake to
/// report now, not a schedule that silently never scans.
fn clusters(
    f: &FileSchedule,
    at: &str,
    choice: &ClusterChoice<'_>,
    errors: &mut Vec<String>,
) -> Option<Option<Vec<ClusterName>>> {
    let Some(names) = &f.clusters else {
        return Some(None);
    };
    let at = format!("{at} ({}).clusters", f.name);
    if names.is_empty() {
        errors.push(format!(
            "{at}: empty; leave it out to scan in every cluster intake reaches"
        ));
        return None;
    }
    let before = errors.len();
    let mut chosen: Vec<ClusterName> = Vec::new();
    for name in names {
        match choice.known.iter().find(|k| k.as_str() == name) {
            None => errors.push(format!("{at}: {}", unknown_cluster(name, &choice.known))),
            Some(k) if !choice.watched.contains(k) => errors.push(format!(
                "{at}: cluster {name:?} is known by name only; schedules expand to running \
                 pods, so give its clusters: entry a kubeconfig or in_cluster"
            )),
            Some(k) if chosen.contains(k) => {
                errors.push(format!("{at}: cluster {name:?} is named twice"));
            }
            Some(k) => chosen.push((*k).clone()),
        }
    }
    (errors.len() == before).then_some(Some(chosen))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::config::{Args, Config};

    const PROFILE: &str = "profile: {name: cis, version: '1'}";

    /// A config with the default cluster `home` (watched through a
    /// kubeconfig), `west` (watched) and `east` (known by name only) in the
    /// registry, and `schedules` (one YAML flow mapping each, without the
    /// profile).
    fn config(schedules: &[&str]) -> Result<Config, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, "apiVersion: v1\n").unwrap();
        let mut yaml = format!(
            "insecure_plaintext: true\nclusters:\n  - {{name: west, kubeconfig: {kubeconfig:?}}}\n  - {{name: east}}\nscheduler:\n  schedules:\n"
        );
        for s in schedules {
            yaml.push_str(&format!("    - {{{s}, {PROFILE}}}\n"));
        }
        let path = dir.path().join("intake.yaml");
        std::fs::write(&path, yaml).unwrap();
        Config::from_args(Args::parse_from([
            "scanfleet-intake",
            "--cluster",
            "home",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--config",
            path.to_str().unwrap(),
        ]))
    }

    #[test]
    fn a_schedule_scans_every_cluster_unless_it_names_some() {
        let config = config(&[
            "name: everywhere, namespace: apps, interval_secs: 3600",
            "name: west-only, namespace: apps, interval_secs: 3600, clusters: [west]",
            "name: both, namespace: apps, interval_secs: 3600, clusters: [west, home]",
        ])
        .map_err(|e| e.join("\n"))
        .unwrap();
        let scheduler = config.scheduler.unwrap();
        let clusters: Vec<Option<Vec<&str>>> = scheduler
            .scans
            .iter()
            .map(|s| {
                s.clusters
                    .as_ref()
                    .map(|c| c.iter().map(|c| c.as_str()).collect())
            })
            .collect();
        assert_eq!(
            clusters,
            [None, Some(vec!["west"]), Some(vec!["west", "home"])]
        );
    }

    #[test]
    fn every_bad_cluster_name_is_reported_with_its_schedule_and_the_known_ones() {
        let errors = config(&[
            "name: nightly, namespace: apps, cron: '0 3 * * *', clusters: [west, north]",
            "name: hourly, namespace: apps, interval_secs: 3600, clusters: [south]",
            "name: eastern, namespace: apps, interval_secs: 3600, clusters: [east]",
            "name: nowhere, namespace: apps, interval_secs: 3600, clusters: []",
            "name: twice, namespace: apps, interval_secs: 3600, clusters: [west, west]",
        ])
        .unwrap_err();
        let known = "known clusters: home, west, east";
        assert_eq!(
            errors,
            [
                format!(
                    "scheduler.schedules[0] (nightly).clusters: unknown cluster \"north\"; {known}"
                ),
                format!(
                    "scheduler.schedules[1] (hourly).clusters: unknown cluster \"south\"; {known}"
                ),
                "scheduler.schedules[2] (eastern).clusters: cluster \"east\" is known by name \
                 only; schedules expand to running pods, so give its clusters: entry a \
                 kubeconfig or in_cluster"
                    .to_owned(),
                "scheduler.schedules[3] (nowhere).clusters: empty; leave it out to scan in \
                 every cluster intake reaches"
                    .to_owned(),
                "scheduler.schedules[4] (twice).clusters: cluster \"west\" is named twice"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn cluster_problems_come_with_the_schedules_other_problems() {
        let errors = config(&[
            "name: Bad_Name, namespace: apps, interval_secs: 10, clusters: [north]",
            "name: ok, namespace: apps, selector: 'a in (', cron: '0 3 * * *', clusters: [west]",
        ])
        .unwrap_err();
        let text = errors.join("\n");
        for expected in [
            "scheduler.schedules[0]: ",
            "scheduler.schedules[0] (Bad_Name).clusters: unknown cluster \"north\"",
            "scheduler.schedules[1].selector",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }
}
