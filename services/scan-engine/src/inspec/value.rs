//! Run-time values of the profile interpreter: Ruby's core types as
//! profiles use them, plus InSpec's resources, matchers and filter tables,
//! and [`Value::Unknown`] for a value that depends on a fact not gathered.
//!
//! Values live only for one control's evaluation on one thread (`Rc`);
//! nothing here is shared between scans.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

use super::interp::Proc;
use super::library::{ClassDef, Object};
use super::matchers::Matcher;
use super::resources::Resource;
use super::ruby_regex::RubyRegex;
use super::support::{GemVersion, MatchData, RubyException, Table, TableSpec};

/// A shared, mutable container (Ruby arrays and hashes are references).
pub type Shared<T> = Rc<RefCell<T>>;

/// One Ruby value.
#[derive(Clone, Debug)]
pub enum Value {
    /// `nil`
    Nil,
    /// `true` / `false`
    Bool(bool),
    /// An Integer (64-bit; larger results are an error).
    Int(i64),
    /// A Float.
    Float(f64),
    /// A String (immutable here; bang methods rebind their variable).
    Str(Rc<str>),
    /// A Symbol.
    Sym(Rc<str>),
    /// An Array.
    Array(Shared<Vec<Value>>),
    /// A Hash (insertion-ordered).
    Hash(Shared<RHash>),
    /// A Set (keys of an ordered hash).
    Set(Shared<RHash>),
    /// A Range: low, high (nil for open ends), exclusive end.
    Range(Rc<(Value, Value, bool)>),
    /// A Regexp.
    Regex(Rc<RubyRegex>),
    /// MatchData.
    Match(Rc<MatchData>),
    /// A block, proc or lambda.
    Proc(Rc<Proc>),
    /// A Date.
    Date(jiff::civil::Date),
    /// A Gem::Version.
    Version(Rc<GemVersion>),
    /// A built-in InSpec resource.
    Resource(Rc<Resource>),
    /// A FilterTable view (the result of `where`, or a table resource).
    Table(Rc<Table>),
    /// One row of a FilterTable (`entries.each { |row| row.name }`).
    Row(Rc<RHash>),
    /// `FilterTable.create`, being configured in a library class body.
    TableSpec(Shared<TableSpec>),
    /// An instance of a profile-defined class.
    Object(Rc<Object>),
    /// A class or module (built-in ones by name).
    Class(ClassRef),
    /// A matcher (`eq 1`, `be_file`, `cmp >= 2`).
    Matcher(Rc<Matcher>),
    /// A rescued exception.
    Exception(Rc<RubyException>),
    /// The `inspec` handle library code calls resources through.
    Inspec,
    /// Depends on a fact that was not gathered (yet).
    Unknown,
}

/// A class value.
#[derive(Clone, Debug)]
pub enum ClassRef {
    /// A core class or module the interpreter knows by name (`Set`, `Date`, ...).
    Builtin(&'static str),
    /// A profile-defined class or module.
    User(Rc<ClassDef>),
}

/// A hash key, by Ruby's `eql?`: 1 and 1.0 differ, strings compare by content.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashKey {
    /// nil
    Nil,
    /// true/false
    Bool(bool),
    /// Integer
    Int(i64),
    /// Float bits
    Float(u64),
    /// String
    Str(Rc<str>),
    /// Symbol
    Sym(Rc<str>),
    /// Array of keys
    Array(Vec<HashKey>),
    /// Anything else, by identity.
    Ptr(usize),
}

impl HashKey {
    /// The key of a value.
    pub fn of(v: &Value) -> Self {
        match v {
            Value::Nil => Self::Nil,
            Value::Bool(b) => Self::Bool(*b),
            Value::Int(i) => Self::Int(*i),
            Value::Float(f) => Self::Float(f.to_bits()),
            Value::Str(s) => Self::Str(s.clone()),
            Value::Sym(s) => Self::Sym(s.clone()),
            Value::Array(a) => Self::Array(a.borrow().iter().map(Self::of).collect()),
            Value::Version(v) => Self::Str(v.text.as_str().into()),
            other => Self::Ptr(other.identity()),
        }
    }
}

