//! One InSpec control as a [`CompiledCheck`]: its planned facts come from
//! the planning pass at load, and evaluating it re-runs its file's top
//! level with gathered facts, evaluating only this control's block.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::budget::Limits;
use super::dsl::{ControlRun, Mode};
use super::program::{FileRun, Program, ScanInputs, evaluate_file};
use crate::checks::{CheckOutcome, CheckResult, CompiledCheck};
use crate::facts::{FactRequest, Facts};

/// A compiled InSpec control.
#[derive(Debug)]
pub struct InspecControl {
    /// The profile's code.
    pub program: Arc<Program>,
    /// Input values for this scan.
    pub inputs: Arc<ScanInputs>,
    /// Its control file (index into `program.files`).
    pub file: usize,
    /// Its id.
    pub id: String,
    /// Facts planned at load.
    pub planned: BTreeSet<FactRequest>,
    /// Per-control evaluation bounds.
    pub limits: Limits,
    /// Impact as loaded (a different final impact is reported).
    pub impact: f64,
}

impl CompiledCheck for InspecControl {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        out.extend(self.planned.iter().cloned());
    }

    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        self.evaluate_outcome(facts).results
    }

    fn evaluate_outcome(&self, facts: &Facts) -> CheckOutcome {
        // Profiles may nest deeply; the evaluator grows its stack on demand.
        let run = evaluate_file(
            &self.program,
            self.file,
            facts,
            &self.inputs,
            self.limits,
            Mode::Run(self.id.clone()),
        );
        outcome(run, &self.program, &self.id, self.impact)
    }
}

/// InSpec's results for one control run.
pub fn outcome(run: FileRun, program: &Program, id: &str, loaded_impact: f64) -> CheckOutcome {
    let mut missing = run.top_needs.clone();
    let mut pending: BTreeSet<_> = run.top_dynamic.clone();
    pending.extend(run.top_sites.iter().cloned());
    let control = run.controls.into_iter().find(|c| c.id == id);
    if let Some(c) = &control {
        missing.extend(c.needs.iter().cloned());
        pending.extend(c.dynamic.iter().cloned());
        pending.extend(c.miss_sites.iter().cloned());
    }
    let pending_calls = pending
        .iter()
        .map(|d| {
            let file = program
                .files
                .get(d.loc.file as usize)
                .map_or("?", |f| f.path.as_str());
            format!("{} (at {file}:{})", d.call, d.loc.line)
        })
        .collect();
    if !missing.is_empty() {
        return CheckOutcome {
            missing,
            pending_calls,
            no_results_ok: true,
            ..CheckOutcome::default()
        };
    }
    let Some(c) = control else {
        let r = match run.top_error {
            Some((e, _)) => CheckResult::error("Control Source Code Error", e),
            None => CheckResult::skip(
                "No-op",
                format!(
                    "control `{id}` is not defined on this target (its definition depends on a condition that is false here)"
                ),
            ),
        };
        return CheckOutcome::of(vec![r]);
    };
    let impact = c.meta.impact.unwrap_or(loaded_impact);
    let (results, impact) = results_of(c, run.file_skip, impact);
    CheckOutcome {
        results,
        impact: (impact != loaded_impact).then_some(impact),
        no_results_ok: true,
        ..CheckOutcome::default()
    }
}

/// `only_applicable_if`, `only_if` (control or file level), errors, and
/// otherwise the control's own results.
fn results_of(
    c: ControlRun,
    file_skip: (bool, Option<String>),
    impact: f64,
) -> (Vec<CheckResult>, f64) {
    if let Some(msg) = &c.not_applicable {
        let m = match msg {
            Some(m) => format!("N/A control due to only_applicable_if condition: {m}"),
            None => "N/A control due to only_applicable_if condition.".into(),
        };
        return (vec![CheckResult::fail("No-op", m)], 0.0);
    }
    let skip = if c.skipped {
        Some(c.skip_message.clone())
    } else if file_skip.0 {
        Some(file_skip.1)
    } else {
        None
    };
    if let Some(msg) = skip {
        let m = match msg {
            Some(m) => format!("Skipped control due to only_if condition: {m}"),
            None => "Skipped control due to only_if condition.".into(),
        };
        return (vec![CheckResult::skip("No-op", m)], impact);
    }
    let mut results = c.results;
    if let Some(e) = c.fatal {
        results.push(CheckResult::error("Control Source Code Error", e));
    } else if let Some(e) = c.raised {
        results.push(CheckResult::error("Control Source Code Error", e));
    }
    (results, impact)
}
