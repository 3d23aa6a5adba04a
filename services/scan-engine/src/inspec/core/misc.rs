//! Methods of the smaller core types: nil, booleans, regexes, match data,
//! procs, versions, exceptions, and `File`'s pure path helpers.

use std::rc::Rc;

use crate::inspec::interp::{Args, Interp, Proc, R};
use crate::inspec::support::{GemVersion, MatchData};
use crate::inspec::value::{RHash, Value, ruby_cmp};

/// Methods of nil, booleans, regexes, match data, procs, versions and exceptions.
///
/// # Errors
/// As a called proc.
pub fn call(it: &Interp<'_>, recv: &Value, name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    match recv {
        Value::Nil => Ok(Some(match name {
            "to_s" => Value::str(""),
            "to_a" => Value::array(Vec::new()),
            "to_i" => Value::Int(0),
            "to_f" => Value::Float(0.0),
            "to_h" => Value::hash(RHash::new()),
            "inspect" => Value::str("nil"),
            "&" => Value::Bool(false),
            "|" => Value::Bool(a0.truthy()),
            _ => return Ok(None),
        })),
        Value::Bool(b) => Ok(Some(match name {
            "&" | "&&" => Value::Bool(*b && a0.truthy()),
            "|" | "||" => Value::Bool(*b || a0.truthy()),
            "^" => Value::Bool(*b != a0.truthy()),
            "to_s" | "inspect" => Value::str(b.to_string()),
            _ => return Ok(None),
        })),
        Value::Sym(s) => super::string::symbol(it, s, name, args),
        Value::Regex(r) => regex(it, r, name, args),
        Value::Match(m) => Ok(match_data(m, name, &a0)),
        Value::Proc(p) => proc_call(it, p, name, args),
        Value::Version(v) => version(it, recv, v, name, &a0),
        Value::Exception(e) => Ok(Some(match name {
            "message" | "to_s" => Value::str(&e.message),
            "backtrace" => Value::array(Vec::new()),
            _ => return Ok(None),
        })),
        Value::Set(s) => super::hash::set_call(it, recv, s, name, args),
        _ => Ok(None),
    }
}

fn regex(
    it: &Interp<'_>,
    r: &Rc<crate::inspec::ruby_regex::RubyRegex>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    Ok(Some(match name {
        "match" | "=~" | "match?" | "===" => {
            let text: Rc<str> = match &a0 {
                Value::Str(s) | Value::Sym(s) => s.clone(),
                Value::Nil => {
                    return Ok(Some(if name == "match?" || name == "===" {
                        Value::Bool(false)
                    } else {
                        Value::Nil
                    }));
                }
                other => Rc::from(other.to_s().as_str()),
            };
            it.tick(1 + text.len() as u64 / 256)?;
            let md =
                r.re.captures(&text)
                    .map(|c| Rc::new(MatchData::new(text.clone(), &c, &r.re)));
            match name {
                "match?" | "===" => Value::Bool(md.is_some()),
                _ => {
                    *it.last_match.borrow_mut() = md.clone();
                    match (name, md) {
                        ("=~", Some(m)) => Value::Int(
                            i64::try_from(text[..m.groups[0].map_or(0, |g| g.0)].chars().count())
                                .unwrap_or(0),
                        ),
                        ("match", Some(m)) => Value::Match(m),
                        _ => Value::Nil,
                    }
                }
            }
        }
        "source" => Value::str(&r.source),
        "to_s" => Value::str(r.to_s()),
        "inspect" => Value::str(r.inspect()),
        "casefold?" => Value::Bool(r.flags.ignore_case),
        "names" => Value::array(r.re.capture_names().flatten().map(Value::str).collect()),
        _ => return Ok(None),
    }))
}

fn match_data(m: &Rc<MatchData>, name: &str, a0: &Value) -> Option<Value> {
    Some(match name {
        "[]" => match a0 {
            Value::Int(i) => usize::try_from(*i).map_or(Value::Nil, |i| m.group_value(i)),
            Value::Str(n) | Value::Sym(n) => m.named(n).map_or(Value::Nil, Value::str),
            _ => Value::Nil,
        },
        "captures" => Value::array((1..m.groups.len()).map(|i| m.group_value(i)).collect()),
        "named_captures" => Value::hash(RHash::from_pairs(
            m.names
                .iter()
                .map(|(n, i)| (Value::str(n), m.group_value(*i))),
        )),
        "names" => Value::array(m.names.iter().map(|(n, _)| Value::str(n)).collect()),
        "to_a" => Value::array((0..m.groups.len()).map(|i| m.group_value(i)).collect()),
        "to_s" => Value::str(m.whole()),
        "pre_match" => Value::str(&m.text[..m.groups[0].map_or(0, |g| g.0)]),
        "post_match" => Value::str(&m.text[m.groups[0].map_or(0, |g| g.1)..]),
        "begin" => Value::Int(i64::try_from(m.groups[0].map_or(0, |g| g.0)).unwrap_or(0)),
        _ => return None,
    })
}

