//! The `scheduler:` section, validated: every schedule's namespace,
//! selector, container, cadence and profile checked, names unique.

use std::time::Duration;

use scanfleet_scan_intents::schedule::Cadence;
use scanfleet_scan_intents::{
    ContainerName, CronExpr, JitterSeed, LabelSelector, NamespaceName, Schedule, SelectorLimits,
};

use super::file::FileScheduler;
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

pub(super) fn schedules(s: &FileScheduler, errors: &mut Vec<String>) -> SchedulerConfig {
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
