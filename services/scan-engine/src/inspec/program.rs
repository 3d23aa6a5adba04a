//! A parsed InSpec profile (every `.rb` file as a tree, shared by all its
//! controls) and the one way to evaluate a control file: libraries first,
//! then the file's top level in Plan or Run mode.

use std::collections::BTreeMap;

use super::ast::{Loc, Node};
use super::budget::Limits;
use super::dsl::{ControlRun, Dsl, Mode};
use super::interp::{DynamicCall, Flow, Frame, Interp};
use crate::facts::{FactRequest, Facts};

/// One source file.
#[derive(Debug)]
pub struct SourceFile {
    /// Path inside the profile (`controls/x.rb`, `libraries/y.rb`).
    pub path: String,
    /// Its text.
    pub text: String,
    /// Its tree.
    pub ast: Node,
}

/// Every file of a profile.
#[derive(Debug, Default)]
pub struct Program {
    /// All files; `Loc::file` indexes this.
    pub files: Vec<SourceFile>,
    /// Indexes of `libraries/*.rb`, in name order.
    pub libraries: Vec<usize>,
    /// Indexes of `controls/*.rb`, in name order.
    pub controls: Vec<usize>,
}

/// Input values for a scan (declared defaults with overrides applied).
#[derive(Debug, Clone, Default)]
pub struct ScanInputs {
    /// name -> typed value.
    pub values: BTreeMap<String, serde_json::Value>,
}

/// What evaluating one control file produced.
#[derive(Debug)]
pub struct FileRun {
    /// Controls evaluated (Plan: all; Run: the selected one, if reached).
    pub controls: Vec<ControlRun>,
    /// Facts the file's top level (outside controls) asked for and missed.
    pub top_needs: std::collections::BTreeSet<FactRequest>,
    /// Dynamic resource calls at the top level.
    pub top_dynamic: std::collections::BTreeSet<DynamicCall>,
    /// Where the top level's missing facts were asked for.
    pub top_sites: std::collections::BTreeSet<DynamicCall>,
    /// An error outside any control (a library or the file's top level).
    pub top_error: Option<(String, Loc)>,
    /// File-level `only_if`: skipped, and its message.
    pub file_skip: (bool, Option<String>),
    /// Inputs declared inline.
    pub inline_inputs: Vec<(String, serde_json::Value)>,
    /// Planning problems (duplicate ids ...).
    pub problems: Vec<(String, Loc)>,
}

/// Evaluates libraries, then control file `file`, in `mode`.
pub fn evaluate_file(
    program: &Program,
    file: usize,
    facts: &Facts,
    inputs: &ScanInputs,
    limits: Limits,
    mode: Mode,
) -> FileRun {
    let dsl = Dsl::new(mode, u32::try_from(file).unwrap_or(u32::MAX));
    let it = Interp::new(program, facts, inputs, limits, dsl);
    let top = Frame::top();
    let mut top_error = None;
    for &lib in &program.libraries {
        if let Err(e) = it.eval(&program.files[lib].ast, &top) {
            top_error = Some(describe_error(&it, e, &program.files[lib].path));
            break;
        }
    }
    if top_error.is_none()
        && let Err(e) = it.eval(&program.files[file].ast, &top)
    {
        top_error = Some(describe_error(&it, e, &program.files[file].path));
    }
    let dsl = it.dsl.into_inner();
    FileRun {
        controls: dsl.controls,
        top_needs: it.misses.into_inner(),
        top_dynamic: it.dynamic.into_inner(),
        top_sites: it.miss_sites.into_inner(),
        top_error,
        file_skip: dsl.file_skip,
        inline_inputs: dsl.inline_inputs,
        problems: dsl.problems,
    }
}

fn describe_error(it: &Interp<'_>, e: Flow, path: &str) -> (String, Loc) {
    match e {
        Flow::Fatal(f) => (f.message, f.loc),
        Flow::Raise(exc, loc) => (
            format!("{}: {} (at {})", exc.class, exc.message, it.where_(loc)),
            loc,
        ),
        Flow::Next(_) | Flow::Break(_) | Flow::Return(_) => (
            format!("`next`, `break` or `return` outside a block or method in {path}"),
            it.at.get(),
        ),
    }
}
