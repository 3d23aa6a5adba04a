//! `users`, `user`, `passwd`, `shadow`, `group`, `groups`, `etc_group`
//! (from the target's passwd, shadow and group files) and `os`/`platform`
//! (from os-release, with train's platform names and families).

use std::rc::Rc;

use super::{Got, ResKind, Resource, cached, text};
use crate::checks::system_facts::{GROUP, PASSWD, SHADOW};
use crate::inspec::filter_table::{call as table_call, table};
use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::support::Table;
use crate::inspec::value::{RHash, Value};
use crate::system_files::{parse_group, parse_os_release, parse_passwd};

/// Display names.
pub fn display(kind: ResKind, arg: String) -> (String, String) {
    let d = match kind {
        ResKind::Users => "Users".to_string(),
        ResKind::User => format!("User {arg}"),
        ResKind::Passwd => {
            if arg.is_empty() {
                PASSWD.into()
            } else {
                arg.clone()
            }
        }
        ResKind::Shadow => {
            if arg.is_empty() {
                SHADOW.into()
            } else {
                arg.clone()
            }
        }
        ResKind::Group => format!("Group {arg}"),
        ResKind::Groups => "Groups".to_string(),
        _ => {
            if arg.is_empty() {
                GROUP.into()
            } else {
                arg.clone()
            }
        }
    };
    (arg, d)
}

fn file_text(it: &Interp<'_>, path: &str) -> Got<String> {
    match text(it, path) {
        Got::Unknown => Got::Unknown,
        Got::Ready(t) => Got::Ready(t.ok().flatten().unwrap_or_default()),
    }
}

fn s(v: &str) -> Value {
    Value::str(v)
}

fn opt_int(v: Option<&str>) -> Value {
    v.filter(|x| !x.is_empty())
        .and_then(|x| x.parse().ok())
        .map_or(Value::Nil, Value::Int)
}

/// Shadow fields by user: (password, last change, min, max, warn, inactive, expiry).
fn shadow_rows(t: &str) -> Vec<Vec<String>> {
    t.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(String::from).collect::<Vec<_>>())
        .filter(|f| f.len() >= 2)
        .collect()
}

fn users_table(it: &Interp<'_>, display: &str) -> Got<Rc<Table>> {
    let (Got::Ready(p), Got::Ready(sh), Got::Ready(g)) = (
        file_text(it, PASSWD),
        file_text(it, SHADOW),
        file_text(it, GROUP),
    ) else {
        return Got::Unknown;
    };
    let groups = parse_group(&g);
    let shadow = shadow_rows(&sh);
    let rows = parse_passwd(&p)
        .into_iter()
        .map(|e| {
            let sh = shadow.iter().find(|f| f[0] == e.name);
            let f = |i: usize| sh.and_then(|f| f.get(i)).map(String::as_str);
            let mut names: Vec<Value> = groups
                .iter()
                .filter(|gr| gr.gid == e.gid)
                .map(|gr| s(&gr.name))
                .take(1)
                .collect();
            names.extend(
                groups
                    .iter()
                    .filter(|gr| gr.members.contains(&e.name) && gr.gid != e.gid)
                    .map(|gr| s(&gr.name)),
            );
            let primary = groups
                .iter()
                .find(|gr| gr.gid == e.gid)
                .map_or(Value::Nil, |gr| s(&gr.name));
            let locked = f(1).is_some_and(|pw| pw.starts_with('!') || pw.starts_with('*'));
            Rc::new(RHash::from_pairs([
                (Value::sym("username"), s(&e.name)),
                (Value::sym("uid"), Value::Int(i64::from(e.uid))),
                (Value::sym("gid"), Value::Int(i64::from(e.gid))),
                (Value::sym("group"), primary),
                (Value::sym("groups"), Value::array(names)),
                (Value::sym("home"), s(&e.home)),
                (Value::sym("shell"), s(&e.shell)),
                (Value::sym("gecos"), s(&e.gecos)),
                (Value::sym("mindays"), opt_int(f(3))),
                (Value::sym("maxdays"), opt_int(f(4))),
                (Value::sym("warndays"), opt_int(f(5))),
                (Value::sym("inactivedays"), opt_int(f(6))),
                (Value::sym("expirydate"), opt_int(f(7))),
                (Value::sym("passwordage"), opt_int(f(2))),
                (Value::sym("encrypted_password"), f(1).map_or(Value::Nil, s)),
                (Value::sym("disabled"), Value::Bool(locked)),
                (Value::sym("lastlogin"), Value::Nil),
            ]))
        })
        .collect();
    Got::Ready(table(
        display.to_string(),
        rows,
        &[
            ("usernames", "username", false),
            ("uids", "uid", false),
            ("gids", "gid", false),
            ("groupnames", "group", false),
            ("groups", "groups", false),
            ("homes", "home", false),
            ("shells", "shell", false),
            ("mindays", "mindays", false),
            ("maxdays", "maxdays", false),
            ("warndays", "warndays", false),
            ("inactivedays", "inactivedays", false),
            ("expirydates", "expirydate", false),
            ("disabled", "disabled", false),
            ("lastlogins", "lastlogin", false),
            ("passwordages", "passwordage", false),
        ],
    ))
}

