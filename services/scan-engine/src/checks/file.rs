//! `file:` checks: existence, type, mode, owner, group, special bits, link
//! target and content of one path.

use std::collections::BTreeSet;

use marked_yaml::Spanned;
use regex::Regex;
use serde::Deserialize;

use super::compile::{CompileError, RawForm, abs_path, octal, one_of, regex};
use super::matchers::{lossy, pattern};
use super::system_facts::{GROUP, PASSWD, Text, is_name, resolve_gid, resolve_uid, text_of};
use super::{Check, CheckResult, CompiledCheck};
use crate::facts::{FactRequest, Facts, FileStat, S_IFLNK, S_IFMT, StatFact, file_type_name};

/// File types a profile may ask for, as [`file_type_name`] spells them.
const FILE_TYPES: [&str; 7] = [
    "file",
    "directory",
    "symlink",
    "fifo",
    "socket",
    "character_device",
    "block_device",
];

/// `file:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    path: Spanned<String>,
    #[serde(default)]
    exists: Option<bool>,
    #[serde(default)]
    optional: bool,
    #[serde(default, rename = "type")]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    mode_max: Option<Spanned<String>>,
    #[serde(default)]
    mode_includes: Option<Spanned<String>>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    content_matches: Option<Spanned<String>>,
    #[serde(default)]
    content_not_matches: Option<Spanned<String>>,
    #[serde(default)]
    setuid: Option<bool>,
    #[serde(default)]
    setgid: Option<bool>,
    #[serde(default)]
    link_target: Option<String>,
}

/// See [`RawFile`].
#[derive(Debug, Clone)]
pub struct FileCheck {
    path: String,
    exists: bool,
    optional: bool,
    kind: Option<String>,
    mode_max: Option<u32>,
    mode_includes: Option<u32>,
    owner: Option<String>,
    group: Option<String>,
    content_matches: Option<Regex>,
    content_not_matches: Option<Regex>,
    setuid: Option<bool>,
    setgid: Option<bool>,
    link_target: Option<String>,
}

impl RawForm for RawFile {
    fn compile(&self) -> Result<Check, CompileError> {
        let f = self;
        let kind = match &f.kind {
            Some(k) => Some(one_of(k, &FILE_TYPES, "file type")?.to_string()),
            None => None,
        };
        Ok(Check::new(FileCheck {
            path: abs_path(f.path.as_str(), f.path.span())?,
            exists: f.exists.unwrap_or(true),
            optional: f.optional,
            kind,
            mode_max: f.mode_max.as_ref().map(octal).transpose()?,
            mode_includes: f.mode_includes.as_ref().map(octal).transpose()?,
            owner: f.owner.clone(),
            group: f.group.clone(),
            content_matches: f.content_matches.as_ref().map(regex).transpose()?,
            content_not_matches: f.content_not_matches.as_ref().map(regex).transpose()?,
            setuid: f.setuid,
            setgid: f.setgid,
            link_target: f.link_target.clone(),
        }))
    }
}

impl CompiledCheck for FileCheck {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        out.insert(FactRequest::Stat(self.path.clone()));
        if self.content_matches.is_some() || self.content_not_matches.is_some() {
            out.insert(FactRequest::Read(self.path.clone()));
        }
        if self.owner.as_deref().is_some_and(is_name) {
            out.insert(FactRequest::Read(PASSWD.into()));
        }
        if self.group.as_deref().is_some_and(is_name) {
            out.insert(FactRequest::Read(GROUP.into()));
        }
    }

    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let st = match self.existence(facts) {
            Ok(st) => st,
            Err(result) => return vec![result],
        };
        let mut out = Vec::new();
        self.type_and_mode(&st, &mut out);
        self.ownership(&st, facts, &mut out);
        self.special_bits(&st, &mut out);
        self.link(&st, &mut out);
        self.content(facts, &mut out);
        if out.is_empty() {
            out.push(CheckResult::pass(format!(
                "File {} is expected to exist",
                self.path
            )));
        }
        out
    }
}

