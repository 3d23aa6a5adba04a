//! Periodic scans: per-namespace schedules with an interval or a cron
//! expression, plus jitter, evaluated without sleeping.
//!
//! Everything is a pure function of (schedule, seed, time):
//! - **Slots** are the un-jittered fire times. Interval slots are
//!   `phase + k * interval` on the Unix time line, with a per-schedule
//!   `phase` derived from the seed, so two schedules with the same interval
//!   do not fire in the same second; cron slots are the expression's
//!   matches.
//! - **Jitter** for a slot is derived from (seed, schedule name, slot), not
//!   drawn from a stateful RNG. A restarted intake, or a second replica
//!   with the same seed, computes the same fire times, and the slot is a
//!   stable [`crate::dedupe::Occasion::ScheduleSlot`] for msg-id dedupe.
//! - [`Scheduler`] keeps only a watermark ("fired up to here"); the runtime
//!   asks it for [`Scheduler::next_wakeup`], sleeps until then with its own
//!   timer and shutdown signal, and calls [`Scheduler::poll`] with the
//!   [`Clock`]. After downtime, every missed slot of a schedule coalesces
//!   into one fire: a scan per missed slot would only be the flood the
//!   dedupe rule exists to stop.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::cron::CronExpr;
use crate::k8s_names::{ContainerName, NameError, NamespaceName, check_dns1123_label};
use crate::label_selector::LabelSelector;

/// Shortest interval: below a minute a schedule is a busy loop, and scans
/// themselves take longer than that.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Largest jitter for cron schedules (interval schedules are bounded by
/// their interval instead).
pub const MAX_CRON_JITTER: Duration = Duration::from_secs(3600);
/// Most iterations spent walking missed fires after downtime; past it the
/// coalesced fire is an earlier missed slot, which is still a valid one.
const MAX_CATCH_UP_STEPS: usize = 100_000;

/// Where "now" comes from. Production uses the system clock; tests move a
/// [`ManualClock`].
pub trait Clock {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Cell<SystemTime>);

impl ManualClock {
    /// Starts at `t`.
    pub fn new(t: SystemTime) -> Self {
        Self(Cell::new(t))
    }

    /// Jumps to `t` (backwards too, to test clock steps).
    pub fn set(&self, t: SystemTime) {
        self.0.set(t);
    }

    /// Moves forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.set(self.0.get() + d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.0.get()
    }
}

/// The seed all phases and jitters derive from. Replicas that must agree on
/// fire times share it (it is configuration, not a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterSeed(pub u64);

/// When a schedule's slots are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// Every so often (whole seconds, at least [`MIN_INTERVAL`]).
    Every(Duration),
    /// At cron matches, UTC.
    Cron(CronExpr),
}

/// Why a schedule definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Bad schedule name.
    #[error("name: {0}")]
    Name(NameError),
    /// Interval too short or not whole seconds.
    #[error("interval must be whole seconds and at least {}s", MIN_INTERVAL.as_secs())]
    Interval,
    /// Jitter not whole seconds or too large.
    #[error("jitter must be whole seconds and {0}")]
    Jitter(&'static str),
}

/// One periodic scan definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    name: String,
    /// Which namespace to scan.
    pub namespace: NamespaceName,
    /// Which pods in it.
    pub selector: LabelSelector,
    /// Which container of each pod; `None` for all.
    pub container: Option<ContainerName>,
    cadence: Cadence,
    jitter: Duration,
}

/// One fire of one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fire {
    /// The schedule's index in the [`Scheduler`] (or 0 for a lone
    /// [`Schedule::next_fire`]).
    pub schedule_index: usize,
    /// The schedule's name.
    pub schedule: String,
    /// The un-jittered slot: the msg-id occasion.
    pub slot: SystemTime,
    /// When it fires: slot plus jitter.
    pub at: SystemTime,
    /// Earlier fires missed (downtime) and coalesced into this one.
    pub coalesced: u64,
}

