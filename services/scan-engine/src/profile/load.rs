//! The YAML front end's loader: `inspec.yml` and `controls/*.yml` text in,
//! a validated [`Profile`] (or every problem at once) out.
//!
//! Steps: read the metadata and inputs, then for each control file in name
//! order parse it, substitute inputs, check the check types, and validate
//! each control; finally hash every file so a result names exactly the
//! rules used.

use std::collections::BTreeMap;

use marked_yaml::{LoaderOptions, Node};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::controls::{RawControlFile, compile_control};
use super::inputs::{parse_inputs, substitute_inputs};
use super::problems::Problems;
use super::{
    Input, InputOverrides, Location, Metadata, Profile, ProfileError, ProfileProblem, ProfileSource,
};
use crate::checks::CHECK_TYPES;

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

impl RawMetadata {
    fn into_metadata(self, inputs: Vec<Input>) -> Metadata {
        // Accepted for InSpec compatibility; inputs are read from the node.
        let _ = (self.inspec_version, self.inputs.len());
        Metadata {
            name: self.name,
            title: self.title,
            version: self.version,
            maintainer: self.maintainer,
            summary: self.summary,
            license: self.license,
            copyright: self.copyright,
            copyright_email: self.copyright_email,
            supports: self.supports,
            inputs,
        }
    }
}

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
    if crate::inspec::is_inspec_source(source) {
        return crate::inspec::load_inspec_profile(source, overrides);
    }
    let mut files: Vec<&(String, String)> = source.control_files.iter().collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut file_ids = vec!["inspec.yml".to_string()];
    file_ids.extend(files.iter().map(|(n, _)| n.clone()));
    let mut problems = Problems::new(file_ids);

    let (meta_node, raw_meta) = parse_metadata(&source.metadata)?;
    let inputs = parse_inputs(&meta_node, overrides, problems.list_mut());

    let mut controls = Vec::new();
    let mut seen_ids: BTreeMap<String, Location> = BTreeMap::new();
    for (idx, (name, text)) in files.iter().enumerate() {
        let Some(raw) = parse_control_file(idx + 1, name, text, &inputs, &mut problems) else {
            continue;
        };
        for rc in raw.controls {
            controls.push(compile_control(rc, name, &mut seen_ids, &mut problems));
        }
    }
    if source.control_files.is_empty() {
        let message = "profile has no controls/*.yml files".into();
        problems.push(None, message);
    }
    if let Some(e) = problems.into_error() {
        return Err(e);
    }
    Ok(Profile {
        metadata: raw_meta.into_metadata(inputs),
        controls,
        sha256: profile_sha256(&source.metadata, &files),
        declared: Default::default(),
    })
}

/// `inspec.yml` as a node (inputs are read from it) and as metadata. A
/// profile whose metadata does not parse has nothing else worth checking.
fn parse_metadata(text: &str) -> Result<(Node, RawMetadata), ProfileError> {
    let one = |problem| ProfileError {
        problems: vec![problem],
    };
    let node = marked_yaml::parse_yaml_with_options(
        0,
        text,
        LoaderOptions::default().error_on_duplicate_keys(true),
    )
    .map_err(|e| one(load_error_problem(&e, "inspec.yml")))?;
    let raw: RawMetadata = marked_yaml::from_node(&node).map_err(|e| {
        one(ProfileProblem {
            location: e.start_mark().map(|m| Location {
                file: "inspec.yml".into(),
                line: m.line(),
                column: m.column(),
            }),
            message: e.to_string(),
        })
    })?;
    Ok((node, raw))
}

/// One control file with inputs substituted, or `None` (with the problems
/// recorded) when it is not valid YAML, names unknown check types or does
/// not have the control file's shape.
fn parse_control_file(
    source_id: usize,
    name: &str,
    text: &str,
    inputs: &[Input],
    problems: &mut Problems,
) -> Option<RawControlFile> {
    let mut node = match marked_yaml::parse_yaml_with_options(
        source_id,
        text,
        LoaderOptions::default().error_on_duplicate_keys(true),
    ) {
        Ok(node) => node,
        Err(e) => {
            let problem = load_error_problem(&e, name);
            problems.push(problem.location, problem.message);
            return None;
        }
    };
    substitute_inputs(&mut node, inputs, &mut |span, msg| problems.at(span, msg));
    let before = problems.count();
    check_types(&node, &mut |span, msg| problems.at(span, msg));
    if problems.count() > before {
        return None;
    }
    match marked_yaml::from_node(&node) {
        Ok(raw) => Some(raw),
        Err(e) => {
            let location = e.start_mark().map(|m| Location {
                file: name.to_string(),
                line: m.line(),
                column: m.column(),
            });
            problems.push(location, e.to_string());
            None
        }
    }
}

/// sha256 over every file's name and text, in load order, so a result
/// names exactly the rules used.
fn profile_sha256(metadata: &str, files: &[&(String, String)]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"inspec.yml\0");
    hasher.update(metadata.as_bytes());
    for (name, text) in files {
        hasher.update(b"\0");
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update(text.as_bytes());
    }
    hex::encode(hasher.finalize())
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
                if !CHECK_TYPES.contains(&key.as_str()) {
                    report(
                        key.span(),
                        format!(
                            "unknown check type `{}`; expected one of: {}",
                            key.as_str(),
                            CHECK_TYPES.join(", ")
                        ),
                    );
                }
            }
        }
    }
}