/// An insertion-ordered hash with Ruby's default value and default proc.
#[derive(Clone, Debug, Default)]
pub struct RHash {
    entries: Vec<(Value, Value)>,
    index: HashMap<HashKey, usize>,
    /// `Hash.new(x)`
    pub default: Option<Value>,
    /// `Hash.new { |h, k| ... }`
    pub default_proc: Option<Rc<Proc>>,
}

impl RHash {
    /// An empty hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value at `k`.
    pub fn get(&self, k: &Value) -> Option<&Value> {
        self.index.get(&HashKey::of(k)).map(|&i| &self.entries[i].1)
    }

    /// Sets `k` to `v`, keeping the first insertion position.
    pub fn insert(&mut self, k: Value, v: Value) {
        let key = HashKey::of(&k);
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = v,
            None => {
                self.index.insert(key, self.entries.len());
                self.entries.push((k, v));
            }
        }
    }

    /// Removes `k`, returning its value.
    pub fn remove(&mut self, k: &Value) -> Option<Value> {
        let i = self.index.remove(&HashKey::of(k))?;
        let (_, v) = self.entries.remove(i);
        for idx in self.index.values_mut() {
            if *idx > i {
                *idx -= 1;
            }
        }
        Some(v)
    }

    /// Entries in insertion order.
    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Value, &Value) -> bool) {
        let old = std::mem::take(&mut self.entries);
        self.index.clear();
        for (k, v) in old {
            if keep(&k, &v) {
                self.insert(k, v);
            }
        }
    }

    /// A hash of these pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Value, Value)>) -> Self {
        let mut h = Self::new();
        for (k, v) in pairs {
            h.insert(k, v);
        }
        h
    }
}

impl Value {
    /// A string value.
    pub fn str(s: impl AsRef<str>) -> Self {
        Self::Str(Rc::from(s.as_ref()))
    }

    /// A symbol value.
    pub fn sym(s: impl AsRef<str>) -> Self {
        Self::Sym(Rc::from(s.as_ref()))
    }

    /// An array value.
    pub fn array(items: Vec<Value>) -> Self {
        Self::Array(Rc::new(RefCell::new(items)))
    }

    /// A hash value.
    pub fn hash(h: RHash) -> Self {
        Self::Hash(Rc::new(RefCell::new(h)))
    }

    /// Ruby truthiness: only nil and false are false.
    pub fn truthy(&self) -> bool {
        !matches!(self, Self::Nil | Self::Bool(false))
    }

    /// True for nil.
    pub fn is_nil(&self) -> bool {
        matches!(self, Self::Nil)
    }

    /// True for a value that depends on facts not gathered.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }

    /// Identity, for `equal?` and keys of reference values.
    pub fn identity(&self) -> usize {
        match self {
            Self::Array(a) => Rc::as_ptr(a) as *const () as usize,
            Self::Hash(h) | Self::Set(h) => Rc::as_ptr(h) as *const () as usize,
            Self::Resource(r) => Rc::as_ptr(r) as *const () as usize,
            Self::Object(o) => Rc::as_ptr(o) as *const () as usize,
            Self::Table(t) => Rc::as_ptr(t) as *const () as usize,
            Self::Row(r) => Rc::as_ptr(r) as *const () as usize,
            Self::TableSpec(t) => Rc::as_ptr(t) as *const () as usize,
            Self::Proc(p) => Rc::as_ptr(p) as *const () as usize,
            Self::Matcher(m) => Rc::as_ptr(m) as *const () as usize,
            Self::Regex(r) => Rc::as_ptr(r) as *const () as usize,
            _ => 0,
        }
    }

    /// Ruby's class name, for messages.
    pub fn class_name(&self) -> String {
        match self {
            Self::Nil => "NilClass".into(),
            Self::Bool(true) => "TrueClass".into(),
            Self::Bool(false) => "FalseClass".into(),
            Self::Int(_) => "Integer".into(),
            Self::Float(_) => "Float".into(),
            Self::Str(_) => "String".into(),
            Self::Sym(_) => "Symbol".into(),
            Self::Array(_) => "Array".into(),
            Self::Hash(_) => "Hash".into(),
            Self::Set(_) => "Set".into(),
            Self::Range(_) => "Range".into(),
            Self::Regex(_) => "Regexp".into(),
            Self::Match(_) => "MatchData".into(),
            Self::Proc(_) => "Proc".into(),
            Self::Date(_) => "Date".into(),
            Self::Version(_) => "Gem::Version".into(),
            Self::Resource(r) => format!("Inspec::Resources::{}", r.kind.name()),
            Self::Table(_) => "FilterTable::Table".into(),
            Self::Row(_) => "FilterTable::Row".into(),
            Self::TableSpec(_) => "FilterTable::Factory".into(),
            Self::Object(o) => o.class.name.clone(),
            Self::Class(_) => "Class".into(),
            Self::Matcher(_) => "RSpec::Matchers".into(),
            Self::Exception(e) => e.class.clone(),
            Self::Inspec => "Inspec::Backend".into(),
            Self::Unknown => "(not yet gathered)".into(),
        }
    }