fn whole_secs(d: Duration) -> Option<u64> {
    (d.subsec_nanos() == 0).then_some(d.as_secs())
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn mix(seed: JitterSeed, name: &str, what: &[u8], n: u64) -> u64 {
    let mut h = Sha256::new();
    h.update(b"scanfleet.schedule.v1");
    h.update(seed.0.to_be_bytes());
    h.update((name.len() as u64).to_be_bytes());
    h.update(name.as_bytes());
    h.update(what);
    h.update(n.to_be_bytes());
    let out = h.finalize();
    u64::from_be_bytes(out[..8].try_into().expect("sha256 is 32 bytes"))
}

impl Schedule {
    /// Validates a schedule: the name is an RFC 1123 label (it appears in
    /// metrics and msg-ids); interval schedules need jitter below the
    /// interval, so every slot fires exactly once and in order; cron
    /// schedules allow up to [`MAX_CRON_JITTER`].
    pub fn new(
        name: &str,
        namespace: NamespaceName,
        selector: LabelSelector,
        container: Option<ContainerName>,
        cadence: Cadence,
        jitter: Duration,
    ) -> Result<Self, ScheduleError> {
        check_dns1123_label(name).map_err(ScheduleError::Name)?;
        let j = whole_secs(jitter).ok_or(ScheduleError::Jitter("not negative"))?;
        match &cadence {
            Cadence::Every(i) => {
                let i = whole_secs(*i).ok_or(ScheduleError::Interval)?;
                if i < MIN_INTERVAL.as_secs() {
                    return Err(ScheduleError::Interval);
                }
                if j >= i {
                    return Err(ScheduleError::Jitter("shorter than the interval"));
                }
            }
            Cadence::Cron(_) => {
                if jitter > MAX_CRON_JITTER {
                    return Err(ScheduleError::Jitter("at most 3600s for cron schedules"));
                }
            }
        }
        Ok(Self {
            name: name.to_owned(),
            namespace,
            selector,
            container,
            cadence,
            jitter,
        })
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first slot at or after `t` (Unix seconds).
    fn slot_at_or_after(&self, t: u64, seed: JitterSeed) -> Option<u64> {
        match &self.cadence {
            Cadence::Every(i) => {
                let i = i.as_secs();
                let phase = mix(seed, &self.name, b"phase", 0) % i;
                if t <= phase {
                    return Some(phase);
                }
                let k = (t - phase).div_ceil(i);
                phase.checked_add(k.checked_mul(i)?)
            }
            Cadence::Cron(c) => c.next_after(t.checked_sub(1)?),
        }
    }

    /// This slot's jitter, in `0..=jitter` seconds.
    fn jitter_for(&self, slot: u64, seed: JitterSeed) -> u64 {
        let j = self.jitter.as_secs();
        if j == 0 {
            0
        } else {
            mix(seed, &self.name, b"jitter", slot) % (j + 1)
        }
    }

    /// The first fire strictly after `after`, or `None` if the cadence has
    /// no further slot (past year 9999).
    pub fn next_fire(&self, after: SystemTime, seed: JitterSeed) -> Option<Fire> {
        let a = unix(after);
        let j = self.jitter.as_secs();
        // A slot s fires at s + jitter(s) <= s + j, so only slots after a - j
        // can fire after a. Several can qualify when cron slots are closer
        // than the jitter; the earliest fire wins.
        let mut s = self.slot_at_or_after((a + 1).saturating_sub(j), seed)?;
        let mut best: Option<(u64, u64)> = None;
        loop {
            if best.is_some_and(|(_, at)| s >= at) {
                break;
            }
            let at = s + self.jitter_for(s, seed);
            if at > a && best.is_none_or(|(_, b)| at < b) {
                best = Some((s, at));
            }
            match self.slot_at_or_after(s + 1, seed) {
                Some(n) => s = n,
                None => break,
            }
        }
        let (slot, at) = best?;
        Some(Fire {
            schedule_index: 0,
            schedule: self.name.clone(),
            slot: UNIX_EPOCH + Duration::from_secs(slot),
            at: UNIX_EPOCH + Duration::from_secs(at),
            coalesced: 0,
        })
    }
}

/// All schedules of an intake, plus how far they have fired.
#[derive(Debug, Clone)]
pub struct Scheduler {
    schedules: Vec<Schedule>,
    seed: JitterSeed,
    watermark: SystemTime,
}

impl Scheduler {
    /// Starts at the clock's now: slots in the past never fire, so a
    /// restart does not replay them.
    pub fn new(schedules: Vec<Schedule>, seed: JitterSeed, clock: &dyn Clock) -> Self {
        Self {
            schedules,
            seed,
            watermark: clock.now(),
        }
    }

    /// The schedules, by index.
    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    /// When the runtime should next call [`Scheduler::poll`]; `None` when
    /// nothing will ever fire.
    pub fn next_wakeup(&self) -> Option<SystemTime> {
        self.schedules
            .iter()
            .filter_map(|s| s.next_fire(self.watermark, self.seed))
            .map(|f| f.at)
            .min()
    }

    /// Every schedule due since the last poll, at most one fire each (the
    /// latest; earlier ones are counted in [`Fire::coalesced`]), in
    /// schedule order. A clock that stepped backwards fires nothing until
    /// it passes the watermark again.
    pub fn poll(&mut self, clock: &dyn Clock) -> Vec<Fire> {
        let now = clock.now();
        if now <= self.watermark {
            return Vec::new();
        }
        let mut fires = Vec::new();
        for (i, s) in self.schedules.iter().enumerate() {
            let mut latest: Option<Fire> = None;
            let mut cursor = self.watermark;
            let mut seen = 0u64;
            for _ in 0..MAX_CATCH_UP_STEPS {
                match s.next_fire(cursor, self.seed) {
                    Some(f) if f.at <= now => {
                        cursor = f.at;
                        seen += 1;
                        latest = Some(f);
                    }
                    _ => break,
                }
            }
            if let Some(mut f) = latest {
                f.schedule_index = i;
                f.coalesced = seen - 1;
                fires.push(f);
            }
        }
        self.watermark = now;
        fires
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label_selector::SelectorLimits;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn schedule(name: &str, cadence: Cadence, jitter: u64) -> Schedule {
        Schedule::new(
            name,
            NamespaceName::new("shop").unwrap(),
            LabelSelector::parse("app=web", &SelectorLimits::default()).unwrap(),
            None,
            cadence,
            Duration::from_secs(jitter),
        )
        .unwrap()
    }

    const T0: u64 = 1_795_395_190; // 2026-11-23T00:53:10Z

    /// Golden values computed independently in Python from the documented
    /// hash construction (sha256 over "scanfleet.schedule.v1", seed, name,
    /// purpose, number; first 8 bytes big-endian).
    #[test]
    fn interval_fires_match_reference_values() {
        let s = schedule("nightly", Cadence::Every(Duration::from_secs(3600)), 300);
        let f = s.next_fire(at(T0), JitterSeed(42)).unwrap();
        assert_eq!((unix(f.slot), unix(f.at)), (GOLDEN_SLOT, GOLDEN_AT));
    }

    const GOLDEN_SLOT: u64 = 1_795_398_209;
    const GOLDEN_AT: u64 = 1_795_398_400;

    #[test]
    fn fires_are_deterministic_per_seed() {
        let s = schedule("hourly", Cadence::Every(Duration::from_secs(3600)), 600);
        let walk = |seed| {
            let mut t = at(T0);
            (0..50)
                .map(|_| {
                    let f = s.next_fire(t, JitterSeed(seed)).unwrap();
                    t = f.at;
                    unix(f.at)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(walk(1), walk(1));
        assert_ne!(walk(1), walk(2));
    }

    #[test]
    fn interval_fires_once_per_slot_within_jitter() {
        let s = schedule("web", Cadence::Every(Duration::from_secs(600)), 599);
        let mut t = at(T0);
        let mut prev_slot = None;
        let mut offsets = std::collections::HashSet::new();
        for _ in 0..2000 {
            let f = s.next_fire(t, JitterSeed(7)).unwrap();
            assert!(f.at > t);
            let (slot, fire) = (unix(f.slot), unix(f.at));
            assert!(fire >= slot && fire - slot <= 599);
            if let Some(p) = prev_slot {
                assert_eq!(slot, p + 600, "no slot skipped or repeated");
            }
            prev_slot = Some(slot);
            offsets.insert(fire - slot);
            t = f.at;
        }
        assert!(
            offsets.len() > 500,
            "jitter spreads fires ({} distinct offsets)",
            offsets.len()
        );
    }

    #[test]
    fn phases_spread_schedules_with_equal_intervals() {
        let slots: std::collections::HashSet<u64> = (0..20)
            .map(|i| {
                let s = schedule(
                    &format!("s{i}"),
                    Cadence::Every(Duration::from_secs(3600)),
                    0,
                );
                unix(s.next_fire(at(T0), JitterSeed(1)).unwrap().slot)
            })
            .collect();
        assert!(slots.len() >= 18, "{} distinct slots of 20", slots.len());
    }

    #[test]
    fn cron_fires_on_cron_slots_plus_jitter() {
        let cron = CronExpr::parse("*/5 * * * *").unwrap();
        let s = schedule("every5", Cadence::Cron(cron.clone()), 0);
        let f = s.next_fire(at(T0), JitterSeed(3)).unwrap();
        assert_eq!(unix(f.at), cron.next_after(T0).unwrap());

        // Jitter larger than the slot spacing: fires still come out in
        // increasing order, each within the jitter of its slot.
        let s = schedule("every5j", Cadence::Cron(cron), 900);
        let mut t = at(T0);
        for _ in 0..300 {
            let f = s.next_fire(t, JitterSeed(3)).unwrap();
            assert!(f.at > t);
            assert!(unix(f.slot).is_multiple_of(300) && unix(f.at) - unix(f.slot) <= 900);
            t = f.at;
        }
    }

    #[test]
    fn invalid_schedules_are_refused() {
        let mk = |name: &str, cadence, jitter| {
            Schedule::new(
                name,
                NamespaceName::new("shop").unwrap(),
                LabelSelector::default(),
                None,
                cadence,
                jitter,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        let every = |s| Cadence::Every(Duration::from_secs(s));
        let cases = [
            ("ok", every(60), Duration::ZERO, Ok(())),
            (
                "Bad_Name",
                every(60),
                Duration::ZERO,
                Err(
                    "name: a lowercase RFC 1123 label must consist of lowercase alphanumeric characters or '-', and must start and end with an alphanumeric character",
                ),
            ),
            (
                "fast",
                every(59),
                Duration::ZERO,
                Err("interval must be whole seconds and at least 60s"),
            ),
            (
                "frac",
                Cadence::Every(Duration::from_millis(60_500)),
                Duration::ZERO,
                Err("interval must be whole seconds and at least 60s"),
            ),
            (
                "wide",
                every(60),
                Duration::from_secs(60),
                Err("jitter must be whole seconds and shorter than the interval"),
            ),
            (
                "fracj",
                every(60),
                Duration::from_millis(1500),
                Err("jitter must be whole seconds and not negative"),
            ),
            (
                "cron",
                Cadence::Cron(CronExpr::parse("@hourly").unwrap()),
                Duration::from_secs(3601),
                Err("jitter must be whole seconds and at most 3600s for cron schedules"),
            ),
        ];
        for (name, cadence, jitter, want) in cases {
            assert_eq!(
                mk(name, cadence, jitter),
                want.map_err(str::to_owned),
                "{name}"
            );
        }
    }

    #[test]
    fn scheduler_fires_each_slot_when_polled_at_wakeups() {
        let clock = ManualClock::new(at(T0));
        let schedules = vec![
            schedule("a", Cadence::Every(Duration::from_secs(600)), 120),
            schedule(
                "b",
                Cadence::Cron(CronExpr::parse("0 * * * *").unwrap()),
                60,
            ),
        ];
        let mut sched = Scheduler::new(schedules, JitterSeed(9), &clock);
        let mut per_schedule = [0u32; 2];
        // Six simulated hours, waking exactly when asked.
        while clock.now() < at(T0 + 6 * 3600) {
            let wake = sched.next_wakeup().unwrap();
            assert!(wake > clock.now());
            clock.set(wake - Duration::from_secs(1));
            assert_eq!(sched.poll(&clock), vec![], "nothing is due a second early");
            clock.set(wake);
            let fires = sched.poll(&clock);
            assert!(!fires.is_empty(), "something is due at the wakeup");
            for f in fires {
                assert_eq!(f.at, wake);
                assert_eq!(f.coalesced, 0);
                per_schedule[f.schedule_index] += 1;
            }
        }
        assert!((35..=37).contains(&per_schedule[0]), "{per_schedule:?}");
        assert!((5..=7).contains(&per_schedule[1]), "{per_schedule:?}");
    }

    #[test]
    fn downtime_coalesces_and_clock_steps_back_fire_nothing() {
        let clock = ManualClock::new(at(T0));
        let s = schedule("a", Cadence::Every(Duration::from_secs(600)), 0);
        let mut sched = Scheduler::new(vec![s.clone()], JitterSeed(5), &clock);
        clock.advance(Duration::from_secs(10 * 3600));
        let fires = sched.poll(&clock);
        assert_eq!(fires.len(), 1);
        assert_eq!(fires[0].coalesced, 59);
        // The coalesced fire is the latest slot not after now.
        let next = s.next_fire(fires[0].at, JitterSeed(5)).unwrap();
        assert!(fires[0].at <= clock.now() && next.at > clock.now());

        clock.set(at(T0));
        assert_eq!(sched.poll(&clock), vec![]);
        clock.set(at(T0 + 10 * 3600 + 1));
        assert_eq!(
            sched.poll(&clock),
            vec![],
            "already fired up to the watermark"
        );
    }

    #[test]
    fn no_fires_before_start() {
        let clock = ManualClock::new(at(T0));
        let mut sched = Scheduler::new(
            vec![schedule("a", Cadence::Every(Duration::from_secs(60)), 0)],
            JitterSeed(0),
            &clock,
        );
        assert_eq!(sched.poll(&clock), vec![]);
        assert!(sched.next_wakeup().unwrap() > at(T0));
    }
}
