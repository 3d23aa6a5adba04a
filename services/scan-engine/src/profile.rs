//! Profiles: the validated, compiled form of an `inspec.yml` + `controls/*.yml`
//! directory, and the loader that turns YAML text into it.
//!
//! The loader takes file *contents* (see [`ProfileSource`]) so this module
//! stays free of IO; `adapters::profile_dir` reads a directory into a source.
//! Every problem is reported with `file:line:col` and all problems found are
//! returned at once, so an author fixes a profile in one pass.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{LoaderOptions, Node, Spanned};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::checks::{Check, RawCheck};

/// A position in a profile file, printed as `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Path of the file relative to the profile directory.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem in a profile, with where it is when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileProblem {
    /// Where the problem is; `None` for whole-profile problems such as a missing file.
    pub location: Option<Location>,
    /// What is wrong, in words an author can act on.
    pub message: String,
}

impl fmt::Display for ProfileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Every problem found while loading a profile.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid profile:\n{}", .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ProfileError {
    /// All problems, in file order.
    pub problems: Vec<ProfileProblem>,
}

/// The raw text of a profile directory: what the loader consumes.
#[derive(Debug, Clone, Default)]
pub struct ProfileSource {
    /// Text of `inspec.yml`.
    pub metadata: String,
    /// `(relative path, text)` of every `controls/*.yml`, in any order.
    pub control_files: Vec<(String, String)>,
}

/// Scan-time overrides of profile inputs (`--input name=value`).
pub type InputOverrides = BTreeMap<String, String>;

/// Profile metadata, as carried into the HDF `profiles[0]` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Unique profile name.
    pub name: String,
    /// Human title.
    #[serde(default)]
    pub title: Option<String>,
    /// Profile version.
    #[serde(default)]
    pub version: Option<String>,
    /// Maintainer.
    #[serde(default)]
    pub maintainer: Option<String>,
    /// One-paragraph summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// License identifier.
    #[serde(default)]
    pub license: Option<String>,
    /// Copyright holder.
    #[serde(default)]
    pub copyright: Option<String>,
    /// Copyright contact.
    #[serde(default)]
    pub copyright_email: Option<String>,
    /// Supported platforms (`platform`, `platform-family`, `platform-name`, `release`).
    #[serde(default)]
    pub supports: Vec<BTreeMap<String, String>>,
    /// Inputs the controls may reference as `{{ name }}`.
    #[serde(default, skip_deserializing)]
    pub inputs: Vec<Input>,
}

/// A profile input and its effective value.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// Name referenced as `{{ name }}` inside control files.
    pub name: String,
    /// Human description.
    pub description: Option<String>,
    /// Effective value: the default, or the scan-time override.
    pub value: InputValue,
}

/// Inputs are strings or lists of strings; nothing else is needed by checks.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// A single value.
    Scalar(String),
    /// A list; overrides give it as comma-separated text.
    List(Vec<String>),
}

/// HDF severity bands, lowercase as SAF compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// impact < 0.1
    None,
    /// 0.1 <= impact < 0.4
    Low,
    /// 0.4 <= impact < 0.7
    Medium,
    /// 0.7 <= impact < 0.9
    High,
    /// impact >= 0.9
    Critical,
}

impl Severity {
    /// The band inspecjs derives from an impact (`compute_severity`).
    pub fn from_impact(impact: f64) -> Self {
        if impact < 0.1 {
            Self::None
        } else if impact < 0.4 {
            Self::Low
        } else if impact < 0.7 {
            Self::Medium
        } else if impact < 0.9 {
            Self::High
        } else {
            Self::Critical
        }
    }

    /// Lowercase name used in HDF tags and SAF threshold keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses a lowercase severity name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }
}

/// A validated control, ready to plan and evaluate.
#[derive(Debug, Clone)]
pub struct Control {
    /// Unique id across the profile.
    pub id: String,
    /// Title.
    pub title: String,
    /// Rationale.
    pub desc: String,
    /// Labelled descriptions (`check`, `fix`, ...).
    pub descriptions: BTreeMap<String, String>,
    /// 0..=1.
    pub impact: f64,
    /// Derived from impact, or the explicit (consistent) tag.
    pub severity: Severity,
    /// Free-form tags; `severity` is always present and lowercase.
    pub tags: BTreeMap<String, serde_json::Value>,
    /// `{url|ref|uri: ...}` objects.
    pub refs: Vec<BTreeMap<String, String>>,
    /// Where the control is defined.
    pub source: Location,
    /// The checks; each yields at least one result.
    pub checks: Vec<Check>,
}

