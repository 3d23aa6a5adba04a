//! `Array` and the `Enumerable` methods every collection shares (hashes,
//! ranges and sets iterate through here too).

use std::cmp::Ordering;
use std::rc::Rc;

use crate::inspec::interp::{Args, Flow, Interp, R};
use crate::inspec::value::{RHash, Shared, Value, ruby_cmp, ruby_eq};

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
#[allow(clippy::too_many_lines)]
pub fn enumerable(it: &Interp<'_>, items: &[Value], name: &str, args: &Args) -> R<Option<Value>> {
    it.tick(items.len() as u64)?;
    let a0 = args.get(0).cloned();
    let has_block = args.block.is_some();
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
#[allow(clippy::too_many_lines)]
pub fn call(
    it: &Interp<'_>,
    recv: &Value,
    a: &Shared<Vec<Value>>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let len = a.borrow().len();
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
                        return it.raise("IndexError", format!("index {i} outside of array bounds"));
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
        "each" | "each_with_index" => {
            let items = a.borrow().clone();
            enumerable(it, &items, name, args)?;
            recv.clone()
        }
        _ => {
            let items = a.borrow().clone();
            return enumerable(it, &items, name, args);
        }
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
