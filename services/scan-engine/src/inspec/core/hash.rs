//! `Hash` and `Set` methods.

use std::rc::Rc;

use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::value::{RHash, Shared, Value, ruby_eq};

fn int(i: usize) -> Value {
    Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
}

fn pair(k: &Value, v: &Value) -> Value {
    Value::array(vec![k.clone(), v.clone()])
}

fn pairs(h: &Shared<RHash>) -> Vec<Value> {
    h.borrow()
        .entries()
        .iter()
        .map(|(k, v)| pair(k, v))
        .collect()
}

/// `h[k]`, honouring the default value and default proc.
///
/// # Errors
/// As the default proc.
pub fn index(it: &Interp<'_>, recv: &Value, h: &Shared<RHash>, k: &Value) -> R<Value> {
    if let Some(v) = h.borrow().get(k) {
        return Ok(v.clone());
    }
    let (default, proc_) = {
        let b = h.borrow();
        (b.default.clone(), b.default_proc.clone())
    };
    if let Some(p) = proc_ {
        return it.call_proc(&p, vec![recv.clone(), k.clone()], None);
    }
    Ok(default.unwrap_or(Value::Nil))
}

/// Hash methods; `None` when `name` is not one.
///
/// # Errors
/// As the block or on bad arguments.
pub fn call(
    it: &Interp<'_>,
    recv: &Value,
    h: &Shared<RHash>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    it.tick(1 + h.borrow().len() as u64 / 16)?;
    if let Some(v) = access(it, recv, h, name, args)? {
        return Ok(Some(v));
    }
    if let Some(v) = transform(it, recv, h, name, args)? {
        return Ok(Some(v));
    }
    let items = pairs(h);
    super::array::enumerable(it, &items, name, args)
}

