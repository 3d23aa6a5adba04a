//! The scheduler loop: sleep until the next fire, expand each fired
//! schedule against the pod caches of its clusters (every cluster intake
//! reaches, unless the schedule names some), queue one low-priority intent
//! per running container, each for the cluster the container runs in.
//!
//! It never floods. Every periodic intent goes to the subject ending in its
//! dedupe key (cluster, container, image digest, profile version), and the
//! stream keeps one message per subject, so however often a schedule fires
//! while a scan is queued or running, at most one intent for that unit of
//! work exists; the refusals come back as "already queued" and are counted,
//! not treated as errors. A full queue stops the fire early (the rest would
//! be refused too) and is logged and counted; the next fire tries again.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use scanfleet_bus::EnqueueError;
use scanfleet_scan_intents::{
    Clock, ClusterName, Fire, JitterSeed, ProfileRef, Schedule, Scheduler,
};
use tokio::sync::watch;

use crate::container_intents::{Cause, ContainerIntents, Tally};
use crate::metrics::Metrics;
use crate::pod_directory::PodDirectories;

/// Time as the scheduler loop sees it: what time it is, and waiting until
/// a time. The loop only ever asks this, so a test can run the real loop
/// over hours of schedule in moments ([`ManualTime`]).
pub trait LoopClock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
    /// Resolves once [`LoopClock::now`] has reached `when`.
    fn sleep_until(&self, when: SystemTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl LoopClock for WallClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, when: SystemTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let wait = when
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to, waking sleepers as it passes
/// their time.
#[derive(Debug)]
pub struct ManualTime {
    now: Mutex<SystemTime>,
    moved: watch::Sender<SystemTime>,
}

impl ManualTime {
    /// Starts at `t`.
    pub fn new(t: SystemTime) -> Self {
        Self {
            now: Mutex::new(t),
            moved: watch::channel(t).0,
        }
    }

    /// How many sleepers wait on this clock now (a test waits for the loop
    /// to be asleep before moving time).
    pub fn sleepers(&self) -> usize {
        self.moved.receiver_count()
    }

    /// Moves forward by `d`.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += d;
        self.moved.send_replace(*now);
    }
}

impl LoopClock for ManualTime {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep_until(&self, when: SystemTime) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut moved = self.moved.subscribe();
        Box::pin(async move {
            let _ = moved.wait_for(|now| *now >= when).await;
        })
    }
}

/// The scheduling domain's view of a loop clock.
struct DomainClock<'a>(&'a dyn LoopClock);

impl Clock for DomainClock<'_> {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}

/// One configured schedule and the profile it scans with.
#[derive(Debug, Clone)]
pub struct PeriodicScan {
    /// When and what.
    pub schedule: Schedule,
    /// With which profile version.
    pub profile: ProfileRef,
    /// Only in these clusters; `None`: in every cluster intake reaches.
    pub clusters: Option<Vec<ClusterName>>,
}

/// What one fire did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FireReport {
    /// Containers the selector matched, in all the schedule's clusters.
    pub containers: usize,
    /// Outcomes of the offers made.
    pub tally: Tally,
    /// Why the fire stopped early, if it did.
    pub stopped: Option<String>,
}

/// Expands fires into intents.
#[derive(Clone)]
pub struct PeriodicScans {
    scans: Arc<Vec<PeriodicScan>>,
    directories: PodDirectories,
    intents: ContainerIntents,
    metrics: Arc<Metrics>,
}

impl PeriodicScans {
    /// Schedules over the pod caches of the clusters intake reaches.
    pub fn new(
        scans: Vec<PeriodicScan>,
        directories: PodDirectories,
        intents: ContainerIntents,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            scans: Arc::new(scans),
            directories,
            intents,
            metrics,
        }
    }

    /// Queues the intents of one fire. Public so a test (or an operator
    /// tool) can drive the enqueue path without waiting for the clock.
    pub async fn fire(&self, fire: &Fire) -> FireReport {
        let mut report = FireReport::default();
        let Some(scan) = self.scans.get(fire.schedule_index) else {
            report.stopped = Some(format!("no schedule #{}", fire.schedule_index));
            return report;
        };
        let s = &scan.schedule;
        let containers = self.directories.containers(
            scan.clusters.as_deref(),
            &s.namespace,
            &s.selector,
            s.container.as_ref(),
        );
        report.containers = containers.len();
        Metrics::add(&self.metrics.schedule_fires, 1);
        for c in &containers {
            let cause = Cause::Schedule {
                name: s.name(),
                slot: fire.slot,
            };
            match self.intents.offer(c, &scan.profile, cause).await {
                Ok(e) => report.tally.count(&e),
                Err(e) => {
                    let refused = (containers.len() as u64) - report.tally.total();
                    Metrics::add(&self.metrics.schedule_intents_refused, refused);
                    report.stopped = Some(match &e {
                        EnqueueError::QueueFull(_) => format!("queue full: {e}"),
                        _ => e.to_string(),
                    });
                    break;
                }
            }
        }
        Metrics::add(&self.metrics.schedule_intents_queued, report.tally.queued);
        Metrics::add(
            &self.metrics.schedule_intents_coalesced,
            report.tally.duplicate + report.tally.already_queued,
        );
        match &report.stopped {
            None => tracing::info!(
                schedule = s.name(),
                containers = report.containers,
                queued = report.tally.queued,
                already_queued = report.tally.already_queued,
                duplicate = report.tally.duplicate,
                coalesced_fires = fire.coalesced,
                "schedule fired"
            ),
            Some(why) => tracing::warn!(schedule = s.name(), containers = report.containers,
                queued = report.tally.queued, reason = %why,
                "schedule fire stopped early; the next fire retries"),
        }
        report
    }

    /// Runs the schedules on the wall clock until `shutdown` flips.
    pub async fn run(self, seed: JitterSeed, shutdown: watch::Receiver<bool>) {
        self.run_on(seed, shutdown, &WallClock).await;
    }

    /// Runs the schedules on `clock` until `shutdown` flips: sleeps until
    /// the next fire, then fires everything due (slots missed while asleep
    /// coalesce into one fire per schedule, so a stalled clock or a long
    /// pause never turns into a burst).
    pub async fn run_on(
        self,
        seed: JitterSeed,
        mut shutdown: watch::Receiver<bool>,
        clock: &dyn LoopClock,
    ) {
        let mut scheduler = Scheduler::new(
            self.scans.iter().map(|s| s.schedule.clone()).collect(),
            seed,
            &DomainClock(clock),
        );
        loop {
            let Some(next) = scheduler.next_wakeup() else {
                tracing::info!("no schedule will fire again; scheduler idle");
                let _ = shutdown.wait_for(|s| *s).await;
                return;
            };
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                () = clock.sleep_until(next) => {}
            }
            for fire in scheduler.poll(&DomainClock(clock)) {
                if *shutdown.borrow() {
                    return;
                }
                self.fire(&fire).await;
            }
        }
    }
}