/// A loaded profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Metadata and effective inputs.
    pub metadata: Metadata,
    /// Controls in file order (files sorted by name).
    pub controls: Vec<Control>,
    /// sha256 over the profile's files, so a result names exactly the rules used.
    pub sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    name: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    maintainer: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    copyright: Option<String>,
    #[serde(default)]
    copyright_email: Option<String>,
    #[serde(default)]
    supports: Vec<BTreeMap<String, String>>,
    #[serde(default)]
    inputs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    inspec_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControlFile {
    controls: Vec<RawControl>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTag {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
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

/// Loads and validates a profile from its text, applying input overrides.
///
/// # Errors
/// Every problem found, each with `file:line:col` where it applies: invalid
/// YAML, unknown fields or check types, invalid regexes, duplicate control ids,
/// impact out of range, inconsistent severity tags and undefined inputs.
pub fn load_profile(
    source: &ProfileSource,
    overrides: &InputOverrides,
) -> Result<Profile, ProfileError> {
    let mut problems = Vec::new();
    let mut file_ids = vec!["inspec.yml".to_string()];
    let mut controls_sorted: Vec<&(String, String)> = source.control_files.iter().collect();
    controls_sorted.sort_by(|a, b| a.0.cmp(&b.0));
    file_ids.extend(controls_sorted.iter().map(|(n, _)| n.clone()));

    let locate = |span: &marked_yaml::Span| -> Option<Location> {
        span.start().map(|m| Location {
            file: file_ids.get(m.source()).cloned().unwrap_or_default(),
            line: m.line(),
            column: m.column(),
        })
    };

    // --- metadata and inputs
    let meta_node = match marked_yaml::parse_yaml_with_options(
        0,
        &source.metadata,
        LoaderOptions::default().error_on_duplicate_keys(true),
    ) {
        Ok(node) => node,
        Err(e) => {
            return Err(ProfileError {
                problems: vec![load_error_problem(&e, "inspec.yml")],
            });
        }
    };
    let raw_meta: RawMetadata = match marked_yaml::from_node(&meta_node) {
        Ok(m) => m,
        Err(e) => {
            return Err(ProfileError {
                problems: vec![ProfileProblem {
                    location: e.start_mark().map(|m| Location {
                        file: "inspec.yml".into(),
                        line: m.line(),
                        column: m.column(),
                    }),
                    message: e.to_string(),
                }],
            });
        }
    };
    let _ = raw_meta.inspec_version;
    let _ = raw_meta.inputs.len();
    let inputs = parse_inputs(&meta_node, overrides, &mut problems);

    // --- controls
    let mut controls = Vec::new();
    let mut seen_ids: BTreeMap<String, Location> = BTreeMap::new();
    for (idx, (name, text)) in controls_sorted.iter().enumerate() {
        let source_id = idx + 1;
        let mut node = match marked_yaml::parse_yaml_with_options(
            source_id,
            text,
            LoaderOptions::default().error_on_duplicate_keys(true),
        ) {
            Ok(node) => node,
            Err(e) => {
                problems.push(load_error_problem(&e, name));
                continue;
            }
        };
        substitute_inputs(&mut node, &inputs, &mut |span, msg| {
            problems.push(ProfileProblem {
                location: locate(span),
                message: msg,
            })
        });
        let before = problems.len();
        check_types(&node, &mut |span, msg| {
            problems.push(ProfileProblem {
                location: locate(span),
                message: msg,
            })
        });
        if problems.len() > before {
            continue;
        }
        let raw: RawControlFile = match marked_yaml::from_node(&node) {
            Ok(raw) => raw,
            Err(e) => {
                problems.push(ProfileProblem {
                    location: e.start_mark().map(|m| Location {
                        file: (*name).clone(),
                        line: m.line(),
                        column: m.column(),
                    }),
                    message: e.to_string(),
                });
                continue;
            }
        };
        for rc in raw.controls {
            let loc = locate(rc.id.span()).unwrap_or(Location {
                file: (*name).clone(),
                line: 0,
                column: 0,
            });
            let id = rc.id.as_str().trim().to_string();
            if id.is_empty() {
                problems.push(ProfileProblem {
                    location: Some(loc.clone()),
                    message: "control id is empty".into(),
                });
            }
            if let Some(first) = seen_ids.get(&id) {
                problems.push(ProfileProblem {
                    location: Some(loc.clone()),
                    message: format!("duplicate control id `{id}` (first defined at {first})"),
                });
            } else {
                seen_ids.insert(id.clone(), loc.clone());
            }
            let impact = *rc.impact;
            if !(0.0..=1.0).contains(&impact) || impact.is_nan() {
                problems.push(ProfileProblem {
                    location: locate(rc.impact.span()),
                    message: format!("impact {impact} is out of range 0.0..=1.0"),
                });
            } else if impact > 0.0 && impact < 0.1 {
                problems.push(ProfileProblem {
                    location: locate(rc.impact.span()),
                    message: format!(
                        "impact {impact} is below 0.1: HDF tools would bucket it as severity `none`; use 0.0 (not applicable) or >= 0.1"
                    ),
                });
            }
            let derived = Severity::from_impact(impact);
            let mut tags = BTreeMap::new();
            for (k, v) in rc.tags {
                let span = *v.span();
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
                        problems.push(ProfileProblem {
                            location: locate(&span),
                            message: format!(
                                "tags.severity must be lowercase `{}` to agree with impact {impact}",
                                derived.as_str()
                            ),
                        });
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
            if rc.checks.is_empty() {
                problems.push(ProfileProblem {
                    location: locate(rc.checks.span()).or(Some(loc.clone())),
                    message: format!("control `{id}` has no checks"),
                });
            }
            let mut checks = Vec::new();
            for raw_check in rc.checks.iter() {
                match raw_check.compile() {
                    Ok(c) => checks.push(c),
                    Err((span, msg)) => problems.push(ProfileProblem {
                        location: locate(&span).or(Some(loc.clone())),
                        message: msg,
                    }),
                }
            }
            controls.push(Control {
                id,
                title: rc.title,
                desc: rc.desc,
                descriptions: rc.descriptions,
                impact,
                severity,
                tags,
                refs: rc.refs,
                source: loc,
                checks,
            });
        }
    }
    if source.control_files.is_empty() {
        problems.push(ProfileProblem {
            location: None,
            message: "profile has no controls/*.yml files".into(),
        });
    }
    if !problems.is_empty() {
        return Err(ProfileError { problems });
    }

    let mut hasher = Sha256::new();
    hasher.update(b"inspec.yml\0");
    hasher.update(source.metadata.as_bytes());
    for (name, text) in &controls_sorted {
        hasher.update(b"\0");
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update(text.as_bytes());
    }
    Ok(Profile {
        metadata: Metadata {
            name: raw_meta.name,
            title: raw_meta.title,
            version: raw_meta.version,
            maintainer: raw_meta.maintainer,
            summary: raw_meta.summary,
            license: raw_meta.license,
            copyright: raw_meta.copyright,
            copyright_email: raw_meta.copyright_email,
            supports: raw_meta.supports,
            inputs,
        },
        controls,
        sha256: hex::encode(hasher.finalize()),
    })
}

fn load_error_problem(e: &marked_yaml::LoadError, file: &str) -> ProfileProblem {
    use marked_yaml::LoadError as L;
    let mark = match e {
        L::TopLevelMustBeMapping(m)
        | L::TopLevelMustBeSequence(m)
        | L::UnexpectedAnchor(m)
        | L::MappingKeyMustBeScalar(m)
        | L::UnexpectedTag(m)
        | L::ScanError(m, _) => Some(*m),
        L::DuplicateKey(inner) => inner.key.span().start().copied(),
    };
    let message = match e {
        L::ScanError(_, scan) => format!("invalid YAML: {scan}"),
        other => format!("invalid YAML: {other}"),
    };
    ProfileProblem {
        location: mark.map(|m| Location {
            file: file.to_string(),
            line: m.line(),
            column: m.column(),
        }),
        message,
    }
}

fn parse_inputs(
    meta: &Node,
    overrides: &InputOverrides,
    problems: &mut Vec<ProfileProblem>,
) -> Vec<Input> {
    let at = |span: &marked_yaml::Span| {
        span.start().map(|m| Location {
            file: "inspec.yml".into(),
            line: m.line(),
            column: m.column(),
        })
    };
    let mut inputs = Vec::new();
    let mut names = BTreeSet::new();
    if let Some(seq) = meta.as_mapping().and_then(|m| m.get_sequence("inputs")) {
        for item in seq.iter() {
            let Some(map) = item.as_mapping() else {
                problems.push(ProfileProblem {
                    location: at(item.span()),
                    message: "each input must be a mapping with `name` and `value`".into(),
                });
                continue;
            };
            let Some(name) = map.get_scalar("name") else {
                problems.push(ProfileProblem {
                    location: at(map.span()),
                    message: "input is missing `name`".into(),
                });
                continue;
            };
            for key in map.keys() {
                if !matches!(
                    key.as_str(),
                    "name" | "value" | "description" | "type" | "required"
                ) {
                    problems.push(ProfileProblem {
                        location: at(key.span()),
                        message: format!("unknown input field `{}`", key.as_str()),
                    });
                }
            }
            let value = match map.get_node("value") {
                Some(Node::Scalar(s)) => InputValue::Scalar(s.as_str().to_string()),
                Some(Node::Sequence(seq)) => InputValue::List(
                    seq.iter()
                        .filter_map(|n| n.as_scalar().map(|s| s.as_str().to_string()))
                        .collect(),
                ),
                Some(other) => {
                    problems.push(ProfileProblem {
                        location: at(other.span()),
                        message: "input value must be a string or a list of strings".into(),
                    });
                    continue;
                }
                None => {
                    problems.push(ProfileProblem {
                        location: at(name.span()),
                        message: format!("input `{}` has no default `value`", name.as_str()),
                    });
                    continue;
                }
            };
            names.insert(name.as_str().to_string());
            inputs.push(Input {
                name: name.as_str().to_string(),
                description: map
                    .get_scalar("description")
                    .map(|s| s.as_str().to_string()),
                value,
            });
        }
    }
    for (k, v) in overrides {
        match inputs.iter_mut().find(|i| &i.name == k) {
            Some(input) => {
                input.value = match input.value {
                    InputValue::Scalar(_) => InputValue::Scalar(v.clone()),
                    InputValue::List(_) => InputValue::List(
                        v.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect(),
                    ),
                }
            }
            None => problems.push(ProfileProblem {
                location: None,
                message: format!(
                    "--input {k}: the profile declares no such input (declared: {})",
                    names.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }
    inputs
}

/// Reports unknown check types at their key (serde's enum error carries no position).
fn check_types(node: &Node, report: &mut dyn FnMut(&marked_yaml::Span, String)) {
    let Some(controls) = node.as_mapping().and_then(|m| m.get_sequence("controls")) else {
        return;
    };
    for control in controls.iter() {
        let Some(checks) = control.as_mapping().and_then(|m| m.get_sequence("checks")) else {
            continue;
        };
        for check in checks.iter() {
            let Some(map) = check.as_mapping() else {
                report(
                    check.span(),
                    "a check must be a mapping with one key naming its type".into(),
                );
                continue;
            };
            if map.len() != 1 {
                report(
                    map.span(),
                    format!(
                        "a check must have exactly one key naming its type, found {}",
                        map.len()
                    ),
                );
            }
            for key in map.keys() {
                if !crate::checks::CHECK_TYPES.contains(&key.as_str()) {
                    report(
                        key.span(),
                        format!(
                            "unknown check type `{}`; expected one of: {}",
                            key.as_str(),
                            crate::checks::CHECK_TYPES.join(", ")
                        ),
                    );
                }
            }
        }
    }
}

/// Replaces `{{ name }}` in every scalar with the input's value. A scalar that
/// is exactly one reference to a list input becomes a sequence, so list inputs
/// can feed list-valued check fields.
fn substitute_inputs(
    node: &mut Node,
    inputs: &[Input],
    report: &mut dyn FnMut(&marked_yaml::Span, String),
) {
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if !text.contains("{{") {
                return;
            }
            let span = *s.span();
            let trimmed = text.trim();
            if let Some(name) = trimmed
                .strip_prefix("{{")
                .and_then(|t| t.strip_suffix("}}"))
                .map(str::trim)
                .filter(|n| !n.contains("{{") && !n.contains("}}"))
            {
                match inputs.iter().find(|i| i.name == name) {
                    Some(Input {
                        value: InputValue::List(list),
                        ..
                    }) => {
                        let seq = list
                            .iter()
                            .map(|v| Node::from(MarkedScalarNode::new(span, v.clone())))
                            .collect();
                        *node = Node::from(MarkedSequenceNode::new(span, seq));
                        return;
                    }
                    Some(Input {
                        value: InputValue::Scalar(v),
                        ..
                    }) => {
                        *node = Node::from(MarkedScalarNode::new(span, v.clone()));
                        return;
                    }
                    None => {
                        report(
                            &span,
                            format!("input `{name}` is not declared in inspec.yml"),
                        );
                        return;
                    }
                }
            }
            // Embedded references: scalar inputs only.
            let mut out = String::new();
            let mut rest = text;
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let Some(end) = after.find("}}") else {
                    report(&span, "unterminated `{{` input reference".into());
                    return;
                };
                let name = after[..end].trim();
                match inputs.iter().find(|i| i.name == name) {
                    Some(Input {
                        value: InputValue::Scalar(v),
                        ..
                    }) => out.push_str(v),
                    Some(_) => {
                        report(
                            &span,
                            format!("list input `{name}` can only be used as a whole value"),
                        );
                        return;
                    }
                    None => {
                        report(
                            &span,
                            format!("input `{name}` is not declared in inspec.yml"),
                        );
                        return;
                    }
                }
                rest = &after[end + 2..];
            }
            out.push_str(rest);
            *node = Node::from(MarkedScalarNode::new(span, out));
        }
        Node::Sequence(seq) => {
            for item in seq.iter_mut() {
                substitute_inputs(item, inputs, report);
            }
        }
        Node::Mapping(map) => {
            let map: &mut MarkedMappingNode = map;
            for (_, v) in map.iter_mut() {
                substitute_inputs(v, inputs, report);
            }
        }
    }
}
