//! JSON and YAML text to values and back (for `JSON.parse`, the `json` and
//! `yaml` resources, and typed profile inputs).

use crate::inspec::interp::{Interp, R};
use crate::inspec::value::{RHash, Value, float_to_s};

/// A serde_json value as a Ruby value (string keys, as `JSON.parse`).
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::str(s),
        serde_json::Value::Array(a) => Value::array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => Value::hash(RHash::from_pairs(
            o.iter().map(|(k, v)| (Value::str(k), from_json(v))),
        )),
    }
}

/// A serde_yaml value as a Ruby value.
pub fn from_yaml(v: &serde_yaml::Value) -> Value {
    match v {
        serde_yaml::Value::Null => Value::Nil,
        serde_yaml::Value::Bool(b) => Value::Bool(*b),
        serde_yaml::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_yaml::Value::String(s) => Value::str(s),
        serde_yaml::Value::Sequence(a) => Value::array(a.iter().map(from_yaml).collect()),
        serde_yaml::Value::Mapping(m) => Value::hash(RHash::from_pairs(
            m.iter().map(|(k, v)| (from_yaml(k), from_yaml(v))),
        )),
        serde_yaml::Value::Tagged(t) => from_yaml(&t.value),
    }
}

/// `JSON.parse`.
///
/// # Errors
/// JSON::ParserError on malformed text.
pub fn parse(it: &Interp<'_>, text: &str) -> R<Value> {
    it.alloc(text.len() * 2)?;
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => Ok(from_json(&v)),
        Err(e) => it.raise("ParserError", format!("unexpected token: {e}")),
    }
}

/// `YAML.load`.
///
/// # Errors
/// Psych::SyntaxError on malformed text.
pub fn parse_yaml(it: &Interp<'_>, text: &str) -> R<Value> {
    it.alloc(text.len() * 2)?;
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(v) => Ok(from_yaml(&v)),
        Err(e) => it.raise("SyntaxError", format!("{e}")),
    }
}

/// `to_json` / `JSON.generate`.
///
/// # Errors
/// Never in practice (values that are not JSON become strings).
pub fn generate(v: &Value) -> R<String> {
    Ok(to_json(v).to_string())
}

/// A Ruby value as JSON (for HDF input values and `to_json`).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or_else(
            || serde_json::Value::String(float_to_s(*f)),
            serde_json::Value::Number,
        ),
        Value::Str(s) | Value::Sym(s) => serde_json::Value::String(s.to_string()),
        Value::Array(a) => serde_json::Value::Array(a.borrow().iter().map(to_json).collect()),
        Value::Hash(h) => serde_json::Value::Object(
            h.borrow()
                .entries()
                .iter()
                .map(|(k, v)| (k.to_s(), to_json(v)))
                .collect(),
        ),
        other => serde_json::Value::String(other.to_s()),
    }
}
