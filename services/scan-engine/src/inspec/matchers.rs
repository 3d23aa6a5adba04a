//! RSpec and InSpec matchers: construction (`eq 1`, `be_file`, `cmp >= 2`,
//! `be_readable.by('owner')`, `.and`/`.or`), RSpec's descriptions (they
//! make the HDF `code_desc`) and failure messages, and evaluation against
//! an actual value. The generic rule `be_<x>` calls `x?` on the actual
//! value, so predicates of profile-defined resources work as matchers too.

use std::rc::Rc;

use super::cmp::{cmp_matches, shown_actual};
use super::interp::{Args, Interp, R};
use super::value::{Value, ruby_cmp, ruby_eq};

/// What a matcher checks.
#[derive(Debug, Clone)]
pub enum Kind {
    /// `eq`, `eql`, `equal` (the name kept for the description).
    Equality(&'static str, Value),
    /// `be` alone (truthy) or `be <op> x`.
    Be(Option<(String, Value)>),
    /// `be(x)`: identity, shown as `equal x`.
    BeValue(Value),
    /// `cmp x` / `cmp <op> x`.
    Cmp(String, Option<Value>),
    /// `match(/re/)`
    Match(Value),
    /// `include(a, b)`
    Include(Vec<Value>),
    /// `exist`
    Exist,
    /// `be_in(list)`
    BeIn(Value),
    /// `be_<x>(args)` / `have_<x>(args)`: calls the predicate.
    Predicate {
        /// `be_` or `have_`.
        prefix: &'static str,
        /// What follows the prefix.
        name: String,
        /// Arguments.
        args: Vec<Value>,
        /// `.by(...)`
        by: Option<Value>,
        /// `.by_user(...)`
        by_user: Option<Value>,
    },
    /// `start_with`, `end_with`.
    Affix(&'static str, Value),
    /// `all(m)`
    All(Rc<Matcher>),
    /// `m1.and(m2)` / `m1.or(m2)`
    Compound(bool, Rc<Matcher>, Rc<Matcher>),
    /// `contain_duplicates`
    ContainDuplicates,
    /// `be_within(d).of(x)`
    Within(Value, Option<Value>),
    /// `be_a`/`be_kind_of`/`be_an_instance_of`
    KindOf(Value),
    /// `satisfy { |x| ... }`
    Satisfy(Rc<super::interp::Proc>),
    /// `expect(x)` / `is_expected`: the target, with a custom message.
    Target(Value, bool),
    /// `should` without a matcher: `should == 5` style operators.
    Operator(Value, bool),
    /// `describe` with no arguments: waiting for `.one`.
    DescribeOne,
}

/// A matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Its kind.
    pub kind: Kind,
}

/// A matcher's verdict on one value.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Whether it passed.
    pub pass: bool,
    /// RSpec's failure message.
    pub message: String,
}

fn list_desc(items: &[Value]) -> String {
    let parts: Vec<String> = items.iter().map(Value::inspect).collect();
    match parts.len() {
        0 => String::new(),
        1 => parts[0].clone(),
        _ => format!(
            "{} and {}",
            parts[..parts.len() - 1].join(", "),
            parts[parts.len() - 1]
        ),
    }
}

impl Matcher {
    /// A matcher value.
    pub fn value(kind: Kind) -> Value {
        Value::Matcher(Rc::new(Self { kind }))
    }

    /// RSpec's description (`eq "root"`, `be file`, `cmp == "0644"`).
    pub fn description(&self) -> String {
        match &self.kind {
            Kind::Equality(n, v) => format!("{n} {}", v.inspect()),
            Kind::Be(None) => "be".into(),
            Kind::Be(Some((op, v))) => format!("be {op} {}", v.inspect()),
            Kind::BeValue(v) => match v {
                Value::Bool(_) | Value::Nil => format!("equal {}", v.inspect()),
                other => format!("equal {}", other.inspect()),
            },
            Kind::Cmp(op, v) => format!(
                "cmp {op} {}",
                v.as_ref().map_or_else(|| "nil".into(), Value::inspect)
            ),
            Kind::Match(v) => format!("match {}", v.inspect()),
            Kind::Include(items) => format!("include {}", list_desc(items)),
            Kind::Exist => "exist".into(),
            Kind::BeIn(v) => format!("be in {}", v.inspect()),
            Kind::Predicate {
                prefix,
                name,
                args,
                by,
                by_user,
            } => {
                let words = name.replace('_', " ");
                let mut d = format!("{} {words}", prefix.trim_end_matches('_'));
                if !args.is_empty() {
                    d.push(' ');
                    d.push_str(&list_desc(args));
                }
                if let Some(b) = by {
                    d.push_str(&format!(" by {}", b.to_s()));
                }
                if let Some(u) = by_user {
                    d.push_str(&format!(" by user {}", u.to_s()));
                }
                d
            }
            Kind::Affix(which, v) => format!("{which} {}", v.inspect()),
            Kind::All(m) => format!("all {}", m.description()),
            Kind::Compound(and, a, b) => {
                format!(
                    "{} {} {}",
                    a.description(),
                    if *and { "and" } else { "or" },
                    b.description()
                )
            }
            Kind::ContainDuplicates => "contain duplicates".into(),
            Kind::Within(d, of) => format!(
                "be within {} of {}",
                d.inspect(),
                of.as_ref().map_or_else(String::new, Value::inspect)
            ),
            Kind::KindOf(c) => format!("be a kind of {}", c.to_s()),
            Kind::Satisfy(_) => "satisfy expression".into(),
            Kind::Target(v, _) | Kind::Operator(v, _) => v.inspect(),
            Kind::DescribeOne => "describe".into(),
        }
    }
}

