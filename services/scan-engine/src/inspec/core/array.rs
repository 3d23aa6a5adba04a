//! `Array` and the `Enumerable` methods every collection shares (hashes,
//! ranges and sets iterate through here too).
use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::value::{RHash, Shared, Value, ruby_cmp, ruby_eq};

pub use super::enumerable::enumerable;

fn int(i: usize) -> Value {
    Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
}

fn index_of(len: usize, i: i64) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let idx = if i < 0 { len + i } else { i };
    (0..len)
        .contains(&idx)
        .then(|| usize::try_from(idx).ok())
        .flatten()
}

/// `[]` on a sequence of `len` items: index, `start, len` or a range.
pub fn slice_range(len: usize, args: &Args) -> Option<Result<usize, (usize, usize)>> {
    match (args.get(0), args.get(1)) {
        (Some(Value::Int(i)), None) => index_of(len, *i).map(Ok),
        (Some(Value::Int(s)), Some(Value::Int(n))) => {
            let start = if *s < 0 {
                i64::try_from(len).ok()? + s
            } else {
                *s
            };
            let start = usize::try_from(start).ok().filter(|s| *s <= len)?;
            let n = usize::try_from(*n).ok()?;
            Some(Err((start, n.min(len - start))))
        }
        (Some(Value::Range(r)), None) => {
            let l = i64::try_from(len).ok()?;
            let s = match &r.0 {
                Value::Int(s) => *s,
                Value::Nil => 0,
                _ => return None,
            };
            let e = match &r.1 {
                Value::Int(e) => *e,
                Value::Nil => -1,
                _ => return None,
            };
            let s = if s < 0 { l + s } else { s };
            let mut e = if e < 0 { l + e } else { e };
            if r.2 && !matches!(r.1, Value::Nil) {
                e -= 1;
            }
            if s < 0 || s > l {
                return None;
            }
            let e = e.min(l - 1);
            let n = usize::try_from((e - s + 1).max(0)).ok()?;
            Some(Err((usize::try_from(s).ok()?, n)))
        }
        _ => None,
    }
}

/// Array methods; `None` when `name` is not one.
///
/// # Errors
/// As the block or on bad arguments.
pub fn call(
    it: &Interp<'_>,
    recv: &Value,
    a: &Shared<Vec<Value>>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    for part in [access, grow, combine, shrink] {
        if let Some(v) = part(it, recv, a, name, args)? {
            return Ok(Some(v));
        }
    }
    let items = a.borrow().clone();
    if matches!(name, "each" | "each_with_index") {
        enumerable(it, &items, name, args)?;
        return Ok(Some(recv.clone()));
    }
    enumerable(it, &items, name, args)
}

/// Reading: size, indexing, `dig`, `fetch`, `first`/`last`.
fn access(
    it: &Interp<'_>,
    recv: &Value,
    a: &Shared<Vec<Value>>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let len = a.borrow().len();
    let _ = (&a0, len, recv);
    Ok(Some(match name {
        "length" | "size" => int(len),
        "empty?" => Value::Bool(len == 0),
        "any?" if args.block.is_none() && args.get(0).is_none() => {
            Value::Bool(a.borrow().iter().any(Value::truthy))
        }
        "[]" | "slice" => match slice_range(len, args) {
            Some(Ok(i)) => a.borrow()[i].clone(),
            Some(Err((s, n))) => Value::array(a.borrow()[s..s + n].to_vec()),
            None => Value::Nil,
        },
        "dig" => {
            let mut cur = recv.clone();
            for k in args.positional() {
                cur = it.call_method(&cur, "[]", Args::one(k.clone()), it.at.get())?;
                if cur.is_nil() {
                    break;
                }
            }
            cur
        }
        "fetch" => match &a0 {
            Value::Int(i) => match index_of(len, *i) {
                Some(i) => a.borrow()[i].clone(),
                None => match args.get(1) {
                    Some(d) => d.clone(),
                    None => {
                        return it
                            .raise("IndexError", format!("index {i} outside of array bounds"));
                    }
                },
            },
            _ => return it.raise("TypeError", "no implicit conversion into Integer"),
        },
        "[]=" => {
            let v = args.pos.last().cloned().unwrap_or(Value::Nil);
            if let Value::Int(i) = a0 {
                let idx = if i < 0 {
                    i64::try_from(len).unwrap_or(0) + i
                } else {
                    i
                };
                let idx = usize::try_from(idx).unwrap_or(0);
                it.alloc(16 * idx.saturating_sub(len))?;
                let mut b = a.borrow_mut();
                if idx >= b.len() {
                    b.resize(idx + 1, Value::Nil);
                }
                b[idx] = v.clone();
            }
            v
        }
        "last" => match &a0 {
            Value::Int(n) => {
                let n = usize::try_from(*n).unwrap_or(0).min(len);
                Value::array(a.borrow()[len - n..].to_vec())
            }
            _ => a.borrow().last().cloned().unwrap_or(Value::Nil),
        },
        "take" => Value::array(
            a.borrow()
                .iter()
                .take(usize::try_from(int_of(&a0)).unwrap_or(0))
                .cloned()
                .collect(),
        ),
        "drop" => Value::array(
            a.borrow()
                .iter()
                .skip(usize::try_from(int_of(&a0)).unwrap_or(0))
                .cloned()
                .collect(),
        ),
        _ => return Ok(None),
    }))
}

