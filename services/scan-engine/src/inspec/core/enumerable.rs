//! `Enumerable`: the iteration methods arrays, hashes (as pairs), ranges
//! and sets share. Every element spends budget; `break` ends an iteration
//! with its value.

use std::cmp::Ordering;
use std::rc::Rc;

use crate::inspec::interp::{Args, Flow, Interp, R};
use crate::inspec::value::{RHash, Value, ruby_cmp};

fn int(i: usize) -> Value {
    Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
}

/// Calls the block with one item, ending the iteration on `break`.
fn yield1(it: &Interp<'_>, args: &Args, v: Value) -> R<Value> {
    match &args.block {
        Some(b) => it.call_proc(b, vec![v], None),
        None => Ok(v),
    }
}

/// Runs an iteration, turning `break v` into its result.
fn catching(r: R<Value>) -> R<Value> {
    match r {
        Err(Flow::Break(v)) => Ok(v),
        other => other,
    }
}

fn sort_values(it: &Interp<'_>, items: &mut [Value]) -> R<()> {
    let mut err = None;
    items.sort_by(|a, b| match ruby_cmp(a, b) {
        Some(o) => o,
        None => {
            err.get_or_insert_with(|| {
                format!(
                    "comparison of {} with {} failed",
                    a.class_name(),
                    b.class_name()
                )
            });
            Ordering::Equal
        }
    });
    match err {
        Some(e) => it.raise("ArgumentError", e),
        None => Ok(()),
    }
}

/// Enumerable methods over `items`; `None` when `name` is not one.
///
/// # Errors
/// As the block; comparisons of incomparable values raise ArgumentError.
pub fn enumerable(it: &Interp<'_>, items: &[Value], name: &str, args: &Args) -> R<Option<Value>> {
    it.tick(items.len() as u64)?;
    if let Some(v) = iterate(it, items, name, args)? {
        return Ok(Some(v));
    }
    if let Some(v) = aggregate(it, items, name, args)? {
        return Ok(Some(v));
    }
    reshape(it, items, name, args)
}

/// `each`, `map`, `select`, `find` and friends.
fn iterate(it: &Interp<'_>, items: &[Value], name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned();
    let has_block = args.block.is_some();
    let _ = (&a0, has_block);
    Ok(Some(match name {
        "each" | "each_entry" => catching((|| {
            for v in items {
                yield1(it, args, v.clone())?;
            }
            Ok(Value::Nil)
        })())?,
        "each_with_index" => catching((|| {
            for (i, v) in items.iter().enumerate() {
                if let Some(b) = &args.block {
                    it.call_proc(b, vec![v.clone(), int(i)], None)?;
                }
            }
            Ok(Value::Nil)
        })())?,
        "map" | "collect" | "flat_map" | "collect_concat" | "filter_map" => {
            let mut out = Vec::with_capacity(items.len());
            let r = catching((|| {
                for v in items {
                    let m = yield1(it, args, v.clone())?;
                    match (name, m) {
                        ("flat_map" | "collect_concat", Value::Array(a)) => {
                            out.extend(a.borrow().iter().cloned());
                        }
                        ("filter_map", m) if !m.truthy() => {}
                        (_, m) => out.push(m),
                    }
                }
                Ok(Value::Unknown)
            })())?;
            if !r.is_unknown() {
                return Ok(Some(r));
            }
            it.new_array(out)?
        }
        "select" | "filter" | "reject" => {
            let keep_truthy = name != "reject";
            let mut out = Vec::new();
            for v in items {
                if yield1(it, args, v.clone())?.truthy() == keep_truthy {
                    out.push(v.clone());
                }
            }
            it.new_array(out)?
        }
        "partition" => {
            let (mut yes, mut no) = (Vec::new(), Vec::new());
            for v in items {
                if yield1(it, args, v.clone())?.truthy() {
                    yes.push(v.clone());
                } else {
                    no.push(v.clone());
                }
            }
            Value::array(vec![Value::array(yes), Value::array(no)])
        }
        "find" | "detect" => {
            for v in items {
                if yield1(it, args, v.clone())?.truthy() {
                    return Ok(Some(v.clone()));
                }
            }
            Value::Nil
        }
        "find_index" | "index" => {
            for (i, v) in items.iter().enumerate() {
                let hit = match (&a0, has_block) {
                    (Some(x), _) => it.equal(v, x)?,
                    (None, true) => yield1(it, args, v.clone())?.truthy(),
                    _ => false,
                };
                if hit {
                    return Ok(Some(int(i)));
                }
            }
            Value::Nil
        }
        _ => return Ok(None),
    }))
}

