//! Small value types the interpreter needs beyond Ruby's basics:
//! `Gem::Version`, `MatchData`, rescued exceptions, and InSpec's
//! FilterTable (rows, columns, `where`).

use std::cmp::Ordering;
use std::rc::Rc;

use super::interp::Proc;
use super::value::{RHash, Value};

/// One segment of a version: numbers sort after letters (pre-releases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Digits.
    Num(u64),
    /// Letters (a pre-release marker).
    Text(String),
}

/// `Gem::Version`, with RubyGems' ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemVersion {
    /// As written (trimmed).
    pub text: String,
    segments: Vec<Segment>,
}

impl GemVersion {
    /// Parses a version as `Gem::Version.new` would; `None` when it is malformed.
    pub fn parse(input: &str) -> Option<Self> {
        let t = input.trim();
        if t.is_empty() {
            return Some(Self {
                text: "0".into(),
                segments: vec![Segment::Num(0)],
            });
        }
        let (release, pre) = match t.split_once('-') {
            Some((r, p)) => (r, Some(p)),
            None => (t, None),
        };
        let valid_part = |p: &str, first_digit: bool| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && (!first_digit || p.starts_with(|c: char| c.is_ascii_digit()))
        };
        let mut parts = release.split('.');
        if !parts
            .next()
            .is_some_and(|p| valid_part(p, true) && p.chars().all(|c| c.is_ascii_digit()))
            || !parts.all(|p| valid_part(p, false))
        {
            return None;
        }
        if let Some(p) = pre
            && !p.split('.').all(|x| valid_part(x, false))
        {
            return None;
        }
        let canonical = match pre {
            Some(p) => format!("{release}.pre.{p}"),
            None => release.to_string(),
        };
        let mut segments = Vec::new();
        for part in canonical.split('.') {
            let mut cur = String::new();
            let mut digit = None;
            for c in part.chars() {
                let d = c.is_ascii_digit();
                if digit.is_some_and(|x| x != d) {
                    segments.push(segment(&cur));
                    cur.clear();
                }
                digit = Some(d);
                cur.push(c);
            }
            if !cur.is_empty() {
                segments.push(segment(&cur));
            }
        }
        Some(Self {
            text: t.to_string(),
            segments,
        })
    }

    /// RubyGems' canonical segments: trailing zeros dropped from the
    /// release part and from the pre-release part.
    fn canonical(&self) -> Vec<Segment> {
        let split = self
            .segments
            .iter()
            .position(|s| matches!(s, Segment::Text(_)))
            .unwrap_or(self.segments.len());
        let trim = |s: &[Segment]| {
            let mut v = s.to_vec();
            while matches!(v.last(), Some(Segment::Num(0))) {
                v.pop();
            }
            v
        };
        let mut out = trim(&self.segments[..split]);
        out.extend(trim(&self.segments[split..]));
        out
    }

    /// `<=>`
    pub fn cmp_to(&self, other: &Self) -> Ordering {
        let (a, b) = (self.canonical(), other.canonical());
        let zero = Segment::Num(0);
        for i in 0..a.len().max(b.len()) {
            let (x, y) = (a.get(i).unwrap_or(&zero), b.get(i).unwrap_or(&zero));
            let o = match (x, y) {
                (Segment::Num(p), Segment::Num(q)) => p.cmp(q),
                (Segment::Text(p), Segment::Text(q)) => p.cmp(q),
                (Segment::Text(_), Segment::Num(_)) => Ordering::Less,
                (Segment::Num(_), Segment::Text(_)) => Ordering::Greater,
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// `segments` as Ruby values.
    pub fn segment_values(&self) -> Vec<Value> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Num(n) => Value::Int(i64::try_from(*n).unwrap_or(i64::MAX)),
                Segment::Text(t) => Value::str(t),
            })
            .collect()
    }
}

fn segment(s: &str) -> Segment {
    match s.parse::<u64>() {
        Ok(n) => Segment::Num(n),
        Err(_) => Segment::Text(s.to_string()),
    }
}

/// The result of a successful regex match.
#[derive(Debug, Clone)]
pub struct MatchData {
    /// The searched text.
    pub text: Rc<str>,
    /// Byte ranges of group 0 and every capture group.
    pub groups: Vec<Option<(usize, usize)>>,
    /// Named groups and their indexes.
    pub names: Vec<(String, usize)>,
}

impl MatchData {
    /// Builds match data from regex captures.
    pub fn new(text: Rc<str>, caps: &regex::Captures<'_>, re: &regex::Regex) -> Self {
        let groups = (0..caps.len())
            .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
            .collect();
        let names = re
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (n.to_string(), i)))
            .collect();
        Self {
            text,
            groups,
            names,
        }
    }

    /// Group `i`'s text, if it took part in the match.
    pub fn group(&self, i: usize) -> Option<&str> {
        self.groups
            .get(i)
            .copied()
            .flatten()
            .map(|(s, e)| &self.text[s..e])
    }

    /// The named group's text.
    pub fn named(&self, name: &str) -> Option<&str> {
        self.names
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, i)| self.group(*i))
    }

    /// The whole match.
    pub fn whole(&self) -> &str {
        self.group(0).unwrap_or("")
    }

    /// A group as a Ruby value (nil when it did not take part).
    pub fn group_value(&self, i: usize) -> Value {
        self.group(i).map_or(Value::Nil, Value::str)
    }
}

