//! InSpec's control DSL: `control` with its metadata (`impact`, `title`,
//! `desc`, `tag`, `ref`), `only_if`, `only_applicable_if`, `input`, and
//! (in `describe.rs`) `describe`, `describe.one`, `it`, `its`, `should`,
//! `expect`, `skip`.
//!
//! A file is evaluated in one of two modes. **Plan** runs every control
//! (at load, with no facts) to learn ids, metadata and the facts each
//! control needs. **Run** re-runs the file's top level and evaluates only
//! the selected control's block, against gathered facts.

use std::collections::BTreeSet;
use std::rc::Rc;

use serde_json::Value as Json;

use super::ast::Loc;
use super::interp::{Args, DynamicCall, Flow, Frame, Interp, R};
use super::value::Value;
use crate::checks::CheckResult;
use crate::facts::FactRequest;

mod describe;

pub use describe::unindent;

/// Which controls a file evaluation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Every control, to plan them.
    Plan,
    /// Only the control with this id.
    Run(String),
}

/// A control's metadata as written.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// `title`
    pub title: Option<String>,
    /// `desc 'text'` (unindented).
    pub desc: Option<String>,
    /// `desc 'label', 'text'`.
    pub descriptions: Vec<(String, String)>,
    /// `impact`
    pub impact: Option<f64>,
    /// `tag` values, types kept.
    pub tags: serde_json::Map<String, Json>,
    /// `ref` entries.
    pub refs: Vec<serde_json::Map<String, Json>>,
}

/// One control as evaluated.
#[derive(Debug, Clone)]
pub struct ControlRun {
    /// Its id.
    pub id: String,
    /// The `control` call (its span is the control's source).
    pub loc: Loc,
    /// Metadata; `impact` is the value when evaluation ended.
    pub meta: Meta,
    /// Results in order.
    pub results: Vec<CheckResult>,
    /// `only_if` evaluated false at least once.
    pub skipped: bool,
    /// The last `only_if` message.
    pub skip_message: Option<String>,
    /// `only_applicable_if` evaluated false, with its message.
    pub not_applicable: Option<Option<String>>,
    /// An unsupported construct or exhausted budget ended it.
    pub fatal: Option<String>,
    /// An uncaught Ruby exception ended it.
    pub raised: Option<String>,
    /// Facts it asked for that were not gathered (Plan: its fact plan).
    pub needs: BTreeSet<FactRequest>,
    /// Resource calls whose arguments depended on missing facts.
    pub dynamic: BTreeSet<DynamicCall>,
    /// Where each missing fact was asked for.
    pub miss_sites: BTreeSet<DynamicCall>,
    /// Whether it was defined by a bare top-level `describe`.
    pub anonymous: bool,
}

/// One level of `describe`.
#[derive(Debug, Clone)]
pub(crate) struct DescribeCtx {
    subject: Value,
    display: String,
    subject_fn: Option<Rc<super::interp::Proc>>,
    lets: Vec<(String, Rc<super::interp::Proc>)>,
}

/// One `it`/`its` example being run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Example {
    subject: Option<Value>,
    /// (passed, description, failure message); `None` pass = pending (unknown).
    expectations: Vec<(Option<bool>, String, String)>,
    skipped: Option<String>,
}

/// The DSL state of one file evaluation.
#[derive(Debug)]
pub struct Dsl {
    /// Plan or Run.
    pub mode: Mode,
    /// Controls evaluated, in order.
    pub controls: Vec<ControlRun>,
    /// Inputs declared inline with `input('x', value: ...)`.
    pub inline_inputs: Vec<(String, Json)>,
    /// Problems found while planning (duplicate ids, dynamic ids).
    pub problems: Vec<(String, Loc)>,
    /// File-level `only_if`: (skipped, message).
    pub file_skip: (bool, Option<String>),
    /// The source file being evaluated.
    pub file: u32,
    current: Option<usize>,
    describes: Vec<DescribeCtx>,
    example: Option<Example>,
    /// `describe.one` frames: (describe depth, groups of results).
    one: Vec<(usize, Vec<Vec<CheckResult>>)>,
}

