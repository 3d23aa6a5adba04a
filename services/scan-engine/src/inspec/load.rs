//! Loading an InSpec profile: `inspec.yml` (metadata, typed inputs with
//! scan-time overrides, `depends` refused clearly), every `.rb` file
//! parsed, and one planning pass per control file that finds the controls,
//! their metadata and the facts each needs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::ast::Loc;
use super::budget::Limits;
use super::check::InspecControl;
use super::dsl::{ControlRun, Mode};
use super::parse::parse_ruby;
use super::program::{FileRun, Program, ScanInputs, SourceFile, evaluate_file};
use crate::checks::Check;
use crate::facts::Facts;
use crate::profile::{
    Control, Input, InputOverrides, InputValue, Location, Metadata, Profile, ProfileError,
    ProfileProblem, ProfileSource, Severity,
};

/// A loaded profile and what planning learned about each control.
#[derive(Debug)]
pub struct Loaded {
    /// The profile, ready to scan.
    pub profile: Profile,
    /// The parsed code.
    pub program: Arc<Program>,
    /// Per control (in profile order): its plan-time run and file.
    pub runs: Vec<(ControlRun, usize)>,
    /// Per control file: an error outside any control.
    pub top_errors: Vec<(usize, String, Loc)>,
}

fn problem(file: &str, line: usize, column: usize, message: String) -> ProfileProblem {
    ProfileProblem {
        location: Some(Location {
            file: file.to_string(),
            line,
            column,
        }),
        message,
    }
}

fn yaml_to_json(v: &yaml_serde::Value) -> Json {
    match v {
        yaml_serde::Value::Null => Json::Null,
        yaml_serde::Value::Bool(b) => Json::Bool(*b),
        yaml_serde::Value::Number(n) => serde_json::to_value(n).unwrap_or(Json::Null),
        yaml_serde::Value::String(s) => Json::String(s.clone()),
        yaml_serde::Value::Sequence(a) => Json::Array(a.iter().map(yaml_to_json).collect()),
        yaml_serde::Value::Mapping(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().map_or_else(|| format!("{k:?}"), String::from),
                        yaml_to_json(v),
                    )
                })
                .collect(),
        ),
        yaml_serde::Value::Tagged(t) => yaml_to_json(&t.value),
    }
}

/// An override's text as the declared input's type.
fn typed_override(declared: &Json, text: &str) -> Result<Json, String> {
    match declared {
        Json::Number(_) => text
            .trim()
            .parse::<i64>()
            .map(Json::from)
            .or_else(|_| text.trim().parse::<f64>().map(Json::from))
            .map_err(|_| format!("expected a number, got {text:?}")),
        Json::Bool(_) => match text.trim() {
            "true" => Ok(Json::Bool(true)),
            "false" => Ok(Json::Bool(false)),
            _ => Err(format!("expected true or false, got {text:?}")),
        },
        Json::Array(_) if !text.trim_start().starts_with('[') => Ok(Json::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Json::String(s.into()))
                .collect(),
        )),
        Json::Array(_) | Json::Object(_) => yaml_serde::from_str::<yaml_serde::Value>(text)
            .map(|v| yaml_to_json(&v))
            .map_err(|e| format!("not valid YAML: {e}")),
        _ => Ok(Json::String(text.to_string())),
    }
}

