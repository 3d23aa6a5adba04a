//! `file` and `directory`: attributes follow symlinks (as InSpec's do),
//! except `symlink?` and `shallow_link_path`; owner and group names come
//! from the target's passwd and group files.

use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::{Got, ResKind, Resource, content, stat, text};
use crate::checks::system_facts::{GROUP, PASSWD};
use crate::facts::{
    ContentFact, FileStat, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, StatFact, file_type_name,
};
use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::value::Value;
use crate::system_files::{parse_group, parse_passwd};

/// Validated path and display name.
///
/// # Errors
/// ArgumentError for a relative path.
pub fn display(it: &Interp<'_>, kind: ResKind, path: String) -> R<(String, String)> {
    if !path.starts_with('/') {
        return it.raise(
            "ArgumentError",
            format!("{} needs an absolute path, got {path:?}", kind.name()),
        );
    }
    let label = if kind == ResKind::Directory {
        "Directory"
    } else {
        "File"
    };
    Ok((path.clone(), format!("{label} {path}")))
}

fn unknown() -> R<Option<Value>> {
    Ok(Some(Value::Unknown))
}

/// The uid or gid's name from the target's passwd or group file.
pub fn id_name(it: &Interp<'_>, id: u32, group: bool) -> Got<Option<String>> {
    let path = if group { GROUP } else { PASSWD };
    match text(it, path) {
        Got::Unknown => Got::Unknown,
        Got::Ready(Ok(Some(t))) => Got::Ready(if group {
            parse_group(&t)
                .into_iter()
                .find(|g| g.gid == id)
                .map(|g| g.name)
        } else {
            parse_passwd(&t)
                .into_iter()
                .find(|p| p.uid == id)
                .map(|p| p.name)
        }),
        Got::Ready(_) => Got::Ready(None),
    }
}

/// InSpec's `unix_mode_mask`.
fn mask(who: &str, flag: char) -> Option<u32> {
    let base = match flag {
        'r' => 0o4,
        'w' => 0o2,
        _ => 0o1,
    };
    Some(match who {
        "owner" | "user" => base << 6,
        "group" => base << 3,
        "other" | "others" => base,
        "all" => base << 6 | base << 3 | base,
        _ => return None,
    })
}

/// Whether `user` may read/write/execute the file (uid 0 may read and
/// write anything, and execute anything with an execute bit), computed
/// from the mode, owner and the user's groups instead of running `su`.
fn user_may(it: &Interp<'_>, st: &FileStat, flag: char, user: &str) -> Got<bool> {
    let (passwd, groups) = (text(it, PASSWD), text(it, GROUP));
    let (Got::Ready(passwd), Got::Ready(groups)) = (passwd, groups) else {
        return Got::Unknown;
    };
    let Ok(Some(passwd)) = passwd else {
        return Got::Ready(false);
    };
    let Some(entry) = parse_passwd(&passwd).into_iter().find(|p| p.name == user) else {
        return Got::Ready(false);
    };
    let bits = match flag {
        'r' => 0o4,
        'w' => 0o2,
        _ => 0o1,
    };
    if entry.uid == 0 {
        return Got::Ready(flag != 'x' || st.mode & 0o111 != 0);
    }
    let member = groups.ok().flatten().is_some_and(|g| {
        parse_group(&g)
            .into_iter()
            .any(|g| g.gid == st.gid && g.members.iter().any(|m| m == user))
    }) || entry.gid == st.gid;
    let who = if entry.uid == st.uid {
        6
    } else if member {
        3
    } else {
        0
    };
    Got::Ready(st.mode >> who & bits != 0)
}

