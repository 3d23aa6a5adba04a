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
        let clusters = clusters(f, &at, choice, errors);
        if errors.len() > before {
            continue;
        }
        let (
            Some(namespace),
            Some(selector),
            Some(container),
            Some(cadence),
            Some(profile),
            Some(clusters),
        ) = (namespace, selector, container, cadence, profile, clusters)
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
            Ok(schedule) => scans.push(PeriodicScan {
                schedule,
                profile,
                clusters,
            }),
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
