//! `command`, `bash`, `os`, `platform`, `virtualization`, `os_env`,
//! `processes`, `kernel_parameter`, `kernel_module`, `mount`, `etc_fstab`,
//! `selinux`, `crontab`.

use std::rc::Rc;

use super::{Got, ResKind, Resource, cached, command, stat, text};
use crate::checks::system_facts::MAIN_ENVIRON;
use crate::facts::{CommandFact, ContentFact, FactRequest, FactValue, ProcessesFact, StatFact};
use crate::inspec::filter_table::table;
use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::ruby_regex::RubyRegex;
use crate::inspec::value::{RHash, Value};

/// Display names.
pub fn display(kind: ResKind, arg: String, opts: &Value) -> (String, String) {
    let d = match kind {
        ResKind::Command => format!("Command: `{arg}`"),
        ResKind::Bash => format!("Bash command {arg}"),
        ResKind::Os => "Operating System Detection".into(),
        ResKind::Platform => "Platform Detection".into(),
        ResKind::Virtualization => "Virtualization Detection".into(),
        ResKind::OsEnv => format!("Environment variable {arg}"),
        ResKind::Processes => format!("Processes {}", if arg.is_empty() { ".*" } else { &arg }),
        ResKind::KernelParameter => format!("Kernel Parameter {arg}"),
        ResKind::KernelModule => format!("Kernel Module {arg}"),
        ResKind::Mount => format!("Mount {arg}"),
        ResKind::EtcFstab => "File System Table File (fstab)".into(),
        ResKind::Selinux => "SELinux".into(),
        _ => match crontab_target(&arg, opts) {
            CronTarget::Path(p) => format!("crontab {p}"),
            CronTarget::User(u) => format!("crontab for user {u}"),
        },
    };
    (arg, d)
}

/// The shell command a `command`/`bash` resource runs.
fn shell_command(r: &Resource) -> String {
    if r.kind == ResKind::Bash {
        format!("bash -c '{}'", r.arg.replace('\'', r"'\''"))
    } else {
        r.arg.clone()
    }
}

/// Why a `command` cannot answer about the target here.
const OUTSIDE_TARGET: &str = "commands run in the scanner's own container on this approach (a debug \
     container or sidecar reaching the target's files through /proc/PID/root), not in the target; \
     scan with the exec approach to evaluate command resources";

/// Why commands cannot run on this target (the local-root target, or a
/// debug container or sidecar where they would inspect the wrong container).
pub fn command_unavailable(it: &Interp<'_>, r: &Rc<Resource>) -> Option<String> {
    if it.facts.declared.commands_outside_target {
        return Some(OUTSIDE_TARGET.into());
    }
    match command(it, &shell_command(r)) {
        Got::Ready(CommandFact::Unsupported(why)) => Some(why.clone()),
        _ => None,
    }
}

/// Runs `cmd` on the target: (exit status, stdout, stderr), `None` while
/// not yet gathered.
///
/// # Errors
/// ResourceSkipped where commands cannot run on the target; ResourceFailed
/// when the command could not be run.
pub(super) fn run(it: &Interp<'_>, cmd: &str) -> R<Option<(i32, String, String)>> {
    if it.facts.declared.commands_outside_target {
        return it.raise("ResourceSkipped", OUTSIDE_TARGET);
    }
    match command(it, cmd) {
        Got::Unknown => Ok(None),
        Got::Ready(CommandFact::Ran {
            exit_status,
            stdout,
            stderr,
        }) => Ok(Some((
            *exit_status,
            String::from_utf8_lossy(stdout).into_owned(),
            String::from_utf8_lossy(stderr).into_owned(),
        ))),
        Got::Ready(CommandFact::Unsupported(why)) => it.raise("ResourceSkipped", why.clone()),
        Got::Ready(CommandFact::Error(e)) => {
            it.raise("ResourceFailed", format!("command `{cmd}` failed: {e}"))
        }
    }
}

