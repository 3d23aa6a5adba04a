//! One control of a YAML control file, validated: its id, impact, tags and
//! severity, and its compiled checks.

use std::collections::BTreeMap;

use marked_yaml::Spanned;
use serde::Deserialize;

use super::problems::Problems;
use super::{Control, Location, Severity};
use crate::checks::{Check, RawCheck};

/// A control file: `controls:` and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControlFile {
    pub(super) controls: Vec<RawControl>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTag {
    One(String),
    Many(Vec<String>),
}

/// A control as written in YAML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    id: Spanned<String>,
    title: String,
    desc: String,
    #[serde(default)]
    descriptions: BTreeMap<String, String>,
    impact: Spanned<f64>,
    #[serde(default)]
    tags: BTreeMap<String, Spanned<RawTagSpanned>>,
    #[serde(default)]
    refs: Vec<BTreeMap<String, String>>,
    checks: Spanned<Vec<RawCheck>>,
}

/// Wrapper so `tags.severity` can be located.
#[derive(Deserialize)]
#[serde(transparent)]
struct RawTagSpanned(RawTag);

/// Validates one control of `file`, adding every problem to `problems`.
/// `seen_ids` holds the ids defined so far, to report duplicates with the
/// first definition.
pub(super) fn compile_control(
    rc: RawControl,
    file: &str,
    seen_ids: &mut BTreeMap<String, Location>,
    problems: &mut Problems,
) -> Control {
    let loc = problems.locate(rc.id.span()).unwrap_or(Location {
        file: file.to_string(),
        line: 0,
        column: 0,
    });
    let id = rc.id.as_str().trim().to_string();
    if id.is_empty() {
        problems.push(Some(loc.clone()), "control id is empty".into());
    }
    if let Some(first) = seen_ids.get(&id) {
        let message = format!("duplicate control id `{id}` (first defined at {first})");
        problems.push(Some(loc.clone()), message);
    } else {
        seen_ids.insert(id.clone(), loc.clone());
    }
    let impact = checked_impact(&rc.impact, problems);
    let (tags, severity) = tags_and_severity(rc.tags, impact, problems);
    let checks = compile_checks(&rc.checks, &id, &loc, problems);
    Control {
        id,
        title: rc.title,
        desc: rc.desc,
        descriptions: rc.descriptions,
        code: String::new(),
        impact,
        severity,
        tags,
        refs: rc.refs,
        source: loc,
        checks,
    }
}

/// The impact, with a problem when it is outside 0..=1 or in the band HDF
/// tools would silently read as severity `none`.
fn checked_impact(impact: &Spanned<f64>, problems: &mut Problems) -> f64 {
    let value = **impact;
    if !(0.0..=1.0).contains(&value) || value.is_nan() {
        problems.at(
            impact.span(),
            format!("impact {value} is out of range 0.0..=1.0"),
        );
    } else if value > 0.0 && value < 0.1 {
        problems.at(
            impact.span(),
            format!(
                "impact {value} is below 0.1: HDF tools would bucket it as severity `none`; use 0.0 (not applicable) or >= 0.1"
            ),
        );
    }
    value
}

/// Tags as JSON values, with `severity` always present and lowercase. A
/// written severity must agree with the impact, except for impact 0 (not
/// applicable), where the author's severity is kept.
fn tags_and_severity(
    raw: BTreeMap<String, Spanned<RawTagSpanned>>,
    impact: f64,
    problems: &mut Problems,
) -> (BTreeMap<String, serde_json::Value>, Severity) {
    let derived = Severity::from_impact(impact);
    let mut tags = BTreeMap::new();
    for (k, v) in raw {
        let value = match &v.0 {
            RawTag::One(s) => serde_json::Value::String(s.clone()),
            RawTag::Many(list) => serde_json::Value::Array(
                list.iter()
                    .map(|s| serde_json::Value::String(s.clone()))
                    .collect(),
            ),
        };
        if k == "severity" {
            let ok = matches!(&v.0, RawTag::One(s) if Severity::parse(s) == Some(derived));
            if !ok && impact > 0.0 {
                problems.at(
                    v.span(),
                    format!(
                        "tags.severity must be lowercase `{}` to agree with impact {impact}",
                        derived.as_str()
                    ),
                );
            }
        }
        tags.insert(k, value);
    }
    let severity = match tags.get("severity") {
        Some(serde_json::Value::String(s)) if impact == 0.0 => {
            Severity::parse(s).unwrap_or(derived)
        }
        _ => derived,
    };
    tags.insert(
        "severity".into(),
        serde_json::Value::String(severity.as_str().into()),
    );
    (tags, severity)
}

/// Every check that compiles; each one that does not is a problem at its
/// span (or at the control when the span has no position).
fn compile_checks(
    raw: &Spanned<Vec<RawCheck>>,
    id: &str,
    loc: &Location,
    problems: &mut Problems,
) -> Vec<Check> {
    if raw.is_empty() {
        problems.at_or(raw.span(), loc, format!("control `{id}` has no checks"));
    }
    let mut checks = Vec::new();
    for raw_check in raw.iter() {
        match raw_check.compile() {
            Ok(c) => checks.push(c),
            Err((span, msg)) => problems.at_or(&span, loc, msg),
        }
    }
    checks
}