fn access(
    it: &Interp<'_>,
    recv: &Value,
    h: &Shared<RHash>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    Ok(Some(match name {
        "[]" => index(it, recv, h, &a0)?,
        "[]=" | "store" => {
            let v = args.get(1).cloned().unwrap_or(Value::Nil);
            it.alloc(32)?;
            h.borrow_mut().insert(a0, v.clone());
            v
        }
        "fetch" => match h.borrow().get(&a0) {
            Some(v) => v.clone(),
            None => match (args.get(1), &args.block) {
                (Some(d), _) => d.clone(),
                (None, Some(b)) => return it.call_proc(b, vec![a0], None).map(Some),
                (None, None) => {
                    return it.raise("KeyError", format!("key not found: {}", a0.inspect()));
                }
            },
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
        "key?" | "has_key?" | "include?" | "member?" => Value::Bool(h.borrow().get(&a0).is_some()),
        "value?" | "has_value?" => {
            Value::Bool(h.borrow().entries().iter().any(|(_, v)| ruby_eq(v, &a0)))
        }
        "key" => h
            .borrow()
            .entries()
            .iter()
            .find(|(_, v)| ruby_eq(v, &a0))
            .map_or(Value::Nil, |(k, _)| k.clone()),
        "keys" => Value::array(
            h.borrow()
                .entries()
                .iter()
                .map(|(k, _)| k.clone())
                .collect(),
        ),
        "values" => Value::array(
            h.borrow()
                .entries()
                .iter()
                .map(|(_, v)| v.clone())
                .collect(),
        ),
        "values_at" => Value::array(
            args.positional()
                .iter()
                .map(|k| h.borrow().get(k).cloned().unwrap_or(Value::Nil))
                .collect(),
        ),
        "length" | "size" => int(h.borrow().len()),
        "count" if args.block.is_none() && args.get(0).is_none() => int(h.borrow().len()),
        "empty?" => Value::Bool(h.borrow().is_empty()),
        "any?" if args.block.is_none() => Value::Bool(!h.borrow().is_empty()),
        "delete" => h.borrow_mut().remove(&a0).unwrap_or(Value::Nil),
        "to_h" if args.block.is_none() => recv.clone(),
        "to_hash" => recv.clone(),
        "to_a" => Value::array(pairs(h)),
        "dup" | "clone" => Value::hash(h.borrow().clone()),
        "first" => match a0 {
            Value::Int(n) => Value::array(
                pairs(h)
                    .into_iter()
                    .take(usize::try_from(n).unwrap_or(0))
                    .collect(),
            ),
            _ => pairs(h).into_iter().next().unwrap_or(Value::Nil),
        },
        "==" | "eql?" => Value::Bool(ruby_eq(recv, &a0)),
        "each" | "each_pair" => {
            let items = pairs(h);
            super::array::enumerable(it, &items, "each", args)?;
            recv.clone()
        }
        "each_key" | "each_value" => {
            let items: Vec<Value> = h
                .borrow()
                .entries()
                .iter()
                .map(|(k, v)| {
                    if name == "each_key" {
                        k.clone()
                    } else {
                        v.clone()
                    }
                })
                .collect();
            super::array::enumerable(it, &items, "each", args)?;
            recv.clone()
        }
        _ => return Ok(None),
    }))
}

fn transform(
    it: &Interp<'_>,
    recv: &Value,
    h: &Shared<RHash>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let entries = || h.borrow().entries().to_vec();
    Ok(Some(match name {
        "merge" | "update" | "merge!" => merge(it, recv, h, name, args)?,
        "select" | "filter" | "reject" | "filter_map_h" => {
            let keep = name != "reject";
            let mut out = RHash::new();
            let Some(b) = &args.block else {
                return Ok(None);
            };
            for (k, v) in entries() {
                if it.call_proc(b, vec![k.clone(), v.clone()], None)?.truthy() == keep {
                    out.insert(k, v);
                }
            }
            Value::hash(out)
        }
        "select!" | "keep_if" | "reject!" | "delete_if" => {
            let keep = matches!(name, "select!" | "keep_if");
            let Some(b) = &args.block else {
                return Ok(None);
            };
            let mut out = RHash::new();
            for (k, v) in entries() {
                if it.call_proc(b, vec![k.clone(), v.clone()], None)?.truthy() == keep {
                    out.insert(k, v);
                }
            }
            let mut hb = h.borrow_mut();
            hb.retain(|k, _| out.get(k).is_some());
            drop(hb);
            recv.clone()
        }
        "transform_values" | "transform_keys" => {
            let Some(b) = &args.block else {
                return Ok(None);
            };
            let mut out = RHash::new();
            for (k, v) in entries() {
                if name == "transform_values" {
                    out.insert(k, it.call_proc(b, vec![v], None)?);
                } else {
                    out.insert(it.call_proc(b, vec![k], None)?, v);
                }
            }
            Value::hash(out)
        }
        "invert" => Value::hash(RHash::from_pairs(
            entries().into_iter().map(|(k, v)| (v, k)),
        )),
        "slice" => {
            let keys = args.positional();
            Value::hash(RHash::from_pairs(
                entries()
                    .into_iter()
                    .filter(|(k, _)| keys.iter().any(|x| ruby_eq(x, k))),
            ))
        }
        "except" => {
            let keys = args.positional();
            Value::hash(RHash::from_pairs(
                entries()
                    .into_iter()
                    .filter(|(k, _)| !keys.iter().any(|x| ruby_eq(x, k))),
            ))
        }
        "compact" => Value::hash(RHash::from_pairs(
            entries().into_iter().filter(|(_, v)| !v.is_nil()),
        )),
        "sort_by" | "min_by" | "max_by" | "sort" | "group_by" | "partition" | "sum" | "map"
        | "flat_map" | "collect" | "filter_map" | "find" | "detect" | "each_with_object"
        | "each_with_index" | "inject" | "reduce" | "count" | "any?" | "all?" | "none?"
        | "find_all" => {
            let _ = a0;
            return Ok(None);
        }
        "default=" => {
            h.borrow_mut().default = Some(a0.clone());
            a0
        }
        "clear" => {
            h.borrow_mut().retain(|_, _| false);
            recv.clone()
        }
        _ => return Ok(None),
    }))
}

/// `merge` (a new hash) and `merge!`/`update` (in place), with a conflict block.
fn merge(it: &Interp<'_>, recv: &Value, h: &Shared<RHash>, name: &str, args: &Args) -> R<Value> {
    let mut out = if name == "merge" {
        h.borrow().clone()
    } else {
        RHash::new()
    };
    for other in args.positional() {
        if let Value::Hash(o) = other {
            for (k, v) in o.borrow().entries() {
                let nv = match (
                    &args.block,
                    out.get(k).cloned().or_else(|| h.borrow().get(k).cloned()),
                ) {
                    (Some(b), Some(old)) => {
                        it.call_proc(b, vec![k.clone(), old, v.clone()], None)?
                    }
                    _ => v.clone(),
                };
                out.insert(k.clone(), nv);
            }
        }
    }
    if name == "merge" {
        return Ok(Value::hash(out));
    }
    for (k, v) in out.entries() {
        h.borrow_mut().insert(k.clone(), v.clone());
    }
    Ok(recv.clone())
}

/// Set methods; `None` when `name` is not one.
///
/// # Errors
/// As the block or on bad arguments.
pub fn set_call(
    it: &Interp<'_>,
    recv: &Value,
    s: &Shared<RHash>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let keys = || {
        s.borrow()
            .entries()
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    let make = |items: Vec<Value>| {
        let mut h = RHash::new();
        for v in items {
            h.insert(v, Value::Bool(true));
        }
        Value::Set(Rc::new(std::cell::RefCell::new(h)))
    };
    Ok(Some(match name {
        "add" | "<<" => {
            it.alloc(32)?;
            s.borrow_mut().insert(a0, Value::Bool(true));
            recv.clone()
        }
        "add?" => {
            if s.borrow().get(&a0).is_some() {
                Value::Nil
            } else {
                s.borrow_mut().insert(a0, Value::Bool(true));
                recv.clone()
            }
        }
        "delete" => {
            s.borrow_mut().remove(&a0);
            recv.clone()
        }
        "include?" | "member?" | "===" | "contain?" => Value::Bool(s.borrow().get(&a0).is_some()),
        "size" | "length" | "count" if args.block.is_none() => int(s.borrow().len()),
        "empty?" => Value::Bool(s.borrow().is_empty()),
        "to_a" => Value::array(keys()),
        "to_set" | "dup" => make(keys()),
        "subset?" | "<=" => {
            let other = it.to_list(&a0)?;
            Value::Bool(keys().iter().all(|k| other.iter().any(|o| ruby_eq(o, k))))
        }
        "superset?" | ">=" => {
            let other = it.to_list(&a0)?;
            Value::Bool(other.iter().all(|o| s.borrow().get(o).is_some()))
        }
        "|" | "union" | "+" => {
            let mut v = keys();
            v.extend(it.to_list(&a0)?);
            make(v)
        }
        "&" | "intersection" => {
            let other = it.to_list(&a0)?;
            make(
                keys()
                    .into_iter()
                    .filter(|k| other.iter().any(|o| ruby_eq(o, k)))
                    .collect(),
            )
        }
        "-" | "difference" => {
            let other = it.to_list(&a0)?;
            make(
                keys()
                    .into_iter()
                    .filter(|k| !other.iter().any(|o| ruby_eq(o, k)))
                    .collect(),
            )
        }
        "==" => Value::Bool(ruby_eq(recv, &a0)),
        _ => {
            let items = keys();
            return super::array::enumerable(it, &items, name, args);
        }
    }))
}
