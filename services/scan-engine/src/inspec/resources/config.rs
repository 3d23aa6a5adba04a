//! Configuration files with InSpec's SimpleConfig rules: `parse_config`,
//! `parse_config_file`, `login_defs`, `limits_conf`, `auditd_conf`,
//! `sshd_config`/`ssh_config`/`sshd_active_config` (keys case-insensitive,
//! one value unwrapped, `Include` followed), and `json`, `yaml`, `ini`.

use std::rc::Rc;

use super::{Got, ResKind, Resource, cached, command, text};
use crate::facts::{CommandFact, FactRequest, FactValue, WalkFact};
use crate::inspec::ast::RegexFlags;
use crate::inspec::core::json;
use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::ruby_regex::RubyRegex;
use crate::inspec::value::{RHash, Value};

fn default_path(kind: ResKind) -> &'static str {
    match kind {
        ResKind::LoginDefs => "/etc/login.defs",
        ResKind::LimitsConf => "/etc/security/limits.conf",
        ResKind::SshdConfig | ResKind::SshdActiveConfig => "/etc/ssh/sshd_config",
        ResKind::SshConfig => "/etc/ssh/ssh_config",
        ResKind::AuditdConf => "/etc/audit/auditd.conf",
        _ => "",
    }
}

/// Display names.
pub fn display(kind: ResKind, arg: String, opts: &Value) -> (String, String) {
    let path = if arg.is_empty() {
        default_path(kind).to_string()
    } else {
        arg
    };
    let source = || match opts {
        Value::Hash(h) => h
            .borrow()
            .entries()
            .first()
            .map(|(k, v)| format!("{} {}", k.to_s(), v.to_s())),
        _ => None,
    };
    let d = match kind {
        ResKind::ParseConfig => "Parse Config".to_string(),
        ResKind::ParseConfigFile => format!("Parse Config File {path}"),
        ResKind::LoginDefs => "login.defs".into(),
        ResKind::LimitsConf => "limits.conf".into(),
        ResKind::SshdConfig => "SSHD Configuration".into(),
        ResKind::SshConfig => "SSH Configuration".into(),
        ResKind::SshdActiveConfig => "SSHD Active Configuration".into(),
        ResKind::AuditdConf => "Audit Daemon Config".into(),
        ResKind::Json => format!(
            "Json {}",
            if path.is_empty() {
                source().unwrap_or_default()
            } else {
                path.clone()
            }
        ),
        ResKind::Yaml => format!(
            "YAML {}",
            if path.is_empty() {
                source().unwrap_or_default()
            } else {
                path.clone()
            }
        ),
        _ => format!("INI {path}"),
    };
    (path, d)
}

/// SimpleConfig options.
struct Opts {
    assignment: RubyRegex,
    multiple_values: bool,
    key_values: usize,
    comment_char: Option<String>,
    standalone_comments: bool,
}

fn opts_for(it: &Interp<'_>, r: &Resource) -> R<Opts> {
    let re = |s: &str| RubyRegex::new(s, RegexFlags::default());
    let (assignment, multiple_values, key_values) = match r.kind {
        ResKind::LoginDefs => (re(r"^\s*(\S+)\s+(\S*)\s*$"), false, 1),
        ResKind::LimitsConf => (re(r"^\s*(\S+?)\s+(\S+?)\s+(\S+?)\s+(\S+?)\s*$"), true, 3),
        ResKind::SshdConfig | ResKind::SshConfig | ResKind::SshdActiveConfig => {
            (re(r"^\s*(\S+?)\s+(.*?)\s*$"), true, 1)
        }
        ResKind::AuditdConf => (re(r"^\s*(\S+?)\s*=\s*(.*?)\s*$"), false, 1),
        _ => (re(r"^\s*([^=]*?)\s*=\s*(.*?)\s*$"), false, 1),
    };
    let mut o = Opts {
        assignment: match assignment {
            Ok(a) => a,
            Err(e) => return it.unsupported(e),
        },
        multiple_values,
        key_values,
        comment_char: Some("#".into()),
        standalone_comments: false,
    };
    if let Value::Hash(h) = &r.opts {
        let h = h.borrow();
        let get = |k: &str| {
            h.get(&Value::sym(k))
                .or_else(|| h.get(&Value::str(k)))
                .cloned()
        };
        if let Some(Value::Regex(a)) = get("assignment_regex") {
            o.assignment = (*a).clone();
        }
        if let Some(v) = get("multiple_values") {
            o.multiple_values = v.truthy();
        }
        if let Some(Value::Int(n)) = get("key_values") {
            o.key_values = usize::try_from(n).unwrap_or(1).max(1);
        }
        if let Some(v) = get("comment_char") {
            o.comment_char = (!v.is_nil()).then(|| v.to_s());
        }
        if let Some(v) = get("standalone_comments") {
            o.standalone_comments = v.truthy();
        }
    }
    Ok(o)
}

