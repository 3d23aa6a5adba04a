//! Parsers for the system files checks read: passwd, shadow, group, the dpkg
//! status file, the apk installed database, os-release, key/value configs,
//! and a process's `/proc` status and command line (both targets list
//! processes through these, so they agree).
//!
//! All are lenient about malformed lines (they are skipped and counted), since
//! the content comes from an untrusted image and a parse must never panic.

use std::collections::BTreeMap;

/// One `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// Password field (`x` means "see shadow").
    pub password: String,
    /// Numeric uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Comment (GECOS) field.
    pub gecos: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// Parses `/etc/passwd`; lines that do not have 7 fields with numeric ids are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() != 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                password: f[1].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                gecos: f[4].to_string(),
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// `(name, hash)` from `/etc/shadow`.
pub fn parse_shadow(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let hash = f.next()?;
            Some((name.to_string(), hash.to_string()))
        })
        .collect()
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Numeric gid.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// Parses `/etc/group`.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() != 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(String::from)
                    .collect(),
            })
        })
        .collect()
}

/// Installed packages from the dpkg status file: name -> version.
/// Only packages whose status says `installed` count.
pub fn parse_dpkg_status(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for para in text.split("\n\n") {
        let mut name = None;
        let mut version = String::new();
        let mut installed = false;
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("Status:") {
                installed = v.split_whitespace().last() == Some("installed");
            }
        }
        if let (Some(n), true) = (name, installed) {
            out.insert(n, version);
        }
    }
    out
}

/// Installed packages from the apk database (`P:` name, `V:` version).
pub fn parse_apk_installed(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for para in text.split("\n\n") {
        let mut name = None;
        let mut version = String::new();
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("P:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("V:") {
                version = v.trim().to_string();
            }
        }
        if let Some(n) = name {
            out.insert(n, version);
        }
    }
    out
}

/// `KEY=value` pairs of os-release, with shell-style quotes removed.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// How keys and values are separated in a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separator {
    /// `Key value` (sshd_config, login.defs).
    Whitespace,
    /// `key=value` (sysctl-style, env files).
    Equals,
}

/// The first value of every key (first match wins, as sshd does), keyed by the
/// key as written or lowercased when `case_insensitive`.
pub fn parse_key_values(
    text: &str,
    sep: Separator,
    case_insensitive: bool,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let pair = match sep {
            Separator::Whitespace => l
                .split_once(char::is_whitespace)
                .map(|(k, v)| (k, v.trim()))
                .or(Some((l, ""))),
            Separator::Equals => l.split_once('=').map(|(k, v)| (k.trim(), v.trim())),
        };
        if let Some((k, v)) = pair {
            let key = if case_insensitive {
                k.to_ascii_lowercase()
            } else {
                k.to_string()
            };
            out.entry(key).or_insert_with(|| v.to_string());
        }
    }
    out
}

/// Real uid and parent pid from `/proc/<pid>/status`.
pub fn parse_proc_status(status: &[u8]) -> (Option<u32>, Option<u32>) {
    let text = String::from_utf8_lossy(status);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    (field("Uid:"), field("PPid:"))
}

/// `/proc/<pid>/cmdline` split on NUL, without the trailing empty element.
pub fn split_cmdline(cmd: &[u8]) -> Vec<Vec<u8>> {
    let cmd = cmd.strip_suffix(b"\0").unwrap_or(cmd);
    if cmd.is_empty() {
        return Vec::new();
    }
    cmd.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_skips_malformed_lines() {
        let p = parse_passwd("root:x:0:0:root:/root:/bin/sh\nbad line\nx:y:z:0:a:b:c\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].shell, "/bin/sh");
    }

    #[test]
    fn dpkg_counts_only_installed() {
        let s = "Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: b\nStatus: deinstall ok config-files\n";
        let m = parse_dpkg_status(s);
        assert_eq!(m.keys().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn key_values_first_wins_and_case() {
        let m = parse_key_values(
            "# c\nPermitRootLogin no\npermitrootlogin yes\n",
            Separator::Whitespace,
            true,
        );
        assert_eq!(m.get("permitrootlogin").map(String::as_str), Some("no"));
    }

    #[test]
    fn os_release_unquotes() {
        let m = parse_os_release("ID=\"alpine\"\nVERSION_ID='3.20'\n");
        assert_eq!(m["ID"], "alpine");
        assert_eq!(m["VERSION_ID"], "3.20");
    }
}
