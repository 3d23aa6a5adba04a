//! Kubernetes label selectors in their string form (`app=web,tier!=cache`,
//! `env in (prod,staging)`, `!canary`), parsed and checked with the
//! API server's rules so a selector that would fail (or silently mean
//! something else) at pod-listing time is refused at intake.
//!
//! Supported: `k=v`, `k==v`, `k!=v`, `k in (…)`, `k notin (…)`, `k`
//! (exists), `!k` (does not exist). The numeric `k>n` / `k<n` forms are
//! refused: kubectl users rarely know them and they do not apply to pods in
//! any way intake needs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::k8s_names::check_dns1123_subdomain;

/// Longest label name part (after the optional `prefix/`).
pub const MAX_NAME_LEN: usize = 63;
/// Longest label value.
pub const MAX_VALUE_LEN: usize = 63;

/// A parsed, validated selector. Empty selects everything, as in
/// Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// One comma-separated term of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also matches pods without the label).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, BTreeSet<String>),
    /// `key notin (a,b)` (also matches pods without the label).
    NotIn(String, BTreeSet<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

/// Why a selector string was refused; `position` is the 0-based character
/// offset of the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {position}: {problem}")]
pub struct SelectorError {
    /// Character offset into the selector string.
    pub position: usize,
    /// What is wrong.
    pub problem: String,
}

/// Bounds on one selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectorLimits {
    /// Longest selector string.
    pub max_len: usize,
    /// Most comma-separated requirements.
    pub max_requirements: usize,
    /// Most values in one `in` / `notin` set.
    pub max_set_values: usize,
}

impl Default for SelectorLimits {
    fn default() -> Self {
        Self {
            max_len: 1024,
            max_requirements: 32,
            max_set_values: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Comma,
    Open,
    Close,
    Gt,
    Lt,
    In,
    NotIn,
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "{s:?}"),
            Tok::Bang => f.write_str("'!'"),
            Tok::Eq => f.write_str("'='"),
            Tok::DoubleEq => f.write_str("'=='"),
            Tok::NotEq => f.write_str("'!='"),
            Tok::Comma => f.write_str("','"),
            Tok::Open => f.write_str("'('"),
            Tok::Close => f.write_str("')'"),
            Tok::Gt => f.write_str("'>'"),
            Tok::Lt => f.write_str("'<'"),
            Tok::In => f.write_str("'in'"),
            Tok::NotIn => f.write_str("'notin'"),
            Tok::End => f.write_str("end of selector"),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | ',' | '(' | ')' | '<' | '>') || c.is_whitespace()
}

fn lex(s: &str) -> Vec<(usize, Tok)> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let (tok, len) = match (c, next) {
            ('!', Some('=')) => (Tok::NotEq, 2),
            ('!', _) => (Tok::Bang, 1),
            ('=', Some('=')) => (Tok::DoubleEq, 2),
            ('=', _) => (Tok::Eq, 1),
            (',', _) => (Tok::Comma, 1),
            ('(', _) => (Tok::Open, 1),
            (')', _) => (Tok::Close, 1),
            ('>', _) => (Tok::Gt, 1),
            ('<', _) => (Tok::Lt, 1),
            _ => {
                let start = i;
                let mut j = i;
                while j < chars.len() && !is_special(chars[j]) {
                    j += 1;
                }
                let word: String = chars[start..j].iter().collect();
                let tok = match word.as_str() {
                    "in" => Tok::In,
                    "notin" => Tok::NotIn,
                    _ => Tok::Ident(word),
                };
                (tok, j - start)
            }
        };
        out.push((i, tok));
        i += len;
    }
    out.push((chars.len(), Tok::End));
    out
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    limits: SelectorLimits,
}