/// Members of the system resources; `None` when `name` is not one.
///
/// # Errors
/// ResourceSkipped where commands cannot run; ArgumentError on bad arguments.
pub fn call(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    match r.kind {
        ResKind::Command | ResKind::Bash => command_member(it, r, name),
        ResKind::Os | ResKind::Platform => super::accounts::os_member(it, name, args),
        ResKind::Virtualization => virtualization(it, name),
        ResKind::OsEnv => os_env(it, r, name),
        ResKind::Processes => processes(it, r, name, args),
        ResKind::KernelParameter => Ok(match name {
            "value" => Some(
                match text(it, &format!("/proc/sys/{}", r.arg.replace('.', "/"))) {
                    Got::Unknown => Value::Unknown,
                    Got::Ready(Ok(Some(t))) => {
                        let v = t.trim();
                        match v.parse::<i64>() {
                            Ok(i) => Value::Int(i),
                            Err(_) => Value::str(v),
                        }
                    }
                    Got::Ready(_) => Value::Nil,
                },
            ),
            _ => None,
        }),
        ResKind::KernelModule => kernel_module(it, r, name),
        ResKind::Mount => mount(it, r, name, args),
        ResKind::EtcFstab => fstab(it, r, name, args),
        ResKind::Selinux => selinux(it, name),
        _ => crontab(it, r, name, args),
    }
}

fn command_member(it: &Interp<'_>, r: &Rc<Resource>, name: &str) -> R<Option<Value>> {
    let cmd = shell_command(r);
    if name == "exist?" {
        let first = r.arg.split_whitespace().next().unwrap_or("");
        let probe = format!("command -v '{}'", first.replace('\'', r"'\''"));
        return Ok(Some(match run(it, &probe)? {
            None => Value::Unknown,
            Some((rc, _, _)) => Value::Bool(rc == 0),
        }));
    }
    if !matches!(name, "stdout" | "stderr" | "exit_status" | "result") {
        return Ok(None);
    }
    Ok(Some(match run(it, &cmd)? {
        None => Value::Unknown,
        Some((rc, out, err)) => match name {
            "stdout" => Value::str(out),
            "stderr" => Value::str(err),
            _ => Value::Int(i64::from(rc)),
        },
    }))
}

/// InSpec's container detection: `/.dockerenv`, the cgroup path naming
/// docker or lxc, `/run/.containerenv` (podman); a scan can also declare
/// the target a container, which answers `docker`.
fn virtualization(it: &Interp<'_>, name: &str) -> R<Option<Value>> {
    if !matches!(
        name,
        "system" | "role" | "params" | "guest?" | "host?" | "container?" | "docker?"
    ) {
        return Ok(None);
    }
    let (system, role) = match detect_container(it) {
        Got::Unknown => return Ok(Some(Value::Unknown)),
        Got::Ready(Some(s)) => (Value::str(s), Value::str("guest")),
        Got::Ready(None) => (Value::Nil, Value::Nil),
    };
    Ok(Some(match name {
        "system" => system,
        "role" => role,
        "guest?" | "container?" => Value::Bool(!system.is_nil()),
        "docker?" => Value::Bool(system.to_s() == "docker"),
        "host?" => Value::Bool(false),
        _ => Value::hash(RHash::from_pairs([
            (Value::sym("system"), system),
            (Value::sym("role"), role),
        ])),
    }))
}