/// Builds a matcher from a receiver-less call; `None` when `name` is not one.
pub fn construct(name: &str, args: &Args) -> Option<Value> {
    let a0 = args.get(0).cloned();
    let all: Vec<Value> = args.positional().to_vec();
    let kind = match name {
        "eq" | "eql" | "equal" => Kind::Equality(
            match name {
                "eq" => "eq",
                "eql" => "eql",
                _ => "equal",
            },
            a0.unwrap_or(Value::Nil),
        ),
        "be" => match a0 {
            Some(v) => Kind::BeValue(v),
            None => Kind::Be(None),
        },
        "cmp" => Kind::Cmp("==".into(), a0),
        "match" | "match_regex" => Kind::Match(a0.unwrap_or(Value::Nil)),
        "include" | "contain" => Kind::Include(all),
        "exist" => Kind::Exist,
        "be_in" => Kind::BeIn(a0.unwrap_or(Value::Nil)),
        "start_with" => Kind::Affix("start with", a0.unwrap_or(Value::Nil)),
        "end_with" => Kind::Affix("end with", a0.unwrap_or(Value::Nil)),
        "contain_duplicates" => Kind::ContainDuplicates,
        "be_within" => Kind::Within(a0.unwrap_or(Value::Nil), None),
        "be_a" | "be_an" | "be_kind_of" | "be_a_kind_of" | "be_an_instance_of"
        | "be_instance_of" => Kind::KindOf(a0.unwrap_or(Value::Nil)),
        "all" => match a0 {
            Some(Value::Matcher(m)) => Kind::All(m),
            _ => return None,
        },
        "satisfy" => Kind::Satisfy(args.block.clone()?),
        "be_truthy" | "be_falsey" | "be_falsy" | "be_nil" | "be_empty" => Kind::Predicate {
            prefix: "be_",
            name: name.trim_start_matches("be_").to_string(),
            args: Vec::new(),
            by: None,
            by_user: None,
        },
        _ => {
            let (prefix, rest) = if let Some(r) = name.strip_prefix("be_") {
                ("be_", r)
            } else if let Some(r) = name.strip_prefix("have_") {
                ("have_", r)
            } else {
                return None;
            };
            Kind::Predicate {
                prefix,
                name: rest.to_string(),
                args: all,
                by: None,
                by_user: None,
            }
        }
    };
    if args.any_unknown() {
        // A matcher whose expected value is not known yet: its expectation is pending.
        return Some(Value::Unknown);
    }
    Some(Matcher::value(kind))
}

