//! `package`, `packages`, `service`, `systemd_service`. Packages come from
//! the dpkg and apk databases; on an RPM system (no dpkg/apk database but
//! `/var/lib/rpm` present) they come from one `rpm -qa` command, which the
//! planner asks for in the second round trip. Services come from one
//! `systemctl show` per service (shell targets only).

use std::rc::Rc;

use super::{Got, ResKind, Resource, cached, command, stat, text};
use crate::checks::system_facts::{APK_INSTALLED, DPKG_STATUS};
use crate::facts::{CommandFact, StatFact};
use crate::inspec::filter_table::table;
use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::value::{RHash, Value};
use crate::system_files::{parse_apk_installed, parse_dpkg_status};

const RPM_QUERY: &str = "rpm -qa --queryformat '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}\\n'";

/// Display names.
pub fn display(kind: ResKind, arg: String, raw: &Value) -> (String, String) {
    let d = match kind {
        ResKind::Package => format!("System Package {arg}"),
        ResKind::Packages => format!(
            "Packages {}",
            match raw {
                Value::Regex(r) => r.inspect(),
                other => other.to_s(),
            }
        ),
        _ => format!("Service {arg}"),
    };
    (arg, d)
}

/// name -> (version, arch) of every installed package.
fn installed(it: &Interp<'_>) -> Got<Vec<(String, String, String)>> {
    // All three looked up together, so one planning pass asks for all of them.
    let (dpkg, apk, rpm) = (
        text(it, DPKG_STATUS),
        text(it, APK_INSTALLED),
        stat(it, "/var/lib/rpm", true),
    );
    let (Got::Ready(dpkg), Got::Ready(apk), Got::Ready(rpm)) = (dpkg, apk, rpm) else {
        return Got::Unknown;
    };
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut any = false;
    for (t, parse) in [
        (dpkg, parse_dpkg_status as fn(&str) -> _),
        (apk, parse_apk_installed),
    ] {
        if let Ok(Some(t)) = t {
            any = true;
            out.extend(parse(&t).into_iter().map(|(n, v)| (n, v, String::new())));
        }
    }
    if any {
        return Got::Ready(out);
    }
    match rpm {
        StatFact::Present(_) => match command(it, RPM_QUERY) {
            Got::Unknown => Got::Unknown,
            Got::Ready(CommandFact::Ran { stdout, .. }) => Got::Ready(
                String::from_utf8_lossy(stdout)
                    .lines()
                    .filter_map(|l| {
                        let mut w = l.split_whitespace();
                        Some((
                            w.next()?.to_string(),
                            w.next()?.to_string(),
                            w.next().unwrap_or("").to_string(),
                        ))
                    })
                    .collect(),
            ),
            Got::Ready(_) => Got::Ready(Vec::new()),
        },
        _ => Got::Ready(Vec::new()),
    }
}

/// Members of the package and service resources.
///
/// # Errors
/// ResourceSkipped for services where commands cannot run.
pub fn call(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    match r.kind {
        ResKind::Package => {
            let Got::Ready(list) = installed(it) else {
                return Ok(Some(Value::Unknown));
            };
            let found = list.iter().find(|(n, _, _)| *n == r.arg);
            Ok(Some(match name {
                "installed?" => Value::Bool(found.is_some()),
                "version" => found.map_or(Value::Nil, |(_, v, _)| Value::str(v)),
                "name" => Value::str(&r.arg),
                "held?" => Value::Bool(false),
                "info" => Value::hash(RHash::from_pairs([
                    (Value::sym("name"), Value::str(&r.arg)),
                    (Value::sym("installed"), Value::Bool(found.is_some())),
                    (
                        Value::sym("version"),
                        found.map_or(Value::Nil, |(_, v, _)| Value::str(v)),
                    ),
                ])),
                _ => return Ok(None),
            }))
        }
        ResKind::Packages => {
            let t = cached(r, || {
                let Got::Ready(list) = installed(it) else {
                    return Ok(Value::Unknown);
                };
                let re = match &r.value {
                    Value::Regex(re) => Some(re.clone()),
                    Value::Str(s) => Some(Rc::new(
                        match crate::inspec::ruby_regex::RubyRegex::literal(s) {
                            Ok(x) => x,
                            Err(e) => return it.unsupported(e),
                        },
                    )),
                    _ => None,
                };
                let rows = list
                    .into_iter()
                    .filter(|(n, _, _)| re.as_ref().is_none_or(|re| re.re.is_match(n)))
                    .map(|(n, v, a)| {
                        Rc::new(RHash::from_pairs([
                            (Value::sym("name"), Value::str(n)),
                            (Value::sym("version"), Value::str(v)),
                            (Value::sym("status"), Value::str("installed")),
                            (Value::sym("architecture"), Value::str(a)),
                        ]))
                    })
                    .collect();
                Ok(Value::Table(table(
                    r.display.clone(),
                    rows,
                    &[
                        ("names", "name", false),
                        ("versions", "version", false),
                        ("statuses", "status", false),
                        ("architectures", "architecture", false),
                    ],
                )))
            })?;
            match &t {
                Value::Table(t) => crate::inspec::filter_table::call(it, t, name, args),
                other => Ok(Some(other.clone())),
            }
        }
        _ => service(it, r, name),
    }
}

fn service(it: &Interp<'_>, r: &Rc<Resource>, name: &str) -> R<Option<Value>> {
    if !matches!(
        name,
        "installed?" | "running?" | "enabled?" | "name" | "description" | "type" | "params"
    ) {
        return Ok(None);
    }
    if name == "name" {
        return Ok(Some(Value::str(&r.arg)));
    }
    let cmd = format!(
        "systemctl show --no-pager --property=LoadState,ActiveState,SubState,UnitFileState,Description '{}' 2>/dev/null",
        r.arg.replace('\'', r"'\''")
    );
    let props = match command(it, &cmd) {
        Got::Unknown => return Ok(Some(Value::Unknown)),
        Got::Ready(CommandFact::Ran {
            stdout,
            exit_status,
            ..
        }) => {
            let text = String::from_utf8_lossy(stdout).into_owned();
            let mut h = RHash::new();
            if *exit_status == 0 {
                for l in text.lines() {
                    if let Some((k, v)) = l.split_once('=') {
                        h.insert(Value::str(k), Value::str(v));
                    }
                }
            }
            h
        }
        Got::Ready(CommandFact::Unsupported(why)) => {
            return it.raise("ResourceSkipped", why.clone());
        }
        Got::Ready(CommandFact::Error(e)) => return it.raise("ResourceFailed", e.clone()),
    };
    let get = |k: &str| {
        props
            .get(&Value::str(k))
            .map(Value::to_s)
            .unwrap_or_default()
    };
    Ok(Some(match name {
        "installed?" => {
            Value::Bool(!get("LoadState").is_empty() && get("LoadState") != "not-found")
        }
        "running?" => Value::Bool(get("ActiveState") == "active" && get("SubState") == "running"),
        "enabled?" => Value::Bool(matches!(
            get("UnitFileState").as_str(),
            "enabled" | "static" | "enabled-runtime"
        )),
        "description" => Value::str(get("Description")),
        "type" => Value::str("systemd"),
        _ => Value::hash(props),
    }))
}
