//! `nginx` (from `nginx -V`, shell targets only) and `nginx_conf`: the
//! configuration parsed into InSpec's params shape (`{"http" => [{...}]}`,
//! directive values as arrays of their arguments), `include` followed.

use std::rc::Rc;

use super::{Got, ResKind, Resource, cached, command, text};
use crate::facts::{CommandFact, FactRequest, FactValue, WalkFact};
use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::value::{RHash, Value};

/// Display names.
pub fn display(kind: ResKind, arg: String) -> (String, String) {
    match kind {
        ResKind::Nginx => (
            if arg.is_empty() {
                "/usr/sbin/nginx".into()
            } else {
                arg
            },
            "Nginx Environment".into(),
        ),
        _ => {
            let p = if arg.is_empty() {
                "/etc/nginx/nginx.conf".to_string()
            } else {
                arg
            };
            (p.clone(), format!("nginx_conf {p}"))
        }
    }
}

/// Members of both resources.
///
/// # Errors
/// ResourceSkipped where commands cannot run; parse errors.
pub fn call(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    if r.kind == ResKind::Nginx {
        return binary(it, r, name);
    }
    let params = cached(r, || {
        // The usual include directories are listed up front, so includes of
        // them need only one more round trip (for the files themselves).
        for d in [
            "/etc/nginx/conf.d",
            "/etc/nginx/sites-enabled",
            "/etc/nginx/modules-enabled",
        ] {
            let _ = it.fact(&FactRequest::Walk(d.into()));
        }
        let mut budget = 64usize;
        Ok(match parse_file(it, &r.arg, &mut budget)? {
            Some(h) => Value::hash(h),
            None => Value::Unknown,
        })
    })?;
    if params.is_unknown() {
        return Ok(Some(Value::Unknown));
    }
    let get = |h: &Value, k: &str| match h {
        Value::Hash(h) => h
            .borrow()
            .get(&Value::str(k))
            .cloned()
            .unwrap_or(Value::array(Vec::new())),
        _ => Value::array(Vec::new()),
    };
    Ok(Some(match name {
        "params" => params,
        "http" | "entries" => get(&params, "http"),
        "servers" => flat(&get(&params, "http"), "server"),
        "locations" => flat(&flat(&get(&params, "http"), "server"), "location"),
        "[]" => get(&params, &args.get(0).map(Value::to_s).unwrap_or_default()),
        _ => return Ok(None),
    }))
}

fn flat(blocks: &Value, key: &str) -> Value {
    let mut out = Vec::new();
    if let Value::Array(a) = blocks {
        for b in a.borrow().iter() {
            if let Value::Hash(h) = b
                && let Some(Value::Array(items)) = h.borrow().get(&Value::str(key))
            {
                out.extend(items.borrow().iter().cloned());
            }
        }
    }
    Value::array(out)
}

fn binary(it: &Interp<'_>, r: &Rc<Resource>, name: &str) -> R<Option<Value>> {
    if !matches!(
        name,
        "version"
            | "modules"
            | "openssl_version"
            | "compiler_info"
            | "support_info"
            | "prefix"
            | "service"
    ) {
        return Ok(None);
    }
    let cmd = format!("'{}' -V 2>&1", r.arg.replace('\'', r"'\''"));
    let out = match command(it, &cmd) {
        Got::Unknown => return Ok(Some(Value::Unknown)),
        Got::Ready(CommandFact::Ran { stdout, .. }) => String::from_utf8_lossy(stdout).into_owned(),
        Got::Ready(CommandFact::Unsupported(w)) => return it.raise("ResourceSkipped", w.clone()),
        Got::Ready(CommandFact::Error(e)) => return it.raise("ResourceFailed", e.clone()),
    };
    let after = |p: &str| {
        out.lines()
            .find_map(|l| l.split_once(p).map(|(_, v)| v.trim().to_string()))
    };
    Ok(Some(match name {
        "version" => after("nginx version: nginx/").map_or(Value::Nil, |v| {
            Value::str(v.split_whitespace().next().unwrap_or(""))
        }),
        "modules" => Value::array(
            out.split_whitespace()
                .filter_map(|w| {
                    w.strip_prefix("--with-")
                        .and_then(|m| m.strip_suffix("_module"))
                })
                .map(Value::str)
                .collect(),
        ),
        "openssl_version" => after("built with OpenSSL ").map_or(Value::Nil, |v| {
            Value::hash(RHash::from_pairs([(
                Value::sym("version"),
                Value::str(v.split_whitespace().next().unwrap_or("")),
            )]))
        }),
        "compiler_info" => after("built by ").map_or(Value::Nil, Value::str),
        "prefix" => out
            .split_whitespace()
            .find_map(|w| w.strip_prefix("--prefix="))
            .map_or(Value::Nil, Value::str),
        _ => Value::str("nginx"),
    }))
}

