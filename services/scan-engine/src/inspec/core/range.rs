//! `Range` methods; ranges are expanded only within the memory budget.

use std::cmp::Ordering;

use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::value::{Value, ruby_cmp};

/// Whether `v` lies in the range value `r`.
pub fn includes(r: &Value, v: &Value) -> bool {
    let Value::Range(r) = r else { return false };
    let lo_ok = r.0.is_nil() || ruby_cmp(&r.0, v).is_some_and(|o| o != Ordering::Greater);
    let hi_ok = r.1.is_nil()
        || ruby_cmp(v, &r.1).is_some_and(|o| {
            if r.2 {
                o == Ordering::Less
            } else {
                o != Ordering::Greater
            }
        });
    lo_ok && hi_ok
}

/// The elements of an integer (or one-character string) range.
///
/// # Errors
/// Endless ranges, non-integer ranges, or ranges too large for the budget.
pub fn expand(it: &Interp<'_>, v: &Value) -> R<Vec<Value>> {
    let Value::Range(r) = v else {
        return Ok(Vec::new());
    };
    match (&r.0, &r.1) {
        (Value::Int(a), Value::Int(b)) => {
            let end = if r.2 { *b - 1 } else { *b };
            if end < *a {
                return Ok(Vec::new());
            }
            let n = usize::try_from(end - a + 1).unwrap_or(usize::MAX);
            it.alloc(n.saturating_mul(16))?;
            it.tick(n as u64)?;
            Ok((*a..=end).map(Value::Int).collect())
        }
        (Value::Str(a), Value::Str(b)) if a.chars().count() == 1 && b.chars().count() == 1 => {
            let (x, y) = (
                a.chars().next().unwrap_or('a') as u32,
                b.chars().next().unwrap_or('a') as u32,
            );
            let end = if r.2 { y.saturating_sub(1) } else { y };
            Ok((x..=end)
                .filter_map(char::from_u32)
                .map(|c| Value::str(c.to_string()))
                .collect())
        }
        (_, Value::Nil) => it.unsupported("iterating an endless range"),
        _ => it.unsupported(format!("iterating the range {}", v.inspect())),
    }
}

/// Range methods; `None` when `name` is not one.
///
/// # Errors
/// As [`expand`] or the block.
pub fn call(it: &Interp<'_>, recv: &Value, name: &str, args: &Args) -> R<Option<Value>> {
    let Value::Range(r) = recv else {
        return Ok(None);
    };
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    Ok(Some(match name {
        "include?" | "member?" | "cover?" | "===" => Value::Bool(includes(recv, &a0)),
        "first" | "begin" | "min" if a0.is_nil() && args.block.is_none() => r.0.clone(),
        "last" | "end" if a0.is_nil() => r.1.clone(),
        "max" if args.block.is_none() => match &r.1 {
            Value::Int(b) if r.2 => Value::Int(b - 1),
            other => other.clone(),
        },
        "exclude_end?" => Value::Bool(r.2),
        "size" | "count" if args.block.is_none() && a0.is_nil() => match (&r.0, &r.1) {
            (Value::Int(a), Value::Int(b)) => {
                Value::Int((if r.2 { b - 1 } else { *b } - a + 1).max(0))
            }
            _ => Value::Nil,
        },
        "to_a" | "to_ary" | "entries" => it.new_array(expand(it, recv)?)?,
        "step" => {
            let Value::Int(step) = a0 else {
                return it.raise("ArgumentError", "step must be an integer");
            };
            let items: Vec<Value> = expand(it, recv)?
                .into_iter()
                .step_by(usize::try_from(step.max(1)).unwrap_or(1))
                .collect();
            if let Some(b) = &args.block {
                for v in items {
                    it.call_proc(b, vec![v], None)?;
                }
                recv.clone()
            } else {
                Value::array(items)
            }
        }
        "each" => {
            let items = expand(it, recv)?;
            super::array::enumerable(it, &items, "each", args)?;
            recv.clone()
        }
        _ => {
            let items = expand(it, recv)?;
            return super::array::enumerable(it, &items, name, args);
        }
    }))
}