impl FileCheck {
    /// The entry's metadata when the properties are to be checked, else the
    /// one result that decides the check (missing, or present when it must not be).
    fn existence(&self, facts: &Facts) -> Result<FileStat, CheckResult> {
        let p = &self.path;
        let st = match facts.stat(p) {
            StatFact::Error(e) => {
                return Err(CheckResult::error(format!("File {p} is inspected"), e));
            }
            StatFact::Missing if !self.exists => {
                return Err(CheckResult::pass(format!(
                    "File {p} is expected not to exist"
                )));
            }
            StatFact::Missing if self.optional => {
                return Err(CheckResult::pass(format!(
                    "File {p} is absent, so its properties need no check"
                )));
            }
            StatFact::Missing => {
                return Err(CheckResult::fail(
                    format!("File {p} is expected to exist"),
                    format!("{p} does not exist"),
                ));
            }
            StatFact::Present(st) => st,
        };
        if !self.exists {
            return Err(CheckResult::fail(
                format!("File {p} is expected not to exist"),
                format!("{p} exists ({})", file_type_name(st.mode)),
            ));
        }
        Ok(st)
    }

    fn type_and_mode(&self, st: &FileStat, out: &mut Vec<CheckResult>) {
        let p = &self.path;
        if let Some(kind) = &self.kind {
            let actual_type = file_type_name(st.mode);
            out.push(CheckResult::judge(
                actual_type == kind,
                format!("File {p} is expected to be a {kind}"),
                || format!("{p} is a {actual_type}"),
            ));
        }
        let mode = st.mode & 0o7777;
        if let Some(mask) = self.mode_max {
            out.push(CheckResult::judge(
                mode & !mask == 0,
                format!("File {p} is expected to have mode no more permissive than {mask:04o}"),
                || {
                    format!(
                        "{p} has mode {mode:04o}; bits {:04o} exceed {mask:04o}",
                        mode & !mask
                    )
                },
            ));
        }
        if let Some(bits) = self.mode_includes {
            out.push(CheckResult::judge(
                mode & bits == bits,
                format!("File {p} is expected to have mode bits {bits:04o} set"),
                || format!("{p} has mode {mode:04o}"),
            ));
        }
    }

    fn ownership(&self, st: &FileStat, facts: &Facts, out: &mut Vec<CheckResult>) {
        let p = &self.path;
        if let Some(owner) = &self.owner {
            let cd = format!("File {p} is expected to be owned by {owner}");
            out.push(match resolve_uid(owner, facts) {
                Ok(uid) => CheckResult::judge(st.uid == uid, cd, || {
                    format!("{p} is owned by uid {}", st.uid)
                }),
                Err(e) => CheckResult::error(cd, e),
            });
        }
        if let Some(group) = &self.group {
            let cd = format!("File {p} is expected to be grouped into {group}");
            out.push(match resolve_gid(group, facts) {
                Ok(gid) => {
                    CheckResult::judge(st.gid == gid, cd, || format!("{p} has gid {}", st.gid))
                }
                Err(e) => CheckResult::error(cd, e),
            });
        }
    }

    fn special_bits(&self, st: &FileStat, out: &mut Vec<CheckResult>) {
        for (want, bit, name) in [
            (self.setuid, 0o4000, "setuid"),
            (self.setgid, 0o2000, "setgid"),
        ] {
            let Some(want) = want else { continue };
            let has = st.mode & bit != 0;
            out.push(CheckResult::judge(
                has == want,
                format!(
                    "File {} is expected {}to be {name}",
                    self.path,
                    if want { "" } else { "not " }
                ),
                || format!("{} has mode {:04o}", self.path, st.mode & 0o7777),
            ));
        }
    }

    fn link(&self, st: &FileStat, out: &mut Vec<CheckResult>) {
        let Some(target) = &self.link_target else {
            return;
        };
        let p = &self.path;
        let cd = format!("File {p} is expected to be a symlink to {target}");
        out.push(match &st.link_target {
            Some(t) if st.mode & S_IFMT == S_IFLNK => {
                CheckResult::judge(t.as_slice() == target.as_bytes(), cd, || {
                    format!("{p} points to {}", lossy(t))
                })
            }
            _ => CheckResult::fail(cd, format!("{p} is a {}", file_type_name(st.mode))),
        });
    }

