//! SAF threshold files, evaluated in Rust with `saf validate threshold`'s
//! semantics, minus its silent passes.
//!
//! Agreement with saf 1.5.3: the five status buckets, the severity bands, the
//! integer-rounded compliance score with Not Applicable excluded, and the
//! exact/min/max/controls checks, reported in saf's order.
//!
//! Deliberate divergences (each of these passes silently in saf):
//! - every failed check is reported, not just the first;
//! - a missing or schema-invalid HDF file is an input error;
//! - unknown keys, scalar shorthands (`compliance: 90`, `failed: {high: 0}`)
//!   and `no_impact.total.min/max` (which saf ignores) are input errors;
//! - the flattened form keeps both `x.y.min` and `x.y.max` (saf keeps one);
//! - `compliance.min: 0` is a real bound, an empty `controls: []` means
//!   "this bucket is empty", and capitalised severity tags (`"High"`) are
//!   counted in their bucket instead of vanishing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use marked_yaml::Node;
use serde_json::Value;

use crate::hdf::{ControlStatus, control_severity, control_status};

/// Severity bucket names in saf's checking order.
const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "none"];
const STATUSES: [ControlStatus; 5] = [
    ControlStatus::Passed,
    ControlStatus::Failed,
    ControlStatus::NotReviewed,
    ControlStatus::NotApplicable,
    ControlStatus::ProfileError,
];

/// One bound from a threshold file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// `compliance.min`
    ComplianceMin(u64),
    /// `compliance.max`
    ComplianceMax(u64),
    /// `<status>.total: N`
    TotalExact(ControlStatus, u64),
    /// `<status>.total.min`
    TotalMin(ControlStatus, u64),
    /// `<status>.total.max`
    TotalMax(ControlStatus, u64),
    /// `<status>.<severity>.min`
    SeverityMin(ControlStatus, &'static str, u64),
    /// `<status>.<severity>.max`
    SeverityMax(ControlStatus, &'static str, u64),
    /// `<status>.<severity>.controls`
    Controls(ControlStatus, &'static str, BTreeSet<String>),
}

impl Bound {
    fn order(&self) -> (u8, usize, usize) {
        let st = |s: &ControlStatus| STATUSES.iter().position(|x| x == s).unwrap_or(0);
        let sv = |s: &str| SEVERITIES.iter().position(|x| *x == s).unwrap_or(0);
        match self {
            Bound::ComplianceMin(_) => (0, 0, 0),
            Bound::ComplianceMax(_) => (0, 1, 0),
            Bound::TotalExact(s, _) => (1, st(s), 0),
            Bound::TotalMin(s, _) => (2, st(s), 0),
            Bound::TotalMax(s, _) => (3, st(s), 0),
            Bound::SeverityMin(s, v, _) => (4, sv(v), st(s) * 2),
            Bound::SeverityMax(s, v, _) => (4, sv(v), st(s) * 2 + 1),
            Bound::Controls(s, v, _) => (5, st(s), sv(v)),
        }
    }
}

/// A parsed threshold file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Threshold {
    /// Bounds in saf's evaluation order.
    pub bounds: Vec<Bound>,
}

/// Why a threshold file or HDF file is unusable (exit status 2).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct InputError {
    /// Every problem found, each naming where.
    pub problems: Vec<String>,
}

impl InputError {
    fn one(msg: impl Into<String>) -> Self {
        Self {
            problems: vec![msg.into()],
        }
    }
}

