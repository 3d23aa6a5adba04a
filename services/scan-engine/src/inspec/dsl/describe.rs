//! `describe`, `describe.one`, `it`, `its`, `should`, `expect`, `skip`,
//! `subject` and `let`: RSpec's example groups as InSpec uses them, each
//! example one result whose `code_desc` reads as InSpec's does
//! (`File /etc/passwd mode should cmp == "0644"`).

use sha2::{Digest, Sha256};

use super::{DescribeCtx, Example};
use crate::checks::{CheckResult, Status};
use crate::inspec::ast::Loc;
use crate::inspec::interp::{Args, Flow, Frame, Interp, R};
use crate::inspec::matchers::{Kind, Matcher};
use crate::inspec::value::Value;

/// Placeholder for a result that depends on facts not gathered yet; the
/// control is evaluated again (or reported) before any such result is kept.
pub const PENDING: &str = "depends on facts not gathered yet";

/// InSpec's `unindent`: the common leading blanks removed, then stripped.
pub fn unindent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

impl Interp<'_> {
    pub(super) fn describe_call(
        &self,
        name: &str,
        args: &Args,
        loc: Loc,
        _f: &Frame,
    ) -> R<Option<Value>> {
        let a0 = args.get(0).cloned();
        Ok(Some(match name {
            "describe" | "context" => self.describe(args, loc)?,
            "it" => self.it(
                args.get(0)
                    .filter(|v| matches!(v, Value::Str(_)))
                    .map(Value::to_s),
                args,
            )?,
            "its" => self.its(&a0.unwrap_or(Value::Nil), args)?,
            "should" | "should_not" => self.should(args.get(0), name == "should_not")?,
            "is_expected" => Matcher::value(Kind::Target(self.subject()?, false)),
            "expect" => {
                if args.block.is_some() {
                    return self.unsupported("block expectations (`expect { ... }`)");
                }
                Matcher::value(Kind::Target(a0.unwrap_or(Value::Nil), true))
            }
            "subject" => match &args.block {
                Some(b) => {
                    if let Some(d) = self.dsl.borrow_mut().describes.last_mut() {
                        d.subject_fn = Some(b.clone());
                    }
                    Value::Nil
                }
                None => self.subject()?,
            },
            "let" | "let!" => {
                if let (Some(n), Some(b)) = (a0, &args.block)
                    && let Some(d) = self.dsl.borrow_mut().describes.last_mut()
                {
                    d.lets.push((n.to_s(), b.clone()));
                }
                Value::Nil
            }
            "skip" => self.skip(args.get(0).map(Value::to_s))?,
            _ => return Ok(None),
        }))
    }

    /// A `let` value visible from the current describe.
    pub(super) fn let_value(&self, name: &str) -> R<Option<Value>> {
        let found = self.dsl.borrow().describes.iter().rev().find_map(|d| {
            d.lets
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone())
        });
        match found {
            Some(p) => self.call_proc(&p, Vec::new(), None).map(Some),
            None => Ok(None),
        }
    }

    /// The current example's subject (the `its` value, the `subject` block, or the described value).
    fn subject(&self) -> R<Value> {
        if let Some(s) = self
            .dsl
            .borrow()
            .example
            .as_ref()
            .and_then(|e| e.subject.clone())
        {
            return Ok(s);
        }
        let d = self.dsl.borrow().describes.last().cloned();
        match d {
            Some(DescribeCtx {
                subject_fn: Some(p),
                ..
            }) => self.call_proc(&p, Vec::new(), None),
            Some(d) => Ok(d.subject),
            None => Ok(Value::Nil),
        }
    }

    /// How a described value shows in `code_desc`.
    pub fn display_of(&self, v: &Value) -> R<String> {
        Ok(match v {
            Value::Str(s) => s.to_string(),
            Value::Resource(r) => r.display.clone(),
            Value::Object(_) | Value::Table(_) => self.to_s_value(v)?,
            Value::Unknown => "(not yet gathered)".into(),
            other => other.inspect(),
        })
    }

    /// Adds a result to the current control (or `describe.one` group).
    pub(crate) fn push_result(&self, r: CheckResult) {
        let mut dsl = self.dsl.borrow_mut();
        if let Some((_, groups)) = dsl.one.last_mut()
            && let Some(g) = groups.last_mut()
        {
            g.push(r);
            return;
        }
        if let Some(i) = dsl.current {
            dsl.controls[i].results.push(r);
        }
    }

    fn control_skipped(&self) -> bool {
        let dsl = self.dsl.borrow();
        dsl.current.is_some_and(|i| {
            let c = &dsl.controls[i];
            dsl.mode != super::Mode::Plan && (c.skipped || c.not_applicable.is_some())
        })
    }

    fn describe(&self, args: &Args, loc: Loc) -> R<Value> {
        if args.pos.is_empty() && args.block.is_none() {
            return Ok(Matcher::value(Kind::DescribeOne));
        }
        if !self.in_control() {
            let id = self.anonymous_id(loc);
            let a = args.clone();
            return self.run_control(id, loc, true, move |it| it.describe(&a, loc).map(|_| ()));
        }
        if self.control_skipped() {
            return Ok(Value::Nil);
        }
        let subject = args.get(0).cloned().unwrap_or(Value::Nil);
        let display = self.display_of(&subject)?;
        {
            let mut dsl = self.dsl.borrow_mut();
            let depth = dsl.describes.len();
            if let Some((d, groups)) = dsl.one.last_mut()
                && *d == depth
            {
                groups.push(Vec::new());
            }
        }
        if let Some(reason) = self.unavailable(&subject) {
            self.push_result(reason.into_result(display));
            return Ok(Value::Nil);
        }
        self.dsl.borrow_mut().describes.push(DescribeCtx {
            subject,
            display: display.clone(),
            subject_fn: None,
            lets: Vec::new(),
        });
        let r = match &args.block {
            Some(b) => self.call_proc(b, Vec::new(), None),
            None => Ok(Value::Nil),
        };
        self.dsl.borrow_mut().describes.pop();
        match r {
            Ok(_) | Err(Flow::Next(_)) => Ok(Value::Nil),
            Err(Flow::Raise(e, _)) => {
                self.push_result(raised_result(display, &e));
                Ok(Value::Nil)
            }
            Err(e) => Err(e),
        }
    }

    /// InSpec's id for a `describe` outside any control.
    fn anonymous_id(&self, loc: Loc) -> String {
        let file = self.program.files.get(loc.file as usize);
        let path = file.map_or("?", |f| f.path.as_str());
        let src = file
            .and_then(|f| f.text.get(loc.start as usize..loc.end as usize))
            .unwrap_or("");
        let digest = hex::encode(Sha256::digest(src.as_bytes()));
        format!(
            "(generated from {}:{} {})",
            path.trim_start_matches("controls/"),
            loc.line,
            &digest[..32]
        )
    }

    /// `describe.one do ... end`.
    pub(crate) fn describe_one(&self, args: &Args) -> R<Value> {
        let Some(b) = &args.block else {
            return self.unsupported("`describe.one` without a block");
        };
        let depth = self.dsl.borrow().describes.len();
        self.dsl.borrow_mut().one.push((depth, Vec::new()));
        let r = self.call_proc(b, Vec::new(), None);
        let groups = self
            .dsl
            .borrow_mut()
            .one
            .pop()
            .map(|(_, g)| g)
            .unwrap_or_default();
        r?;
        let passing: Vec<&Vec<CheckResult>> = groups
            .iter()
            .filter(|g| !g.is_empty() && g.iter().all(|r| r.status == Status::Passed))
            .collect();
        let kept: Vec<CheckResult> = if passing.is_empty() {
            groups.iter().flatten().cloned().collect()
        } else {
            passing.into_iter().flatten().cloned().collect()
        };
        for r in kept {
            self.push_result(r);
        }
        Ok(Value::Nil)
    }

    fn current_display(&self) -> String {
        self.dsl
            .borrow()
            .describes
            .last()
            .map_or_else(String::new, |d| d.display.clone())
    }

    /// `it 'text' do ... end` / `it { should ... }`: one example, one result.
    fn it(&self, text: Option<String>, args: &Args) -> R<Value> {
        if self.control_skipped() {
            return Ok(Value::Nil);
        }
        let display = self.current_display();
        self.run_example(None, display, text, args)
    }

    /// `its('attr') { should ... }`: the attribute of the subject is the example's subject.
    fn its(&self, attr: &Value, args: &Args) -> R<Value> {
        if self.control_skipped() {
            return Ok(Value::Nil);
        }
        let subject = self.subject()?;
        let label = match attr {
            Value::Str(s) | Value::Sym(s) => s.to_string(),
            other => other.inspect(),
        };
        let display = format!("{} {label}", self.current_display());
        let value = match self.its_value(&subject, attr) {
            Ok(v) => v,
            Err(Flow::Raise(e, _)) => {
                self.push_result(raised_result(display, &e));
                return Ok(Value::Nil);
            }
            Err(e) => return Err(e),
        };
        self.run_example(Some(value), display, None, args)
    }

    fn its_value(&self, subject: &Value, attr: &Value) -> R<Value> {
        let at = self.at.get();
        match attr {
            Value::Str(s) => {
                let mut v = subject.clone();
                for part in s.split('.') {
                    // A hash's keys read like attributes (`its('section.key')` on ini files).
                    let key = match &v {
                        Value::Hash(h) => h.borrow().get(&Value::str(part)).cloned(),
                        _ => None,
                    };
                    v = match key {
                        Some(k) => k,
                        None => self.call_method(&v, part, Args::none(), at)?,
                    };
                }
                Ok(v)
            }
            Value::Sym(s) => self.call_method(subject, s, Args::none(), at),
            Value::Array(a) => self.call_method(subject, "[]", Args::new(a.borrow().clone()), at),
            other => self.call_method(subject, &other.to_s(), Args::none(), at),
        }
    }

    fn run_example(
        &self,
        subject: Option<Value>,
        display: String,
        text: Option<String>,
        args: &Args,
    ) -> R<Value> {
        let saved = self.dsl.borrow_mut().example.replace(Example {
            subject,
            ..Example::default()
        });
        let r = match &args.block {
            Some(b) => self.call_proc(b, Vec::new(), None),
            None => Ok(Value::Nil),
        };
        let ex = std::mem::replace(&mut self.dsl.borrow_mut().example, saved).unwrap_or_default();
        let desc = |last: &str| match &text {
            Some(t) => format!("{display} {t}"),
            None => format!("{display} {last}").trim().to_string(),
        };
        let last = ex
            .expectations
            .last()
            .map_or("", |e| e.1.as_str())
            .to_string();
        let result = match r {
            Err(Flow::Raise(e, _)) => raised_result(desc(&last), &e),
            Err(Flow::Next(_)) | Ok(_) => {
                if let Some(msg) = ex.skipped {
                    CheckResult::skip(desc(&last), msg)
                } else if ex.expectations.iter().any(|e| e.0.is_none()) {
                    CheckResult::error(desc(&last), PENDING)
                } else if let Some(fail) = ex.expectations.iter().find(|e| e.0 == Some(false)) {
                    CheckResult::fail(desc(&fail.1), fail.2.clone())
                } else {
                    CheckResult::pass(desc(&last))
                }
            }
            Err(e) => return Err(e),
        };
        self.push_result(result);
        Ok(Value::Nil)
    }

    /// Records one expectation in the current example, or as its own result outside one.
    fn record(
        &self,
        verdict: Option<crate::inspec::matchers::Verdict>,
        desc: String,
        custom: Option<String>,
    ) {
        let entry = match verdict {
            None => (None, desc, String::new()),
            Some(v) => (Some(v.pass), desc, custom.unwrap_or(v.message)),
        };
        let mut dsl = self.dsl.borrow_mut();
        if let Some(ex) = dsl.example.as_mut() {
            ex.expectations.push(entry);
            return;
        }
        let display = dsl
            .describes
            .last()
            .map_or_else(String::new, |d| d.display.clone());
        drop(dsl);
        let code_desc = format!("{display} {}", entry.1).trim().to_string();
        self.push_result(match entry.0 {
            None => CheckResult::error(code_desc, PENDING),
            Some(true) => CheckResult::pass(code_desc),
            Some(false) => CheckResult::fail(code_desc, entry.2),
        });
    }

    fn should(&self, m: Option<&Value>, negated: bool) -> R<Value> {
        let subject = self.subject()?;
        if m.is_some_and(Value::is_unknown) {
            self.record(None, "should (not yet gathered)".into(), None);
            return Ok(Value::Bool(true));
        }
        let Some(Value::Matcher(m)) = m else {
            return Ok(Matcher::value(Kind::Operator(subject, negated)));
        };
        let shown = self.display_of(&subject)?;
        let verdict = self.check_matcher(m, &subject, negated, &shown)?;
        let not = if negated { "not " } else { "" };
        self.record(verdict, format!("should {not}{}", m.description()), None);
        Ok(Value::Bool(true))
    }

    /// `expect(x).to m, "message"` / `is_expected.not_to m`.
    pub(crate) fn expect_to(&self, target: &Value, negated: bool, args: &Args) -> R<Value> {
        if args.get(0).is_some_and(Value::is_unknown) {
            self.record(None, "is expected to (not yet gathered)".into(), None);
            return Ok(Value::Bool(true));
        }
        let Some(Value::Matcher(m)) = args.get(0) else {
            return self.unsupported("`expect(...).to` without a matcher");
        };
        let custom = args.get(1).map(Value::to_s);
        let shown = self.display_of(target)?;
        let verdict = self.check_matcher(m, target, negated, &shown)?;
        let not = if negated { "not " } else { "" };
        self.record(
            verdict,
            format!("is expected {not}to {}", m.description()),
            custom,
        );
        Ok(Value::Bool(true))
    }

    /// `should == 5` (RSpec's operator matchers).
    pub(crate) fn operator_expectation(
        &self,
        subject: &Value,
        negated: bool,
        op: &str,
        expected: &Value,
    ) -> R<Value> {
        let m = Matcher {
            kind: Kind::Be(Some((op.to_string(), expected.clone()))),
        };
        let shown = self.display_of(subject)?;
        let verdict = self.check_matcher(&m, subject, negated, &shown)?;
        let not = if negated { "not " } else { "" };
        self.record(
            verdict,
            format!("should {not}{op} {}", expected.inspect()),
            None,
        );
        Ok(Value::Bool(true))
    }

    fn skip(&self, message: Option<String>) -> R<Value> {
        let msg = message.unwrap_or_else(|| "No reason given".into());
        let mut dsl = self.dsl.borrow_mut();
        if let Some(ex) = dsl.example.as_mut() {
            ex.skipped = Some(msg);
            return Ok(Value::Nil);
        }
        let display = dsl
            .describes
            .last()
            .map(|d| d.display.clone())
            .or_else(|| dsl.current.map(|i| dsl.controls[i].id.clone()))
            .unwrap_or_default();
        drop(dsl);
        self.push_result(CheckResult::skip(display, msg));
        Ok(Value::Nil)
    }

    /// Why a described resource cannot be used, if it cannot.
    fn unavailable(&self, subject: &Value) -> Option<Unavailable> {
        match subject {
            Value::Object(o) => o
                .unavailable
                .borrow()
                .clone()
                .map(|(failed, msg)| Unavailable { failed, msg }),
            Value::Resource(r) => crate::inspec::resources::unavailable(self, r)
                .map(|msg| Unavailable { failed: false, msg }),
            _ => None,
        }
    }
}

/// The result of an exception inside a describe or example: a resource
/// that cannot run here (`command` on a target without a shell) is a skip
/// with its reason, anything else an error.
pub fn raised_result(code_desc: String, e: &crate::inspec::support::RubyException) -> CheckResult {
    if e.class == "ResourceSkipped" {
        CheckResult::skip(code_desc, e.message.clone())
    } else {
        CheckResult::error(code_desc, format!("{}: {}", e.class, e.message))
    }
}

/// A resource that was skipped (e.g. `command` where commands cannot run) or failed.
struct Unavailable {
    failed: bool,
    msg: String,
}

impl Unavailable {
    fn into_result(self, display: String) -> CheckResult {
        if self.failed {
            CheckResult::fail(display, self.msg)
        } else {
            CheckResult::skip(display, self.msg)
        }
    }
}
