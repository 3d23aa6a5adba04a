//! InSpec's `cmp` matcher, rule for rule (see `notes/inspec-dsl.md` §2):
//! a one-element array is unwrapped unless the expected value is an array;
//! two strings compare case-insensitively for `==` and as versions for
//! other operators when both parse as versions; a regex matches the text;
//! a decimal-integer string against an integer compares as integers; an
//! octal string (`'0644'`) against an integer reads as octal; `"true"` and
//! `"false"` compare with booleans; a numeric expected value converts a
//! numeric-string actual; otherwise Ruby's own operator decides, and a
//! comparison Ruby cannot make is simply false.

use std::cmp::Ordering;

use super::support::GemVersion;
use super::value::{Value, ruby_cmp, ruby_eq};

/// `/\A0+\Z|\A[1-9]\d*\Z/` (Ruby's `\Z` allows one trailing newline).
pub fn is_decimal_integer(s: &str) -> bool {
    let s = s.strip_suffix('\n').unwrap_or(s);
    !s.is_empty()
        && (s.bytes().all(|b| b == b'0')
            || (s.as_bytes()[0] != b'0' && s.bytes().all(|b| b.is_ascii_digit())))
}

/// `/\A0+[0-7]+\Z/`
pub fn is_octal(s: &str) -> bool {
    let s = s.strip_suffix('\n').unwrap_or(s);
    let zeros = s.bytes().take_while(|b| *b == b'0').count();
    zeros > 0 && s.len() > zeros && s.bytes().skip(zeros).all(|b| (b'0'..=b'7').contains(&b))
}

fn is_boolean(s: &str) -> bool {
    s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")
}

/// `Float(value)` succeeds.
fn float_of(v: &Value) -> Option<f64> {
    match v {
        #[allow(clippy::cast_precision_loss)]
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => s
            .trim()
            .replace('_', "")
            .parse()
            .ok()
            .filter(|_| !s.trim().is_empty()),
        _ => None,
    }
}

fn holds(op: &str, o: Ordering) -> bool {
    super::core::ordering_holds(op, o)
}

/// Ruby's `actual <op> expected`; `false` where Ruby would raise.
fn fallback(actual: &Value, op: &str, expected: &Value) -> bool {
    match op {
        "==" => ruby_eq(actual, expected),
        "!=" => !ruby_eq(actual, expected),
        "=~" => match (actual, expected) {
            (Value::Str(a), Value::Regex(r)) => r.re.is_match(a),
            _ => false,
        },
        _ => match (actual, expected) {
            (Value::Bool(_), _) | (_, Value::Bool(_)) | (Value::Nil, _) => false,
            _ => ruby_cmp(actual, expected).is_some_and(|o| holds(op, o)),
        },
    }
}

/// Whether `actual` cmp-matches `expected` under `op` (`==`, `!=`, `<`, ...).
pub fn cmp_matches(actual: &Value, op: &str, expected: &Value) -> bool {
    let unwrapped;
    let mut actual = actual;
    if let Value::Array(a) = actual
        && !matches!(expected, Value::Array(_))
        && a.borrow().len() == 1
    {
        unwrapped = a.borrow()[0].clone();
        actual = &unwrapped;
    }
    let sym_text;
    if let Value::Sym(s) = actual {
        sym_text = Value::Str(s.clone());
        actual = &sym_text;
    }
    match (expected, actual) {
        (Value::Str(e), Value::Str(a)) => {
            if op == "==" {
                return a.to_lowercase() == e.to_lowercase();
            }
            if let (Some(x), Some(y)) = (GemVersion::parse(a), GemVersion::parse(e)) {
                return holds(op, x.cmp_to(&y));
            }
        }
        (Value::Regex(r), Value::Str(_) | Value::Int(_)) => {
            return r.re.is_match(&actual.to_s());
        }
        (Value::Str(e), Value::Int(a)) if is_decimal_integer(e) => {
            let e = e.trim_end_matches('\n').parse::<i64>().unwrap_or(i64::MAX);
            return fallback(&Value::Int(*a), op, &Value::Int(e));
        }
        (Value::Str(e), Value::Bool(a)) if is_boolean(e) => {
            let e = e.eq_ignore_ascii_case("true");
            return match op {
                "==" => *a == e,
                "!=" => *a != e,
                _ => false,
            };
        }
        (Value::Int(e), Value::Str(a)) if is_decimal_integer(a) => {
            let a = a.trim_end_matches('\n').parse::<i64>().unwrap_or(i64::MAX);
            return fallback(&Value::Int(a), op, &Value::Int(*e));
        }
        (Value::Float(e), a) if float_of(a).is_some() => {
            return fallback(
                &Value::Float(float_of(a).unwrap_or(0.0)),
                op,
                &Value::Float(*e),
            );
        }
        (Value::Str(e), Value::Int(a)) if is_octal(e) => {
            let e = i64::from_str_radix(e.trim_end_matches('\n'), 8).unwrap_or(i64::MAX);
            return fallback(&Value::Int(*a), op, &Value::Int(e));
        }
        _ => {}
    }
    fallback(actual, op, expected)
}