/// Parses a threshold file (nested or flattened YAML, or JSON).
///
/// # Errors
/// Every problem in the file, with `file:line:col` where known.
pub fn parse_threshold(text: &str, file: &str) -> Result<Threshold, InputError> {
    let node = marked_yaml::parse_yaml(0, text)
        .map_err(|e| InputError::one(format!("{file}: invalid YAML/JSON threshold file: {e}")))?;
    let Node::Mapping(top) = &node else {
        return Err(InputError::one(format!(
            "{file}: a threshold file must be a mapping"
        )));
    };
    let at = |n: &Node| {
        n.span()
            .start()
            .map(|m| format!("{file}:{}:{}", m.line(), m.column()))
            .unwrap_or_else(|| file.to_string())
    };
    // Collect (dotted path, value node) leaves.
    let mut leaves: Vec<(Vec<String>, &Node)> = Vec::new();
    let flattened = !top.is_empty() && top.values().all(|v| matches!(v, Node::Scalar(_)));
    if flattened {
        for (k, v) in top.iter() {
            leaves.push((k.as_str().split('.').map(String::from).collect(), v));
        }
    } else {
        fn walk<'a>(prefix: Vec<String>, n: &'a Node, out: &mut Vec<(Vec<String>, &'a Node)>) {
            match n {
                Node::Mapping(m) => {
                    for (k, v) in m.iter() {
                        let mut p = prefix.clone();
                        p.push(k.as_str().to_string());
                        walk(p, v, out);
                    }
                }
                _ => out.push((prefix, n)),
            }
        }
        walk(Vec::new(), &node, &mut leaves);
    }
    let mut problems = Vec::new();
    let mut bounds = Vec::new();
    let mut seen = BTreeSet::new();
    for (path, value) in leaves {
        let dotted = path.join(".");
        if !seen.insert(dotted.clone()) {
            problems.push(format!("{}: `{dotted}` is given twice", at(value)));
            continue;
        }
        match parse_leaf(&path, value) {
            Ok(b) => bounds.push(b),
            Err(msg) => problems.push(format!("{}: `{dotted}`: {msg}", at(value))),
        }
    }
    if bounds.is_empty() && problems.is_empty() {
        problems.push(format!("{file}: the threshold file sets no bounds"));
    }
    if !problems.is_empty() {
        return Err(InputError { problems });
    }
    bounds.sort_by_key(Bound::order);
    Ok(Threshold { bounds })
}

fn number(n: &Node) -> Result<u64, String> {
    let s = n
        .as_scalar()
        .ok_or_else(|| "expected a number".to_string())?
        .as_str();
    s.trim()
        .parse::<u64>()
        .map_err(|_| format!("`{s}` is not a non-negative integer"))
}

fn parse_leaf(path: &[String], value: &Node) -> Result<Bound, String> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let status = |s: &str| {
        ControlStatus::from_key(s).ok_or_else(|| {
            format!("unknown key `{s}`; expected compliance, passed, failed, skipped, no_impact or error")
        })
    };
    let severity = |st: ControlStatus, s: &str| -> Result<&'static str, String> {
        SEVERITIES
            .iter()
            .find(|v| **v == s)
            .filter(|v| **v != "none" || st == ControlStatus::NotApplicable)
            .copied()
            .ok_or_else(|| {
                format!("unknown key `{s}`; expected total, critical, high, medium, low (or none under no_impact)")
            })
    };
    match p.as_slice() {
        ["compliance"] => Err("scalar shorthand is not a bound (saf ignores it); write compliance: {min: N} or {max: N}".into()),
        ["compliance", "min"] => Ok(Bound::ComplianceMin(pct(number(value)?)?)),
        ["compliance", "max"] => Ok(Bound::ComplianceMax(pct(number(value)?)?)),
        ["compliance", other, ..] => Err(format!("unknown key `{other}` under compliance; expected min or max")),
        [s, "total"] => Ok(Bound::TotalExact(status(s)?, number(value)?)),
        [s, "total", mm] => {
            let st = status(s)?;
            if st == ControlStatus::NotApplicable {
                return Err("saf silently ignores no_impact.total.min/max; use `no_impact.total: N` or per-severity bounds".into());
            }
            match *mm {
                "min" => Ok(Bound::TotalMin(st, number(value)?)),
                "max" => Ok(Bound::TotalMax(st, number(value)?)),
                other => Err(format!("unknown key `{other}`; expected min or max")),
            }
        }
        [s] => {
            status(s)?;
            Err("a status needs total or severity bounds".into())
        }
        [s, sev] => {
            let st = status(s)?;
            severity(st, sev)?;
            Err(format!("scalar shorthand is not a bound (saf ignores it); write {s}: {{{sev}: {{max: N}}}}"))
        }
        [s, sev, key] => {
            let st = status(s)?;
            let sev = severity(st, sev)?;
            match *key {
                "min" => Ok(Bound::SeverityMin(st, sev, number(value)?)),
                "max" => Ok(Bound::SeverityMax(st, sev, number(value)?)),
                "controls" => {
                    let Node::Sequence(seq) = value else {
                        return Err("controls must be a list of control ids".into());
                    };
                    let mut ids = BTreeSet::new();
                    for item in seq.iter() {
                        let Some(s) = item.as_scalar() else {
                            return Err("controls must be a list of control ids".into());
                        };
                        ids.insert(s.as_str().to_string());
                    }
                    Ok(Bound::Controls(st, sev, ids))
                }
                other => Err(format!("unknown key `{other}`; expected min, max or controls")),
            }
        }
        _ => Err("unknown key path".into()),
    }
}