/// `any?`, `count`, `inject`, `sum`, `min`/`max`, sorting.
fn aggregate(it: &Interp<'_>, items: &[Value], name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned();
    let has_block = args.block.is_some();
    let _ = (&a0, has_block);
    Ok(Some(match name {
        "any?" | "all?" | "none?" | "one?" => {
            let mut hits = 0usize;
            for v in items {
                let t = match (&a0, has_block) {
                    (Some(p), _) => it.case_eq(p, v)?.unwrap_or(false),
                    (None, true) => {
                        let r = yield1(it, args, v.clone())?;
                        if r.is_unknown() {
                            return Ok(Some(Value::Unknown));
                        }
                        r.truthy()
                    }
                    _ => v.truthy(),
                };
                hits += usize::from(t);
                if name == "all?" && !t {
                    return Ok(Some(Value::Bool(false)));
                }
            }
            Value::Bool(match name {
                "any?" => hits > 0,
                "all?" => true,
                "none?" => hits == 0,
                _ => hits == 1,
            })
        }
        "count" => {
            let mut n = 0usize;
            for v in items {
                n += usize::from(match (&a0, has_block) {
                    (Some(x), _) => it.equal(v, x)?,
                    (None, true) => yield1(it, args, v.clone())?.truthy(),
                    _ => true,
                });
            }
            int(n)
        }
        "include?" | "member?" => {
            let x = a0.unwrap_or(Value::Nil);
            let mut found = false;
            for v in items {
                if it.equal(v, &x)? {
                    found = true;
                    break;
                }
            }
            Value::Bool(found)
        }
        "each_with_object" => {
            let memo = a0.unwrap_or(Value::Nil);
            if let Some(b) = &args.block {
                catching((|| {
                    for v in items {
                        it.call_proc(b, vec![v.clone(), memo.clone()], None)?;
                    }
                    Ok(Value::Nil)
                })())?;
            }
            memo
        }
        "inject" | "reduce" => reduce(it, items, args)?,
        "sum" => {
            let mut acc = a0.unwrap_or(Value::Int(0));
            for v in items {
                let x = yield1(it, args, v.clone())?;
                acc = it.call_method(&acc, "+", Args::one(x), it.at.get())?;
            }
            acc
        }
        "min" | "max" | "sort" => {
            let mut v = items.to_vec();
            if let Some(b) = &args.block {
                let mut err = None;
                v.sort_by(
                    |x, y| match it.call_proc(b, vec![x.clone(), y.clone()], None) {
                        Ok(Value::Int(o)) => o.cmp(&0),
                        Ok(_) => Ordering::Equal,
                        Err(e) => {
                            err.get_or_insert(e);
                            Ordering::Equal
                        }
                    },
                );
                if let Some(e) = err {
                    return Err(e);
                }
            } else {
                sort_values(it, &mut v)?;
            }
            match name {
                "min" => v.first().cloned().unwrap_or(Value::Nil),
                "max" => v.last().cloned().unwrap_or(Value::Nil),
                _ => it.new_array(v)?,
            }
        }
        "sort_by" | "min_by" | "max_by" => {
            let mut keyed = Vec::with_capacity(items.len());
            for v in items {
                keyed.push((yield1(it, args, v.clone())?, v.clone()));
            }
            let mut keys: Vec<Value> = keyed.iter().map(|(k, _)| k.clone()).collect();
            sort_values(it, &mut keys)?;
            keyed.sort_by(|a, b| ruby_cmp(&a.0, &b.0).unwrap_or(Ordering::Equal));
            let sorted: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
            match name {
                "min_by" => sorted.first().cloned().unwrap_or(Value::Nil),
                "max_by" => sorted.last().cloned().unwrap_or(Value::Nil),
                _ => it.new_array(sorted)?,
            }
        }
        _ => return Ok(None),
    }))
}

