//! The scan pipeline: profile -> fact plan -> [`Target`] -> facts -> check
//! evaluation -> report (which [`crate::hdf`] renders).

use std::time::{Instant, SystemTime};

use crate::checks::{CheckOutcome, CheckResult, os_release, os_release_requests};
use crate::facts::{FactPlan, Facts};
use crate::profile::Profile;

/// Something facts can be gathered from: a directory tree, a remote shell, ...
///
/// A target executes a whole plan at once, which is what lets the shell
/// target answer every fact in a single exec round trip.
pub trait Target {
    /// Gathers every planned fact. Per-fact problems (an unreadable file) are
    /// fact values; only failures of the whole transport are errors.
    ///
    /// # Errors
    /// When no facts at all could be gathered (exec failed, output cap exceeded,
    /// output could not be parsed).
    fn gather(&self, plan: &FactPlan) -> Result<Facts, TargetError>;

    /// Identifies the scanned thing in the HDF `platform.target_id`.
    fn target_id(&self) -> String;
}

/// Why a whole gather failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The target produced more output than the configured cap.
    #[error(
        "target output exceeded the cap of {cap} bytes; raise --max-output or narrow the profile"
    )]
    OutputCap {
        /// The cap in bytes.
        cap: u64,
    },
    /// The executor's deadline expired and the script was killed.
    #[error("the scan did not finish within {after:?}; the exec was killed")]
    TimedOut {
        /// The deadline that expired.
        after: std::time::Duration,
    },
    /// The executor failed to run the script.
    #[error("exec failed: {0}")]
    Exec(String),
    /// The output was not valid framed scan output.
    #[error("malformed scan output: {0}")]
    Framing(String),
    /// The local root could not be used.
    #[error("{0}")]
    Root(String),
}

/// Compiles a profile into the set of facts it needs (plus os-release for the platform).
pub fn plan(profile: &Profile) -> FactPlan {
    let mut plan = FactPlan::default();
    plan.requests.extend(os_release_requests());
    for c in &profile.controls {
        for check in &c.checks {
            check.plan(&mut plan.requests);
        }
    }
    plan
}

/// The results of one control.
#[derive(Debug, Clone)]
pub struct ControlOutcome {
    /// Index into `Profile::controls`.
    pub control: usize,
    /// The results (at least one for YAML controls; an InSpec control
    /// without tests has none, as in InSpec).
    pub results: Vec<CheckResult>,
    /// Impact set while evaluating, when it differs from the profile's.
    pub impact: Option<f64>,
}

/// Everything the HDF emitter needs from a scan.
#[derive(Debug, Clone)]
pub struct ScanReport {
    /// The profile that was run.
    pub profile: Profile,
    /// One outcome per control, in profile order.
    pub outcomes: Vec<ControlOutcome>,
    /// os-release `ID`, or `unknown`.
    pub platform_name: String,
    /// os-release `VERSION_ID`, or `unknown`.
    pub platform_release: String,
    /// What was scanned.
    pub target_id: String,
    /// When the scan started.
    pub started: SystemTime,
    /// Seconds spent gathering and evaluating.
    pub duration: f64,
    /// Number of facts gathered.
    pub facts_gathered: usize,
    /// Transport counters.
    pub stats: crate::facts::GatherStats,
}

/// Runs a profile against a target: one round trip for every fact the
/// profile names up front, and at most one more, batched across all
/// controls, for facts whose requests were only known after the first
/// (an InSpec resource whose arguments came from another resource).
///
/// # Errors
/// When the target cannot gather facts at all.
pub fn scan(profile: &Profile, target: &dyn Target) -> Result<ScanReport, TargetError> {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let mut facts = target.gather(&plan(profile))?;
    facts.declared.container = profile.declared.container;
    let mut outcomes = evaluate_checks(profile, &facts, None);
    let follow = follow_up(&outcomes, &facts);
    if !follow.requests.is_empty() {
        let more = target.gather(&follow)?;
        facts.values.extend(more.values);
        facts.stats.round_trips += more.stats.round_trips;
        facts.stats.bytes_transferred += more.stats.bytes_transferred;
        outcomes = evaluate_checks(profile, &facts, Some(outcomes));
    }
    Ok(report(
        profile,
        &facts,
        outcomes,
        target.target_id(),
        started,
        t0,
    ))
}