fn pct(n: u64) -> Result<u64, String> {
    if n > 100 {
        Err(format!("{n} is not a percentage"))
    } else {
        Ok(n)
    }
}

/// Control ids of `profiles[0]`, bucketed by (status, lowercase severity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// `(status, severity)` -> ids.
    pub buckets: BTreeMap<(ControlStatus, String), BTreeSet<String>>,
    /// status -> number of controls.
    pub totals: BTreeMap<ControlStatus, u64>,
}

impl Counts {
    fn total(&self, s: ControlStatus) -> u64 {
        self.totals.get(&s).copied().unwrap_or(0)
    }
    fn bucket(&self, s: ControlStatus, sev: &str) -> BTreeSet<String> {
        self.buckets
            .get(&(s, sev.to_string()))
            .cloned()
            .unwrap_or_default()
    }
    /// saf's integer compliance percentage.
    pub fn compliance(&self) -> u64 {
        let p = self.total(ControlStatus::Passed);
        let denom = p
            + self.total(ControlStatus::Failed)
            + self.total(ControlStatus::NotReviewed)
            + self.total(ControlStatus::ProfileError);
        if denom == 0 {
            0
        } else {
            (100.0 * p as f64 / denom as f64 + 0.5).floor() as u64
        }
    }
}

/// Validates an HDF document the way inspecjs's converter does (required keys
/// and types) and counts `profiles[0]`.
///
/// # Errors
/// Every schema problem, with its JSON path.
pub fn counts_from_hdf(hdf: &Value) -> Result<Counts, InputError> {
    let mut schema = Schema::default();
    schema.document(hdf);
    if !schema.problems.is_empty() {
        return Err(InputError {
            problems: schema.problems,
        });
    }
    let profiles = hdf["profiles"].as_array().cloned().unwrap_or_default();
    refuse_overlays(&profiles)?;
    Ok(count_controls(&profiles[0]))
}

/// Schema problems of an HDF document, each as `json.path: expected ...`.
#[derive(Default)]
struct Schema {
    problems: Vec<String>,
}

impl Schema {
    fn need(&mut self, v: &Value, path: &str, ok: fn(&Value) -> bool, what: &str) {
        if !ok(v) {
            self.problems.push(format!("{path}: expected {what}"));
        }
    }

    fn string(&mut self, v: &Value, path: &str) {
        self.need(v, path, Value::is_string, "a string");
    }

    fn array(&mut self, v: &Value, path: &str) {
        self.need(v, path, Value::is_array, "an array");
    }

    fn object(&mut self, v: &Value, path: &str) {
        self.need(v, path, Value::is_object, "an object");
    }

    fn document(&mut self, hdf: &Value) {
        self.object(&hdf["platform"], "platform");
        self.string(&hdf["platform"]["name"], "platform.name");
        self.string(&hdf["platform"]["release"], "platform.release");
        self.string(&hdf["version"], "version");
        self.object(&hdf["statistics"], "statistics");
        let profiles = hdf["profiles"].as_array().cloned().unwrap_or_default();
        if profiles.is_empty() {
            self.need(&Value::Null, "profiles", |_| false, "a non-empty array");
        }
        for (pi, p) in profiles.iter().enumerate() {
            self.profile(p, &format!("profiles[{pi}]"));
        }
    }

    fn profile(&mut self, p: &Value, pp: &str) {
        self.string(&p["name"], &format!("{pp}.name"));
        self.string(&p["sha256"], &format!("{pp}.sha256"));
        for k in ["supports", "attributes", "groups", "controls"] {
            self.array(&p[k], &format!("{pp}.{k}"));
        }
        for (ci, c) in p["controls"].as_array().into_iter().flatten().enumerate() {
            self.control(c, &format!("{pp}.controls[{ci}]"));
        }
    }