/// `group_by`, `tally`, conversions, slices, `zip`, `uniq`.
fn reshape(it: &Interp<'_>, items: &[Value], name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned();
    let has_block = args.block.is_some();
    let _ = (&a0, has_block);
    Ok(Some(match name {
        "group_by" => {
            let mut h = RHash::new();
            for v in items {
                let k = yield1(it, args, v.clone())?;
                match h.get(&k) {
                    Some(Value::Array(a)) => a.borrow_mut().push(v.clone()),
                    _ => h.insert(k, Value::array(vec![v.clone()])),
                }
            }
            Value::hash(h)
        }
        "tally" => {
            let mut h = RHash::new();
            for v in items {
                let n = match h.get(v) {
                    Some(Value::Int(n)) => n + 1,
                    _ => 1,
                };
                h.insert(v.clone(), Value::Int(n));
            }
            Value::hash(h)
        }
        "to_a" | "entries" => it.new_array(items.to_vec())?,
        "to_h" => {
            let mut h = RHash::new();
            for v in items {
                let pair = yield1(it, args, v.clone())?;
                if let Value::Array(p) = pair {
                    let p = p.borrow();
                    h.insert(
                        p.first().cloned().unwrap_or(Value::Nil),
                        p.get(1).cloned().unwrap_or(Value::Nil),
                    );
                }
            }
            Value::hash(h)
        }
        "to_set" => {
            let mut h = RHash::new();
            for v in items {
                h.insert(v.clone(), Value::Bool(true));
            }
            Value::Set(Rc::new(std::cell::RefCell::new(h)))
        }
        "each_slice" | "each_cons" => {
            let n = match a0 {
                Some(Value::Int(n)) if n > 0 => usize::try_from(n).unwrap_or(1),
                _ => return it.raise("ArgumentError", "invalid slice size"),
            };
            let groups: Vec<Value> = if name == "each_slice" {
                items.chunks(n).map(|c| Value::array(c.to_vec())).collect()
            } else {
                items.windows(n).map(|c| Value::array(c.to_vec())).collect()
            };
            if args.block.is_none() {
                return Ok(Some(Value::array(groups)));
            }
            for g in groups {
                yield1(it, args, g)?;
            }
            Value::Nil
        }
        "zip" => {
            let others: Vec<Vec<Value>> = args
                .positional()
                .iter()
                .map(|o| it.to_list(o))
                .collect::<R<_>>()?;
            Value::array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let mut row = vec![v.clone()];
                        row.extend(
                            others
                                .iter()
                                .map(|o| o.get(i).cloned().unwrap_or(Value::Nil)),
                        );
                        Value::array(row)
                    })
                    .collect(),
            )
        }
        "first" => match a0 {
            Some(Value::Int(n)) => Value::array(
                items
                    .iter()
                    .take(usize::try_from(n).unwrap_or(0))
                    .cloned()
                    .collect(),
            ),
            _ => items.first().cloned().unwrap_or(Value::Nil),
        },
        "uniq" => {
            let mut seen = RHash::new();
            let mut out = Vec::new();
            for v in items {
                let key = yield1(it, args, v.clone())?;
                if seen.get(&key).is_none() {
                    seen.insert(key, Value::Nil);
                    out.push(v.clone());
                }
            }
            it.new_array(out)?
        }
        "lazy" | "each_entry_lazy" => it.new_array(items.to_vec())?,
        _ => return Ok(None),
    }))
}

fn reduce(it: &Interp<'_>, items: &[Value], args: &Args) -> R<Value> {
    let (mut acc, op, rest) = match (args.get(0), args.get(1), &args.block) {
        (Some(Value::Sym(op)), None, None) => (None, Some(op.to_string()), items),
        (Some(init), Some(Value::Sym(op)), _) => (Some(init.clone()), Some(op.to_string()), items),
        (Some(init), None, Some(_)) => (Some(init.clone()), None, items),
        _ => (None, None, items),
    };
    for v in rest {
        acc = Some(match acc {
            None => v.clone(),
            Some(a) => match (&op, &args.block) {
                (Some(op), _) => it.call_method(&a, op, Args::one(v.clone()), it.at.get())?,
                (None, Some(b)) => it.call_proc(b, vec![a, v.clone()], None)?,
                (None, None) => {
                    return it.raise("ArgumentError", "inject needs a block or a symbol");
                }
            },
        });
    }
    Ok(acc.unwrap_or(Value::Nil))
}