/// Methods called on a matcher value (`.by`, `.and`, `cmp >= 2`, `.of`, expectation targets).
///
/// # Errors
/// Never for construction; expectation targets record through the DSL.
pub fn chain(it: &Interp<'_>, m: &Rc<Matcher>, name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let op = matches!(name, "==" | "!=" | "<" | "<=" | ">" | ">=" | "===" | "=~");
    let kind = match (&m.kind, name) {
        (Kind::Cmp(_, None), _) if op => Kind::Cmp(name.to_string(), Some(a0)),
        (Kind::Cmp(_, Some(_)), _) if op => Kind::Cmp(name.to_string(), Some(a0)),
        (Kind::Be(None), _) if op => Kind::Be(Some((name.to_string(), a0))),
        (
            Kind::Predicate {
                prefix,
                name: n,
                args: a,
                by,
                by_user,
            },
            "by" | "by_user",
        ) => Kind::Predicate {
            prefix,
            name: n.clone(),
            args: a.clone(),
            by: if name == "by" {
                Some(a0.clone())
            } else {
                by.clone()
            },
            by_user: if name == "by_user" {
                Some(a0.clone())
            } else {
                by_user.clone()
            },
        },
        (
            Kind::Predicate {
                prefix,
                name: n,
                args: a,
                by,
                by_user,
            },
            "with" | "only_with" | "with_version",
        ) => {
            let mut a = a.clone();
            a.push(a0);
            Kind::Predicate {
                prefix,
                name: n.clone(),
                args: a,
                by: by.clone(),
                by_user: by_user.clone(),
            }
        }
        (Kind::Within(d, None), "of") => Kind::Within(d.clone(), Some(a0)),
        (_, "and" | "&") | (_, "or" | "|") if matches!(a0, Value::Matcher(_)) => {
            let Value::Matcher(other) = a0 else {
                return Ok(None);
            };
            Kind::Compound(matches!(name, "and" | "&"), m.clone(), other)
        }
        (Kind::Target(v, _), "to" | "not_to" | "to_not") => {
            let negated = name != "to";
            return it.expect_to(v, negated, args).map(Some);
        }
        (Kind::Operator(subject, negated), _) if op => {
            return it
                .operator_expectation(subject, *negated, name, &a0)
                .map(Some);
        }
        (Kind::DescribeOne, "one") => return it.describe_one(args).map(Some),
        (_, "description") => return Ok(Some(Value::str(m.description()))),
        _ => return Ok(None),
    };
    Ok(Some(Matcher::value(kind)))
}

fn rspec_eq_message(expected: &Value, actual: &Value, how: &str) -> String {
    format!(
        "\nexpected: {}\n     got: {}\n\n(compared using {how})\n",
        expected.inspect(),
        actual.inspect()
    )
}