fn passwd_table(it: &Interp<'_>, path: &str, display: &str) -> Got<Rc<Table>> {
    let Got::Ready(t) = file_text(it, path) else {
        return Got::Unknown;
    };
    let rows = t
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let g = |i: usize| f.get(i).map_or(Value::Nil, |x| s(x));
            Rc::new(RHash::from_pairs([
                (Value::sym("user"), g(0)),
                (Value::sym("password"), g(1)),
                (Value::sym("uid"), g(2)),
                (Value::sym("gid"), g(3)),
                (Value::sym("desc"), g(4)),
                (Value::sym("home"), g(5)),
                (Value::sym("shell"), g(6)),
            ]))
        })
        .collect();
    Got::Ready(table(
        display.to_string(),
        rows,
        &[
            ("users", "user", false),
            ("passwords", "password", false),
            ("uids", "uid", false),
            ("gids", "gid", false),
            ("descs", "desc", false),
            ("homes", "home", false),
            ("shells", "shell", false),
        ],
    ))
}

fn shadow_table(it: &Interp<'_>, path: &str, display: &str) -> Got<Rc<Table>> {
    let Got::Ready(t) = file_text(it, path) else {
        return Got::Unknown;
    };
    let keys = [
        "user",
        "password",
        "last_change",
        "min_days",
        "max_days",
        "warn_days",
        "inactive_days",
        "expiry_date",
        "reserved",
    ];
    let rows = shadow_rows(&t)
        .into_iter()
        .map(|f| {
            Rc::new(RHash::from_pairs(keys.iter().enumerate().map(|(i, k)| {
                (
                    Value::sym(k),
                    f.get(i)
                        .filter(|x| !x.is_empty())
                        .map_or(Value::Nil, |x| s(x)),
                )
            })))
        })
        .collect();
    Got::Ready(table(
        display.to_string(),
        rows,
        &[
            ("users", "user", false),
            ("passwords", "password", false),
            ("last_changes", "last_change", false),
            ("min_days", "min_days", false),
            ("max_days", "max_days", false),
            ("warn_days", "warn_days", false),
            ("inactive_days", "inactive_days", false),
            ("expiry_dates", "expiry_date", false),
        ],
    ))
}

fn group_table(it: &Interp<'_>, path: &str, display: &str) -> Got<Rc<Table>> {
    let Got::Ready(t) = file_text(it, path) else {
        return Got::Unknown;
    };
    let rows = t
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let members: Vec<Value> = f
                .get(3)
                .map(|m| m.split(',').filter(|x| !x.is_empty()).map(s).collect())
                .unwrap_or_default();
            Rc::new(RHash::from_pairs([
                (Value::sym("name"), f.first().map_or(Value::Nil, |x| s(x))),
                (
                    Value::sym("password"),
                    f.get(1).map_or(Value::Nil, |x| s(x)),
                ),
                (Value::sym("gid"), opt_int(f.get(2).copied())),
                (Value::sym("members"), Value::array(members)),
            ]))
        })
        .collect();
    Got::Ready(table(
        display.to_string(),
        rows,
        &[
            ("names", "name", false),
            ("passwords", "password", false),
            ("gids", "gid", false),
            ("users", "members", true),
            ("members", "members", true),
        ],
    ))
}

/// Members of the account resources; `None` when `name` is not one.
///
/// # Errors
/// As the filter table.
pub fn call(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    let t = cached(r, || {
        let path = |d: &str| {
            if r.arg.is_empty() || !r.arg.starts_with('/') {
                d.to_string()
            } else {
                r.arg.clone()
            }
        };
        let got = match r.kind {
            ResKind::Users | ResKind::User => users_table(it, &r.display),
            ResKind::Passwd => passwd_table(it, &path(PASSWD), &r.display),
            ResKind::Shadow => shadow_table(it, &path(SHADOW), &r.display),
            _ => group_table(it, &path(GROUP), &r.display),
        };
        Ok(match got {
            Got::Unknown => Value::Unknown,
            Got::Ready(t) => Value::Table(t),
        })
    })?;
    let Value::Table(t) = t else {
        return Ok(Some(Value::Unknown));
    };
    match r.kind {
        ResKind::User => Ok(one_row(
            &t,
            "username",
            &r.arg,
            name,
            &[("has_home_directory?", "home")],
        )),
        ResKind::Group => Ok(one_row(&t, "name", &r.arg, name, &[])),
        _ => table_call(it, &t, name, args),
    }
}

