//! `String` and `Symbol` methods as profiles use them on fact values.

use std::rc::Rc;

use crate::inspec::ast::RegexFlags;
use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::ruby_regex::RubyRegex;
use crate::inspec::support::MatchData;
use crate::inspec::value::{Value, ruby_cmp};

const WS: &[char] = &[' ', '\t', '\n', '\x0b', '\x0c', '\r', '\0'];

fn int(i: usize) -> Value {
    Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
}

/// A regex from a pattern argument (a string pattern matches literally).
fn pattern(it: &Interp<'_>, v: &Value) -> R<Rc<RubyRegex>> {
    match v {
        Value::Regex(r) => Ok(r.clone()),
        other => match RubyRegex::literal(&other.to_s()) {
            Ok(r) => Ok(Rc::new(r)),
            Err(e) => it.unsupported(e),
        },
    }
}

/// Ruby's leading-integer parse (`"12abc".to_i == 12`), in `base`.
pub fn leading_int(s: &str, base: u32) -> i64 {
    let t = s.trim_start_matches(WS);
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let digits = match base {
        16 => digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
            .unwrap_or(digits),
        8 => digits.strip_prefix("0o").unwrap_or(digits),
        2 => digits.strip_prefix("0b").unwrap_or(digits),
        _ => digits,
    };
    let mut v: i64 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let Some(d) = c.to_digit(base) else { break };
        v = v
            .saturating_mul(i64::from(base))
            .saturating_add(i64::from(d));
    }
    if neg { -v } else { v }
}

/// Ruby's leading-float parse.
pub fn leading_float(s: &str) -> f64 {
    let t = s.trim_start_matches(WS);
    let mut end = 0;
    let b = t.as_bytes();
    let mut seen_dot = false;
    let mut seen_e = false;
    while end < b.len() {
        let c = b[end];
        let ok = c.is_ascii_digit()
            || (c == b'-' || c == b'+') && (end == 0 || matches!(b[end - 1], b'e' | b'E'))
            || c == b'.' && !seen_dot && !seen_e
            || (c == b'e' || c == b'E') && !seen_e && end > 0;
        if !ok {
            break;
        }
        seen_dot |= c == b'.';
        seen_e |= c == b'e' || c == b'E';
        end += 1;
    }
    t[..end]
        .trim_end_matches(['e', 'E', '.', '-', '+'])
        .parse()
        .unwrap_or(0.0)
}

/// Expands `tr`-style sets (`a-z`).
fn expand_set(set: &str) -> (Vec<char>, bool) {
    let (negate, body) = match set.strip_prefix('^') {
        Some(b) if !b.is_empty() => (true, b),
        _ => (false, set),
    };
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            let (a, b) = (chars[i] as u32, chars[i + 2] as u32);
            for c in a..=b.min(a + 0x1_0000) {
                if let Some(c) = char::from_u32(c) {
                    out.push(c);
                }
            }
            i += 3;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    (out, negate)
}

/// Ruby `split`.
fn split(it: &Interp<'_>, s: &str, args: &Args) -> R<Vec<String>> {
    let limit = match args.get(1) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    };
    let mut parts: Vec<String> = match args.get(0) {
        None | Some(Value::Nil) => {
            let it_ws = s
                .split(|c: char| c.is_ascii_whitespace() || c == '\0')
                .filter(|p| !p.is_empty());
            if limit > 0 {
                let lim = usize::try_from(limit).unwrap_or(usize::MAX);
                let mut out: Vec<String> = Vec::new();
                let mut rest = s.trim_start_matches(WS);
                while out.len() + 1 < lim {
                    match rest.find(|c: char| c.is_ascii_whitespace()) {
                        Some(i) => {
                            out.push(rest[..i].to_string());
                            rest = rest[i..].trim_start_matches(WS);
                        }
                        None => break,
                    }
                }
                if !rest.is_empty() {
                    out.push(rest.to_string());
                }
                return Ok(out);
            }
            it_ws.map(String::from).collect()
        }
        Some(Value::Str(sep)) if sep.as_ref() == " " => {
            return split(
                it,
                s,
                &Args::new(vec![
                    Value::Nil,
                    args.get(1).cloned().unwrap_or(Value::Int(0)),
                ]),
            );
        }
        Some(Value::Str(sep)) if sep.is_empty() => s.chars().map(String::from).collect(),
        Some(Value::Str(sep)) => {
            if limit > 0 {
                s.splitn(usize::try_from(limit).unwrap_or(usize::MAX), sep.as_ref())
                    .map(String::from)
                    .collect()
            } else {
                s.split(sep.as_ref()).map(String::from).collect()
            }
        }
        Some(Value::Regex(r)) => {
            if limit > 0 {
                r.re.splitn(s, usize::try_from(limit).unwrap_or(usize::MAX))
                    .map(String::from)
                    .collect()
            } else {
                r.re.split(s).map(String::from).collect()
            }
        }
        Some(other) => {
            return it.raise(
                "TypeError",
                format!(
                    "wrong argument type {} (expected Regexp)",
                    other.class_name()
                ),
            );
        }
    };
    if limit == 0 {
        while parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
    }
    it.alloc(parts.iter().map(|p| p.len() + 24).sum())?;
    Ok(parts)
}