impl Interp<'_> {
    /// Runs a matcher against `actual` (`negated` for `should_not`); `None` when the actual value is unknown.
    ///
    /// # Errors
    /// As a predicate method or block.
    pub fn check_matcher(
        &self,
        m: &Matcher,
        actual: &Value,
        negated: bool,
        shown: &str,
    ) -> R<Option<Verdict>> {
        if actual.is_unknown() {
            return Ok(None);
        }
        if matches!(m.kind, Kind::Predicate { .. }) {
            return self.predicate(m, actual, negated, shown);
        }
        if matches!(
            m.kind,
            Kind::Target(..) | Kind::Operator(..) | Kind::DescribeOne
        ) {
            return self.unsupported("an expectation target used as a matcher");
        }
        if let Some(v) = self.compare_matchers(m, actual, negated, shown)? {
            return Ok(Some(v));
        }
        if let Some(v) = self.collection_matchers(m, actual, negated, shown)? {
            return Ok(Some(v));
        }
        self.other_matchers(m, actual, negated, shown)
    }

    /// `eq`, `be`, `cmp`, `match`.
    fn compare_matchers(
        &self,
        m: &Matcher,
        actual: &Value,
        negated: bool,
        shown: &str,
    ) -> R<Option<Verdict>> {
        let not = if negated { "not " } else { "" };
        let _ = (not, shown);
        let (pass, message) = match &m.kind {
            Kind::Equality(n, e) => {
                let ok = match *n {
                    "equal" => {
                        ruby_eq(actual, e)
                            && (actual.identity() == e.identity() || actual.identity() == 0)
                    }
                    _ => self.equal(actual, e)?,
                };
                let how = if *n == "eq" { "==" } else { "eql?" };
                (
                    ok,
                    if negated {
                        format!(
                            "\nexpected: value != {}\n     got: {}\n\n(compared using {how})\n",
                            e.inspect(),
                            actual.inspect()
                        )
                    } else {
                        rspec_eq_message(e, actual, how)
                    },
                )
            }
            Kind::Be(None) => (
                actual.truthy(),
                format!("expected {} to {not}be truthy", actual.inspect()),
            ),
            Kind::Be(Some((op, e))) => {
                let ok = match op.as_str() {
                    "==" => self.equal(actual, e)?,
                    "!=" => !self.equal(actual, e)?,
                    "=~" => super::cmp::cmp_matches(actual, "=~", e),
                    "===" => self.case_eq(e, actual)?.unwrap_or(false),
                    _ => ruby_cmp(actual, e).is_some_and(|o| super::core::ordering_holds(op, o)),
                };
                (
                    ok,
                    format!(
                        "expected: {not}{op} {}\n     got: {} {}",
                        e.inspect(),
                        " ".repeat(op.len()),
                        actual.inspect()
                    ),
                )
            }
            Kind::BeValue(e) => (ruby_eq(actual, e), rspec_eq_message(e, actual, "equal?")),
            Kind::Cmp(op, e) => {
                let e = e.clone().unwrap_or(Value::Nil);
                let ok = if op == "===" {
                    self.case_eq(&e, actual)?.unwrap_or(false)
                } else {
                    cmp_matches(actual, op, &e)
                };
                let expectation = if op == "==" && !negated {
                    format!("expected: {}", e.inspect())
                } else {
                    format!("expected it {not}to be {op} {}", e.inspect())
                };
                (
                    ok,
                    format!(
                        "\n{expectation}\n     got: {}\n\n(compared using `cmp` matcher)\n",
                        shown_actual(actual, &e)
                    ),
                )
            }
            Kind::Match(e) => {
                let re = match e {
                    Value::Regex(r) => Some(r.clone()),
                    other => super::core::string::regex_from(self, &other.to_s()).ok(),
                };
                let ok = re.is_some_and(|r| !actual.is_nil() && r.re.is_match(&actual.to_s()));
                (
                    ok,
                    format!(
                        "expected {} {not}to match {}",
                        actual.inspect(),
                        e.inspect()
                    ),
                )
            }
            _ => return Ok(None),
        };
        Ok(Some(Verdict {
            pass: pass != negated,
            message,
        }))
    }

    /// `include`, `exist`, `be_in`, `start_with`, `all`, `contain_duplicates`.
    fn collection_matchers(
        &self,
        m: &Matcher,
        actual: &Value,
        negated: bool,
        shown: &str,
    ) -> R<Option<Verdict>> {
        let not = if negated { "not " } else { "" };
        let _ = (not, shown);
        let (pass, message) = match &m.kind {
            Kind::Include(items) => (
                self.includes(actual, items)?,
                format!(
                    "expected {} {not}to include {}",
                    actual.inspect(),
                    list_desc(items)
                ),
            ),
            Kind::Exist => {
                let ok = match actual {
                    Value::Resource(_) | Value::Object(_) | Value::Table(_) => {
                        let r = self.call_method(actual, "exist?", Args::none(), self.at.get());
                        match r {
                            Ok(v) => v.truthy(),
                            Err(_) => self
                                .call_method(actual, "exists?", Args::none(), self.at.get())?
                                .truthy(),
                        }
                    }
                    other => other.truthy(),
                };
                (ok, format!("expected {shown} {not}to exist"))
            }
            Kind::BeIn(list) => {
                let l = self.to_list(list)?;
                let contains = |v: &Value| l.iter().any(|x| ruby_eq(x, v));
                let ok = match actual {
                    Value::Array(a) if negated => !a.borrow().iter().any(contains),
                    Value::Array(a) => a.borrow().iter().all(contains),
                    other if negated => !contains(other),
                    other => contains(other),
                };
                let shown_list = list.inspect();
                return Ok(Some(Verdict {
                    pass: ok,
                    message: format!(
                        "expected `{}` {not}to be in the list: `{shown_list}`",
                        actual.to_s()
                    ),
                }));
            }
            Kind::Affix(which, e) => {
                let (a, e2) = (actual.to_s(), e.to_s());
                let ok = match (*which, actual) {
                    ("start with", Value::Array(v)) => {
                        v.borrow().first().is_some_and(|f| ruby_eq(f, e))
                    }
                    ("end with", Value::Array(v)) => {
                        v.borrow().last().is_some_and(|f| ruby_eq(f, e))
                    }
                    ("start with", _) => a.starts_with(&e2),
                    _ => a.ends_with(&e2),
                };
                (
                    ok,
                    format!(
                        "expected {} {not}to {which} {}",
                        actual.inspect(),
                        e.inspect()
                    ),
                )
            }
            Kind::All(inner) => {
                for (i, v) in self.to_list(actual)?.iter().enumerate() {
                    if let Some(v) = self.check_matcher(inner, v, false, &v.inspect())?
                        && !v.pass
                    {
                        return Ok(Some(Verdict {
                            pass: negated,
                            message: format!(
                                "expected {} to all {}\n   object at index {i} failed to match:\n{}",
                                actual.inspect(),
                                inner.description(),
                                v.message
                            ),
                        }));
                    }
                }
                (
                    true,
                    format!(
                        "expected {} not to all {}",
                        actual.inspect(),
                        inner.description()
                    ),
                )
            }
            _ => return Ok(None),
        };
        Ok(Some(Verdict {
            pass: pass != negated,
            message,
        }))
    }

    /// Compound matchers, `be_within`, `be_a`, `satisfy`.
    fn other_matchers(
        &self,
        m: &Matcher,
        actual: &Value,
        negated: bool,
        shown: &str,
    ) -> R<Option<Verdict>> {
        let not = if negated { "not " } else { "" };
        let _ = (not, shown);
        let (pass, message) = match &m.kind {
            Kind::Compound(and, a, b) => {
                let va = self.check_matcher(a, actual, false, shown)?;
                let vb = self.check_matcher(b, actual, false, shown)?;
                let (Some(va), Some(vb)) = (va, vb) else {
                    return Ok(None);
                };
                let ok = if *and {
                    va.pass && vb.pass
                } else {
                    va.pass || vb.pass
                };
                let msg = [va, vb]
                    .into_iter()
                    .filter(|v| !v.pass)
                    .map(|v| v.message)
                    .collect::<Vec<_>>()
                    .join("\n\n...and:\n\n");
                (ok, msg)
            }
            Kind::ContainDuplicates => {
                let items = self.to_list(actual)?;
                let dup = items
                    .iter()
                    .enumerate()
                    .any(|(i, x)| items[..i].iter().any(|y| ruby_eq(x, y)));
                (
                    dup,
                    format!("expected {} {not}to contain duplicates", actual.inspect()),
                )
            }
            Kind::Within(d, of) => {
                let f = |v: &Value| match v {
                    #[allow(clippy::cast_precision_loss)]
                    Value::Int(i) => Some(*i as f64),
                    Value::Float(x) => Some(*x),
                    _ => None,
                };
                let ok = matches!((f(actual), f(d), of.as_ref().and_then(f)), (Some(a), Some(d), Some(o)) if (a - o).abs() <= d);
                (
                    ok,
                    format!("expected {} {not}to {}", actual.inspect(), m.description()),
                )
            }
            Kind::KindOf(c) => (
                self.is_a(actual, c),
                format!(
                    "expected {} {not}to be a kind of {}",
                    actual.inspect(),
                    c.to_s()
                ),
            ),
            Kind::Satisfy(p) => (
                self.call_proc(p, vec![actual.clone()], None)?.truthy(),
                format!("expected {} {not}to satisfy expression", actual.inspect()),
            ),
            _ => return Ok(None),
        };
        Ok(Some(Verdict {
            pass: pass != negated,
            message,
        }))
    }

    fn includes(&self, actual: &Value, items: &[Value]) -> R<bool> {
        for item in items {
            let ok = match actual {
                Value::Str(s) => s.contains(item.to_s().as_str()),
                Value::Array(_) | Value::Set(_) | Value::Table(_) | Value::Range(_) => {
                    self.to_list(actual)?.iter().any(|x| ruby_eq(x, item))
                }
                Value::Hash(h) => match item {
                    Value::Hash(pairs) => pairs
                        .borrow()
                        .entries()
                        .iter()
                        .all(|(k, v)| h.borrow().get(k).is_some_and(|w| ruby_eq(v, w))),
                    k => h.borrow().get(k).is_some(),
                },
                Value::Nil => false,
                other => self
                    .call_method(other, "include?", Args::one(item.clone()), self.at.get())?
                    .truthy(),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `be_<x>` / `have_<x>`: calls `x?` / `has_x?` on the actual value.
    fn predicate(
        &self,
        m: &Matcher,
        actual: &Value,
        negated: bool,
        shown: &str,
    ) -> R<Option<Verdict>> {
        let Kind::Predicate {
            prefix,
            name,
            args,
            by,
            by_user,
        } = &m.kind
        else {
            return self.unsupported("predicate");
        };
        let method = if *prefix == "have_" {
            format!("has_{name}?")
        } else {
            format!("{name}?")
        };
        let mut call_args: Vec<Value> = args.clone();
        if by.is_some() || by_user.is_some() {
            call_args = vec![
                by.clone().unwrap_or(Value::Nil),
                by_user.clone().unwrap_or(Value::Nil),
            ];
        }
        let got = match (name.as_str(), actual) {
            ("truthy", v) => Value::Bool(v.truthy()),
            ("falsey" | "falsy", v) => Value::Bool(!v.truthy()),
            _ => self.call_method(actual, &method, Args::new(call_args), self.at.get())?,
        };
        if got.is_unknown() {
            return Ok(None);
        }
        let pass = got.truthy() != negated;
        let message = format!(
            "expected `{shown}.{method}` to {}return true, got {}",
            if negated { "not " } else { "" },
            got.inspect()
        );
        Ok(Some(Verdict { pass, message }))
    }
}