/// File members; `None` when `name` is not one.
///
/// # Errors
/// ArgumentError on bad arguments.
pub fn call(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    let path = r.arg.as_str();
    match name {
        "path" | "to_path" => return Ok(Some(Value::str(path))),
        "basename" => return Ok(Some(Value::str(path.rsplit('/').next().unwrap_or("")))),
        "symlink?" => {
            return Ok(Some(match stat(it, path, false) {
                Got::Unknown => Value::Unknown,
                Got::Ready(StatFact::Present(s)) => Value::Bool(s.mode & S_IFMT == S_IFLNK),
                Got::Ready(_) => Value::Bool(false),
            }));
        }
        "shallow_link_path" => {
            return Ok(Some(match stat(it, path, false) {
                Got::Unknown => Value::Unknown,
                Got::Ready(StatFact::Present(FileStat {
                    link_target: Some(t),
                    ..
                })) => Value::str(String::from_utf8_lossy(t)),
                Got::Ready(_) => Value::Nil,
            }));
        }
        "content" => return file_content(it, path).map(Some),
        "sha256sum" => {
            return Ok(Some(match content(it, path) {
                Got::Unknown => Value::Unknown,
                Got::Ready(ContentFact::Data { bytes, total_len })
                    if *total_len as usize == bytes.len() =>
                {
                    Value::str(hex::encode(Sha256::digest(bytes)))
                }
                Got::Ready(_) => Value::Nil,
            }));
        }
        _ => {}
    }
    // Ask for every fact this member may need before answering unknown, so
    // one planning pass requests them all.
    let st = stat(it, path, true);
    match name {
        "owner" | "user" | "owned_by?" => {
            let _ = text(it, PASSWD);
        }
        "group" | "grouped_into?" => {
            let _ = text(it, GROUP);
        }
        "readable?" | "writable?" | "executable?" if args.get(1).is_some_and(|u| !u.is_nil()) => {
            let _ = (text(it, PASSWD), text(it, GROUP));
        }
        "mounted?" => {
            let _ = text(it, "/proc/mounts");
        }
        "link_path" | "linked_to?" => {
            let _ = stat(it, path, false);
        }
        _ => {}
    }
    let st = match st {
        Got::Unknown => return unknown(),
        Got::Ready(StatFact::Present(s)) => Some(s),
        Got::Ready(StatFact::Missing) => None,
        Got::Ready(StatFact::Error(e)) => {
            return it.raise("ResourceFailed", format!("cannot stat {path}: {e}"));
        }
    };
    stat_member(it, r, st, name, args)
}

/// The whole content; nil for a missing file. A file that is not regular
/// (a FIFO would block), unreadable, or cut at the per-file cap is a
/// failed resource, never silently empty or short content.
fn file_content(it: &Interp<'_>, path: &str) -> R<Value> {
    match text(it, path) {
        Got::Unknown => Ok(Value::Unknown),
        Got::Ready(Ok(Some(t))) => it.new_str(t),
        Got::Ready(Ok(None)) => Ok(Value::Nil),
        Got::Ready(Err(e)) => it.raise("ResourceFailed", e),
    }
}

