//! Ruby's core methods on the values profiles compute with: strings,
//! arrays, hashes, sets, numbers, ranges, dates, versions, regexes. Every
//! loop over elements spends budget, and every allocation is accounted
//! for before it is made.

use std::cmp::Ordering;

use super::interp::{Args, Interp, R};
use super::value::Value;

pub mod array;
pub mod date;
pub mod enumerable;
pub mod format;
pub mod hash;
pub mod json;
pub mod misc;
pub mod numeric;
pub mod range;
pub mod string;

/// Dispatches a core method by the receiver's type; `None` when unknown.
///
/// # Errors
/// As the method.
pub fn call(it: &Interp<'_>, recv: &Value, name: &str, args: &Args) -> R<Option<Value>> {
    match recv {
        Value::Str(s) => string::call(it, s, name, args),
        Value::Array(a) => array::call(it, recv, a, name, args),
        Value::Hash(h) => hash::call(it, recv, h, name, args),
        Value::Int(_) | Value::Float(_) => numeric::call(it, recv, name, args),
        Value::Range(_) => range::call(it, recv, name, args),
        Value::Date(_) => date::call(it, recv, name, args),
        _ => misc::call(it, recv, name, args),
    }
}

/// Whether `o` satisfies the comparison operator `op`.
pub fn ordering_holds(op: &str, o: Ordering) -> bool {
    match op {
        "<" => o == Ordering::Less,
        ">" => o == Ordering::Greater,
        "<=" => o != Ordering::Greater,
        ">=" => o != Ordering::Less,
        "==" => o == Ordering::Equal,
        "!=" => o != Ordering::Equal,
        _ => false,
    }
}

/// A best-effort `respond_to?` for core values.
pub fn responds(v: &Value, name: &str) -> bool {
    match v {
        Value::Str(_) => string::METHODS.contains(&name),
        Value::Array(_) | Value::Set(_) => array::METHODS.contains(&name),
        Value::Hash(_) => matches!(
            name,
            "keys" | "values" | "each" | "[]" | "key?" | "fetch" | "dig" | "merge"
        ),
        Value::Int(_) | Value::Float(_) => {
            matches!(name, "to_i" | "to_f" | "+" | "-" | "<" | ">" | "abs")
        }
        _ => false,
    }
}