/// Expands `\1`, `\0`, `\&` and `\k<name>` in a replacement.
fn expand_replacement(rep: &str, m: &MatchData) -> String {
    let mut out = String::new();
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(d @ '0'..='9') => out.push_str(m.group(d as usize - '0' as usize).unwrap_or("")),
            Some('&') => out.push_str(m.whole()),
            Some('k') if chars.peek() == Some(&'<') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                out.push_str(m.named(&name).unwrap_or(""));
            }
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn gsub(it: &Interp<'_>, s: &Rc<str>, args: &Args, global: bool) -> R<Value> {
    let re = pattern(it, args.get(0).unwrap_or(&Value::Nil))?;
    let mut out = String::new();
    let mut last = 0;
    for caps in re.re.captures_iter(s) {
        it.tick(1)?;
        let Some(whole) = caps.get(0) else { continue };
        let md = MatchData::new(s.clone(), &caps, &re.re);
        out.push_str(&s[last..whole.start()]);
        let rep = match (args.get(1), &args.block) {
            (Some(Value::Hash(h)), _) => h
                .borrow()
                .get(&Value::str(whole.as_str()))
                .map(Value::to_s)
                .unwrap_or_default(),
            (Some(r), _) => expand_replacement(&r.to_s(), &md),
            (None, Some(b)) => {
                *it.last_match.borrow_mut() = Some(Rc::new(md.clone()));
                let v = it.call_proc(b, vec![Value::str(whole.as_str())], None)?;
                it.to_s_value(&v)?
            }
            (None, None) => return it.unsupported("gsub without a replacement (an enumerator)"),
        };
        out.push_str(&rep);
        last = whole.end();
        it.alloc(rep.len())?;
        if !global {
            break;
        }
    }
    out.push_str(&s[last..]);
    it.new_str(out)
}

fn index_arg(it: &Interp<'_>, s: &Rc<str>, args: &Args) -> R<Value> {
    let chars: Vec<char> = s.chars().collect();
    Ok(match args.get(0) {
        Some(Value::Regex(r)) => match r.re.captures(s) {
            Some(c) => {
                let md = MatchData::new(s.clone(), &c, &r.re);
                let g = match args.get(1) {
                    Some(Value::Int(i)) => usize::try_from(*i).unwrap_or(0),
                    Some(Value::Str(n)) => return Ok(md.named(n).map_or(Value::Nil, Value::str)),
                    _ => 0,
                };
                md.group_value(g)
            }
            None => Value::Nil,
        },
        Some(Value::Str(sub)) => {
            if s.contains(sub.as_ref()) {
                Value::Str(sub.clone())
            } else {
                Value::Nil
            }
        }
        _ => match super::array::slice_range(chars.len(), args) {
            Some(Ok(i)) => Value::str(chars[i].to_string()),
            Some(Err((st, n))) => it.new_str(chars[st..st + n].iter().collect())?,
            None => Value::Nil,
        },
    })
}