/// An exception a profile raised or the interpreter raised as Ruby would.
#[derive(Debug, Clone)]
pub struct RubyException {
    /// Ruby class name (`RuntimeError`, `NoMethodError`, ...).
    pub class: String,
    /// Its message.
    pub message: String,
}

impl RubyException {
    /// A new exception.
    pub fn new(class: &str, message: impl Into<String>) -> Self {
        Self {
            class: class.to_string(),
            message: message.into(),
        }
    }

    /// Whether `rescue Class` catches it (the standard hierarchy, simplified).
    pub fn is_a(&self, class: &str) -> bool {
        match class {
            "Exception" | "StandardError" => true,
            "ArgumentError" | "TypeError" | "ZeroDivisionError" | "KeyError" | "IndexError"
            | "RangeError" | "NameError" | "RuntimeError" | "StopIteration" => {
                self.class == class
                    || (class == "NameError" && self.class == "NoMethodError")
                    || (class == "IndexError"
                        && (self.class == "KeyError" || self.class == "StopIteration"))
            }
            other => self.class == other,
        }
    }
}

/// One FilterTable column: the accessor name and the row field it reads.
#[derive(Debug, Clone)]
pub struct Column {
    /// Accessor (`usernames`).
    pub name: String,
    /// Row field (`username`).
    pub field: String,
    /// `style: :simple`: flatten and de-duplicate the values.
    pub simple: bool,
}

/// How a FilterTable is built (in a library: `FilterTable.create` ...).
#[derive(Debug, Clone, Default)]
pub struct TableSpec {
    /// Registered columns.
    pub columns: Vec<Column>,
    /// `register_custom_matcher(:x?) { |table| ... }`
    pub matchers: Vec<(String, Rc<Proc>)>,
    /// `register_custom_property(:x) { |table| ... }`
    pub properties: Vec<(String, Rc<Proc>)>,
    /// The resource method that returns the raw rows.
    pub data_method: Option<String>,
}

/// A FilterTable view: rows and how to name them.
#[derive(Debug, Clone)]
pub struct Table {
    /// How the table shows in `code_desc` (`Users with uid >= 1000`).
    pub display: String,
    /// The rows, each a field hash.
    pub rows: Vec<Rc<RHash>>,
    /// The columns and custom members.
    pub spec: Rc<TableSpec>,
}

impl Table {
    /// The column named `name` (accessor or field name).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.spec
            .columns
            .iter()
            .find(|c| c.name == name)
            .or_else(|| self.spec.columns.iter().find(|c| c.field == name))
    }

    /// Values of `field` over every row.
    pub fn values(&self, col: &Column) -> Vec<Value> {
        let key = Value::sym(&col.field);
        let skey = Value::str(&col.field);
        let mut out = Vec::new();
        for r in &self.rows {
            let v = r
                .get(&key)
                .or_else(|| r.get(&skey))
                .cloned()
                .unwrap_or(Value::Nil);
            match (&v, col.simple) {
                (Value::Array(items), true) => out.extend(items.borrow().iter().cloned()),
                _ => out.push(v),
            }
        }
        if col.simple {
            let mut seen = RHash::new();
            out.retain(|v| {
                if seen.get(v).is_some() {
                    false
                } else {
                    seen.insert(v.clone(), Value::Nil);
                    true
                }
            });
        }
        out
    }
}

/// A field of a row (rows use symbol keys; string keys are accepted too).
pub fn row_field(row: &RHash, name: &str) -> Option<Value> {
    row.get(&Value::sym(name))
        .or_else(|| row.get(&Value::str(name)))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> GemVersion {
        GemVersion::parse(s).expect(s)
    }

    #[test]
    fn versions_order_like_rubygems() {
        assert_eq!(v("1.10").cmp_to(&v("1.9")), Ordering::Greater);
        assert_eq!(v("1.0").cmp_to(&v("1")), Ordering::Equal);
        assert_eq!(v("1.0.a").cmp_to(&v("1.0")), Ordering::Less);
        assert_eq!(
            v("7.35.0-1ubuntu2.10").cmp_to(&v("7.35.0-1ubuntu2.9")),
            Ordering::Greater
        );
        assert!(GemVersion::parse("1.2 3").is_none());
        assert!(GemVersion::parse("abc").is_none());
        assert!(GemVersion::parse("").is_some(), "Gem::Version.new('') is 0");
    }
}