    /// The string if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Ruby `to_s` for core values (objects and resources are handled by the interpreter).
    pub fn to_s(&self) -> String {
        match self {
            Self::Nil => String::new(),
            Self::Str(s) | Self::Sym(s) => s.to_string(),
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => float_to_s(*f),
            Self::Regex(r) => r.to_s(),
            Self::Date(d) => d.to_string(),
            Self::Version(v) => v.text.clone(),
            Self::Resource(r) => r.display.clone(),
            Self::Exception(e) => e.message.clone(),
            Self::Match(m) => m.whole().to_string(),
            Self::Class(ClassRef::Builtin(n)) => (*n).to_string(),
            Self::Class(ClassRef::User(c)) => c.name.clone(),
            _ => self.inspect(),
        }
    }

    /// Ruby `inspect` (Ruby 3.3 formatting).
    pub fn inspect(&self) -> String {
        let mut out = String::new();
        self.inspect_into(&mut out, 0);
        out
    }

    fn inspect_into(&self, out: &mut String, depth: usize) {
        if depth > 32 {
            out.push_str("[...]");
            return;
        }
        match self {
            Self::Nil => out.push_str("nil"),
            Self::Str(s) => out.push_str(&inspect_str(s)),
            Self::Sym(s) => {
                let plain = !s.is_empty()
                    && s.chars().all(|c| c.is_alphanumeric() || "_?!=".contains(c))
                    && !s.starts_with(|c: char| c.is_ascii_digit());
                if plain {
                    let _ = write!(out, ":{s}");
                } else {
                    let _ = write!(out, ":{}", inspect_str(s));
                }
            }
            Self::Array(a) => {
                out.push('[');
                for (i, v) in a.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.inspect_into(out, depth + 1);
                }
                out.push(']');
            }
            Self::Hash(h) => {
                out.push('{');
                for (i, (k, v)) in h.borrow().entries().iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.inspect_into(out, depth + 1);
                    out.push_str("=>");
                    v.inspect_into(out, depth + 1);
                }
                out.push('}');
            }
            Self::Set(h) => {
                out.push_str("#<Set: {");
                for (i, (k, _)) in h.borrow().entries().iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.inspect_into(out, depth + 1);
                }
                out.push_str("}>");
            }
            Self::Range(r) => {
                if !r.0.is_nil() {
                    r.0.inspect_into(out, depth + 1);
                }
                out.push_str(if r.2 { "..." } else { ".." });
                if !r.1.is_nil() {
                    r.1.inspect_into(out, depth + 1);
                }
            }
            Self::Regex(r) => out.push_str(&r.inspect()),
            Self::Version(v) => {
                let _ = write!(out, "#<Gem::Version {}>", inspect_str(&v.text));
            }
            Self::Date(d) => {
                let _ = write!(out, "#<Date: {d}>");
            }
            Self::Resource(r) => out.push_str(&r.display),
            Self::Object(o) => {
                let _ = write!(out, "#<{}>", o.class.name);
            }
            Self::Proc(_) => out.push_str("#<Proc>"),
            Self::Matcher(m) => out.push_str(&m.description()),
            Self::Table(t) => {
                let _ = write!(out, "#<FilterTable {}>", t.display);
            }
            Self::Row(r) => {
                out.push_str("#<struct ");
                for (i, (k, v)) in r.entries().iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{}=", k.to_s());
                    v.inspect_into(out, depth + 1);
                }
                out.push('>');
            }
            Self::Exception(e) => {
                let _ = write!(out, "#<{}: {}>", e.class, e.message);
            }
            Self::Unknown => out.push_str("(not yet gathered)"),
            other => out.push_str(&other.to_s()),
        }
    }
}