impl Dsl {
    /// A fresh state for evaluating file `file` in `mode`.
    pub fn new(mode: Mode, file: u32) -> Self {
        Self {
            mode,
            controls: Vec::new(),
            inline_inputs: Vec::new(),
            problems: Vec::new(),
            file_skip: (false, None),
            file,
            current: None,
            describes: Vec::new(),
            example: None,
            one: Vec::new(),
        }
    }
}

/// DSL functions that are not matchers.
const DSL: &[&str] = &[
    "control",
    "rule",
    "title",
    "desc",
    "impact",
    "tag",
    "ref",
    "describe",
    "context",
    "it",
    "its",
    "should",
    "should_not",
    "is_expected",
    "expect",
    "subject",
    "let",
    "let!",
    "skip",
    "only_if",
    "only_applicable_if",
    "input",
    "attribute",
    "include_controls",
    "require_controls",
    "require_resource",
    "supports",
    "before",
    "after",
];

impl Interp<'_> {
    /// Receiver-less DSL calls and matcher construction; `None` for other names.
    ///
    /// # Errors
    /// As the DSL function.
    pub fn dsl_call(&self, name: &str, args: &Args, loc: Loc, f: &Frame) -> R<Option<Value>> {
        if !DSL.contains(&name) {
            if let Some(v) = self.let_value(name)? {
                return Ok(Some(v));
            }
            return Ok(super::matchers::construct(name, args));
        }
        let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
        Ok(Some(match name {
            "control" | "rule" => self.control(args, loc)?,
            "title" | "desc" | "impact" | "tag" | "ref" => {
                self.metadata(name, args)?;
                Value::Nil
            }
            "only_if" => self.only_if(args)?,
            "only_applicable_if" => self.only_applicable_if(args)?,
            "input" | "attribute" => self.input(&a0, args)?,
            "include_controls" | "require_controls" | "require_resource" => {
                return self.unsupported(format!(
                    "`{name}` (profile dependencies; see docs/profiles.md)"
                ));
            }
            "supports" | "before" | "after" => Value::Nil,
            _ => return self.describe_call(name, args, loc, f),
        }))
    }

    fn control_mut<T>(&self, f: impl FnOnce(&mut ControlRun) -> T) -> Option<T> {
        let mut dsl = self.dsl.borrow_mut();
        let i = dsl.current?;
        Some(f(&mut dsl.controls[i]))
    }

    pub(crate) fn in_control(&self) -> bool {
        self.dsl.borrow().current.is_some()
    }

    /// `control 'id' do ... end`.
    fn control(&self, args: &Args, loc: Loc) -> R<Value> {
        let id = match args.get(0) {
            Some(Value::Unknown) => {
                let msg = "a control id that depends on facts".to_string();
                self.dsl.borrow_mut().problems.push((msg, loc));
                return Ok(Value::Nil);
            }
            Some(v) => self.to_s_value(v)?,
            None => return self.raise("ArgumentError", "control needs an id"),
        };
        self.run_control(id, loc, false, |it| match &args.block {
            Some(b) => it.call_proc(b, Vec::new(), None).map(|_| ()),
            None => Ok(()),
        })
    }

    /// Runs a control body (named control or anonymous describe) when the
    /// mode selects it, recording its results, needs and errors.
    pub(crate) fn run_control(
        &self,
        id: String,
        loc: Loc,
        anonymous: bool,
        body: impl FnOnce(&Self) -> R<()>,
    ) -> R<Value> {
        {
            let mut dsl = self.dsl.borrow_mut();
            match &dsl.mode {
                Mode::Run(sel) if *sel != id => return Ok(Value::Nil),
                Mode::Plan if dsl.controls.iter().any(|c| c.id == id) => {
                    dsl.problems
                        .push((format!("duplicate control id `{id}`"), loc));
                    return Ok(Value::Nil);
                }
                _ => {}
            }
            if dsl.current.is_some() {
                drop(dsl);
                return self.unsupported("a control inside another control");
            }
            dsl.controls.push(ControlRun {
                id,
                loc,
                meta: Meta::default(),
                results: Vec::new(),
                skipped: false,
                skip_message: None,
                not_applicable: None,
                fatal: None,
                raised: None,
                needs: BTreeSet::new(),
                dynamic: BTreeSet::new(),
                miss_sites: BTreeSet::new(),
                anonymous,
            });
            dsl.current = Some(dsl.controls.len() - 1);
        }
        // Each control has its own allowance, and the file's top level gets
        // a fresh one after it: one exhausted control cannot starve the rest.
        self.budget.reset();
        let saved_misses = std::mem::take(&mut *self.misses.borrow_mut());
        let saved_dynamic = std::mem::take(&mut *self.dynamic.borrow_mut());
        let saved_sites = std::mem::take(&mut *self.miss_sites.borrow_mut());
        let outcome = body(self);
        let needs = std::mem::replace(&mut *self.misses.borrow_mut(), saved_misses);
        let dynamic = std::mem::replace(&mut *self.dynamic.borrow_mut(), saved_dynamic);
        self.budget.reset();
        let sites = std::mem::replace(&mut *self.miss_sites.borrow_mut(), saved_sites);
        let mut dsl = self.dsl.borrow_mut();
        dsl.describes.clear();
        dsl.example = None;
        dsl.one.clear();
        let Some(i) = dsl.current.take() else {
            return Ok(Value::Nil);
        };
        let where_ = self.where_(self.at.get());
        let c = &mut dsl.controls[i];
        c.needs = needs;
        c.dynamic = dynamic;
        c.miss_sites = sites;
        match outcome {
            Ok(()) | Err(Flow::Next(_) | Flow::Break(_) | Flow::Return(_)) => {}
            Err(Flow::Raise(e, _)) if e.class == "ResourceSkipped" => {
                c.results.push(describe::raised_result(c.id.clone(), &e));
            }
            Err(Flow::Raise(e, _)) => {
                c.raised = Some(format!("{}: {} (at {where_})", e.class, e.message));
            }
            Err(Flow::Fatal(fe)) => c.fatal = Some(fe.message),
        }
        Ok(Value::Nil)
    }

    fn metadata(&self, name: &str, args: &Args) -> R<()> {
        if args.any_unknown() {
            return Ok(());
        }
        let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
        if !self.in_control() {
            // A file-level `title` names the group; nothing else applies outside a control.
            return Ok(());
        }
        let text = |v: &Value| self.to_s_value(v);
        match name {
            "title" => {
                let t = text(&a0)?;
                self.control_mut(|c| c.meta.title = Some(t));
            }
            "impact" => {
                let v = match a0.clone() {
                    Value::Int(i) => Some(i as f64),
                    Value::Float(f) => Some(f),
                    Value::Str(s) => match s.as_ref() {
                        "none" => Some(0.0),
                        "low" => Some(0.3),
                        "medium" => Some(0.5),
                        "high" => Some(0.7),
                        "critical" => Some(1.0),
                        other => other.parse().ok(),
                    },
                    _ => None,
                };
                match v {
                    Some(v) if (0.0..=1.0).contains(&v) => {
                        self.control_mut(|c| c.meta.impact = Some(v));
                    }
                    _ => {
                        return self.raise(
                            "ArgumentError",
                            format!("impact must be between 0.0 and 1.0, got {}", a0.inspect()),
                        );
                    }
                }
            }
            "desc" => match args.positional() {
                [label, data] => {
                    let (l, d) = (text(label)?, unindent(&text(data)?));
                    self.control_mut(|c| {
                        if l == "default" {
                            c.meta.desc = Some(d);
                        } else {
                            c.meta.descriptions.retain(|(x, _)| *x != l);
                            c.meta.descriptions.push((l, d));
                        }
                    });
                }
                _ => {
                    let d = unindent(&text(&a0)?);
                    self.control_mut(|c| c.meta.desc = Some(d));
                }
            },
            "tag" => {
                let mut pairs = Vec::new();
                for a in args.pos.iter() {
                    match a {
                        Value::Hash(h) => {
                            for (k, v) in h.borrow().entries() {
                                pairs.push((k.to_s(), super::core::json::to_json(v), true));
                            }
                        }
                        other => pairs.push((other.to_s(), Json::Null, false)),
                    }
                }
                self.control_mut(|c| {
                    for (k, v, overwrite) in pairs {
                        if overwrite || !c.meta.tags.contains_key(&k) {
                            c.meta.tags.insert(k, v);
                        }
                    }
                });
            }
            _ => {
                let mut entry = serde_json::Map::new();
                for a in args.pos.iter() {
                    match a {
                        Value::Hash(h) => {
                            for (k, v) in h.borrow().entries() {
                                entry.insert(k.to_s(), Json::String(v.to_s()));
                            }
                        }
                        other => {
                            entry.insert("ref".into(), Json::String(other.to_s()));
                        }
                    }
                }
                self.control_mut(|c| c.meta.refs.push(entry));
            }
        }
        Ok(())
    }

    /// `only_if(message = nil, impact: x) { condition }`: once false, the
    /// control (or, at file level, every control in the file) is skipped;
    /// the last message wins, as in InSpec.
    fn only_if(&self, args: &Args) -> R<Value> {
        let Some(b) = &args.block else {
            return Ok(Value::Nil);
        };
        let message = args
            .get(0)
            .filter(|m| matches!(m, Value::Str(_)))
            .map(Value::to_s);
        let impact = args.kw("impact");
        let v = self.call_proc(b, Vec::new(), None)?;
        let false_ = !v.is_unknown() && !v.truthy();
        if !self.in_control() {
            let mut dsl = self.dsl.borrow_mut();
            dsl.file_skip.0 |= false_;
            dsl.file_skip.1 = message;
            return Ok(Value::Nil);
        }
        self.control_mut(|c| {
            c.skipped |= false_;
            c.skip_message = message;
            if false_ && let Some(Value::Int(_) | Value::Float(_)) = &impact {
                c.meta.impact = match impact {
                    Some(Value::Int(i)) => Some(i as f64),
                    Some(Value::Float(f)) => Some(f),
                    _ => c.meta.impact,
                };
            }
        });
        Ok(Value::Nil)
    }

    /// `only_applicable_if(message) { condition }`: false makes the control
    /// not applicable (impact 0) with one `No-op` result, as InSpec does.
    fn only_applicable_if(&self, args: &Args) -> R<Value> {
        let Some(b) = &args.block else {
            return Ok(Value::Nil);
        };
        let message = args.get(0).map(Value::to_s);
        let v = self.call_proc(b, Vec::new(), None)?;
        if !v.is_unknown() && !v.truthy() {
            self.control_mut(|c| {
                c.not_applicable = Some(message);
                c.meta.impact = Some(0.0);
            });
        }
        Ok(Value::Nil)
    }

    /// `input('name', value: default)`: the scan's value, else the inline default.
    fn input(&self, name: &Value, args: &Args) -> R<Value> {
        let name = name.to_s();
        if let Some(v) = self.inputs.values.get(&name) {
            return Ok(super::core::json::from_json(v));
        }
        let default = args.kw("value").or_else(|| args.kw("default"));
        match default {
            Some(v) => {
                let json = super::core::json::to_json(&v);
                let mut dsl = self.dsl.borrow_mut();
                if !dsl.inline_inputs.iter().any(|(n, _)| *n == name) {
                    dsl.inline_inputs.push((name, json));
                }
                Ok(v)
            }
            None => self.raise(
                "RuntimeError",
                format!("Input '{name}' does not have a value. Use --input {name}=VALUE or declare it in inspec.yml"),
            ),
        }
    }
}