/// String methods; `None` when `name` is not one.
///
/// # Errors
/// On bad arguments, budget exhaustion, or a block's errors.
pub fn call(it: &Interp<'_>, s: &Rc<str>, name: &str, args: &Args) -> R<Option<Value>> {
    it.tick(1 + s.len() as u64 / 256)?;
    for part in [conversions, searches, rewrites, layout] {
        if let Some(v) = part(it, s, name, args)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// Size, case, trimming, numbers, characters and lines.
fn conversions(it: &Interp<'_>, s: &Rc<str>, name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let _ = &a0;
    Ok(Some(match name {
        "length" | "size" => int(s.chars().count()),
        "bytesize" => int(s.len()),
        "empty?" => Value::Bool(s.is_empty()),
        "to_s" | "to_str" | "itself" | "dup" | "clone" | "freeze" | "b" | "scrub" | "encode"
        | "force_encoding" | "unicode_normalize" => Value::Str(s.clone()),
        "valid_encoding?" | "ascii_only?" => Value::Bool(name == "valid_encoding?" || s.is_ascii()),
        "to_sym" | "intern" => Value::sym(s.as_ref()),
        "to_i" => Value::Int(leading_int(
            s,
            match a0 {
                Value::Int(b) if (2..=36).contains(&b) => u32::try_from(b).unwrap_or(10),
                _ => 10,
            },
        )),
        "to_f" => Value::Float(leading_float(s)),
        "hex" => Value::Int(leading_int(s, 16)),
        "oct" => Value::Int(leading_int(s, 8)),
        "upcase" => it.new_str(s.to_uppercase())?,
        "downcase" => it.new_str(s.to_lowercase())?,
        "capitalize" => {
            let mut c = s.chars();
            let first: String = c
                .next()
                .map(|f| f.to_uppercase().collect())
                .unwrap_or_default();
            it.new_str(first + &c.as_str().to_lowercase())?
        }
        "swapcase" => it.new_str(
            s.chars()
                .map(|c| {
                    if c.is_uppercase() {
                        c.to_lowercase().next().unwrap_or(c)
                    } else {
                        c.to_uppercase().next().unwrap_or(c)
                    }
                })
                .collect(),
        )?,
        "strip" => it.new_str(s.trim_matches(WS).to_string())?,
        "lstrip" => it.new_str(s.trim_start_matches(WS).to_string())?,
        "rstrip" => it.new_str(s.trim_end_matches(WS).to_string())?,
        "chomp" => it.new_str(match &a0 {
            Value::Str(suf) => s.strip_suffix(suf.as_ref()).unwrap_or(s).to_string(),
            _ => s
                .strip_suffix("\r\n")
                .or_else(|| s.strip_suffix('\n'))
                .or_else(|| s.strip_suffix('\r'))
                .unwrap_or(s)
                .to_string(),
        })?,
        "chop" => {
            let mut c = s.chars();
            c.next_back();
            it.new_str(c.as_str().to_string())?
        }
        "chr" => Value::str(s.chars().next().map(String::from).unwrap_or_default()),
        "chars" | "each_char" => {
            let v: Vec<Value> = s.chars().map(|c| Value::str(c.to_string())).collect();
            it.alloc(v.len() * 24)?;
            if let (Some(b), "each_char") = (&args.block, name) {
                for c in v {
                    it.call_proc(b, vec![c], None)?;
                }
                return Ok(Some(Value::Str(s.clone())));
            }
            Value::array(v)
        }
        "bytes" => it.new_array(s.bytes().map(|b| Value::Int(i64::from(b))).collect())?,
        "ord" => Value::Int(s.chars().next().map_or(0, |c| i64::from(c as u32))),
        "lines" | "each_line" => {
            let v: Vec<Value> = s.split_inclusive('\n').map(Value::str).collect();
            it.alloc(v.len() * 24 + s.len())?;
            if let (Some(b), "each_line") = (&args.block, name) {
                for l in v {
                    it.call_proc(b, vec![l], None)?;
                }
                return Ok(Some(Value::Str(s.clone())));
            }
            Value::array(v)
        }
        _ => return Ok(None),
    }))
}

/// `split`, `include?`, prefixes, matching and `scan`.
fn searches(it: &Interp<'_>, s: &Rc<str>, name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let _ = &a0;
    Ok(Some(match name {
        "split" => Value::array(split(it, s, args)?.into_iter().map(Value::str).collect()),
        "include?" => Value::Bool(s.contains(a0.to_s().as_str())),
        "start_with?" => Value::Bool(args.positional().iter().any(|p| match p {
            Value::Regex(r) => r.re.find(s).is_some_and(|m| m.start() == 0),
            other => s.starts_with(other.to_s().as_str()),
        })),
        "end_with?" => Value::Bool(
            args.positional()
                .iter()
                .any(|p| s.ends_with(p.to_s().as_str())),
        ),
        "=~" | "match" | "match?" => {
            let re = pattern(it, &a0)?;
            let caps = re.re.captures(s);
            let md = caps
                .as_ref()
                .map(|c| Rc::new(MatchData::new(s.clone(), c, &re.re)));
            if name == "match?" {
                return Ok(Some(Value::Bool(md.is_some())));
            }
            *it.last_match.borrow_mut() = md.clone();
            match (name, md) {
                ("=~", Some(m)) => int(s[..m.groups[0].map_or(0, |g| g.0)].chars().count()),
                ("match", Some(m)) => Value::Match(m),
                _ => Value::Nil,
            }
        }
        "!~" => Value::Bool(!pattern(it, &a0)?.re.is_match(s)),
        "scan" => {
            let re = pattern(it, &a0)?;
            let mut out = Vec::new();
            for c in re.re.captures_iter(s) {
                it.tick(1)?;
                let v = if c.len() > 1 {
                    Value::array(
                        (1..c.len())
                            .map(|i| c.get(i).map_or(Value::Nil, |m| Value::str(m.as_str())))
                            .collect(),
                    )
                } else {
                    Value::str(c.get(0).map_or("", |m| m.as_str()))
                };
                out.push(v);
            }
            it.alloc(out.len() * 24)?;
            if let Some(b) = &args.block {
                for v in out {
                    it.call_proc(b, vec![v], None)?;
                }
                return Ok(Some(Value::Str(s.clone())));
            }
            Value::array(out)
        }
        _ => return Ok(None),
    }))
}

/// `gsub`, `sub`, `tr`, `delete`, `squeeze`, `count`, `index`, slicing.
fn rewrites(it: &Interp<'_>, s: &Rc<str>, name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let _ = &a0;
    Ok(Some(match name {
        "gsub" => gsub(it, s, args, true)?,
        "sub" => gsub(it, s, args, false)?,
        "tr" | "tr_s" => {
            let (from, neg) = expand_set(&a0.to_s());
            let to: Vec<char> = expand_set(&args.get(1).map(Value::to_s).unwrap_or_default()).0;
            let out: String = s
                .chars()
                .filter_map(|c| {
                    let pos = from.iter().position(|f| *f == c);
                    match (pos, neg) {
                        (Some(_), true) | (None, false) => Some(c),
                        (None, true) => to.last().copied(),
                        (Some(i), false) => to.get(i).or(to.last()).copied(),
                    }
                })
                .collect();
            it.new_str(out)?
        }
        "delete" => {
            let (set, neg) = expand_set(&a0.to_s());
            it.new_str(s.chars().filter(|c| set.contains(c) == neg).collect())?
        }
        "squeeze" => {
            let mut out = String::new();
            let mut prev = None;
            for c in s.chars() {
                if prev != Some(c) || (!a0.is_nil() && !a0.to_s().contains(c)) {
                    out.push(c);
                }
                prev = Some(c);
            }
            it.new_str(out)?
        }
        "count" => {
            let (set, neg) = expand_set(&a0.to_s());
            int(s.chars().filter(|c| set.contains(c) != neg).count())
        }
        "index" | "rindex" => {
            let found = match &a0 {
                Value::Regex(r) => r.re.find(s).map(|m| m.start()),
                other => {
                    let sub = other.to_s();
                    if name == "index" {
                        s.find(sub.as_str())
                    } else {
                        s.rfind(sub.as_str())
                    }
                }
            };
            found.map_or(Value::Nil, |i| int(s[..i].chars().count()))
        }
        "[]" | "slice" => index_arg(it, s, args)?,
        "partition" | "rpartition" => {
            let sep = a0.to_s();
            let at = if name == "partition" {
                s.find(sep.as_str())
            } else {
                s.rfind(sep.as_str())
            };
            let parts = match at {
                Some(i) => vec![&s[..i], sep.as_str(), &s[i + sep.len()..]],
                None if name == "partition" => vec![s.as_ref(), "", ""],
                None => vec!["", "", s.as_ref()],
            };
            Value::array(parts.into_iter().map(Value::str).collect())
        }
        _ => return Ok(None),
    }))
}

/// Padding, concatenation, formatting and comparison.
fn layout(it: &Interp<'_>, s: &Rc<str>, name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let _ = &a0;
    Ok(Some(match name {
        "ljust" | "rjust" | "center" => {
            let width = usize::try_from(match a0 {
                Value::Int(w) => w,
                _ => 0,
            })
            .unwrap_or(0);
            it.alloc(width)?;
            let pad = args.get(1).map_or_else(|| " ".to_string(), Value::to_s);
            let n = s.chars().count();
            if width <= n || pad.is_empty() {
                Value::Str(s.clone())
            } else {
                let fill = |k: usize| pad.chars().cycle().take(k).collect::<String>();
                let total = width - n;
                it.new_str(match name {
                    "ljust" => format!("{s}{}", fill(total)),
                    "rjust" => format!("{}{s}", fill(total)),
                    _ => format!("{}{s}{}", fill(total / 2), fill(total - total / 2)),
                })?
            }
        }
        "+" => match &a0 {
            Value::Str(o) => {
                it.alloc(s.len() + o.len())?;
                Value::str(format!("{s}{o}"))
            }
            other => {
                return it.raise(
                    "TypeError",
                    format!(
                        "no implicit conversion of {} into String",
                        other.class_name()
                    ),
                );
            }
        },
        "*" => {
            let n = usize::try_from(match a0 {
                Value::Int(n) => n,
                _ => 0,
            })
            .unwrap_or(0);
            it.alloc(s.len().saturating_mul(n))?;
            Value::str(s.repeat(n))
        }
        "%" => {
            let list = match &a0 {
                Value::Array(a) => a.borrow().clone(),
                other => vec![other.clone()],
            };
            it.new_str(super::format::format(it, s, &list)?)?
        }
        "replace" => a0,
        "reverse" => it.new_str(s.chars().rev().collect())?,
        "casecmp" => match ruby_cmp(
            &Value::str(s.to_lowercase()),
            &Value::str(a0.to_s().to_lowercase()),
        ) {
            Some(o) => Value::Int(o as i64),
            None => Value::Nil,
        },
        "casecmp?" => Value::Bool(s.to_lowercase() == a0.to_s().to_lowercase()),
        "<=>" => ruby_cmp(&Value::Str(s.clone()), &a0).map_or(Value::Nil, |o| Value::Int(o as i64)),
        "<" | ">" | "<=" | ">=" => match ruby_cmp(&Value::Str(s.clone()), &a0) {
            Some(o) => Value::Bool(super::ordering_holds(name, o)),
            None => {
                return it.raise(
                    "ArgumentError",
                    format!("comparison of String with {} failed", a0.inspect()),
                );
            }
        },
        "between?" => {
            let lo = ruby_cmp(&Value::Str(s.clone()), &a0);
            let hi = ruby_cmp(&Value::Str(s.clone()), args.get(1).unwrap_or(&Value::Nil));
            Value::Bool(lo.is_some_and(|o| o.is_ge()) && hi.is_some_and(|o| o.is_le()))
        }
        "unpack" | "unpack1" | "crypt" | "encoding" | "each_byte" | "succ" | "next" | "upto"
        | "insert" | "prepend" => {
            return it.unsupported(format!("String#{name}"));
        }
        _ => return Ok(None),
    }))
}

/// Symbol methods (most act on the name as a string).
///
/// # Errors
/// As the string method.
pub fn symbol(it: &Interp<'_>, s: &Rc<str>, name: &str, args: &Args) -> R<Option<Value>> {
    Ok(Some(match name {
        "to_s" | "id2name" | "name" => Value::Str(s.clone()),
        "to_sym" => Value::Sym(s.clone()),
        "to_proc" => Value::Proc(Rc::new(crate::inspec::interp::Proc {
            body: crate::inspec::interp::ProcBody::Symbol(s.to_string()),
            lambda: false,
        })),
        "length" | "size" | "upcase" | "downcase" | "start_with?" | "end_with?" | "=~"
        | "match?" | "empty?" | "[]" => {
            let v = call(it, s, name, args)?;
            match (name, v) {
                ("upcase" | "downcase", Some(Value::Str(x))) => Value::Sym(x),
                (_, Some(v)) => v,
                (_, None) => return Ok(None),
            }
        }
        "<=>" => ruby_cmp(&Value::Sym(s.clone()), args.get(0).unwrap_or(&Value::Nil))
            .map_or(Value::Nil, |o| Value::Int(o as i64)),
        _ => return Ok(None),
    }))
}

/// A regex from Ruby source text with no flags (for `Regexp.new` callers).
///
/// # Errors
/// When it does not compile.
pub fn regex_from(it: &Interp<'_>, src: &str) -> R<Rc<RubyRegex>> {
    match RubyRegex::new(src, RegexFlags::default()) {
        Ok(r) => Ok(Rc::new(r)),
        Err(e) => it.unsupported(e),
    }
}

/// Names `respond_to?` reports for strings.
pub const METHODS: &[&str] = &[
    "length",
    "size",
    "empty?",
    "split",
    "strip",
    "lines",
    "include?",
    "start_with?",
    "end_with?",
    "to_i",
    "to_f",
    "to_s",
    "upcase",
    "downcase",
    "match",
    "=~",
    "gsub",
    "sub",
];