/// Facts some check found it needs that the first round trip did not bring.
pub fn follow_up(outcomes: &[Vec<CheckOutcome>], facts: &Facts) -> FactPlan {
    let mut plan = FactPlan::default();
    for o in outcomes.iter().flatten() {
        plan.requests.extend(
            o.missing
                .iter()
                .filter(|r| !facts.values.contains_key(*r))
                .cloned(),
        );
    }
    plan
}

/// Evaluates every check; with `previous`, only the checks that were
/// still missing facts run again.
pub fn evaluate_checks(
    profile: &Profile,
    facts: &Facts,
    previous: Option<Vec<Vec<CheckOutcome>>>,
) -> Vec<Vec<CheckOutcome>> {
    let mut previous = previous.map(Vec::into_iter);
    profile
        .controls
        .iter()
        .map(|c| {
            let before = previous.as_mut().and_then(Iterator::next);
            c.checks
                .iter()
                .enumerate()
                .map(|(j, ch)| match before.as_ref().and_then(|b| b.get(j)) {
                    Some(o) if o.missing.is_empty() => o.clone(),
                    _ => ch.outcome(facts),
                })
                .collect()
        })
        .collect()
}

/// Evaluates already-gathered facts in one pass (split out so tests and
/// the benchmark can feed facts directly).
pub fn evaluate(
    profile: &Profile,
    facts: &Facts,
    target_id: String,
    started: SystemTime,
    t0: Instant,
) -> ScanReport {
    let outcomes = evaluate_checks(profile, facts, None);
    report(profile, facts, outcomes, target_id, started, t0)
}

/// Turns check outcomes into the report; a check still missing facts
/// after the last round trip gets one error naming what it needed.
fn report(
    profile: &Profile,
    facts: &Facts,
    outcomes: Vec<Vec<CheckOutcome>>,
    target_id: String,
    started: SystemTime,
    t0: Instant,
) -> ScanReport {
    let outcomes = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, checks)| {
            let mut results = Vec::new();
            let mut impact = None;
            for o in checks {
                if o.missing.is_empty() {
                    results.extend(o.results);
                    impact = o.impact.or(impact);
                } else {
                    results.push(unanswered(&o));
                }
            }
            ControlOutcome {
                control: i,
                results,
                impact,
            }
        })
        .collect();
    let os = os_release(facts).unwrap_or_default();
    ScanReport {
        profile: profile.clone(),
        outcomes,
        platform_name: os.get("ID").cloned().unwrap_or_else(|| "unknown".into()),
        platform_release: os
            .get("VERSION_ID")
            .cloned()
            .unwrap_or_else(|| "unknown".into()),
        target_id,
        started,
        duration: t0.elapsed().as_secs_f64(),
        facts_gathered: facts.values.len(),
        stats: facts.stats,
    }
}

fn unanswered(o: &CheckOutcome) -> CheckResult {
    let shown = |items: &mut dyn Iterator<Item = String>, n: usize| {
        let v: Vec<String> = items.take(6).collect();
        let more = n.saturating_sub(v.len());
        if more > 0 {
            format!("{} and {more} more", v.join(", "))
        } else {
            v.join(", ")
        }
    };
    let message = if o.pending_calls.is_empty() {
        let n = o.missing.len();
        format!(
            "facts still missing after the last round trip: {}",
            shown(&mut o.missing.iter().map(|r| format!("{r:?}")), n)
        )
    } else {
        let n = o.pending_calls.len();
        format!(
            "a third round trip would be needed: {} depend on facts gathered only in the second (a scan makes at most two)",
            shown(&mut o.pending_calls.iter().cloned(), n)
        )
    };
    CheckResult::error("Control Source Code Error", message)
}