fn detect_container(it: &Interp<'_>) -> Got<Option<&'static str>> {
    let dockerenv = stat(it, "/.dockerenv", true);
    let cgroup = text(it, "/proc/self/cgroup");
    let containerenv = stat(it, "/run/.containerenv", true);
    let (Got::Ready(d), Got::Ready(c), Got::Ready(p)) = (dockerenv, cgroup, containerenv) else {
        return Got::Unknown;
    };
    if matches!(d, StatFact::Present(_)) {
        return Got::Ready(Some("docker"));
    }
    if let Ok(Some(cg)) = c {
        for line in cg.lines() {
            let path = line.splitn(3, ':').nth(2).unwrap_or("");
            for kind in ["docker", "lxc"] {
                let direct = path
                    .strip_prefix(&format!("/{kind}/"))
                    .is_some_and(|r| !r.is_empty());
                let nested = path
                    .split('/')
                    .nth(2)
                    .is_some_and(|seg| seg.starts_with(&format!("{kind}-")));
                if direct || nested {
                    return Got::Ready(Some(if kind == "docker" { "docker" } else { "lxc" }));
                }
            }
        }
    }
    if matches!(p, StatFact::Present(_)) {
        return Got::Ready(Some("podman"));
    }
    if it.facts.declared.container == Some(true) {
        return Got::Ready(Some("docker"));
    }
    Got::Ready(None)
}

fn environ(it: &Interp<'_>) -> Got<Option<Vec<(String, String)>>> {
    match it.fact(&FactRequest::Read(MAIN_ENVIRON.into())) {
        None => Got::Unknown,
        Some(FactValue::Content(ContentFact::Data { bytes, .. })) => Got::Ready(Some(
            bytes
                .split(|b| *b == 0)
                .filter_map(|kv| {
                    let s = String::from_utf8_lossy(kv);
                    s.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect(),
        )),
        Some(_) => Got::Ready(None),
    }
}

fn os_env(it: &Interp<'_>, r: &Rc<Resource>, name: &str) -> R<Option<Value>> {
    if !matches!(name, "content" | "split" | "exist?" | "exists?") {
        return Ok(None);
    }
    let value = match environ(it) {
        Got::Unknown => return Ok(Some(Value::Unknown)),
        Got::Ready(None) => {
            return it.raise(
                "ResourceFailed",
                "the main process environment could not be read",
            );
        }
        Got::Ready(Some(vars)) => vars.into_iter().find(|(k, _)| *k == r.arg).map(|(_, v)| v),
    };
    Ok(Some(match name {
        "content" => value.map_or(Value::Nil, Value::str),
        "exist?" | "exists?" => Value::Bool(value.is_some()),
        _ => Value::array(
            value
                .unwrap_or_default()
                .split(':')
                .map(Value::str)
                .collect(),
        ),
    }))
}

fn processes(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    let data = cached(r, || {
        // InSpec: a string `x` greps /^(\/[^\/]*)*x(\s|$)/ (unescaped), a regex as given.
        let re = match &r.value {
            Value::Regex(re) => Some(re.clone()),
            Value::Str(g) => {
                let grep = if g.starts_with('/') {
                    g.to_string()
                } else {
                    format!("(/[^/]*)*{g}")
                };
                match RubyRegex::new(
                    &format!("^{grep}(\\s|$)"),
                    crate::inspec::ast::RegexFlags::default(),
                ) {
                    Ok(re) => Some(Rc::new(re)),
                    Err(e) => return it.unsupported(e),
                }
            }
            _ => None,
        };
        let (passwd, list) = (
            text(it, crate::checks::system_facts::PASSWD),
            it.fact(&FactRequest::Processes),
        );
        let passwd = match passwd {
            Got::Unknown => return Ok(Value::Unknown),
            Got::Ready(t) => {
                crate::system_files::parse_passwd(&t.ok().flatten().unwrap_or_default())
            }
        };
        let list = match list {
            None => return Ok(Value::Unknown),
            Some(FactValue::Processes(ProcessesFact::Listed(l))) => l,
            Some(_) => return it.raise("ResourceFailed", "processes could not be listed"),
        };
        let mut rows = Vec::new();
        for p in list {
            let cmd = p
                .cmdline
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            if cmd.is_empty() || re.as_ref().is_some_and(|re| !re.re.is_match(&cmd)) {
                continue;
            }
            let user = p.uid.and_then(|u| {
                passwd
                    .iter()
                    .find(|e| e.uid == u)
                    .map(|e| e.name.clone())
                    .or(Some(u.to_string()))
            });
            rows.push(Rc::new(RHash::from_pairs([
                (Value::sym("pid"), Value::Int(i64::from(p.pid))),
                (Value::sym("user"), user.map_or(Value::Nil, Value::str)),
                (Value::sym("command"), Value::str(cmd)),
                (Value::sym("label"), Value::Nil),
                (Value::sym("tty"), Value::Nil),
                (Value::sym("stat"), Value::Nil),
            ])));
        }
        Ok(Value::Table(table(
            r.display.clone(),
            rows,
            &[
                ("pids", "pid", false),
                ("users", "user", false),
                ("commands", "command", false),
                ("labels", "label", false),
                ("ttys", "tty", false),
                ("states", "stat", false),
            ],
        )))
    })?;
    match &data {
        Value::Table(t) => crate::inspec::filter_table::call(it, t, name, args),
        other => Ok(Some(other.clone())),
    }
}

fn kernel_module(it: &Interp<'_>, r: &Rc<Resource>, name: &str) -> R<Option<Value>> {
    let module = r.arg.replace('-', "_");
    Ok(Some(match name {
        "loaded?" => match text(it, "/proc/modules") {
            Got::Unknown => Value::Unknown,
            Got::Ready(t) => Value::Bool(t.ok().flatten().is_some_and(|t| {
                t.lines()
                    .any(|l| l.split_whitespace().next() == Some(module.as_str()))
            })),
        },
        "blacklisted?" | "disabled?" | "enabled?" => {
            let Some(lines) = modprobe_lines(it)? else {
                return Ok(Some(Value::Unknown));
            };
            let listed = |verb: &str| {
                lines.iter().any(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    w.first() == Some(&verb)
                        && w.get(1).map(|m| m.replace('-', "_")) == Some(module.clone())
                        && (verb != "install"
                            || w.get(2)
                                .is_some_and(|c| c.ends_with("/true") || c.ends_with("/false")))
                })
            };
            match name {
                "blacklisted?" => Value::Bool(listed("blacklist")),
                "disabled?" => Value::Bool(listed("install")),
                _ => Value::Bool(!listed("install")),
            }
        }
        "version" => Value::Nil,
        _ => return Ok(None),
    }))
}

/// Lines of every modprobe configuration file (`/etc/modprobe.d`, `/lib/modprobe.d`).
fn modprobe_lines(it: &Interp<'_>) -> R<Option<Vec<String>>> {
    let mut out = Vec::new();
    let mut unknown = false;
    for dir in ["/etc/modprobe.d", "/lib/modprobe.d"] {
        match it.fact(&FactRequest::Walk(dir.into())) {
            None => unknown = true,
            Some(FactValue::Walk(crate::facts::WalkFact::Entries { entries, .. })) => {
                for e in entries {
                    let p = String::from_utf8_lossy(&e.path).into_owned();
                    if !p.ends_with(".conf") {
                        continue;
                    }
                    match text(it, &p) {
                        Got::Unknown => unknown = true,
                        Got::Ready(Ok(Some(t))) => out.extend(t.lines().map(String::from)),
                        Got::Ready(_) => {}
                    }
                }
            }
            Some(_) => {}
        }
    }
    Ok((!unknown).then_some(out))
}

fn mount_rows(it: &Interp<'_>, path: &str) -> Got<Vec<Vec<String>>> {
    match text(it, path) {
        Got::Unknown => Got::Unknown,
        Got::Ready(t) => Got::Ready(
            t.ok()
                .flatten()
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
                .map(|l| l.split_whitespace().map(String::from).collect())
                .collect(),
        ),
    }
}

fn mount(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    let Got::Ready(rows) = mount_rows(it, "/proc/mounts") else {
        return Ok(Some(Value::Unknown));
    };
    let mine: Vec<&Vec<String>> = rows
        .iter()
        .filter(|f| f.get(1).map(String::as_str) == Some(r.arg.as_str()))
        .collect();
    let last = mine.last();
    let opts = |f: &Vec<String>| {
        f.get(3)
            .map(|o| o.split(',').map(String::from).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    Ok(Some(match name {
        "mounted?" => {
            let Some(f) = last else {
                return Ok(Some(Value::Bool(false)));
            };
            match args.get(0) {
                Some(Value::Hash(want)) => {
                    let have = opts(f);
                    let ok = want
                        .borrow()
                        .entries()
                        .iter()
                        .all(|(k, v)| match k.to_s().as_str() {
                            "type" => f.get(2).is_some_and(|t| *t == v.to_s()),
                            "device" => f.first().is_some_and(|d| *d == v.to_s()),
                            "options" => it
                                .to_list(v)
                                .map(|l| l.iter().all(|o| have.contains(&o.to_s())))
                                .unwrap_or(false),
                            _ => false,
                        });
                    Value::Bool(ok)
                }
                _ => Value::Bool(true),
            }
        }
        "count" => Value::Int(i64::try_from(mine.len()).unwrap_or(0)),
        "device" => last.and_then(|f| f.first()).map_or(Value::Nil, Value::str),
        "type" => last.and_then(|f| f.get(2)).map_or(Value::Nil, Value::str),
        "options" => last.map_or(Value::Nil, |f| {
            Value::array(opts(f).into_iter().map(Value::str).collect())
        }),
        _ => return Ok(None),
    }))
}

fn fstab(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    let data = cached(r, || {
        let Got::Ready(rows) = mount_rows(it, "/etc/fstab") else {
            return Ok(Value::Unknown);
        };
        let rows = rows
            .into_iter()
            .map(|f| {
                let g = |i: usize| f.get(i).map_or(Value::Nil, Value::str);
                Rc::new(RHash::from_pairs([
                    (Value::sym("device_name"), g(0)),
                    (Value::sym("mount_point"), g(1)),
                    (Value::sym("file_system_type"), g(2)),
                    (
                        Value::sym("mount_options"),
                        Value::array(
                            f.get(3)
                                .map(|o| o.split(',').map(Value::str).collect())
                                .unwrap_or_default(),
                        ),
                    ),
                    (
                        Value::sym("dump_options"),
                        f.get(4)
                            .and_then(|x| x.parse().ok())
                            .map_or(Value::Nil, Value::Int),
                    ),
                    (
                        Value::sym("file_system_options"),
                        f.get(5)
                            .and_then(|x| x.parse().ok())
                            .map_or(Value::Nil, Value::Int),
                    ),
                ]))
            })
            .collect();
        Ok(Value::Table(table(
            r.display.clone(),
            rows,
            &[
                ("device_name", "device_name", false),
                ("mount_point", "mount_point", false),
                ("file_system_type", "file_system_type", false),
                ("mount_options", "mount_options", false),
                ("dump_options", "dump_options", false),
                ("file_system_options", "file_system_options", false),
            ],
        )))
    })?;
    match &data {
        Value::Table(t) => crate::inspec::filter_table::call(it, t, name, args),
        other => Ok(Some(other.clone())),
    }
}

fn selinux(it: &Interp<'_>, name: &str) -> R<Option<Value>> {
    if !matches!(
        name,
        "installed?" | "disabled?" | "enforcing?" | "permissive?" | "policy" | "mode"
    ) {
        return Ok(None);
    }
    let conf = match text(it, "/etc/selinux/config") {
        Got::Unknown => return Ok(Some(Value::Unknown)),
        Got::Ready(t) => t.ok().flatten(),
    };
    let get = |k: &str| {
        conf.as_ref().and_then(|c| {
            c.lines().find_map(|l| {
                l.trim()
                    .strip_prefix(k)
                    .and_then(|r| r.strip_prefix('='))
                    .map(|v| v.trim().to_string())
            })
        })
    };
    let mode = get("SELINUX").unwrap_or_else(|| "disabled".into());
    Ok(Some(match name {
        "installed?" => Value::Bool(conf.is_some()),
        "disabled?" => Value::Bool(mode == "disabled"),
        "enforcing?" => Value::Bool(mode == "enforcing"),
        "permissive?" => Value::Bool(mode == "permissive"),
        "policy" => get("SELINUXTYPE").map_or(Value::Nil, Value::str),
        _ => Value::str(mode),
    }))
}

enum CronTarget {
    Path(String),
    User(String),
}

fn crontab_target(arg: &str, opts: &Value) -> CronTarget {
    let opt = |k: &str| match opts {
        Value::Hash(h) => h.borrow().get(&Value::sym(k)).map(Value::to_s),
        _ => None,
    };
    if let Some(p) = opt("path") {
        return CronTarget::Path(p);
    }
    let user = opt("user")
        .or_else(|| (!arg.is_empty()).then(|| arg.to_string()))
        .unwrap_or_else(|| "root".into());
    CronTarget::User(user)
}

fn crontab(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    let data = cached(r, || {
        let (paths, system) = match crontab_target(&r.arg, &r.opts) {
            CronTarget::Path(p) => (vec![p], true),
            CronTarget::User(u) => (
                vec![
                    format!("/var/spool/cron/crontabs/{u}"),
                    format!("/var/spool/cron/{u}"),
                ],
                false,
            ),
        };
        let mut rows = Vec::new();
        let texts: Vec<_> = paths.iter().map(|p| text(it, p)).collect();
        for t in texts {
            let t = match t {
                Got::Unknown => return Ok(Value::Unknown),
                Got::Ready(t) => t.ok().flatten().unwrap_or_default(),
            };
            for line in t
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                if let Some(row) = cron_row(line, system) {
                    rows.push(Rc::new(row));
                }
            }
        }
        Ok(Value::Table(table(
            r.display.clone(),
            rows,
            &[
                ("minutes", "minute", false),
                ("hours", "hour", false),
                ("days", "day", false),
                ("months", "month", false),
                ("weekdays", "weekday", false),
                ("user", "user", false),
                ("commands", "command", false),
            ],
        )))
    })?;
    match &data {
        Value::Table(t) => crate::inspec::filter_table::call(it, t, name, args),
        other => Ok(Some(other.clone())),
    }
}

fn cron_row(line: &str, system: bool) -> Option<RHash> {
    let first = line.split_whitespace().next()?;
    if first.contains('=') && !first.starts_with('@') {
        return None;
    }
    let special = |f: &str| match f {
        "@reboot" => Some(["-1", "-1", "-1", "-1", "-1"]),
        "@yearly" | "@annually" => Some(["0", "0", "1", "1", "*"]),
        "@monthly" => Some(["0", "0", "1", "*", "*"]),
        "@weekly" => Some(["0", "0", "*", "*", "0"]),
        "@daily" | "@midnight" => Some(["0", "0", "*", "*", "*"]),
        "@hourly" => Some(["0", "*", "*", "*", "*"]),
        _ => None,
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let (times, rest): (Vec<String>, &[&str]) = match special(first) {
        Some(t) => (t.iter().map(|s| (*s).to_string()).collect(), &words[1..]),
        None if words.len() > 5 => (
            words[..5].iter().map(|s| (*s).to_string()).collect(),
            &words[5..],
        ),
        None => return None,
    };
    let (user, cmd) = if system {
        (
            rest.first().map(|u| (*u).to_string()),
            rest.get(1..).unwrap_or(&[]).join(" "),
        )
    } else {
        (None, rest.join(" "))
    };
    let keys = ["minute", "hour", "day", "month", "weekday"];
    let mut h = RHash::from_pairs(
        keys.iter()
            .zip(times)
            .map(|(k, v)| (Value::sym(k), Value::str(v))),
    );
    h.insert(Value::sym("user"), user.map_or(Value::Nil, Value::str));
    h.insert(Value::sym("command"), Value::str(cmd));
    Some(h)
}