/// The `got:` part of a cmp failure: an integer compared with an octal
/// string is shown in octal, as InSpec does.
pub fn shown_actual(actual: &Value, expected: &Value) -> String {
    match (actual, expected) {
        (Value::Int(a), Value::Str(e)) if is_octal(e) => format!("\"0{a:o}\""),
        (Value::Str(s), _) => s.to_string(),
        (other, _) => other.inspect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspec::ast::RegexFlags;
    use crate::inspec::ruby_regex::RubyRegex;

    fn s(x: &str) -> Value {
        Value::str(x)
    }

    fn re(x: &str, ignore_case: bool) -> Value {
        Value::Regex(std::rc::Rc::new(
            RubyRegex::new(
                x,
                RegexFlags {
                    ignore_case,
                    ..RegexFlags::default()
                },
            )
            .expect("regex"),
        ))
    }

    type Case = (Value, &'static str, Value, bool, &'static str);

    fn one(v: Value) -> Value {
        Value::array(vec![v])
    }

    /// Octal strings against integer modes, and decimal strings.
    fn octal_cases() -> Vec<Case> {
        vec![
            (
                Value::Int(0o644),
                "==",
                s("0644"),
                true,
                "octal string vs integer mode",
            ),
            (Value::Int(0o640), "==", s("0644"), false, "octal mismatch"),
            (Value::Int(0o644), "<=", s("0644"), true, "octal with <="),
            (Value::Int(0o600), "<=", s("0640"), true, "octal ordering"),
            (
                Value::Int(0o755),
                "<=",
                s("0644"),
                false,
                "octal ordering fails",
            ),
            (
                Value::Int(644),
                "==",
                s("644"),
                true,
                "decimal string is decimal",
            ),
            (
                Value::Int(0o644),
                "==",
                s("644"),
                false,
                "'644' is not octal",
            ),
            (
                Value::Int(0),
                "==",
                s("0"),
                true,
                "'0' is a decimal integer",
            ),
            (Value::Int(0), "==", s("00"), true, "'00' is zeros"),
            (
                Value::Int(7),
                "==",
                s("08"),
                false,
                "'08' is neither decimal nor octal",
            ),
        ]
    }

    /// Strings: case-insensitive `==`, versions for other operators.
    fn string_cases() -> Vec<Case> {
        vec![
            (s("root"), "==", s("ROOT"), true, "== ignores case"),
            (
                s("root"),
                "!=",
                s("ROOT"),
                true,
                "!= is Ruby's, case-sensitive",
            ),
            (s("yes"), "==", s("no"), false, "different strings"),
            (
                s("7.35.0-1ubuntu2.10"),
                ">",
                s("7.35.0-1ubuntu2.9"),
                true,
                "versions",
            ),
            (s("1.10"), ">", s("1.9"), true, "version not string order"),
            (
                s("1.10"),
                "<",
                s("1.9"),
                false,
                "version not string order (<)",
            ),
            (
                s("abc"),
                "<",
                s("abd"),
                true,
                "non-versions compare as strings",
            ),
            (
                Value::sym("raw"),
                "==",
                s("RAW"),
                true,
                "symbol actual becomes a string",
            ),
        ]
    }

    /// Numbers and booleans across types.
    fn number_cases() -> Vec<Case> {
        vec![
            (
                s("2"),
                "==",
                Value::Int(2),
                true,
                "numeric string vs integer",
            ),
            (s("2"), "<", Value::Int(3), true, "numeric string ordering"),
            (
                s("x2"),
                "==",
                Value::Int(2),
                false,
                "non-numeric string vs integer",
            ),
            (Value::Int(2), "==", Value::Int(2), true, "integers"),
            (s("2.5"), ">=", Value::Float(2.5), true, "float expected"),
            (
                Value::Int(3),
                ">",
                Value::Float(2.5),
                true,
                "integer actual, float expected",
            ),
            (
                Value::Bool(true),
                "==",
                s("true"),
                true,
                "boolean vs 'true'",
            ),
            (
                Value::Bool(false),
                "==",
                s("TRUE"),
                false,
                "boolean vs 'TRUE'",
            ),
            (
                Value::Bool(false),
                "==",
                s("false"),
                true,
                "boolean vs 'false'",
            ),
            (Value::Nil, "==", s("x"), false, "nil never equals a string"),
            (
                Value::Nil,
                "<",
                Value::Int(1),
                false,
                "nil comparison is false, not an error",
            ),
            (
                s("abc"),
                "<",
                Value::Int(1),
                false,
                "string < integer is false",
            ),
        ]
    }

    /// One-element arrays and regexes.
    fn shape_cases() -> Vec<Case> {
        vec![
            (
                one(s("root")),
                "==",
                s("root"),
                true,
                "one-element array unwrapped",
            ),
            (one(s("root")), "==", one(s("root")), true, "array vs array"),
            (
                Value::array(vec![s("a"), s("b")]),
                "==",
                s("a"),
                false,
                "two elements are not unwrapped",
            ),
            (
                one(Value::Int(2)),
                "==",
                s("2"),
                true,
                "unwrapped then numeric",
            ),
            (s("RAW"), "==", re("raw", true), true, "regex with /i"),
            (
                s("log_format = raw"),
                "==",
                re("^raw", false),
                false,
                "regex anchors",
            ),
            (
                Value::Int(22),
                "==",
                re("^2", false),
                true,
                "regex on integer text",
            ),
        ]
    }

    /// The case table built from the rules in the module comment.
    #[test]
    fn the_cmp_case_table() {
        let all: Vec<Case> =
            [octal_cases(), string_cases(), number_cases(), shape_cases()].concat();
        assert!(all.len() >= 35, "the table covers every rule");
        for (actual, op, expected, want, why) in all {
            assert_eq!(
                cmp_matches(&actual, op, &expected),
                want,
                "{why}: {} {op} {}",
                actual.inspect(),
                expected.inspect()
            );
        }
    }

    #[test]
    fn octal_failures_show_octal() {
        assert_eq!(shown_actual(&Value::Int(0o755), &s("0644")), "\"0755\"");
        assert_eq!(shown_actual(&Value::Int(5), &s("5")), "5");
    }
}