/// InSpec's SimpleConfig: `[group]` lines open a group; each assignment
/// adds a key (an array of values with `multiple_values`, else the last
/// value wins).
fn parse_simple(text: &str, o: &Opts) -> RHash {
    let mut params = RHash::new();
    let mut group: Option<Value> = None;
    for raw in text.lines() {
        let mut line = raw.to_string();
        if let Some(c) = &o.comment_char {
            if o.standalone_comments {
                if line.trim_start().starts_with(c.as_str()) {
                    continue;
                }
            } else if let Some(i) = line.find(c.as_str()) {
                line.truncate(i);
            }
        }
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with('[') && t.ends_with(']') {
            let g = Value::str(&t[1..t.len() - 1]);
            params.insert(g.clone(), Value::hash(RHash::new()));
            group = Some(g);
            continue;
        }
        let Some(c) = o.assignment.re.captures(&line) else {
            continue;
        };
        let key = Value::str(c.get(1).map_or("", |m| m.as_str()));
        let vals: Vec<Value> = (2..2 + o.key_values)
            .map(|i| c.get(i).map_or(Value::Nil, |m| Value::str(m.as_str())))
            .collect();
        let value = if o.key_values == 1 {
            vals.into_iter().next().unwrap_or(Value::Nil)
        } else {
            Value::array(vals)
        };
        let target = match &group {
            Some(g) => match params.get(g) {
                Some(Value::Hash(h)) => h.clone(),
                _ => continue,
            },
            None => {
                insert(&mut params, key, value, o.multiple_values);
                continue;
            }
        };
        insert(&mut target.borrow_mut(), key, value, o.multiple_values);
    }
    params
}

fn insert(h: &mut RHash, key: Value, value: Value, multiple: bool) {
    if !multiple {
        h.insert(key, value);
        return;
    }
    match h.get(&key) {
        Some(Value::Array(a)) => a.borrow_mut().push(value),
        _ => h.insert(key, Value::array(vec![value])),
    }
}