    fn content(&self, facts: &Facts, out: &mut Vec<CheckResult>) {
        let p = &self.path;
        for (re, must) in [
            (&self.content_matches, true),
            (&self.content_not_matches, false),
        ] {
            let Some(re) = re else { continue };
            let cd = format!(
                "File {p} content is expected {}to match /{}/",
                if must { "" } else { "not " },
                pattern(re)
            );
            out.push(match text_of(facts, p) {
                Text::Ok(t) => match (re.find(&t), must) {
                    (Some(_), true) | (None, false) => CheckResult::pass(cd),
                    (None, true) => CheckResult::fail(cd, format!("no line of {p} matches")),
                    (Some(m), false) => {
                        let line = t[..m.start()].matches('\n').count() + 1;
                        let shown: String =
                            lossy(m.as_str().as_bytes()).chars().take(120).collect();
                        CheckResult::fail(cd, format!("{p} line {line} matches: {shown}"))
                    }
                },
                Text::Missing => CheckResult::error(cd, format!("{p} disappeared while scanning")),
                Text::Problem(e) => CheckResult::error(cd, e),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::{Error, Failed, Passed};
    use super::super::test_support::{case, compile, facts, planned, read, run_cases};
    use crate::facts::{ContentFact, FactRequest, StatFact};

    const PW: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:10001:10001::/app:/sbin/nologin\n";

    #[test]
    fn existence_cases() {
        run_cases(vec![
            case(
                "required and missing",
                "file: {path: /x}",
                facts().stat_fact("/x", StatFact::Missing),
                &[(Failed, "File /x is expected to exist", "/x does not exist")],
            ),
            case(
                "must not exist, missing",
                "file: {path: /x, exists: false}",
                facts().stat_fact("/x", StatFact::Missing),
                &[(Passed, "File /x is expected not to exist", "")],
            ),
            case(
                "optional and missing",
                "file: {path: /x, optional: true, mode_max: '0600'}",
                facts().stat_fact("/x", StatFact::Missing),
                &[(
                    Passed,
                    "File /x is absent, so its properties need no check",
                    "",
                )],
            ),
            case(
                "must not exist, present",
                "file: {path: /x, exists: false}",
                facts().stat("/x", 0o040_755, 0, 0),
                &[(
                    Failed,
                    "File /x is expected not to exist",
                    "/x exists (directory)",
                )],
            ),
            case(
                "stat failed",
                "file: {path: /x}",
                facts().stat_fact("/x", StatFact::Error("EACCES".into())),
                &[(Error, "File /x is inspected", "EACCES")],
            ),
            case(
                "present, nothing else asked",
                "file: {path: /x}",
                facts().stat("/x", 0o100_644, 0, 0),
                &[(Passed, "File /x is expected to exist", "")],
            ),
        ]);
    }

    #[test]
    fn property_cases() {
        run_cases(vec![
            case(
                "type",
                "file: {path: /x, type: directory}",
                facts().stat("/x", 0o100_644, 0, 0),
                &[(
                    Failed,
                    "File /x is expected to be a directory",
                    "/x is a file",
                )],
            ),
            case(
                "mode too permissive",
                "file: {path: /x, mode_max: '0644'}",
                facts().stat("/x", 0o100_666, 0, 0),
                &[(
                    Failed,
                    "File /x is expected to have mode no more permissive than 0644",
                    "/x has mode 0666; bits 0022 exceed 0644",
                )],
            ),
            case(
                "mode bits set",
                "file: {path: /x, mode_includes: '01000'}",
                facts().stat("/x", 0o041_777, 0, 0),
                &[(Passed, "File /x is expected to have mode bits 1000 set", "")],
            ),
            case(
                "owner by name",
                "file: {path: /x, owner: app, group: '0'}",
                facts().stat("/x", 0o100_644, 0, 0).file("/etc/passwd", PW),
                &[
                    (
                        Failed,
                        "File /x is expected to be owned by app",
                        "/x is owned by uid 0",
                    ),
                    (Passed, "File /x is expected to be grouped into 0", ""),
                ],
            ),
            case(
                "owner unknown",
                "file: {path: /x, owner: nobody}",
                facts().stat("/x", 0o100_644, 0, 0).file("/etc/passwd", PW),
                &[(
                    Error,
                    "File /x is expected to be owned by nobody",
                    "`nobody` is not defined in /etc/passwd",
                )],
            ),
            case(
                "group file missing",
                "file: {path: /x, group: app}",
                facts().stat("/x", 0o100_644, 0, 0).no_file("/etc/group"),
                &[(
                    Error,
                    "File /x is expected to be grouped into app",
                    "/etc/group does not exist, so `app` cannot be resolved",
                )],
            ),
            case(
                "special bits",
                "file: {path: /x, setuid: false, setgid: true}",
                facts().stat("/x", 0o104_755, 0, 0),
                &[
                    (
                        Failed,
                        "File /x is expected not to be setuid",
                        "/x has mode 4755",
                    ),
                    (
                        Failed,
                        "File /x is expected to be setgid",
                        "/x has mode 4755",
                    ),
                ],
            ),
            case(
                "link target",
                "file: {path: /x, link_target: /y}",
                facts().symlink("/x", "/z"),
                &[(
                    Failed,
                    "File /x is expected to be a symlink to /y",
                    "/x points to /z",
                )],
            ),
            case(
                "link target, not a link",
                "file: {path: /x, link_target: /y}",
                facts().stat("/x", 0o100_644, 0, 0),
                &[(
                    Failed,
                    "File /x is expected to be a symlink to /y",
                    "/x is a file",
                )],
            ),
        ]);
    }

    #[test]
    fn content_cases() {
        let big = ContentFact::Data {
            bytes: b"a".to_vec(),
            total_len: 9,
        };
        run_cases(vec![
            case(
                "matches",
                "file: {path: /x, content_matches: '^b$'}",
                facts().stat("/x", 0o100_644, 0, 0).file("/x", "a\nb\n"),
                &[(Passed, "File /x content is expected to match /^b$/", "")],
            ),
            case(
                "does not match",
                "file: {path: /x, content_matches: '^c'}",
                facts().stat("/x", 0o100_644, 0, 0).file("/x", "a\nb\n"),
                &[(
                    Failed,
                    "File /x content is expected to match /^c/",
                    "no line of /x matches",
                )],
            ),
            case(
                "forbidden line, with its number",
                "file: {path: /x, content_not_matches: '^b.*'}",
                facts().stat("/x", 0o100_644, 0, 0).file("/x", "a\nb\x1b\n"),
                &[(
                    Failed,
                    "File /x content is expected not to match /^b.*/",
                    "/x line 2 matches: b?",
                )],
            ),
            case(
                "vanished between stat and read",
                "file: {path: /x, content_matches: a}",
                facts().stat("/x", 0o100_644, 0, 0).no_file("/x"),
                &[(
                    Error,
                    "File /x content is expected to match /a/",
                    "/x disappeared while scanning",
                )],
            ),
            case(
                "over the read cap",
                "file: {path: /x, content_not_matches: a}",
                facts().stat("/x", 0o100_644, 0, 0).content("/x", big),
                &[(
                    Error,
                    "File /x content is expected not to match /a/",
                    "larger than the per-file read cap",
                )],
            ),
        ]);
    }

    #[test]
    fn plans_only_what_it_reads() {
        let stat = FactRequest::Stat("/x".into());
        assert_eq!(
            planned("file: {path: /x, owner: '0', group: '0'}"),
            [stat.clone()].into()
        );
        assert_eq!(
            planned("file: {path: /x, owner: root, group: wheel, content_matches: a}"),
            [stat, read("/x"), read("/etc/passwd"), read("/etc/group")].into()
        );
    }

    #[test]
    fn compile_errors_name_the_field() {
        for (yaml, needle) in [
            ("file: {path: etc/x}", "path `etc/x` must be absolute"),
            ("file: {path: /a/../b}", "without `..`"),
            (
                "file: {path: /x, type: door}",
                "unknown file type `door`; expected one of: file, directory",
            ),
            (
                "file: {path: /x, mode_max: '0999'}",
                "`0999` is not an octal mode like 0644",
            ),
            (
                "file: {path: /x, content_matches: 'a('}",
                "invalid regex `a(`",
            ),
            ("file: {path: /x, colour: red}", "field `colour`"),
        ] {
            let e = compile(yaml).expect_err(yaml);
            assert!(e.contains(needle), "{yaml}: {e}");
        }
    }
}