/// Metadata and inputs from `inspec.yml`.
fn metadata(
    text: &str,
    overrides: &InputOverrides,
    problems: &mut Vec<ProfileProblem>,
) -> Option<(Metadata, ScanInputs)> {
    let doc: yaml_serde::Value = match yaml_serde::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let (line, col) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            problems.push(problem(
                "inspec.yml",
                line,
                col,
                format!("invalid YAML: {e}"),
            ));
            return None;
        }
    };
    let s = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(String::from);
    let Some(name) = s("name") else {
        problems.push(problem(
            "inspec.yml",
            1,
            1,
            "inspec.yml has no `name`".into(),
        ));
        return None;
    };
    if let Some(deps) = doc
        .get("depends")
        .and_then(|d| d.as_sequence())
        .filter(|d| !d.is_empty())
    {
        let names: Vec<String> = deps
            .iter()
            .filter_map(|d| d.get("name").and_then(|n| n.as_str()).map(String::from))
            .collect();
        problems.push(problem(
            "inspec.yml", 1, 1,
            format!("`depends` ({}) is not supported: scanfleet runs one self-contained profile; copy the controls you use into this profile (or scan the dependency as its own profile)", names.join(", ")),
        ));
    }
    let supports = doc
        .get("supports")
        .and_then(|v| v.as_sequence())
        .map(|seq| {
            seq.iter()
                .filter_map(|m| m.as_mapping())
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| {
                            Some((
                                k.as_str()?.to_string(),
                                yaml_to_json(v)
                                    .as_str()
                                    .map_or_else(|| yaml_to_json(v).to_string(), String::from),
                            ))
                        })
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    let mut inputs = Vec::new();
    let mut values = BTreeMap::new();
    let declared = doc
        .get("inputs")
        .or_else(|| doc.get("attributes"))
        .and_then(|v| v.as_sequence())
        .cloned()
        .unwrap_or_default();
    for item in &declared {
        let Some(n) = item.get("name").and_then(|n| n.as_str()) else {
            problems.push(problem("inspec.yml", 1, 1, "an input has no `name`".into()));
            continue;
        };
        let mut value = item
            .get("value")
            .or_else(|| item.get("default"))
            .map_or(Json::Null, yaml_to_json);
        if let Some(o) = overrides.get(n) {
            match typed_override(&value, o) {
                Ok(v) => value = v,
                Err(e) => problems.push(ProfileProblem {
                    location: None,
                    message: format!("--input {n}: {e}"),
                }),
            }
        }
        values.insert(n.to_string(), value.clone());
        inputs.push(Input {
            name: n.to_string(),
            description: item
                .get("description")
                .and_then(|d| d.as_str())
                .map(String::from),
            value: InputValue::Typed(value),
        });
    }
    let meta = Metadata {
        name,
        title: s("title"),
        version: s("version"),
        maintainer: s("maintainer"),
        summary: s("summary"),
        license: s("license"),
        copyright: s("copyright"),
        copyright_email: s("copyright_email"),
        supports,
        inputs,
    };
    Some((meta, ScanInputs { values }))
}

/// Parses every file; syntax errors become problems with `file:line:col`.
fn parse_program(source: &ProfileSource, problems: &mut Vec<ProfileProblem>) -> Program {
    let mut program = Program::default();
    let mut add = |files: &[(String, String)], libraries: bool, program: &mut Program| {
        let mut sorted: Vec<&(String, String)> = files.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, text) in sorted {
            let idx = program.files.len();
            match parse_ruby(u32::try_from(idx).unwrap_or(u32::MAX), text) {
                Ok(ast) => {
                    program.files.push(SourceFile {
                        path: path.clone(),
                        text: text.clone(),
                        ast,
                    });
                    if libraries {
                        program.libraries.push(idx);
                    } else {
                        program.controls.push(idx);
                    }
                }
                Err(errors) => {
                    for e in errors {
                        problems.push(problem(
                            path,
                            e.line as usize,
                            e.col as usize,
                            format!("syntax error: {}", e.message),
                        ));
                    }
                }
            }
        }
    };
    add(&source.library_files, true, &mut program);
    add(&source.control_files, false, &mut program);
    program
}

/// Loads an InSpec profile.
///
/// # Errors
/// Every problem at once: YAML and Ruby syntax errors, `depends`, bad
/// input overrides, duplicate control ids, controls with no files.
pub fn load(
    source: &ProfileSource,
    overrides: &InputOverrides,
    limits: Limits,
) -> Result<Loaded, ProfileError> {
    let mut problems = Vec::new();
    let meta = metadata(&source.metadata, overrides, &mut problems);
    let declared: BTreeSet<&String> = meta
        .as_ref()
        .map(|(m, _)| m.inputs.iter().map(|i| &i.name).collect())
        .unwrap_or_default();
    let program = Arc::new(parse_program(source, &mut problems));
    let mut inputs = Arc::new(meta.as_ref().map(|(_, i)| i.clone()).unwrap_or_default());
    let mut planned = plan_all(&program, &inputs, limits, &mut problems);
    // Overrides of inputs declared inline (`input('x', value: 1)`) are typed
    // like their inline default, which planning has just found: plan again with them.
    let inline_overrides: Vec<(String, Json)> = planned
        .inline
        .iter()
        .filter(|(n, _)| !declared.contains(n) && overrides.contains_key(n))
        .map(|(n, v)| {
            (
                n.clone(),
                typed_override(v, &overrides[n])
                    .unwrap_or_else(|_| Json::String(overrides[n].clone())),
            )
        })
        .collect();
    if !inline_overrides.is_empty() {
        let mut with = (*inputs).clone();
        with.values.extend(inline_overrides);
        inputs = Arc::new(with);
        let mut again = Vec::new();
        planned = plan_all(&program, &inputs, limits, &mut again);
    }
    let Planned {
        runs,
        top_errors,
        inline,
    } = planned;
    for name in overrides.keys() {
        if !declared.contains(name) && !inline.iter().any(|(n, _)| n == name) {
            problems.push(ProfileProblem {
                location: None,
                message: format!("--input {name}: the profile declares no such input"),
            });
        }
    }
    if source.control_files.is_empty() {
        problems.push(ProfileProblem {
            location: None,
            message: "profile has no controls/*.rb files".into(),
        });
    }
    let Some((mut metadata, _)) = meta.filter(|_| problems.is_empty()) else {
        return Err(ProfileError { problems });
    };
    add_inline_inputs(&mut metadata, inline, overrides, &inputs);
    let controls = runs
        .iter()
        .map(|(c, f)| control(&program, &inputs, c, *f, limits))
        .collect();
    let profile = Profile {
        metadata,
        controls,
        sha256: sha256(source),
        declared: Default::default(),
    };
    Ok(Loaded {
        profile,
        program,
        runs,
        top_errors,
    })
}