/// The text of the resource (file, `content:` or `command:` option), with
/// sshd `Include` directives inlined.
fn source_text(it: &Interp<'_>, r: &Resource) -> R<Got<Option<String>>> {
    if r.kind == ResKind::ParseConfig {
        return Ok(Got::Ready(Some(r.value.to_s())));
    }
    let opt = |k: &str| match &r.opts {
        Value::Hash(h) => h.borrow().get(&Value::sym(k)).map(Value::to_s),
        _ => None,
    };
    if let Some(c) = opt("content") {
        return Ok(Got::Ready(Some(c)));
    }
    if let Some(cmd) = opt("command") {
        return Ok(match command(it, &cmd) {
            Got::Unknown => Got::Unknown,
            Got::Ready(CommandFact::Ran { stdout, .. }) => {
                Got::Ready(Some(String::from_utf8_lossy(stdout).into_owned()))
            }
            Got::Ready(CommandFact::Unsupported(w)) => {
                return it.raise("ResourceSkipped", w.clone());
            }
            Got::Ready(CommandFact::Error(e)) => return it.raise("ResourceFailed", e.clone()),
        });
    }
    if matches!(
        r.kind,
        ResKind::SshdConfig | ResKind::SshConfig | ResKind::SshdActiveConfig
    ) {
        // The usual drop-in directory is listed up front, so an `Include` of
        // it needs only one more round trip (for the files themselves).
        let dropins = if r.kind == ResKind::SshConfig {
            "/etc/ssh/ssh_config.d"
        } else {
            "/etc/ssh/sshd_config.d"
        };
        let _ = it.fact(&FactRequest::Walk(dropins.into()));
    }
    let path = if r.kind == ResKind::SshdActiveConfig {
        active_sshd_path(it, &r.arg)
    } else {
        Got::Ready(r.arg.clone())
    };
    let Got::Ready(path) = path else {
        return Ok(Got::Unknown);
    };
    let t = match text(it, &path) {
        Got::Unknown => return Ok(Got::Unknown),
        Got::Ready(Ok(t)) => t,
        Got::Ready(Err(e)) => return it.raise("ResourceFailed", e),
    };
    if matches!(
        r.kind,
        ResKind::SshdConfig | ResKind::SshConfig | ResKind::SshdActiveConfig
    ) && let Some(t) = &t
    {
        return inline_includes(it, t, &path, 0);
    }
    Ok(Got::Ready(t))
}

/// The config file the running sshd was started with (`-f`), else the default.
fn active_sshd_path(it: &Interp<'_>, default: &str) -> Got<String> {
    match it.fact(&FactRequest::Processes) {
        None => Got::Unknown,
        Some(FactValue::Processes(crate::facts::ProcessesFact::Listed(list))) => Got::Ready(
            list.iter()
                .find_map(|p| {
                    let args: Vec<String> = p
                        .cmdline
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    let is_sshd = args.first().is_some_and(|a| a.ends_with("sshd"));
                    let f = args
                        .iter()
                        .position(|a| a == "-f")
                        .and_then(|i| args.get(i + 1).cloned());
                    is_sshd.then_some(f).flatten()
                })
                .unwrap_or_else(|| default.to_string()),
        ),
        Some(_) => Got::Ready(default.to_string()),
    }
}

fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.starts_with(pre)
                && name.len() >= pre.len() + post.len()
                && glob_match_rest(post, &name[pre.len()..])
        }
    }
}

fn glob_match_rest(post: &str, rest: &str) -> bool {
    if !post.contains('*') {
        return rest.ends_with(post);
    }
    (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob_match(post, &rest[i..]))
}

fn inline_includes(
    it: &Interp<'_>,
    text: &str,
    path: &str,
    depth: usize,
) -> R<Got<Option<String>>> {
    let mut out = String::new();
    let mut unknown = false;
    for line in text.lines() {
        let t = line.trim();
        let Some(spec) = t
            .strip_prefix("Include")
            .or_else(|| t.strip_prefix("include"))
            .filter(|s| s.starts_with([' ', '\t']))
        else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        if depth > 4 {
            return it.raise(
                "ResourceFailed",
                format!("{path}: Include nested too deeply"),
            );
        }
        for pat in spec.split_whitespace() {
            let pat = if pat.starts_with('/') {
                pat.to_string()
            } else {
                format!("/etc/ssh/{pat}")
            };
            let (dir, file_pat) = pat.rsplit_once('/').unwrap_or(("/", &pat));
            let dir = if dir.is_empty() { "/" } else { dir };
            let mut files: Vec<String> = match it.fact(&FactRequest::Walk(dir.to_string())) {
                None => {
                    unknown = true;
                    continue;
                }
                Some(FactValue::Walk(WalkFact::Entries { entries, .. })) => entries
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                    .filter(|p| {
                        p.rsplit_once('/')
                            .is_some_and(|(d, f)| d == dir && glob_match(file_pat, f))
                    })
                    .collect(),
                Some(_) => Vec::new(),
            };
            files.sort();
            for f in files {
                match super::text(it, &f) {
                    Got::Unknown => unknown = true,
                    Got::Ready(Ok(Some(t))) => match inline_includes(it, &t, &f, depth + 1)? {
                        Got::Ready(Some(t)) => out.push_str(&t),
                        Got::Ready(None) => {}
                        Got::Unknown => unknown = true,
                    },
                    Got::Ready(_) => {}
                }
            }
        }
    }
    Ok(if unknown {
        Got::Unknown
    } else {
        Got::Ready(Some(out))
    })
}

