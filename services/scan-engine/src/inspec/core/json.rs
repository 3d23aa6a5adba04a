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

/// A YAML value as a Ruby value.
pub fn from_yaml(v: &yaml_serde::Value) -> Value {
    match v {
        yaml_serde::Value::Null => Value::Nil,
        yaml_serde::Value::Bool(b) => Value::Bool(*b),
        yaml_serde::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        yaml_serde::Value::String(s) => Value::str(s),
        yaml_serde::Value::Sequence(a) => Value::array(a.iter().map(from_yaml).collect()),
        yaml_serde::Value::Mapping(m) => Value::hash(RHash::from_pairs(
            m.iter().map(|(k, v)| (from_yaml(k), from_yaml(v))),
        )),
        yaml_serde::Value::Tagged(t) => from_yaml(&t.value),
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

/// A plain YAML scalar typed as Ruby's Psych (YAML 1.1) types it: `yes`,
/// `no`, `on`, `off` are booleans, `~` and `null` nil, numbers numbers.
fn psych_scalar(text: &str, plain: bool) -> Value {
    if !plain {
        return Value::str(text);
    }
    match text.to_ascii_lowercase().as_str() {
        "" | "~" | "null" => return Value::Nil,
        "true" | "yes" | "on" | "y" => return Value::Bool(true),
        "false" | "no" | "off" | "n" => return Value::Bool(false),
        _ => {}
    }
    let digits = text.replace('_', "");
    if let Ok(i) = digits.parse::<i64>() {
        return Value::Int(i);
    }
    if let Some(h) = digits.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(h, 16)
    {
        return Value::Int(i);
    }
    if digits.contains('.')
        && let Ok(f) = digits.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::str(text)
}

fn from_node(n: &marked_yaml::Node) -> Value {
    match n {
        marked_yaml::Node::Scalar(s) => psych_scalar(s.as_str(), s.may_coerce()),
        marked_yaml::Node::Sequence(seq) => Value::array(seq.iter().map(from_node).collect()),
        marked_yaml::Node::Mapping(m) => {
            Value::hash(RHash::from_pairs(m.iter().map(|(k, v)| {
                (psych_scalar(k.as_str(), k.may_coerce()), from_node(v))
            })))
        }
    }
}

/// `YAML.load`, typed as Ruby's Psych types plain scalars.
///
/// # Errors
/// Psych::SyntaxError on malformed text.
pub fn parse_yaml(it: &Interp<'_>, text: &str) -> R<Value> {
    it.alloc(text.len() * 2)?;
    if text.trim().is_empty() {
        return Ok(Value::Bool(false));
    }
    // Mapping or sequence at the top, whichever the text has.
    let seq = text.trim_start().starts_with('-') || text.trim_start().starts_with('[');
    let opts = if seq {
        marked_yaml::LoaderOptions::default().toplevel_sequence()
    } else {
        marked_yaml::LoaderOptions::default()
    };
    match marked_yaml::parse_yaml_with_options(0, text, opts) {
        Ok(n) => Ok(from_node(&n)),
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
