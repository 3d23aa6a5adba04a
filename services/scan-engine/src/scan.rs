//! The scan pipeline: profile -> fact plan -> [`Target`] -> facts -> check
//! evaluation -> report (which [`crate::hdf`] renders).

use std::time::{Instant, SystemTime};

use crate::checks::{CheckResult, os_release, os_release_requests};
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
    /// At least one result.
    pub results: Vec<CheckResult>,
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

/// Runs a profile against a target.
///
/// # Errors
/// When the target cannot gather facts at all.
pub fn scan(profile: &Profile, target: &dyn Target) -> Result<ScanReport, TargetError> {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let plan = plan(profile);
    let facts = target.gather(&plan)?;
    Ok(evaluate(profile, &facts, target.target_id(), started, t0))
}

/// Evaluates already-gathered facts (split out so tests can feed facts directly).
pub fn evaluate(
    profile: &Profile,
    facts: &Facts,
    target_id: String,
    started: SystemTime,
    t0: Instant,
) -> ScanReport {
    let outcomes = profile
        .controls
        .iter()
        .enumerate()
        .map(|(i, c)| ControlOutcome {
            control: i,
            results: c.checks.iter().flat_map(|ch| ch.evaluate(facts)).collect(),
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