#[allow(clippy::too_many_lines)]
fn stat_member(
    it: &Interp<'_>,
    r: &Rc<Resource>,
    st: Option<&FileStat>,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    let path = r.arg.as_str();
    let ty = st.map(|s| s.mode & S_IFMT);
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let by = |i: usize| args.get(i).filter(|v| !v.is_nil()).map(Value::to_s);
    Ok(Some(match name {
        "exist?" | "exists?" => Value::Bool(st.is_some()),
        "file?" => Value::Bool(ty == Some(S_IFREG)),
        "directory?" => Value::Bool(ty == Some(S_IFDIR)),
        "pipe?" => Value::Bool(ty == Some(0o010_000)),
        "socket?" => Value::Bool(ty == Some(0o140_000)),
        "character_device?" => Value::Bool(ty == Some(0o020_000)),
        "block_device?" => Value::Bool(ty == Some(0o060_000)),
        "type" => st.map_or(Value::Nil, |s| Value::sym(file_type_name(s.mode))),
        "mode" => st.map_or(Value::Nil, |s| Value::Int(i64::from(s.mode & 0o7777))),
        "uid" => st.map_or(Value::Nil, |s| Value::Int(i64::from(s.uid))),
        "gid" => st.map_or(Value::Nil, |s| Value::Int(i64::from(s.gid))),
        "size" => st.map_or(Value::Nil, |s| {
            Value::Int(i64::try_from(s.size).unwrap_or(i64::MAX))
        }),
        "owner" | "user" | "group" => match st {
            None => Value::Nil,
            Some(s) => {
                let group = name == "group";
                match id_name(it, if group { s.gid } else { s.uid }, group) {
                    Got::Unknown => Value::Unknown,
                    Got::Ready(n) => Value::str(n.unwrap_or_else(|| "UNKNOWN".into())),
                }
            }
        },
        "owned_by?" | "grouped_into?" => match st {
            None => Value::Bool(false),
            Some(s) => {
                let group = name == "grouped_into?";
                match id_name(it, if group { s.gid } else { s.uid }, group) {
                    Got::Unknown => Value::Unknown,
                    Got::Ready(n) => Value::Bool(n.as_deref() == Some(a0.to_s().as_str())),
                }
            }
        },
        "setuid?" | "suid" => Value::Bool(st.is_some_and(|s| s.mode & 0o4000 != 0)),
        "setgid?" | "sgid" => Value::Bool(st.is_some_and(|s| s.mode & 0o2000 != 0)),
        "sticky?" | "sticky" => Value::Bool(st.is_some_and(|s| s.mode & 0o1000 != 0)),
        "readable?" | "writable?" | "executable?" => permission(it, st, name, &by(0), &by(1))?,
        "more_permissive_than?" => more_permissive(it, st, &a0)?,
        "link_path" => match stat(it, path, false) {
            Got::Unknown => Value::Unknown,
            Got::Ready(StatFact::Present(FileStat {
                link_target: Some(_),
                ..
            })) => match st.and_then(|s| s.link_target.as_ref()) {
                Some(resolved) => Value::str(normalize(&String::from_utf8_lossy(resolved))),
                None => Value::Nil,
            },
            _ => Value::Nil,
        },
        "linked_to?" => Value::Bool(match call(it, r, "link_path", &Args::none())? {
            Some(Value::Str(p)) => p.as_ref() == a0.to_s(),
            _ => false,
        }),
        "mounted?" => match text(it, "/proc/mounts") {
            Got::Unknown => Value::Unknown,
            Got::Ready(Ok(Some(t))) => {
                Value::Bool(t.lines().any(|l| l.split_whitespace().nth(1) == Some(path)))
            }
            Got::Ready(_) => Value::Bool(false),
        },
        "mtime" | "ctime" | "md5sum" | "selinux_label" | "immutable?" | "product_version"
        | "file_version" | "acl" | "allowed?" | "source" | "source_path" => {
            return it.unsupported(format!("the file resource's `{name}`"));
        }
        _ => return Ok(None),
    }))
}

/// `readable?(by, by_user)` and friends, InSpec's rules: with a user,
/// whether that user may; else the mode bits of owner/group/others/all.
fn permission(
    it: &Interp<'_>,
    st: Option<&FileStat>,
    name: &str,
    who: &Option<String>,
    user: &Option<String>,
) -> R<Value> {
    let Some(s) = st else {
        return Ok(Value::Bool(false));
    };
    let flag = name.chars().next().unwrap_or('r');
    if let Some(user) = user {
        return Ok(match user_may(it, s, flag, user) {
            Got::Unknown => Value::Unknown,
            Got::Ready(b) => Value::Bool(b),
        });
    }
    let who = match who.as_deref() {
        None | Some("") => "all",
        Some(w) => w,
    };
    match mask(who, flag) {
        Some(m) => Ok(Value::Bool(s.mode & m != 0)),
        None => it.raise("RuntimeError", "Invalid usergroup/owner provided"),
    }
}

/// `more_permissive_than?('0644')`: nil for a missing file (so
/// `should_not` passes), else whether any 0777 bit exceeds the maximum.
fn more_permissive(it: &Interp<'_>, st: Option<&FileStat>, max: &Value) -> R<Value> {
    let Some(s) = st else {
        return Ok(Value::Nil);
    };
    let max = match max {
        Value::Str(m)
            if m.len() <= 4 && !m.is_empty() && m.chars().all(|c| ('0'..='7').contains(&c)) =>
        {
            u32::from_str_radix(m, 8).unwrap_or(0)
        }
        Value::Str(_) => {
            return it.raise(
                "ArgumentError",
                "The value of the `maximum permission target` should be a valid file mode in 4-digit octal format: for example, `0644` or `0777`",
            );
        }
        other => {
            return it.raise(
                "ArgumentError",
                format!("You must provide the `maximum permission target` as a `String`, you provided: {}", other.class_name()),
            );
        }
    };
    Ok(Value::Bool((0o777 ^ max) & s.mode & 0o777 != 0))
}

/// `..` and `.` resolved in an absolute path.
fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            x => out.push(x),
        }
    }
    format!("/{}", out.join("/"))
}