/// Parses one file (following `include`); `None` when a fact is missing.
fn parse_file(it: &Interp<'_>, path: &str, budget: &mut usize) -> R<Option<RHash>> {
    if *budget == 0 {
        return it.raise("ResourceFailed", "nginx_conf: too many included files");
    }
    *budget -= 1;
    let t = match text(it, path) {
        Got::Unknown => return Ok(None),
        Got::Ready(Ok(t)) => t.unwrap_or_default(),
        Got::Ready(Err(e)) => return it.raise("ResourceFailed", e),
    };
    let tokens = tokenize(&t);
    let mut pos = 0;
    parse_block(it, &tokens, &mut pos, path, budget)
}

fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                    cur.push(d);
                }
                out.push(std::mem::take(&mut cur));
            }
            ';' | '{' | '}' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn push(h: &mut RHash, key: &str, v: Value) {
    match h.get(&Value::str(key)) {
        Some(Value::Array(a)) => a.borrow_mut().push(v),
        _ => h.insert(Value::str(key), Value::array(vec![v])),
    }
}

fn parse_block(
    it: &Interp<'_>,
    tokens: &[String],
    pos: &mut usize,
    path: &str,
    budget: &mut usize,
) -> R<Option<RHash>> {
    let mut h = RHash::new();
    let mut words: Vec<String> = Vec::new();
    while *pos < tokens.len() {
        it.tick(1)?;
        let t = &tokens[*pos];
        *pos += 1;
        match t.as_str() {
            ";" => {
                if words.first().map(String::as_str) == Some("include") {
                    for pat in &words[1..] {
                        for f in include_targets(it, pat, path)? {
                            match f {
                                None => return Ok(None),
                                Some(f) => match parse_file(it, &f, budget)? {
                                    None => return Ok(None),
                                    Some(inner) => {
                                        for (k, v) in inner.entries() {
                                            if let Value::Array(items) = v {
                                                for item in items.borrow().iter() {
                                                    push(&mut h, &k.to_s(), item.clone());
                                                }
                                            }
                                        }
                                    }
                                },
                            }
                        }
                    }
                } else if let Some((k, rest)) = words.split_first() {
                    push(
                        &mut h,
                        k,
                        Value::array(rest.iter().map(Value::str).collect()),
                    );
                }
                words.clear();
            }
            "{" => {
                let Some(inner) = parse_block(it, tokens, pos, path, budget)? else {
                    return Ok(None);
                };
                let mut inner = inner;
                if words.len() > 1 {
                    inner.insert(
                        Value::str("_"),
                        Value::array(words[1..].iter().map(Value::str).collect()),
                    );
                }
                if let Some(k) = words.first() {
                    push(&mut h, k, Value::hash(inner));
                }
                words.clear();
            }
            "}" => return Ok(Some(h)),
            w => words.push(w.to_string()),
        }
    }
    Ok(Some(h))
}

/// Files an `include` names (a `*` glob in the last component); `None` entries mean unknown.
fn include_targets(it: &Interp<'_>, pat: &str, from: &str) -> R<Vec<Option<String>>> {
    let base = from.rsplit_once('/').map_or("/etc/nginx", |(d, _)| d);
    let full = if pat.starts_with('/') {
        pat.to_string()
    } else {
        format!("{base}/{pat}")
    };
    if !full.contains('*') {
        return Ok(vec![Some(full)]);
    }
    let (dir, file_pat) = full.rsplit_once('/').unwrap_or(("/", &full));
    let (pre, post) = file_pat.split_once('*').unwrap_or((file_pat, ""));
    Ok(match it.fact(&FactRequest::Walk(dir.to_string())) {
        None => vec![None],
        Some(FactValue::Walk(WalkFact::Entries { entries, .. })) => {
            let mut v: Vec<Option<String>> = entries
                .iter()
                .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                .filter(|p| {
                    p.rsplit_once('/').is_some_and(|(d, f)| {
                        d == dir
                            && f.starts_with(pre)
                            && f.ends_with(post)
                            && f.len() >= pre.len() + post.len()
                    })
                })
                .map(Some)
                .collect();
            v.sort();
            v
        }
        Some(_) => Vec::new(),
    })
}