impl Parser {
    fn peek(&self) -> &(usize, Tok) {
        &self.toks[self.at.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> (usize, Tok) {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn err<T>(position: usize, problem: impl Into<String>) -> Result<T, SelectorError> {
        Err(SelectorError {
            position,
            problem: problem.into(),
        })
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next() {
            (pos, Tok::Ident(k)) => {
                check_key(&k).map_err(|p| SelectorError {
                    position: pos,
                    problem: p,
                })?;
                Ok(k)
            }
            (pos, t) => Self::err(pos, format!("expected a label key, found {t}")),
        }
    }

    fn value(&mut self) -> Result<String, SelectorError> {
        match self.peek().clone() {
            // `key=` with nothing after it means the empty value.
            (_, Tok::Comma | Tok::End) => Ok(String::new()),
            (pos, Tok::Ident(v)) => {
                self.at += 1;
                check_value(&v).map_err(|p| SelectorError {
                    position: pos,
                    problem: p,
                })?;
                Ok(v)
            }
            (pos, t) => Self::err(pos, format!("expected a label value, found {t}")),
        }
    }

    fn set(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let (open_pos, open) = self.next();
        if open != Tok::Open {
            return Self::err(
                open_pos,
                format!("expected '(' after in/notin, found {open}"),
            );
        }
        let mut values = BTreeSet::new();
        loop {
            let (pos, t) = self.next();
            match t {
                Tok::Close if values.is_empty() => {
                    return Self::err(pos, "the value set of in/notin must not be empty");
                }
                Tok::Ident(v) => {
                    check_value(&v).map_err(|p| SelectorError {
                        position: pos,
                        problem: p,
                    })?;
                    values.insert(v);
                    if values.len() > self.limits.max_set_values {
                        return Self::err(
                            pos,
                            format!("more than {} values in one set", self.limits.max_set_values),
                        );
                    }
                }
                t => return Self::err(pos, format!("expected a label value, found {t}")),
            }
            match self.next() {
                (_, Tok::Comma) => continue,
                (_, Tok::Close) => return Ok(values),
                (pos, t) => return Self::err(pos, format!("expected ',' or ')', found {t}")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek().1 == Tok::Bang {
            self.at += 1;
            return Ok(Requirement::DoesNotExist(self.key()?));
        }
        let key = self.key()?;
        let (pos, op) = self.peek().clone();
        Ok(match op {
            Tok::Comma | Tok::End => Requirement::Exists(key),
            Tok::Eq | Tok::DoubleEq => {
                self.at += 1;
                Requirement::Equals(key, self.value()?)
            }
            Tok::NotEq => {
                self.at += 1;
                Requirement::NotEquals(key, self.value()?)
            }
            Tok::In => {
                self.at += 1;
                Requirement::In(key, self.set()?)
            }
            Tok::NotIn => {
                self.at += 1;
                Requirement::NotIn(key, self.set()?)
            }
            Tok::Gt | Tok::Lt => {
                return Self::err(pos, "numeric comparisons (> and <) are not supported");
            }
            t => {
                return Self::err(
                    pos,
                    format!(
                        "expected an operator (=, ==, !=, in, notin), ',' or the end, found {t}"
                    ),
                );
            }
        })
    }
}

/// A label key: optional DNS-1123 subdomain prefix and `/`, then a name of
/// at most 63 alphanumerics, `-`, `_`, `.`, starting and ending
/// alphanumeric.
pub fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        check_dns1123_subdomain(p).map_err(|e| format!("label key prefix {p:?}: {e}"))?;
    }
    if name.is_empty() {
        return Err(format!("label key {key:?}: name part must not be empty"));
    }
    check_name_chars(name).map_err(|p| format!("label key {key:?}: {p}"))
}

/// A label value: empty, or like a key's name part.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    check_name_chars(value).map_err(|p| format!("label value {value:?}: {p}"))
}

fn check_name_chars(s: &str) -> Result<(), String> {
    if s.len() > MAX_NAME_LEN {
        return Err(format!("must be no more than {MAX_NAME_LEN} characters"));
    }
    let b = s.as_bytes();
    let ok = b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !ok {
        return Err(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start \
                    and end with an alphanumeric character"
                .into(),
        );
    }
    Ok(())
}

impl LabelSelector {
    /// Parses `s` under `limits`.
    pub fn parse(s: &str, limits: &SelectorLimits) -> Result<Self, SelectorError> {
        if s.len() > limits.max_len {
            return Err(SelectorError {
                position: limits.max_len,
                problem: format!(
                    "selector is {} bytes, over the limit of {}",
                    s.len(),
                    limits.max_len
                ),
            });
        }
        let mut p = Parser {
            toks: lex(s),
            at: 0,
            limits: *limits,
        };
        let mut requirements = Vec::new();
        if p.peek().1 == Tok::End {
            return Ok(Self { requirements });
        }
        loop {
            let pos = p.peek().0;
            requirements.push(p.requirement()?);
            if requirements.len() > limits.max_requirements {
                return Parser::err(
                    pos,
                    format!("more than {} requirements", limits.max_requirements),
                );
            }
            match p.next() {
                (_, Tok::End) => break,
                (_, Tok::Comma) => {
                    if p.peek().1 == Tok::End {
                        return Parser::err(
                            p.peek().0,
                            "trailing ',' with no requirement after it",
                        );
                    }
                }
                (pos, t) => return Parser::err(pos, format!("expected ',' or the end, found {t}")),
            }
        }
        Ok(Self { requirements })
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when this selects every pod.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether a pod with `labels` is selected, with Kubernetes semantics
    /// (`!=` and `notin` also select pods lacking the label).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form, which the API server accepts as
    /// `labelSelector=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |vs: &BTreeSet<String>| vs.iter().cloned().collect::<Vec<_>>().join(",");
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r {
                Requirement::Equals(k, v) => write!(f, "{k}={v}")?,
                Requirement::NotEquals(k, v) => write!(f, "{k}!={v}")?,
                Requirement::In(k, vs) => write!(f, "{k} in ({})", set(vs))?,
                Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", set(vs))?,
                Requirement::Exists(k) => write!(f, "{k}")?,
                Requirement::DoesNotExist(k) => write!(f, "!{k}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        LabelSelector::parse(s, &SelectorLimits::default())
    }

    fn set(vs: &[&str]) -> BTreeSet<String> {
        vs.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn valid_selectors_parse_to_requirements() {
        use Requirement::*;
        let s = |x: &str| x.to_owned();
        let cases: Vec<(&str, Vec<Requirement>)> = vec![
            ("", vec![]),
            ("   ", vec![]),
            ("app=web", vec![Equals(s("app"), s("web"))]),
            ("app==web", vec![Equals(s("app"), s("web"))]),
            (
                "app = web , tier != cache",
                vec![Equals(s("app"), s("web")), NotEquals(s("tier"), s("cache"))],
            ),
            ("app=", vec![Equals(s("app"), s(""))]),
            ("app=,x", vec![Equals(s("app"), s("")), Exists(s("x"))]),
            (
                "env in (prod, staging)",
                vec![In(s("env"), set(&["prod", "staging"]))],
            ),
            ("env notin (dev)", vec![NotIn(s("env"), set(&["dev"]))]),
            ("canary", vec![Exists(s("canary"))]),
            ("!canary", vec![DoesNotExist(s("canary"))]),
            ("! canary", vec![DoesNotExist(s("canary"))]),
            (
                "app.kubernetes.io/name=web,example.com/team in (a.b,c_d)",
                vec![
                    Equals(s("app.kubernetes.io/name"), s("web")),
                    In(s("example.com/team"), set(&["a.b", "c_d"])),
                ],
            ),
            ("Tier=Web-1", vec![Equals(s("Tier"), s("Web-1"))]),
        ];
        for (input, want) in cases {
            let got = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(got.requirements(), want.as_slice(), "{input:?}");
        }
    }

    #[test]
    fn invalid_selectors_name_the_problem_and_position() {
        let cases: Vec<(&str, &str)> = vec![
            (
                "app=web,",
                "at character 8: trailing ',' with no requirement after it",
            ),
            (",app", "at character 0: expected a label key, found ','"),
            (
                "app=web=x",
                "at character 7: expected ',' or the end, found '='",
            ),
            (
                "env in ()",
                "at character 8: the value set of in/notin must not be empty",
            ),
            (
                "env in prod",
                "at character 7: expected '(' after in/notin, found \"prod\"",
            ),
            (
                "env in (a b)",
                "at character 10: expected ',' or ')', found \"b\"",
            ),
            (
                "env in (a,",
                "at character 10: expected a label value, found end of selector",
            ),
            (
                "replicas>3",
                "at character 8: numeric comparisons (> and <) are not supported",
            ),
            (
                "app web",
                "at character 4: expected an operator (=, ==, !=, in, notin), ',' or the end, found \"web\"",
            ),
            (
                "-app=web",
                "at character 0: label key \"-app\": must consist of alphanumeric characters, '-', \
                 '_' or '.', and must start and end with an alphanumeric character",
            ),
            (
                "app=we/b",
                "at character 4: label value \"we/b\": must consist of alphanumeric characters, \
                 '-', '_' or '.', and must start and end with an alphanumeric character",
            ),
            (
                "Example.com/x=1",
                "at character 0: label key prefix \"Example.com\": a lowercase RFC 1123 subdomain \
                 must consist of lowercase alphanumeric characters, '.' or '-', and must start and \
                 end with an alphanumeric character",
            ),
            (
                "example.com/=1",
                "at character 0: label key \"example.com/\": name part must not be empty",
            ),
            (
                "!",
                "at character 1: expected a label key, found end of selector",
            ),
            ("!a=b", "at character 2: expected ',' or the end, found '='"),
        ];
        for (input, want) in cases {
            let err = parse(input).expect_err(input);
            assert_eq!(err.to_string(), want, "{input:?}");
        }
        let long_value = format!("app={}", "v".repeat(64));
        assert_eq!(
            parse(&long_value).unwrap_err().to_string(),
            format!(
                "at character 4: label value {:?}: must be no more than 63 characters",
                "v".repeat(64)
            )
        );
    }

    #[test]
    fn limits_are_enforced() {
        let limits = SelectorLimits {
            max_len: 30,
            max_requirements: 2,
            max_set_values: 2,
        };
        let cases = [
            ("a,b,c", "at character 4: more than 2 requirements"),
            (
                "a in (x,y,z)",
                "at character 10: more than 2 values in one set",
            ),
            (
                "a=0123456789012345678901234567890",
                "at character 30: selector is 33 bytes, over the limit of 30",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                LabelSelector::parse(input, &limits)
                    .unwrap_err()
                    .to_string(),
                want
            );
        }
    }

    #[test]
    fn matching_follows_kubernetes_semantics() {
        let labels: BTreeMap<String, String> = [("app", "web"), ("env", "prod")]
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let cases = [
            ("", true),
            ("app=web", true),
            ("app=api", false),
            ("app!=api", true),
            ("missing!=x", true),
            ("env in (prod,staging)", true),
            ("env in (dev)", false),
            ("missing in (x)", false),
            ("env notin (dev)", true),
            ("missing notin (x)", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("app=web,env=dev", false),
        ];
        for (sel, want) in cases {
            assert_eq!(parse(sel).unwrap().matches(&labels), want, "{sel:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "app=web,tier!=cache",
            "env in (prod,staging),!canary,x",
            "app=",
            "",
        ] {
            let sel = parse(s).unwrap();
            assert_eq!(parse(&sel.to_string()).unwrap(), sel, "{s:?}");
        }
        assert_eq!(parse("env in (b, a)").unwrap().to_string(), "env in (a,b)");
    }
}