fn params(it: &Interp<'_>, r: &Rc<Resource>) -> R<Value> {
    cached(r, || {
        let Got::Ready(t) = source_text(it, r)? else {
            return Ok(Value::Unknown);
        };
        let Some(t) = t else {
            return Ok(Value::Nil);
        };
        it.alloc(t.len() * 2)?;
        Ok(match r.kind {
            ResKind::Json => json::parse(it, &t)?,
            ResKind::Yaml => json::parse_yaml(it, &t)?,
            _ => Value::hash(parse_simple(&t, &opts_for(it, r)?)),
        })
    })
}

fn lookup(params: &Value, key: &str, case_insensitive: bool, unwrap_one: bool) -> Value {
    let Value::Hash(h) = params else {
        return Value::Nil;
    };
    let h = h.borrow();
    let found = h.get(&Value::str(key)).cloned().or_else(|| {
        case_insensitive
            .then(|| {
                h.entries()
                    .iter()
                    .find(|(k, _)| k.to_s().eq_ignore_ascii_case(key))
                    .map(|(_, v)| v.clone())
            })
            .flatten()
    });
    match found {
        Some(Value::Array(a)) if unwrap_one && a.borrow().len() == 1 => a.borrow()[0].clone(),
        Some(v) => v,
        None => Value::Nil,
    }
}

/// Members of the config resources: documented methods, else a key lookup
/// (InSpec's `method_missing`).
///
/// # Errors
/// ResourceFailed for unreadable files; parse errors of json/yaml.
pub fn call(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    let p = params(it, r)?;
    if p.is_unknown() {
        return Ok(Some(Value::Unknown));
    }
    let ssh = matches!(
        r.kind,
        ResKind::SshdConfig | ResKind::SshConfig | ResKind::SshdActiveConfig
    );
    Ok(Some(match name {
        "params" | "read_params" => p,
        "content" => match source_text(it, r)? {
            Got::Ready(t) => t.map_or(Value::Nil, Value::str),
            Got::Unknown => Value::Unknown,
        },
        "exist?" | "exists?" => Value::Bool(!p.is_nil()),
        "[]" | "value" | "dig" => {
            let keys: Vec<Value> = match args.get(0) {
                Some(Value::Array(a)) if name == "value" => a.borrow().clone(),
                _ => args.positional().to_vec(),
            };
            let mut cur = p;
            for k in keys {
                cur = match &cur {
                    Value::Hash(h) => h
                        .borrow()
                        .get(&k)
                        .cloned()
                        .or_else(|| h.borrow().get(&Value::str(k.to_s())).cloned())
                        .unwrap_or(Value::Nil),
                    Value::Array(a) => match k {
                        Value::Int(i) => usize::try_from(i)
                            .ok()
                            .and_then(|i| a.borrow().get(i).cloned())
                            .unwrap_or(Value::Nil),
                        _ => Value::Nil,
                    },
                    _ => Value::Nil,
                };
            }
            cur
        }
        "to_s" => Value::str(&r.display),
        _ => lookup(&p, name, ssh || r.kind == ResKind::AuditdConf, ssh),
    }))
}