/// Adding: `push`, `unshift`, `concat`; taking one off: `pop`, `shift`.
fn grow(
    it: &Interp<'_>,
    recv: &Value,
    a: &Shared<Vec<Value>>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let len = a.borrow().len();
    let _ = (&a0, len, recv);
    Ok(Some(match name {
        "push" | "append" | "<<" => {
            it.alloc(16 * args.pos.len())?;
            a.borrow_mut().extend(args.pos.iter().cloned());
            recv.clone()
        }
        "unshift" | "prepend" => {
            let mut b = a.borrow_mut();
            for (i, v) in args.pos.iter().enumerate() {
                b.insert(i, v.clone());
            }
            recv.clone()
        }
        "pop" => a.borrow_mut().pop().unwrap_or(Value::Nil),
        "shift" => {
            let mut b = a.borrow_mut();
            if b.is_empty() {
                Value::Nil
            } else {
                b.remove(0)
            }
        }
        "concat" => {
            for o in args.positional() {
                let items = it.to_list(o)?;
                it.alloc(16 * items.len())?;
                a.borrow_mut().extend(items);
            }
            recv.clone()
        }
        _ => return Ok(None),
    }))
}

/// New arrays from this one: `+`, `-`, `&`, `|`, `*`, `join`, `flatten`, ...
fn combine(
    it: &Interp<'_>,
    recv: &Value,
    a: &Shared<Vec<Value>>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let len = a.borrow().len();
    let _ = (&a0, len, recv);
    Ok(Some(match name {
        "+" => {
            let mut v = a.borrow().clone();
            v.extend(it.to_list(&a0)?);
            it.new_array(v)?
        }
        "-" | "difference" => {
            let other = it.to_list(&a0)?;
            let mut set = RHash::new();
            for o in other {
                set.insert(o, Value::Nil);
            }
            Value::array(
                a.borrow()
                    .iter()
                    .filter(|v| set.get(v).is_none())
                    .cloned()
                    .collect(),
            )
        }
        "&" | "intersection" => {
            let other = it.to_list(&a0)?;
            let mut set = RHash::new();
            for o in other {
                set.insert(o, Value::Nil);
            }
            let kept: Vec<Value> = a
                .borrow()
                .iter()
                .filter(|v| set.get(v).is_some())
                .cloned()
                .collect();
            return enumerable(it, &kept, "uniq", &Args::none());
        }
        "|" | "union" => {
            let mut v = a.borrow().clone();
            v.extend(it.to_list(&a0)?);
            return enumerable(it, &v, "uniq", &Args::none());
        }
        "*" => match &a0 {
            Value::Str(sep) => it.new_str(join(it, a, sep)?)?,
            Value::Int(n) => {
                let n = usize::try_from(*n).unwrap_or(0);
                it.alloc(len.saturating_mul(n).saturating_mul(16))?;
                Value::array(a.borrow().iter().cloned().cycle().take(len * n).collect())
            }
            _ => return Ok(None),
        },
        "join" => {
            let sep = if a0.is_nil() {
                String::new()
            } else {
                a0.to_s()
            };
            it.new_str(join(it, a, &sep)?)?
        }
        "flatten" => {
            let mut out = Vec::new();
            flatten_into(&a.borrow(), &mut out, 0);
            it.new_array(out)?
        }
        "compact" => Value::array(a.borrow().iter().filter(|v| !v.is_nil()).cloned().collect()),
        "reverse" => Value::array(a.borrow().iter().rev().cloned().collect()),
        "rotate" => {
            let mut v = a.borrow().clone();
            if !v.is_empty() {
                let n = int_of(&if a0.is_nil() { Value::Int(1) } else { a0 })
                    .rem_euclid(i64::try_from(v.len()).unwrap_or(1));
                v.rotate_left(usize::try_from(n).unwrap_or(0));
            }
            Value::array(v)
        }
        _ => return Ok(None),
    }))
}

