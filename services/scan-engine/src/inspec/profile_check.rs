//! `scanfleet profile check`: what a profile would do, without a target.
//! Per control: whether it is fully supported (else each unsupported
//! construct with `file:line`), the facts planned, and the round trips it
//! needs (two when a resource's arguments come from other facts).

use serde::Serialize;

use super::budget::Limits;
use super::load::load;
use crate::profile::{InputOverrides, ProfileError, ProfileSource, load_profile};

/// One control's report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ControlReport {
    /// Control id.
    pub id: String,
    /// `file:line` of its definition.
    pub location: String,
    /// No unsupported construct was found.
    pub supported: bool,
    /// Unsupported constructs and errors, each naming `file:line`.
    pub problems: Vec<String>,
    /// Ruby errors planning met (they will recur at scan time).
    pub warnings: Vec<String>,
    /// Facts gathered in the first round trip.
    pub facts: Vec<String>,
    /// Resource calls whose arguments come from other facts.
    pub dynamic_calls: Vec<String>,
    /// Round trips this control needs (1 or 2).
    pub round_trips: u32,
}

/// The whole profile's report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProfileCheck {
    /// Profile name.
    pub name: String,
    /// Profile version.
    pub version: Option<String>,
    /// `inspec` or `yaml`.
    pub format: String,
    /// Per control.
    pub controls: Vec<ControlReport>,
    /// Distinct facts planned for the first round trip.
    pub facts_planned: usize,
    /// Round trips the whole profile needs.
    pub round_trips: u32,
    /// Controls with an unsupported construct.
    pub unsupported: usize,
}

/// Loads and plans a profile of either kind and reports on every control.
///
/// # Errors
/// The profile's load problems.
pub fn check_profile(
    source: &ProfileSource,
    overrides: &InputOverrides,
) -> Result<ProfileCheck, ProfileError> {
    if super::is_inspec_source(source) {
        return check_inspec(source, overrides);
    }
    let profile = load_profile(source, overrides)?;
    let mut all = std::collections::BTreeSet::new();
    let controls: Vec<ControlReport> = profile
        .controls
        .iter()
        .map(|c| {
            let mut facts = std::collections::BTreeSet::new();
            for check in &c.checks {
                check.plan(&mut facts);
            }
            all.extend(facts.iter().cloned());
            ControlReport {
                id: c.id.clone(),
                location: format!("{}:{}", c.source.file, c.source.line),
                supported: true,
                problems: Vec::new(),
                warnings: Vec::new(),
                facts: facts.iter().map(|r| format!("{r:?}")).collect(),
                dynamic_calls: Vec::new(),
                round_trips: 1,
            }
        })
        .collect();
    Ok(ProfileCheck {
        name: profile.metadata.name.clone(),
        version: profile.metadata.version.clone(),
        format: "yaml".into(),
        facts_planned: all.len() + crate::checks::os_release_requests().len(),
        round_trips: 1,
        unsupported: 0,
        controls,
    })
}

/// Loads and plans an InSpec profile and reports on every control.
///
/// # Errors
/// The profile's load problems (syntax errors, `depends`, ...).
pub fn check_inspec(
    source: &ProfileSource,
    overrides: &InputOverrides,
) -> Result<ProfileCheck, ProfileError> {
    let loaded = load(source, overrides, Limits::default())?;
    let program = &loaded.program;
    let mut controls = Vec::new();
    let mut all_facts = std::collections::BTreeSet::new();
    for (run, f) in &loaded.runs {
        let file = &program.files[*f];
        let mut unsupported = Vec::new();
        find_unsupported(&file.ast, run.loc, &mut unsupported);
        let mut problems: Vec<String> = unsupported
            .into_iter()
            .map(|(what, l)| format!("unsupported: {what} at {}:{}", file.path, l.line))
            .collect();
        if let Some(f) = &run.fatal {
            problems.push(f.clone());
        }
        for (tf, e, _) in &loaded.top_errors {
            if tf == f {
                problems.push(e.clone());
            }
        }
        problems.dedup();
        all_facts.extend(run.needs.iter().cloned());
        let dynamic_calls: Vec<String> = run
            .dynamic
            .iter()
            .map(|d| format!("{} at {}:{}", d.call, file.path, d.loc.line))
            .collect();
        controls.push(ControlReport {
            id: run.id.clone(),
            location: format!("{}:{}", file.path, run.loc.line),
            supported: problems.is_empty(),
            problems,
            warnings: run.raised.iter().cloned().collect(),
            facts: run.needs.iter().map(|r| format!("{r:?}")).collect(),
            round_trips: if dynamic_calls.is_empty() { 1 } else { 2 },
            dynamic_calls,
        });
    }
    let unsupported = controls.iter().filter(|c| !c.supported).count();
    Ok(ProfileCheck {
        name: loaded.profile.metadata.name.clone(),
        version: loaded.profile.metadata.version.clone(),
        format: "inspec".into(),
        round_trips: controls.iter().map(|c| c.round_trips).max().unwrap_or(1),
        facts_planned: all_facts.len() + crate::checks::os_release_requests().len(),
        controls,
        unsupported,
    })
}

/// Unsupported nodes inside the span of a control.
fn find_unsupported(
    node: &super::ast::Node,
    span: super::ast::Loc,
    out: &mut Vec<(String, super::ast::Loc)>,
) {
    if node.loc.end < span.start || node.loc.start > span.end {
        return;
    }
    if let super::ast::Kind::Unsupported(what) = &node.kind
        && node.loc.start >= span.start
        && node.loc.end <= span.end
    {
        out.push((what.clone(), node.loc));
    }
    node.for_each_child(&mut |c| find_unsupported(c, span, out));
}