    fn control(&mut self, c: &Value, cp: &str) {
        self.string(&c["id"], &format!("{cp}.id"));
        self.need(
            &c["impact"],
            &format!("{cp}.impact"),
            Value::is_number,
            "a number",
        );
        self.array(&c["refs"], &format!("{cp}.refs"));
        self.object(&c["tags"], &format!("{cp}.tags"));
        self.object(&c["source_location"], &format!("{cp}.source_location"));
        self.array(&c["results"], &format!("{cp}.results"));
        for (ri, r) in c["results"].as_array().into_iter().flatten().enumerate() {
            let rp = format!("{cp}.results[{ri}]");
            self.string(&r["code_desc"], &format!("{rp}.code_desc"));
            self.string(&r["start_time"], &format!("{rp}.start_time"));
            self.need(
                &r["status"],
                &format!("{rp}.status"),
                |v| {
                    v.is_null()
                        || matches!(v.as_str(), Some("passed" | "failed" | "skipped" | "error"))
                },
                "passed, failed, skipped, error or null",
            );
        }
    }
}

/// Refuses documents whose later profiles repeat `profiles[0]`'s control
/// ids: SAF counts such overlays differently, and guessing would gate wrongly.
fn refuse_overlays(profiles: &[Value]) -> Result<(), InputError> {
    let ids: BTreeSet<&str> = profiles[0]["controls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str())
        .collect();
    for (pi, p) in profiles.iter().enumerate().skip(1) {
        for c in p["controls"].as_array().into_iter().flatten() {
            if let Some(id) = c["id"].as_str().filter(|id| ids.contains(id)) {
                return Err(InputError::one(format!(
                    "profiles[{pi}] repeats control id `{id}` of profiles[0]; overlay files are counted differently by SAF, refusing to guess"
                )));
            }
        }
    }
    Ok(())
}

/// Buckets a profile's controls by status and lowercase severity.
fn count_controls(profile: &Value) -> Counts {
    let mut counts = Counts::default();
    for c in profile["controls"].as_array().into_iter().flatten() {
        let status = control_status(c);
        let sev = control_severity(c).to_lowercase();
        *counts.totals.entry(status).or_default() += 1;
        counts
            .buckets
            .entry((status, sev))
            .or_default()
            .insert(c["id"].as_str().unwrap_or_default().to_string());
    }
    counts
}

/// One failed bound, with saf-style wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Evaluates every bound; returns all failures in saf's order.
pub fn evaluate(th: &Threshold, counts: &Counts) -> Vec<Failure> {
    let mut out = Vec::new();
    let cmp = |path: String, st: ControlStatus, got: u64, want: u64, rel: &str| {
        Failure(format!(
            "{path}: Threshold not met. Number of received total {k} controls ({got}) is {rel} your set threshold for the number of {k} controls ({want})",
            k = st.key()
        ))
    };
    for b in &th.bounds {
        match b {
            Bound::ComplianceMin(m) if counts.compliance() < *m => out.push(Failure(format!(
                "compliance.min: Overall compliance minimum was not satisfied ({}% < {m}%)",
                counts.compliance()
            ))),
            Bound::ComplianceMax(m) if counts.compliance() > *m => out.push(Failure(format!(
                "compliance.max: Overall compliance maximum was not satisfied ({}% > {m}%)",
                counts.compliance()
            ))),
            Bound::TotalExact(s, n) if counts.total(*s) != *n => out.push(cmp(
                format!("{}.total", s.key()),
                *s,
                counts.total(*s),
                *n,
                "not equal to",
            )),
            Bound::TotalMin(s, n) if counts.total(*s) < *n => out.push(cmp(
                format!("{}.total.min", s.key()),
                *s,
                counts.total(*s),
                *n,
                "less than",
            )),
            Bound::TotalMax(s, n) if counts.total(*s) > *n => out.push(cmp(
                format!("{}.total.max", s.key()),
                *s,
                counts.total(*s),
                *n,
                "greater than",
            )),
            Bound::SeverityMin(s, v, n) if (counts.bucket(*s, v).len() as u64) < *n => {
                out.push(cmp(
                    format!("{}.{v}.min", s.key()),
                    *s,
                    counts.bucket(*s, v).len() as u64,
                    *n,
                    "less than",
                ))
            }
            Bound::SeverityMax(s, v, n) if counts.bucket(*s, v).len() as u64 > *n => out.push(cmp(
                format!("{}.{v}.max", s.key()),
                *s,
                counts.bucket(*s, v).len() as u64,
                *n,
                "greater than",
            )),
            Bound::Controls(s, v, ids) => {
                let got = counts.bucket(*s, v);
                if &got != ids {
                    out.push(Failure(format!(
                        "Expected {}.{v}.controls to contain [{}] but it contained [{}]",
                        s.key(),
                        ids.iter().cloned().collect::<Vec<_>>().join(", "),
                        got.into_iter().collect::<Vec<_>>().join(", ")
                    )));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_saf_silent_passes() {
        for (text, needle) in [
            ("compliance: 90\n", "scalar shorthand"),
            ("failed:\n  critical: 0\n", "scalar shorthand"),
            ("no_impact:\n  total:\n    max: 0\n", "no_impact.total"),
            ("failed:\n  criticl:\n    max: 0\n", "unknown key"),
            ("bogus:\n  total: 1\n", "unknown key"),
        ] {
            let e = parse_threshold(text, "t.yml").unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?} -> {e}");
            assert!(e.contains("t.yml:"), "{e}");
        }
    }

    #[test]
    fn flattened_keeps_min_and_max() {
        let t = parse_threshold("failed.medium.min: 1\nfailed.medium.max: 2\n", "t").unwrap();
        assert_eq!(t.bounds.len(), 2);
    }

    #[test]
    fn json_form_parses() {
        let t = parse_threshold(
            r#"{"compliance": {"min": 80}, "failed": {"total": {"max": 0}}}"#,
            "t.json",
        )
        .unwrap();
        assert_eq!(
            t.bounds,
            vec![
                Bound::ComplianceMin(80),
                Bound::TotalMax(ControlStatus::Failed, 0)
            ]
        );
    }

    #[test]
    fn reports_every_failure() {
        let t = parse_threshold(
            "compliance:\n  min: 100\nfailed:\n  total:\n    max: 0\n",
            "t",
        )
        .unwrap();
        let mut c = Counts::default();
        c.totals.insert(ControlStatus::Failed, 2);
        c.totals.insert(ControlStatus::Passed, 2);
        let f = evaluate(&t, &c);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(c.compliance(), 50);
    }

    #[test]
    fn hdf_schema_problems_are_all_named_by_path() {
        let hdf = serde_json::json!({
            "platform": {"name": "alpine"},
            "version": 1,
            "statistics": {},
            "profiles": [{
                "name": "p", "sha256": "x", "supports": [], "attributes": [], "groups": [],
                "controls": [{
                    "id": "c-1", "impact": "high", "refs": [], "tags": {}, "source_location": {},
                    "results": [{"code_desc": "d", "start_time": "t", "status": "weird"}]
                }]
            }]
        });
        let e = counts_from_hdf(&hdf).unwrap_err();
        assert_eq!(
            e.problems,
            vec![
                "platform.release: expected a string",
                "version: expected a string",
                "profiles[0].controls[0].impact: expected a number",
                "profiles[0].controls[0].results[0].status: expected passed, failed, skipped, error or null",
            ]
        );
        let e = counts_from_hdf(&serde_json::json!({})).unwrap_err();
        assert!(
            e.problems
                .contains(&"profiles: expected a non-empty array".to_string()),
            "{e}"
        );
    }

    #[test]
    fn hdf_counts_and_overlays() {
        let control = |id: &str, impact: f64, status: &str| {
            serde_json::json!({
                "id": id, "impact": impact, "refs": [], "tags": {}, "source_location": {},
                "results": [{"code_desc": "d", "start_time": "t", "status": status}]
            })
        };
        let profile = |controls: Vec<Value>| {
            serde_json::json!({
                "name": "p", "sha256": "x", "supports": [], "attributes": [], "groups": [],
                "controls": controls
            })
        };
        let doc = |profiles: Vec<Value>| {
            serde_json::json!({
                "platform": {"name": "alpine", "release": "3"}, "version": "1",
                "statistics": {}, "profiles": profiles
            })
        };
        let first = profile(vec![
            control("a", 0.7, "failed"),
            control("b", 0.5, "passed"),
            control("c", 0.0, "passed"),
        ]);
        let counts = counts_from_hdf(&doc(vec![first.clone()])).expect("valid");
        assert_eq!(counts.total(ControlStatus::Failed), 1);
        assert_eq!(counts.total(ControlStatus::NotApplicable), 1);
        assert_eq!(
            counts.bucket(ControlStatus::Failed, "high"),
            ["a".to_string()].into()
        );
        assert_eq!(counts.compliance(), 50);
        let overlay = profile(vec![control("b", 0.5, "failed")]);
        let e = counts_from_hdf(&doc(vec![first, overlay])).unwrap_err();
        assert!(
            e.to_string().contains("profiles[1] repeats control id `b`"),
            "{e}"
        );
    }
}