fn proc_call(it: &Interp<'_>, p: &Rc<Proc>, name: &str, args: &Args) -> R<Option<Value>> {
    Ok(Some(match name {
        "call" | "()" | "yield" | "[]" | "===" => {
            it.call_proc(p, args.pos.clone(), args.block.clone())?
        }
        "to_proc" => Value::Proc(p.clone()),
        "lambda?" => Value::Bool(p.lambda),
        "arity" => Value::Int(match &p.body {
            crate::inspec::interp::ProcBody::Block { block, .. } => {
                i64::try_from(block.params.positional_count()).unwrap_or(0)
            }
            crate::inspec::interp::ProcBody::Symbol(_) => -2,
        }),
        _ => return Ok(None),
    }))
}

fn version(
    it: &Interp<'_>,
    recv: &Value,
    v: &Rc<GemVersion>,
    name: &str,
    a0: &Value,
) -> R<Option<Value>> {
    let other = match a0 {
        Value::Version(o) => Some(o.clone()),
        Value::Str(s) => GemVersion::parse(s).map(Rc::new),
        _ => None,
    };
    Ok(Some(match name {
        "to_s" | "version" => Value::str(&v.text),
        "segments" => Value::array(v.segment_values()),
        "release" => recv.clone(),
        "prerelease?" => Value::Bool(v.text.chars().any(|c| c.is_ascii_alphabetic())),
        "<=>" => other.map_or(Value::Nil, |o| Value::Int(v.cmp_to(&o) as i64)),
        "<" | ">" | "<=" | ">=" | "==" | "!=" => match other {
            Some(o) => {
                let ord = v.cmp_to(&o);
                Value::Bool(match name {
                    "==" => ord.is_eq(),
                    "!=" => !ord.is_eq(),
                    _ => super::ordering_holds(name, ord),
                })
            }
            None => {
                return it.raise(
                    "ArgumentError",
                    format!("comparison of Gem::Version with {} failed", a0.inspect()),
                );
            }
        },
        "approximate_recommendation" | "bump" => {
            return it.unsupported(format!("Gem::Version#{name}"));
        }
        _ => {
            let _ = ruby_cmp(recv, a0);
            return Ok(None);
        }
    }))
}

/// `File.join`, `File.basename`, `File.dirname`, `File.extname`, `File.split`;
/// anything that would touch the scanner's host is refused.
///
/// # Errors
/// Refusal for host access.
pub fn file_path_call(it: &Interp<'_>, name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).map(Value::to_s).unwrap_or_default();
    let base = |p: &str| {
        p.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let dir = |p: &str| {
        let t = p.trim_end_matches('/');
        match t.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => t[..i].to_string(),
            None => ".".to_string(),
        }
    };
    Ok(Some(match name {
        "join" => {
            let parts: Vec<String> = args
                .positional()
                .iter()
                .flat_map(|v| match v {
                    Value::Array(a) => a.borrow().iter().map(Value::to_s).collect::<Vec<_>>(),
                    other => vec![other.to_s()],
                })
                .collect();
            let mut out = String::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 && !out.ends_with('/') && !p.starts_with('/') {
                    out.push('/');
                }
                out.push_str(if i > 0 && out.ends_with('/') {
                    p.trim_start_matches('/')
                } else {
                    p
                });
            }
            it.new_str(out)?
        }
        "basename" => {
            let b = base(&a0);
            match args.get(1).map(Value::to_s) {
                Some(ext) if ext == ".*" => {
                    Value::str(b.rsplit_once('.').map_or(b.as_str(), |(s, _)| s))
                }
                Some(ext) => Value::str(b.strip_suffix(ext.as_str()).unwrap_or(&b)),
                None => Value::str(b),
            }
        }
        "dirname" => Value::str(dir(&a0)),
        "extname" => {
            let b = base(&a0);
            Value::str(b.rfind('.').filter(|i| *i > 0).map_or("", |i| &b[i..]))
        }
        "split" => Value::array(vec![Value::str(dir(&a0)), Value::str(base(&a0))]),
        "absolute_path?" => Value::Bool(a0.starts_with('/')),
        _ => {
            return it.refuse(format!(
                "`File.{name}` (it reads the scanner's host; use the `file` resource)"
            ));
        }
    }))
}