/// Ruby's `Float#to_s`: always a decimal point, exponent for large values.
pub fn float_to_s(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f.fract() == 0.0 && f.abs() < 1e16 {
        return format!("{f:.1}");
    }
    let s = format!("{f}");
    if s.contains('e') || s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Ruby's `String#inspect`.
pub fn inspect_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '#' => out.push('#'),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Ruby `==` for values that do not need the interpreter.
pub fn ruby_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        #[allow(clippy::cast_precision_loss)]
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => *x as f64 == *y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Sym(x), Value::Sym(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            Rc::ptr_eq(x, y) || {
                let (x, y) = (x.borrow(), y.borrow());
                x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| ruby_eq(p, q))
            }
        }
        (Value::Hash(x), Value::Hash(y)) | (Value::Set(x), Value::Set(y)) => {
            Rc::ptr_eq(x, y) || {
                let (x, y) = (x.borrow(), y.borrow());
                x.len() == y.len()
                    && x.entries()
                        .iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| ruby_eq(v, w)))
            }
        }
        (Value::Range(x), Value::Range(y)) => {
            x.2 == y.2 && ruby_eq(&x.0, &y.0) && ruby_eq(&x.1, &y.1)
        }
        (Value::Regex(x), Value::Regex(y)) => x.source == y.source && x.flags == y.flags,
        (Value::Date(x), Value::Date(y)) => x == y,
        (Value::Version(x), Value::Version(y)) => x.cmp_to(y) == std::cmp::Ordering::Equal,
        (Value::Class(ClassRef::Builtin(x)), Value::Class(ClassRef::Builtin(y))) => x == y,
        (Value::Class(ClassRef::User(x)), Value::Class(ClassRef::User(y))) => Rc::ptr_eq(x, y),
        _ => a.identity() != 0 && a.identity() == b.identity(),
    }
}

/// Ruby `<=>` for comparable core values; `None` when they do not compare.
pub fn ruby_cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        #[allow(clippy::cast_precision_loss)]
        (Value::Int(x), Value::Float(y)) => (*x as f64).partial_cmp(y),
        #[allow(clippy::cast_precision_loss)]
        (Value::Float(x), Value::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Value::Str(x), Value::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Sym(x), Value::Sym(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::Version(x), Value::Version(y)) => Some(x.cmp_to(y)),
        (Value::Bool(x), Value::Bool(y)) if x == y => Some(Ordering::Equal),
        (Value::Nil, Value::Nil) => Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            let (x, y) = (x.borrow(), y.borrow());
            for (p, q) in x.iter().zip(y.iter()) {
                match ruby_cmp(p, q)? {
                    Ordering::Equal => continue,
                    o => return Some(o),
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => None,
    }
}

/// A fresh environment-free helper: wraps pairs as a hash value.
pub fn hash_of(pairs: Vec<(Value, Value)>) -> Value {
    Value::hash(RHash::from_pairs(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_matches_ruby() {
        let h = hash_of(vec![
            (Value::str("a"), Value::Int(1)),
            (
                Value::sym("b"),
                Value::array(vec![Value::Nil, Value::Float(0.5)]),
            ),
        ]);
        assert_eq!(h.inspect(), r#"{"a"=>1, :b=>[nil, 0.5]}"#);
        assert_eq!(Value::str("a\"b\n").inspect(), r#""a\"b\n""#);
        assert_eq!(Value::Float(1.0).to_s(), "1.0");
        assert_eq!(Value::sym("foo bar").inspect(), r#":"foo bar""#);
    }

    #[test]
    fn equality_follows_ruby() {
        assert!(ruby_eq(&Value::Int(1), &Value::Float(1.0)));
        assert!(!ruby_eq(&Value::str("1"), &Value::Int(1)));
        assert!(!ruby_eq(&Value::sym("a"), &Value::str("a")));
        let mut h = RHash::new();
        h.insert(Value::Int(1), Value::str("int"));
        h.insert(Value::Float(1.0), Value::str("float"));
        assert_eq!(h.len(), 2, "1 and 1.0 are different keys (eql?)");
    }
}