/// Removing and in-place variants, copies and comparisons.
fn shrink(
    it: &Interp<'_>,
    recv: &Value,
    a: &Shared<Vec<Value>>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let len = a.borrow().len();
    let _ = (&a0, len, recv);
    Ok(Some(match name {
        "delete" => {
            let before = len;
            let mut kept = Vec::new();
            for v in a.borrow().iter() {
                if !it.equal(v, &a0)? {
                    kept.push(v.clone());
                }
            }
            let removed = kept.len() != before;
            *a.borrow_mut() = kept;
            if removed { a0 } else { Value::Nil }
        }
        "delete_at" => match index_of(len, int_of(&a0)) {
            Some(i) => a.borrow_mut().remove(i),
            None => Value::Nil,
        },
        "delete_if" | "reject!" | "select!" | "keep_if" | "filter!" | "map!" | "collect!"
        | "uniq!" | "compact!" | "sort!" | "flatten!" | "sort_by!" | "reverse!" => {
            let plain = match name {
                "delete_if" | "reject!" => "reject",
                "select!" | "keep_if" | "filter!" => "select",
                "map!" | "collect!" => "map",
                other => other.trim_end_matches('!'),
            };
            let items = a.borrow().clone();
            let new = match call(it, recv, a, plain, args)? {
                Some(v) => v,
                None => return Ok(None),
            };
            if let Value::Array(n) = &new {
                *a.borrow_mut() = n.borrow().clone();
            }
            let _ = items;
            recv.clone()
        }
        "clear" => {
            a.borrow_mut().clear();
            recv.clone()
        }
        "dup" | "clone" => Value::array(a.borrow().clone()),
        "to_a" | "to_ary" | "entries" => recv.clone(),
        "sample" | "shuffle" => return it.refuse(format!("Array#{name} (randomness)")),
        "==" | "eql?" => Value::Bool(ruby_eq(recv, &a0)),
        "<=>" => ruby_cmp(recv, &a0).map_or(Value::Nil, |o| Value::Int(o as i64)),
        "product" | "combination" | "permutation" | "cycle" | "transpose" | "each_index"
        | "bsearch" | "pack" | "assoc" | "insert" | "fill" => {
            return it.unsupported(format!("Array#{name}"));
        }
        _ => return Ok(None),
    }))
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

fn flatten_into(items: &[Value], out: &mut Vec<Value>, depth: usize) {
    for v in items {
        match v {
            Value::Array(inner) if depth < 64 => flatten_into(&inner.borrow(), out, depth + 1),
            other => out.push(other.clone()),
        }
    }
}

fn join(it: &Interp<'_>, a: &Shared<Vec<Value>>, sep: &str) -> R<String> {
    let mut out = String::new();
    for (i, v) in a.borrow().iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        match v {
            Value::Array(inner) => out.push_str(&join(it, inner, sep)?),
            other => out.push_str(&it.to_s_value(other)?),
        }
        it.alloc(0)?;
    }
    it.alloc(out.len())?;
    Ok(out)
}

/// Names `respond_to?` reports for arrays.
pub const METHODS: &[&str] = &[
    "length", "size", "empty?", "each", "map", "select", "reject", "first", "last", "include?",
    "join", "flatten", "uniq", "compact", "sort", "count", "any?", "all?", "push", "<<",
];