/// What planning every control file found.
struct Planned {
    runs: Vec<(ControlRun, usize)>,
    top_errors: Vec<(usize, String, Loc)>,
    inline: Vec<(String, Json)>,
}

/// Plans every control file with no facts (see the module comment).
fn plan_all(
    program: &Program,
    inputs: &ScanInputs,
    limits: Limits,
    problems: &mut Vec<ProfileProblem>,
) -> Planned {
    let mut out = Planned {
        runs: Vec::new(),
        top_errors: Vec::new(),
        inline: Vec::new(),
    };
    for &f in &program.controls {
        let run = evaluate_file(program, f, &Facts::default(), inputs, limits, Mode::Plan);
        plan_problems(program, f, &run, problems);
        if let Some((e, l)) = &run.top_error {
            out.top_errors.push((f, e.clone(), *l));
        }
        out.inline.extend(run.inline_inputs.clone());
        let FileRun {
            controls,
            top_needs,
            ..
        } = run;
        for mut c in controls {
            c.needs.extend(top_needs.iter().cloned());
            out.runs.push((c, f));
        }
    }
    out
}

fn plan_problems(program: &Program, f: usize, run: &FileRun, problems: &mut Vec<ProfileProblem>) {
    for (msg, loc) in &run.problems {
        problems.push(problem(
            &program.files[f].path,
            loc.line as usize,
            loc.col as usize,
            msg.clone(),
        ));
    }
}

/// Inputs declared inline (`input('x', value: 1)`) join the HDF attributes.
fn add_inline_inputs(
    meta: &mut Metadata,
    inline: Vec<(String, Json)>,
    overrides: &InputOverrides,
    _inputs: &ScanInputs,
) {
    for (name, value) in inline {
        if meta.inputs.iter().any(|i| i.name == name) {
            continue;
        }
        let value = match overrides.get(&name) {
            Some(o) => typed_override(&value, o).unwrap_or(Json::String(o.clone())),
            None => value,
        };
        meta.inputs.push(Input {
            name,
            description: None,
            value: InputValue::Typed(value),
        });
    }
}

fn control(
    program: &Arc<Program>,
    inputs: &Arc<ScanInputs>,
    c: &ControlRun,
    f: usize,
    limits: Limits,
) -> Control {
    let file = &program.files[f];
    let impact = c.meta.impact.unwrap_or(0.5);
    let code = file
        .text
        .get(c.loc.start as usize..c.loc.end as usize)
        .unwrap_or("")
        .to_string();
    Control {
        id: c.id.clone(),
        title: c.meta.title.clone().unwrap_or_default(),
        desc: c.meta.desc.clone().unwrap_or_default(),
        descriptions: c.meta.descriptions.iter().cloned().collect(),
        impact,
        severity: Severity::from_impact(impact),
        tags: c
            .meta
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        refs: c
            .meta
            .refs
            .iter()
            .map(|r| {
                r.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), String::from),
                        )
                    })
                    .collect()
            })
            .collect(),
        source: Location {
            file: file.path.clone(),
            line: c.loc.line as usize,
            column: c.loc.col as usize,
        },
        code,
        checks: vec![Check::new(InspecControl {
            program: program.clone(),
            inputs: inputs.clone(),
            file: f,
            id: c.id.clone(),
            planned: c.needs.clone(),
            limits,
            impact,
        })],
    }
}

fn sha256(source: &ProfileSource) -> String {
    let mut h = Sha256::new();
    h.update(b"inspec.yml\0");
    h.update(source.metadata.as_bytes());
    let mut files: Vec<&(String, String)> = source
        .library_files
        .iter()
        .chain(source.control_files.iter())
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, text) in files {
        h.update(b"\0");
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update(text.as_bytes());
    }
    hex::encode(h.finalize())
}