/// `user('x')` / `group('x')`: members of one row.
fn one_row(
    t: &Rc<Table>,
    key: &str,
    want: &str,
    name: &str,
    _aliases: &[(&str, &str)],
) -> Option<Value> {
    let row = t
        .rows
        .iter()
        .find(|r| r.get(&Value::sym(key)).is_some_and(|v| v.to_s() == want));
    let field = |f: &str| {
        row.and_then(|r| r.get(&Value::sym(f)).cloned())
            .unwrap_or(Value::Nil)
    };
    Some(match name {
        "exist?" | "exists?" => Value::Bool(row.is_some()),
        "username" | "uid" | "gid" | "group" | "groups" | "home" | "shell" | "mindays"
        | "maxdays" | "warndays" | "inactivedays" | "expirydate" | "passwordage"
        | "encrypted_password" | "lastlogin" | "name" | "members" | "password" => field(name),
        "members_array" => field("members"),
        "disabled?" => Value::Bool(field("disabled").truthy()),
        "has_home_directory?" => Value::Bool(!field("home").to_s().is_empty()),
        "local" | "local?" => Value::Bool(row.is_some()),
        "has_user?" => return None,
        _ => return None,
    })
}

/// The platform as train names it, from os-release.
fn platform(it: &Interp<'_>) -> Got<(String, String, String, Vec<&'static str>)> {
    let (etc, usr) = (text(it, "/etc/os-release"), text(it, "/usr/lib/os-release"));
    let (Got::Ready(etc), Got::Ready(usr)) = (etc, usr) else {
        return Got::Unknown;
    };
    let text_found = etc.ok().flatten().or_else(|| usr.ok().flatten());
    let kv = parse_os_release(&text_found.unwrap_or_default());
    let id = kv.get("ID").cloned().unwrap_or_else(|| "unknown".into());
    let name = match id.as_str() {
        "rhel" => "redhat",
        "ol" => "oracle",
        "amzn" => "amazon",
        "sles" | "sles_sap" => "suse",
        x if x.starts_with("opensuse") => "opensuse",
        x => x,
    }
    .to_string();
    let families: Vec<&'static str> = match name.as_str() {
        "debian" | "ubuntu" | "linuxmint" | "raspbian" | "kali" | "devuan" => {
            vec!["debian", "linux", "unix", "os"]
        }
        "redhat" | "centos" | "oracle" | "scientific" | "rocky" | "almalinux" | "cloudlinux"
        | "amazon" => vec!["redhat", "linux", "unix", "os"],
        "fedora" => vec!["fedora", "linux", "unix", "os"],
        "suse" | "opensuse" => vec!["suse", "linux", "unix", "os"],
        "arch" => vec!["arch", "linux", "unix", "os"],
        "gentoo" => vec!["gentoo", "linux", "unix", "os"],
        _ => vec!["linux", "unix", "os"],
    };
    let release = kv.get("VERSION_ID").cloned().unwrap_or_default();
    Got::Ready((name, families[0].to_string(), release, families))
}

/// `os` / `platform` members.
///
/// # Errors
/// Never in practice.
pub fn os_member(it: &Interp<'_>, name: &str, args: &Args) -> R<Option<Value>> {
    if matches!(name, "arch" | "params" | "[]") {
        let _ = super::command(it, "uname -m");
    }
    let Got::Ready((pname, family, release, families)) = platform(it) else {
        return Ok(Some(Value::Unknown));
    };
    let arch = || match super::command(it, "uname -m") {
        Got::Ready(crate::facts::CommandFact::Ran { stdout, .. }) => {
            Value::str(String::from_utf8_lossy(stdout).trim())
        }
        Got::Ready(_) => Value::Nil,
        Got::Unknown => Value::Unknown,
    };
    let params = || {
        Value::hash(RHash::from_pairs([
            (Value::sym("name"), s(&pname)),
            (Value::sym("family"), s(&family)),
            (Value::sym("release"), s(&release)),
            (Value::sym("arch"), arch()),
        ]))
    };
    let in_family = |f: &str| pname == f || families.contains(&f);
    Ok(Some(match name {
        "name" => s(&pname),
        "family" => s(&family),
        "release" => s(&release),
        "arch" => arch(),
        "families" | "family_names" => {
            let mut v = vec![s(&pname)];
            v.extend(families.iter().map(|f| s(f)));
            Value::array(v)
        }
        "params" => params(),
        "[]" => {
            let key = args.get(0).map(Value::to_s).unwrap_or_default();
            match key.as_str() {
                "name" => s(&pname),
                "family" => s(&family),
                "release" => s(&release),
                "arch" => arch(),
                _ => Value::Nil,
            }
        }
        "in_family?" => Value::Bool(in_family(&args.get(0).map(Value::to_s).unwrap_or_default())),
        "linux?" | "unix?" => Value::Bool(true),
        "windows?" | "darwin?" | "bsd?" | "solaris?" | "aix?" | "hpux?" => Value::Bool(false),
        "supported?" => Value::Bool(true),
        n if n.ends_with('?') => Value::Bool(in_family(n.trim_end_matches('?'))),
        _ => return Ok(None),
    }))
}
