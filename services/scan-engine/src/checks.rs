//! Check types: their YAML form, the facts each needs, and the matchers that
//! turn facts into results with readable `code_desc` sentences.
//!
//! A check never touches a target: [`Check::plan`] names facts and
//! [`Check::evaluate`] reads them, so both targets share one semantics.

use std::collections::{BTreeMap, BTreeSet};

use marked_yaml::{Span, Spanned};
use regex::Regex;
use serde::Deserialize;

use crate::facts::{
    CommandFact, ContentFact, FactRequest, Facts, ProcessesFact, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
    StatFact, WalkEntry, WalkFact, file_type_name,
};
use crate::system_files::{
    Separator, parse_apk_installed, parse_dpkg_status, parse_group, parse_key_values,
    parse_os_release, parse_passwd, parse_shadow,
};

/// Status of one result, as HDF spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Expectation met.
    Passed,
    /// Expectation not met.
    Failed,
    /// Not evaluated (the reason is in the message).
    Skipped,
    /// Could not be evaluated because gathering failed.
    Error,
}

impl Status {
    /// HDF spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Error => "error",
        }
    }
}

/// One evaluated expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Outcome.
    pub status: Status,
    /// What was tested, as a sentence.
    pub code_desc: String,
    /// Why it failed, was skipped or errored.
    pub message: Option<String>,
}

impl CheckResult {
    fn new(status: Status, code_desc: impl Into<String>, message: Option<String>) -> Self {
        Self {
            status,
            code_desc: code_desc.into(),
            message,
        }
    }
    fn pass(code_desc: impl Into<String>) -> Self {
        Self::new(Status::Passed, code_desc, None)
    }
    fn judge(ok: bool, code_desc: impl Into<String>, why: impl FnOnce() -> String) -> Self {
        if ok {
            Self::pass(code_desc)
        } else {
            Self::new(Status::Failed, code_desc, Some(why()))
        }
    }
    fn error(code_desc: impl Into<String>, msg: impl Into<String>) -> Self {
        Self::new(Status::Error, code_desc, Some(msg.into()))
    }
    fn skip(code_desc: impl Into<String>, msg: impl Into<String>) -> Self {
        Self::new(Status::Skipped, code_desc, Some(msg.into()))
    }
}

// ----------------------------------------------------------------- YAML form

/// Names of the check types, as YAML keys.
pub const CHECK_TYPES: [&str; 10] = [
    "file",
    "search",
    "users",
    "groups",
    "packages",
    "os_release",
    "process",
    "environment",
    "config",
    "command",
];

/// A check as written in YAML: exactly one key naming its type.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawCheck {
    /// File properties.
    File(RawFile),
    /// Capped searches under paths.
    Search(RawSearch),
    /// passwd/shadow rules.
    Users(RawUsers),
    /// group rules.
    Groups(RawGroups),
    /// Installed packages.
    Packages(RawPackages),
    /// os-release keys.
    OsRelease(RawOsRelease),
    /// Processes from /proc.
    Process(RawProcess),
    /// The main process's environment.
    Environment(RawEnvironment),
    /// Key/value config files.
    Config(RawConfig),
    /// A shell command.
    Command(RawCommand),
}

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

/// `search:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSearch {
    find: Spanned<String>,
    paths: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    allow: Vec<String>,
}

/// `users:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUsers {
    rule: Spanned<String>,
    #[serde(default)]
    system_uid_max: Option<u32>,
    #[serde(default)]
    exempt: Vec<String>,
    #[serde(default)]
    nologin_shells: Vec<String>,
}

/// `groups:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroups {
    rule: Spanned<String>,
}

/// `packages:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackages {
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    present: Vec<String>,
}

/// `os_release:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOsRelease {
    key: String,
    #[serde(default)]
    matches: Option<Spanned<String>>,
    #[serde(default)]
    one_of: Vec<String>,
    #[serde(default)]
    not_one_of: Vec<String>,
}

/// `process:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    rule: Spanned<String>,
    #[serde(default)]
    pattern: Option<Spanned<String>>,
}

/// `environment:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    rule: Spanned<String>,
    #[serde(default)]
    name_pattern: Option<Spanned<String>>,
    #[serde(default)]
    allow: Vec<String>,
}

/// `config:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    path: String,
    key: String,
    #[serde(default)]
    separator: Option<Spanned<String>>,
    #[serde(default)]
    case_insensitive_keys: bool,
    #[serde(default)]
    equals: Option<String>,
    #[serde(default)]
    one_of: Vec<String>,
    #[serde(default)]
    matches: Option<Spanned<String>>,
    #[serde(default)]
    max: Option<i64>,
    #[serde(default)]
    min: Option<i64>,
    #[serde(default)]
    key_missing: Option<Spanned<String>>,
    #[serde(default)]
    file_missing: Option<Spanned<String>>,
}

/// `command:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    run: String,
    #[serde(default)]
    exit_status: Option<i32>,
    #[serde(default)]
    stdout_matches: Option<Spanned<String>>,
    #[serde(default)]
    stdout_not_matches: Option<Spanned<String>>,
}

type CompileError = (Span, String);

fn regex(s: &Spanned<String>) -> Result<Regex, CompileError> {
    Regex::new(&format!("(?m){}", s.as_str()))
        .map_err(|e| (*s.span(), format!("invalid regex `{}`: {e}", s.as_str())))
}

fn one_of<'a>(
    s: &'a Spanned<String>,
    allowed: &[&str],
    what: &str,
) -> Result<&'a str, CompileError> {
    if allowed.contains(&s.as_str()) {
        Ok(s.as_str())
    } else {
        Err((
            *s.span(),
            format!(
                "unknown {what} `{}`; expected one of: {}",
                s.as_str(),
                allowed.join(", ")
            ),
        ))
    }
}

fn octal(m: &Spanned<String>) -> Result<u32, CompileError> {
    u32::from_str_radix(m.as_str().trim_start_matches("0o"), 8)
        .ok()
        .filter(|v| *v <= 0o7777)
        .ok_or_else(|| {
            (
                *m.span(),
                format!("`{}` is not an octal mode like 0644", m.as_str()),
            )
        })
}

fn abs_path(s: &str, span: &Span) -> Result<String, CompileError> {
    if !s.starts_with('/') || s.contains('\0') || s.split('/').any(|c| c == "..") {
        return Err((
            *span,
            format!("path `{s}` must be absolute, without `..` or NUL"),
        ));
    }
    Ok(s.to_string())
}

impl RawCheck {
    /// Validates and compiles a check (regexes, enums, paths).
    ///
    /// # Errors
    /// The span and message of the first problem in this check.
    pub fn compile(&self) -> Result<Check, (Span, String)> {
        Ok(match self {
            RawCheck::File(f) => {
                let path = abs_path(f.path.as_str(), f.path.span())?;
                let kind = match &f.kind {
                    Some(k) => Some(
                        one_of(
                            k,
                            &[
                                "file",
                                "directory",
                                "symlink",
                                "fifo",
                                "socket",
                                "character_device",
                                "block_device",
                            ],
                            "file type",
                        )?
                        .to_string(),
                    ),
                    None => None,
                };
                let mode_max = f.mode_max.as_ref().map(octal).transpose()?;
                let mode_includes = f.mode_includes.as_ref().map(octal).transpose()?;
                Check::File(FileCheck {
                    path,
                    exists: f.exists.unwrap_or(true),
                    optional: f.optional,
                    kind,
                    mode_max,
                    mode_includes,
                    owner: f.owner.clone(),
                    group: f.group.clone(),
                    content_matches: f.content_matches.as_ref().map(regex).transpose()?,
                    content_not_matches: f.content_not_matches.as_ref().map(regex).transpose()?,
                    setuid: f.setuid,
                    setgid: f.setgid,
                    link_target: f.link_target.clone(),
                })
            }
            RawCheck::Search(s) => {
                let find = match one_of(
                    &s.find,
                    &["world_writable", "setuid_setgid", "unknown_owner", "files"],
                    "search",
                )? {
                    "world_writable" => SearchKind::WorldWritable,
                    "setuid_setgid" => SearchKind::SetuidSetgid,
                    "files" => SearchKind::Files,
                    _ => SearchKind::UnknownOwner,
                };
                if s.paths.is_empty() {
                    return Err((*s.find.span(), "search needs at least one path".into()));
                }
                let mut paths = Vec::new();
                for p in &s.paths {
                    paths.push(abs_path(p, s.find.span())?);
                }
                Check::Search(SearchCheck {
                    find,
                    paths,
                    exclude: s.exclude.clone(),
                    allow: s.allow.iter().cloned().collect(),
                })
            }
            RawCheck::Users(u) => {
                let rule = match one_of(
                    &u.rule,
                    &[
                        "only_root_uid0",
                        "no_empty_passwords",
                        "no_weak_hashes",
                        "system_accounts_no_login",
                        "unique_uids",
                        "unique_names",
                    ],
                    "users rule",
                )? {
                    "only_root_uid0" => UsersRule::OnlyRootUid0,
                    "no_empty_passwords" => UsersRule::NoEmptyPasswords,
                    "no_weak_hashes" => UsersRule::NoWeakHashes,
                    "system_accounts_no_login" => UsersRule::SystemAccountsNoLogin,
                    "unique_uids" => UsersRule::UniqueUids,
                    _ => UsersRule::UniqueNames,
                };
                Check::Users(UsersCheck {
                    rule,
                    system_uid_max: u.system_uid_max.unwrap_or(999),
                    exempt: u.exempt.iter().cloned().collect(),
                    nologin_shells: if u.nologin_shells.is_empty() {
                        [
                            "/sbin/nologin",
                            "/usr/sbin/nologin",
                            "/bin/false",
                            "/usr/bin/false",
                            "/bin/sync",
                            "/sbin/shutdown",
                            "/sbin/halt",
                        ]
                        .iter()
                        .map(|s| s.to_string())
                        .collect()
                    } else {
                        u.nologin_shells.iter().cloned().collect()
                    },
                })
            }
            RawCheck::Groups(g) => {
                let rule = match one_of(
                    &g.rule,
                    &["only_root_gid0", "unique_gids", "root_group_no_members"],
                    "groups rule",
                )? {
                    "only_root_gid0" => GroupsRule::OnlyRootGid0,
                    "unique_gids" => GroupsRule::UniqueGids,
                    _ => GroupsRule::RootGroupNoMembers,
                };
                Check::Groups(rule)
            }
            RawCheck::Packages(p) => {
                if p.absent.is_empty() && p.present.is_empty() {
                    return Err((
                        Span::new_blank(),
                        "packages check needs `absent` or `present`".into(),
                    ));
                }
                Check::Packages(PackagesCheck {
                    absent: p.absent.clone(),
                    present: p.present.clone(),
                })
            }
            RawCheck::OsRelease(o) => Check::OsRelease(OsReleaseCheck {
                key: o.key.clone(),
                matches: o.matches.as_ref().map(regex).transpose()?,
                one_of: o.one_of.clone(),
                not_one_of: o.not_one_of.clone(),
            }),
            RawCheck::Process(p) => {
                let rule = one_of(&p.rule, &["main_not_root", "none_matching"], "process rule")?;
                match rule {
                    "main_not_root" => Check::Process(ProcessRule::MainNotRoot),
                    _ => {
                        let pat = p.pattern.as_ref().ok_or_else(|| {
                            (*p.rule.span(), "none_matching needs `pattern`".to_string())
                        })?;
                        Check::Process(ProcessRule::NoneMatching(regex(pat)?))
                    }
                }
            }
            RawCheck::Environment(e) => {
                one_of(&e.rule, &["no_secrets"], "environment rule")?;
                let pattern = match &e.name_pattern {
                    Some(p) => regex(p)?,
                    None => Regex::new(
                        "(?i)(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)",
                    )
                    .map_err(|e| (Span::new_blank(), e.to_string()))?,
                };
                Check::Environment(EnvCheck {
                    pattern,
                    allow: e.allow.iter().cloned().collect(),
                })
            }
            RawCheck::Config(c) => {
                let sep = match &c.separator {
                    Some(s) => match one_of(s, &["whitespace", "equals"], "separator")? {
                        "equals" => Separator::Equals,
                        _ => Separator::Whitespace,
                    },
                    None => Separator::Whitespace,
                };
                let outcome = |o: &Option<Spanned<String>>| -> Result<Status, CompileError> {
                    Ok(match o {
                        Some(s) => match one_of(s, &["passed", "failed", "skipped"], "outcome")? {
                            "passed" => Status::Passed,
                            "skipped" => Status::Skipped,
                            _ => Status::Failed,
                        },
                        None => Status::Failed,
                    })
                };
                Check::Config(ConfigCheck {
                    path: c.path.clone(),
                    key: if c.case_insensitive_keys {
                        c.key.to_ascii_lowercase()
                    } else {
                        c.key.clone()
                    },
                    display_key: c.key.clone(),
                    separator: sep,
                    case_insensitive_keys: c.case_insensitive_keys,
                    equals: c.equals.clone(),
                    one_of: c.one_of.clone(),
                    matches: c.matches.as_ref().map(regex).transpose()?,
                    max: c.max,
                    min: c.min,
                    key_missing: outcome(&c.key_missing)?,
                    file_missing: outcome(&c.file_missing)?,
                })
            }
            RawCheck::Command(c) => Check::Command(CommandCheck {
                run: c.run.clone(),
                exit_status: c.exit_status,
                stdout_matches: c.stdout_matches.as_ref().map(regex).transpose()?,
                stdout_not_matches: c.stdout_not_matches.as_ref().map(regex).transpose()?,
            }),
        })
    }
}

// ----------------------------------------------------------------- compiled

/// A compiled check.
#[derive(Debug, Clone)]
pub enum Check {
    /// File properties.
    File(FileCheck),
    /// Searches under paths.
    Search(SearchCheck),
    /// passwd/shadow rules.
    Users(UsersCheck),
    /// group rules.
    Groups(GroupsRule),
    /// Installed packages.
    Packages(PackagesCheck),
    /// os-release keys.
    OsRelease(OsReleaseCheck),
    /// Processes.
    Process(ProcessRule),
    /// Main process environment.
    Environment(EnvCheck),
    /// Key/value config.
    Config(ConfigCheck),
    /// Shell command.
    Command(CommandCheck),
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

/// What a search looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    /// World-writable files, and world-writable directories without the sticky bit.
    WorldWritable,
    /// Files with setuid or setgid.
    SetuidSetgid,
    /// Entries whose uid is not in passwd or gid not in group.
    UnknownOwner,
    /// Any regular file (caches, keys and tools that should not ship).
    Files,
}

/// See [`RawSearch`].
#[derive(Debug, Clone)]
pub struct SearchCheck {
    find: SearchKind,
    paths: Vec<String>,
    exclude: Vec<String>,
    allow: BTreeSet<String>,
}

/// passwd/shadow rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsersRule {
    /// Only `root` has uid 0.
    OnlyRootUid0,
    /// No account has an empty password field.
    NoEmptyPasswords,
    /// No account uses DES/MD5/NT hashes.
    NoWeakHashes,
    /// System accounts other than root have a nologin shell.
    SystemAccountsNoLogin,
    /// No two accounts share a uid.
    UniqueUids,
    /// No two accounts share a name.
    UniqueNames,
}

/// See [`RawUsers`].
#[derive(Debug, Clone)]
pub struct UsersCheck {
    rule: UsersRule,
    system_uid_max: u32,
    exempt: BTreeSet<String>,
    nologin_shells: BTreeSet<String>,
}

/// group rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupsRule {
    /// Only the `root` group has gid 0.
    OnlyRootGid0,
    /// No two groups share a gid.
    UniqueGids,
    /// The gid-0 group has no supplementary members.
    RootGroupNoMembers,
}

/// See [`RawPackages`].
#[derive(Debug, Clone)]
pub struct PackagesCheck {
    absent: Vec<String>,
    present: Vec<String>,
}

/// See [`RawOsRelease`].
#[derive(Debug, Clone)]
pub struct OsReleaseCheck {
    key: String,
    matches: Option<Regex>,
    one_of: Vec<String>,
    not_one_of: Vec<String>,
}

/// Process rules.
#[derive(Debug, Clone)]
pub enum ProcessRule {
    /// The main process (pid 1, else the lowest pid) does not run as uid 0.
    MainNotRoot,
    /// No process's command line matches.
    NoneMatching(Regex),
}

/// See [`RawEnvironment`].
#[derive(Debug, Clone)]
pub struct EnvCheck {
    pattern: Regex,
    allow: BTreeSet<String>,
}

/// See [`RawConfig`].
#[derive(Debug, Clone)]
pub struct ConfigCheck {
    path: String,
    key: String,
    display_key: String,
    separator: Separator,
    case_insensitive_keys: bool,
    equals: Option<String>,
    one_of: Vec<String>,
    matches: Option<Regex>,
    max: Option<i64>,
    min: Option<i64>,
    key_missing: Status,
    file_missing: Status,
}

/// See [`RawCommand`].
#[derive(Debug, Clone)]
pub struct CommandCheck {
    run: String,
    exit_status: Option<i32>,
    stdout_matches: Option<Regex>,
    stdout_not_matches: Option<Regex>,
}

const PASSWD: &str = "/etc/passwd";
const SHADOW: &str = "/etc/shadow";
const GROUP: &str = "/etc/group";
const DPKG_STATUS: &str = "/var/lib/dpkg/status";
const APK_INSTALLED: &str = "/lib/apk/db/installed";
const OS_RELEASE: &str = "/etc/os-release";
const OS_RELEASE_FALLBACK: &str = "/usr/lib/os-release";
/// Environment of the main process.
pub const MAIN_ENVIRON: &str = "/proc/1/environ";
/// How many offending paths a failure message lists before summarising.
const MAX_LISTED: usize = 10;

/// Fact requests os-release detection needs (also used for the HDF platform).
pub fn os_release_requests() -> [FactRequest; 2] {
    [
        FactRequest::Read(OS_RELEASE.into()),
        FactRequest::Read(OS_RELEASE_FALLBACK.into()),
    ]
}

/// os-release key/values from facts: `/etc/os-release`, else `/usr/lib/os-release`.
pub fn os_release(facts: &Facts) -> Option<BTreeMap<String, String>> {
    for p in [OS_RELEASE, OS_RELEASE_FALLBACK] {
        if let ContentFact::Data { bytes, .. } = facts.content(p) {
            return Some(parse_os_release(&String::from_utf8_lossy(&bytes)));
        }
    }
    None
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn list_paths(paths: &[String]) -> String {
    let mut s = paths
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > MAX_LISTED {
        s.push_str(&format!(" and {} more", paths.len() - MAX_LISTED));
    }
    s
}

/// Text of a small system file, or a result explaining why it is unavailable.
enum Text {
    Ok(String),
    Missing,
    Problem(String),
}

fn text_of(facts: &Facts, path: &str) -> Text {
    match facts.content(path) {
        ContentFact::Data { bytes, total_len } if total_len as usize == bytes.len() => {
            Text::Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        ContentFact::Data { total_len, .. } => Text::Problem(format!(
            "{path} is {total_len} bytes, larger than the per-file read cap"
        )),
        ContentFact::Missing => Text::Missing,
        ContentFact::NotRegular => Text::Problem(format!("{path} is not a regular file")),
        ContentFact::Error(e) => Text::Problem(format!("cannot read {path}: {e}")),
    }
}

impl Check {
    /// Adds the facts this check needs to `out`.
    pub fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        match self {
            Check::File(f) => {
                out.insert(FactRequest::Stat(f.path.clone()));
                if f.content_matches.is_some() || f.content_not_matches.is_some() {
                    out.insert(FactRequest::Read(f.path.clone()));
                }
                if f.owner
                    .as_deref()
                    .is_some_and(|o| o.parse::<u32>().is_err())
                {
                    out.insert(FactRequest::Read(PASSWD.into()));
                }
                if f.group
                    .as_deref()
                    .is_some_and(|g| g.parse::<u32>().is_err())
                {
                    out.insert(FactRequest::Read(GROUP.into()));
                }
            }
            Check::Search(s) => {
                for p in &s.paths {
                    out.insert(FactRequest::Walk(p.clone()));
                }
                if s.find == SearchKind::UnknownOwner {
                    out.insert(FactRequest::Read(PASSWD.into()));
                    out.insert(FactRequest::Read(GROUP.into()));
                }
            }
            Check::Users(u) => {
                out.insert(FactRequest::Read(PASSWD.into()));
                if matches!(
                    u.rule,
                    UsersRule::NoEmptyPasswords | UsersRule::NoWeakHashes
                ) {
                    out.insert(FactRequest::Read(SHADOW.into()));
                }
            }
            Check::Groups(_) => {
                out.insert(FactRequest::Read(GROUP.into()));
            }
            Check::Packages(_) => {
                out.insert(FactRequest::Read(DPKG_STATUS.into()));
                out.insert(FactRequest::Read(APK_INSTALLED.into()));
            }
            Check::OsRelease(_) => out.extend(os_release_requests()),
            Check::Process(_) => {
                out.insert(FactRequest::Processes);
            }
            Check::Environment(_) => {
                out.insert(FactRequest::Read(MAIN_ENVIRON.into()));
            }
            Check::Config(c) => {
                out.insert(FactRequest::Read(c.path.clone()));
            }
            Check::Command(c) => {
                out.insert(FactRequest::Command(c.run.clone()));
            }
        }
    }

    /// Evaluates the check against gathered facts. Always yields at least one result.
    pub fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let out = match self {
            Check::File(f) => eval_file(f, facts),
            Check::Search(s) => eval_search(s, facts),
            Check::Users(u) => eval_users(u, facts),
            Check::Groups(g) => eval_groups(*g, facts),
            Check::Packages(p) => eval_packages(p, facts),
            Check::OsRelease(o) => eval_os_release(o, facts),
            Check::Process(p) => eval_process(p, facts),
            Check::Environment(e) => eval_env(e, facts),
            Check::Config(c) => eval_config(c, facts),
            Check::Command(c) => eval_command(c, facts),
        };
        if out.is_empty() {
            vec![CheckResult::error(
                "check",
                "internal: check produced no result",
            )]
        } else {
            out
        }
    }
}

fn resolve_id(
    spec: &str,
    facts: &Facts,
    file: &str,
    by_name: fn(&str, &str) -> Option<u32>,
) -> Result<u32, String> {
    if let Ok(n) = spec.parse::<u32>() {
        return Ok(n);
    }
    match text_of(facts, file) {
        Text::Ok(t) => {
            by_name(&t, spec).ok_or_else(|| format!("`{spec}` is not defined in {file}"))
        }
        Text::Missing => Err(format!(
            "{file} does not exist, so `{spec}` cannot be resolved"
        )),
        Text::Problem(p) => Err(p),
    }
}

fn uid_by_name(text: &str, name: &str) -> Option<u32> {
    parse_passwd(text)
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| e.uid)
}

fn gid_by_name(text: &str, name: &str) -> Option<u32> {
    parse_group(text)
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| e.gid)
}

fn eval_file(f: &FileCheck, facts: &Facts) -> Vec<CheckResult> {
    let p = &f.path;
    let st = match facts.stat(p) {
        StatFact::Error(e) => return vec![CheckResult::error(format!("File {p} is inspected"), e)],
        StatFact::Missing => {
            return vec![if !f.exists {
                CheckResult::pass(format!("File {p} is expected not to exist"))
            } else if f.optional {
                CheckResult::pass(format!(
                    "File {p} is absent, so its properties need no check"
                ))
            } else {
                CheckResult::new(
                    Status::Failed,
                    format!("File {p} is expected to exist"),
                    Some(format!("{p} does not exist")),
                )
            }];
        }
        StatFact::Present(st) => st,
    };
    if !f.exists {
        return vec![CheckResult::new(
            Status::Failed,
            format!("File {p} is expected not to exist"),
            Some(format!("{p} exists ({})", file_type_name(st.mode))),
        )];
    }
    let mut out = Vec::new();
    let actual_type = file_type_name(st.mode);
    if let Some(kind) = &f.kind {
        out.push(CheckResult::judge(
            actual_type == kind,
            format!("File {p} is expected to be a {kind}"),
            || format!("{p} is a {actual_type}"),
        ));
    }
    if let Some(mask) = f.mode_max {
        let mode = st.mode & 0o7777;
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
    if let Some(bits) = f.mode_includes {
        let mode = st.mode & 0o7777;
        out.push(CheckResult::judge(
            mode & bits == bits,
            format!("File {p} is expected to have mode bits {bits:04o} set"),
            || format!("{p} has mode {mode:04o}"),
        ));
    }
    if let Some(owner) = &f.owner {
        let cd = format!("File {p} is expected to be owned by {owner}");
        out.push(match resolve_id(owner, facts, PASSWD, uid_by_name) {
            Ok(uid) => CheckResult::judge(st.uid == uid, cd, || {
                format!("{p} is owned by uid {}", st.uid)
            }),
            Err(e) => CheckResult::error(cd, e),
        });
    }
    if let Some(group) = &f.group {
        let cd = format!("File {p} is expected to be grouped into {group}");
        out.push(match resolve_id(group, facts, GROUP, gid_by_name) {
            Ok(gid) => CheckResult::judge(st.gid == gid, cd, || format!("{p} has gid {}", st.gid)),
            Err(e) => CheckResult::error(cd, e),
        });
    }
    if let Some(want) = f.setuid {
        let has = st.mode & 0o4000 != 0;
        out.push(CheckResult::judge(
            has == want,
            format!(
                "File {p} is expected {}to be setuid",
                if want { "" } else { "not " }
            ),
            || format!("{p} has mode {:04o}", st.mode & 0o7777),
        ));
    }
    if let Some(want) = f.setgid {
        let has = st.mode & 0o2000 != 0;
        out.push(CheckResult::judge(
            has == want,
            format!(
                "File {p} is expected {}to be setgid",
                if want { "" } else { "not " }
            ),
            || format!("{p} has mode {:04o}", st.mode & 0o7777),
        ));
    }
    if let Some(target) = &f.link_target {
        let cd = format!("File {p} is expected to be a symlink to {target}");
        out.push(match &st.link_target {
            Some(t) if st.mode & S_IFMT == S_IFLNK => {
                CheckResult::judge(t.as_slice() == target.as_bytes(), cd, || {
                    format!("{p} points to {}", lossy(t))
                })
            }
            _ => CheckResult::new(Status::Failed, cd, Some(format!("{p} is a {actual_type}"))),
        });
    }
    for (re, must) in [(&f.content_matches, true), (&f.content_not_matches, false)] {
        let Some(re) = re else { continue };
        let cd = format!(
            "File {p} content is expected {}to match /{}/",
            if must { "" } else { "not " },
            re.as_str().trim_start_matches("(?m)")
        );
        out.push(match text_of(facts, p) {
            Text::Ok(t) => {
                let found = re.find(&t);
                match (found, must) {
                    (Some(_), true) | (None, false) => CheckResult::pass(cd),
                    (None, true) => CheckResult::new(
                        Status::Failed,
                        cd,
                        Some(format!("no line of {p} matches")),
                    ),
                    (Some(m), false) => {
                        let line = t[..m.start()].matches('\n').count() + 1;
                        CheckResult::new(
                            Status::Failed,
                            cd,
                            Some(format!(
                                "{p} line {line} matches: {}",
                                lossy(m.as_str().as_bytes())
                                    .chars()
                                    .take(120)
                                    .collect::<String>()
                            )),
                        )
                    }
                }
            }
            Text::Missing => CheckResult::error(cd, format!("{p} disappeared while scanning")),
            Text::Problem(e) => CheckResult::error(cd, e),
        });
    }
    if out.is_empty() {
        out.push(CheckResult::pass(format!("File {p} is expected to exist")));
    }
    out
}

fn eval_search(s: &SearchCheck, facts: &Facts) -> Vec<CheckResult> {
    let what = match s.find {
        SearchKind::WorldWritable => "world-writable files",
        SearchKind::SetuidSetgid => "setuid or setgid files",
        SearchKind::UnknownOwner => "files owned by unknown users or groups",
        SearchKind::Files => "regular files",
    };
    let cd = format!("No {what} under {}", s.paths.join(", "));
    let mut known: Option<(BTreeSet<u32>, BTreeSet<u32>)> = None;
    if s.find == SearchKind::UnknownOwner {
        let users = match text_of(facts, PASSWD) {
            Text::Ok(t) => parse_passwd(&t).into_iter().map(|e| e.uid).collect(),
            Text::Missing => BTreeSet::new(),
            Text::Problem(e) => return vec![CheckResult::error(cd, e)],
        };
        let groups = match text_of(facts, GROUP) {
            Text::Ok(t) => parse_group(&t).into_iter().map(|e| e.gid).collect(),
            Text::Missing => BTreeSet::new(),
            Text::Problem(e) => return vec![CheckResult::error(cd, e)],
        };
        known = Some((users, groups));
    }
    let mut offenders = Vec::new();
    let mut searched = 0usize;
    for root in &s.paths {
        let entries: &Vec<WalkEntry> = match facts.walk(root) {
            None => {
                return vec![CheckResult::error(
                    cd,
                    format!("internal: {root} was not walked"),
                )];
            }
            Some(WalkFact::Missing) => continue,
            Some(WalkFact::Error(e)) => {
                return vec![CheckResult::error(cd, format!("walking {root}: {e}"))];
            }
            Some(WalkFact::Entries {
                truncated: true,
                entries,
                ..
            }) => {
                return vec![CheckResult::error(
                    cd,
                    format!(
                        "search under {root} stopped at the entry cap ({} entries); raise the cap or narrow the paths",
                        entries.len()
                    ),
                )];
            }
            Some(WalkFact::Entries {
                complete: false, ..
            }) => {
                return vec![CheckResult::error(
                    cd,
                    format!("some directories under {root} could not be read"),
                )];
            }
            Some(WalkFact::Entries { entries, .. }) => entries,
        };
        searched += 1;
        for e in entries {
            let path = lossy(&e.path);
            if s.allow.contains(&path)
                || s.exclude.iter().any(|x| {
                    path == *x || path.starts_with(&format!("{}/", x.trim_end_matches('/')))
                })
            {
                continue;
            }
            let kind = e.mode & S_IFMT;
            let bad = match s.find {
                SearchKind::WorldWritable => {
                    kind != S_IFLNK
                        && e.mode & 0o002 != 0
                        && !(kind == S_IFDIR && e.mode & 0o1000 != 0)
                }
                SearchKind::SetuidSetgid => kind != S_IFLNK && e.mode & 0o6000 != 0,
                SearchKind::Files => kind == S_IFREG,
                SearchKind::UnknownOwner => {
                    let (u, g) = known.as_ref().map(|(u, g)| (u, g)).expect("set above");
                    !u.contains(&e.uid) || !g.contains(&e.gid)
                }
            };
            if bad {
                offenders.push(path);
            }
        }
    }
    if searched == 0 {
        // Nothing to search means nothing was found: a missing cache
        // directory is the good case, not an unknown one.
        return vec![CheckResult::pass(cd)];
    }
    offenders.sort();
    offenders.dedup();
    vec![CheckResult::judge(offenders.is_empty(), cd, || {
        format!("found {}: {}", offenders.len(), list_paths(&offenders))
    })]
}

fn eval_users(u: &UsersCheck, facts: &Facts) -> Vec<CheckResult> {
    let cd = match u.rule {
        UsersRule::OnlyRootUid0 => "Only root has uid 0".to_string(),
        UsersRule::NoEmptyPasswords => "No account has an empty password".into(),
        UsersRule::NoWeakHashes => "No account uses a weak password hash (DES, MD5, NTHASH)".into(),
        UsersRule::SystemAccountsNoLogin => format!(
            "System accounts (uid 1..={}) have no login shell",
            u.system_uid_max
        ),
        UsersRule::UniqueUids => "Every account has a unique uid".into(),
        UsersRule::UniqueNames => "Every account name is unique".into(),
    };
    let passwd = match text_of(facts, PASSWD) {
        Text::Ok(t) => parse_passwd(&t),
        Text::Missing => return vec![CheckResult::skip(cd, format!("{PASSWD} does not exist"))],
        Text::Problem(e) => return vec![CheckResult::error(cd, e)],
    };
    let shadow = || match text_of(facts, SHADOW) {
        Text::Ok(t) => Ok(parse_shadow(&t)),
        Text::Missing => Ok(Vec::new()),
        Text::Problem(e) => Err(e),
    };
    let bad: Vec<String> = match u.rule {
        UsersRule::OnlyRootUid0 => passwd
            .iter()
            .filter(|e| e.uid == 0 && e.name != "root")
            .map(|e| e.name.clone())
            .collect(),
        UsersRule::NoEmptyPasswords | UsersRule::NoWeakHashes => {
            let shadow = match shadow() {
                Ok(s) => s,
                Err(e) => return vec![CheckResult::error(cd, e)],
            };
            let mut hashes: Vec<(String, String)> = passwd
                .iter()
                .filter(|e| e.password != "x")
                .map(|e| (e.name.clone(), e.password.clone()))
                .collect();
            hashes.extend(shadow);
            hashes
                .into_iter()
                .filter(|(name, h)| {
                    !u.exempt.contains(name)
                        && if u.rule == UsersRule::NoEmptyPasswords {
                            h.is_empty()
                        } else {
                            is_weak_hash(h)
                        }
                })
                .map(|(n, _)| n)
                .collect()
        }
        UsersRule::SystemAccountsNoLogin => passwd
            .iter()
            .filter(|e| {
                e.uid != 0
                    && e.uid <= u.system_uid_max
                    && !u.exempt.contains(&e.name)
                    && !u.nologin_shells.contains(&e.shell)
            })
            .map(|e| format!("{} ({})", e.name, e.shell))
            .collect(),
        UsersRule::UniqueUids => duplicates(passwd.iter().map(|e| e.uid.to_string())),
        UsersRule::UniqueNames => duplicates(passwd.iter().map(|e| e.name.clone())),
    };
    let mut bad = bad;
    bad.sort();
    bad.dedup();
    vec![CheckResult::judge(bad.is_empty(), cd, || {
        format!("offending: {}", list_paths(&bad))
    })]
}

fn duplicates(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items.filter(|i| !seen.insert(i.clone())).collect()
}

/// DES (13 chars, no `$`), MD5 (`$1$`, `$md5`), NTHASH (`$3$`). Locked (`!`, `*`)
/// and empty fields are not "weak hashes" (empty is its own rule).
fn is_weak_hash(h: &str) -> bool {
    let h = h.trim_start_matches('!');
    if h.is_empty() || h.starts_with('*') {
        return false;
    }
    h.starts_with("$1$") || h.starts_with("$md5") || h.starts_with("$3$") || !h.starts_with('$')
}

fn eval_groups(rule: GroupsRule, facts: &Facts) -> Vec<CheckResult> {
    let cd = match rule {
        GroupsRule::OnlyRootGid0 => "Only the root group has gid 0",
        GroupsRule::UniqueGids => "Every group has a unique gid",
        GroupsRule::RootGroupNoMembers => "The root group has no supplementary members",
    };
    let groups = match text_of(facts, GROUP) {
        Text::Ok(t) => parse_group(&t),
        Text::Missing => return vec![CheckResult::skip(cd, format!("{GROUP} does not exist"))],
        Text::Problem(e) => return vec![CheckResult::error(cd, e)],
    };
    let mut bad: Vec<String> = match rule {
        GroupsRule::OnlyRootGid0 => groups
            .iter()
            .filter(|g| g.gid == 0 && g.name != "root")
            .map(|g| g.name.clone())
            .collect(),
        GroupsRule::UniqueGids => duplicates(groups.iter().map(|g| g.gid.to_string())),
        GroupsRule::RootGroupNoMembers => groups
            .iter()
            .filter(|g| g.gid == 0)
            .flat_map(|g| g.members.iter().filter(|m| *m != "root").cloned())
            .collect(),
    };
    bad.sort();
    vec![CheckResult::judge(bad.is_empty(), cd, || {
        format!("offending: {}", list_paths(&bad))
    })]
}

fn eval_packages(p: &PackagesCheck, facts: &Facts) -> Vec<CheckResult> {
    let mut installed = BTreeMap::new();
    let mut problems = Vec::new();
    let mut any_db = false;
    for (path, parse) in [
        (
            DPKG_STATUS,
            parse_dpkg_status as fn(&str) -> BTreeMap<String, String>,
        ),
        (APK_INSTALLED, parse_apk_installed),
    ] {
        match text_of(facts, path) {
            Text::Ok(t) => {
                any_db = true;
                installed.extend(parse(&t));
            }
            Text::Missing => {}
            Text::Problem(e) => problems.push(e),
        }
    }
    let mut out = Vec::new();
    for (name, want) in p
        .absent
        .iter()
        .map(|n| (n, false))
        .chain(p.present.iter().map(|n| (n, true)))
    {
        let cd = format!(
            "Package {name} is expected {}to be installed",
            if want { "" } else { "not " }
        );
        if let Some(e) = problems.first() {
            out.push(CheckResult::error(cd, e.clone()));
            continue;
        }
        let has = installed.get(name);
        out.push(CheckResult::judge(
            has.is_some() == want,
            cd,
            || match has {
                Some(v) => format!("{name} {v} is installed"),
                None if any_db => format!("{name} is not installed"),
                None => "no dpkg or apk package database found".to_string(),
            },
        ));
    }
    out
}

fn eval_os_release(o: &OsReleaseCheck, facts: &Facts) -> Vec<CheckResult> {
    let mut expect = Vec::new();
    if let Some(re) = &o.matches {
        expect.push(format!(
            "to match /{}/",
            re.as_str().trim_start_matches("(?m)")
        ));
    }
    if !o.one_of.is_empty() {
        expect.push(format!("to be one of {}", o.one_of.join(", ")));
    }
    if !o.not_one_of.is_empty() {
        expect.push(format!("not to be any of {}", o.not_one_of.join(", ")));
    }
    if expect.is_empty() {
        expect.push("to be set".into());
    }
    let cd = format!("os-release {} is expected {}", o.key, expect.join(" and "));
    let Some(map) = os_release(facts) else {
        for p in [OS_RELEASE, OS_RELEASE_FALLBACK] {
            if let Text::Problem(e) = text_of(facts, p) {
                return vec![CheckResult::error(cd, e)];
            }
        }
        return vec![CheckResult::new(
            Status::Failed,
            cd,
            Some("no os-release file found".into()),
        )];
    };
    let Some(v) = map.get(&o.key) else {
        return vec![CheckResult::new(
            Status::Failed,
            cd,
            Some(format!("{} is not set", o.key)),
        )];
    };
    let ok = o.matches.as_ref().is_none_or(|re| re.is_match(v))
        && (o.one_of.is_empty() || o.one_of.contains(v))
        && !o.not_one_of.contains(v);
    vec![CheckResult::judge(ok, cd, || format!("{} is `{v}`", o.key))]
}

fn eval_process(p: &ProcessRule, facts: &Facts) -> Vec<CheckResult> {
    let cd = match p {
        ProcessRule::MainNotRoot => "The main process does not run as root".to_string(),
        ProcessRule::NoneMatching(re) => format!(
            "No process command line matches /{}/",
            re.as_str().trim_start_matches("(?m)")
        ),
    };
    let procs = match facts.processes() {
        ProcessesFact::Listed(p) => p,
        ProcessesFact::Error(e) => return vec![CheckResult::error(cd, e)],
    };
    if procs.is_empty() {
        return vec![CheckResult::skip(
            cd,
            "no processes are visible on this target (/proc is not mounted in the scanned root)",
        )];
    }
    match p {
        ProcessRule::MainNotRoot => {
            let main = procs.iter().find(|p| p.pid == 1).unwrap_or(&procs[0]);
            match main.uid {
                Some(uid) => vec![CheckResult::judge(uid != 0, cd, || {
                    format!(
                        "pid {} ({}) runs as uid 0",
                        main.pid,
                        cmdline(&main.cmdline)
                    )
                })],
                None => vec![CheckResult::error(
                    cd,
                    format!("uid of pid {} is unreadable", main.pid),
                )],
            }
        }
        ProcessRule::NoneMatching(re) => {
            let bad: Vec<String> = procs
                .iter()
                .filter(|p| re.is_match(&cmdline(&p.cmdline)))
                .map(|p| format!("pid {}: {}", p.pid, cmdline(&p.cmdline)))
                .collect();
            vec![CheckResult::judge(bad.is_empty(), cd, || list_paths(&bad))]
        }
    }
}

fn cmdline(parts: &[Vec<u8>]) -> String {
    parts.iter().map(|p| lossy(p)).collect::<Vec<_>>().join(" ")
}

fn eval_env(e: &EnvCheck, facts: &Facts) -> Vec<CheckResult> {
    let cd = "The main process environment holds no variables that look like secrets";
    match facts.content(MAIN_ENVIRON) {
        ContentFact::Data { bytes, .. } => {
            let mut bad: Vec<String> = bytes
                .split(|b| *b == 0)
                .filter_map(|kv| {
                    let kv = lossy(kv);
                    let (k, v) = kv.split_once('=')?;
                    (!v.is_empty() && e.pattern.is_match(k) && !e.allow.contains(k))
                        .then(|| k.to_string())
                })
                .collect();
            bad.sort();
            // Names only: values are the secrets and must never reach a report.
            vec![CheckResult::judge(bad.is_empty(), cd, || {
                format!("suspicious variables: {}", list_paths(&bad))
            })]
        }
        ContentFact::Missing => vec![CheckResult::skip(
            cd,
            "the main process environment is not visible on this target (/proc is not mounted in the scanned root)",
        )],
        ContentFact::NotRegular => vec![CheckResult::error(
            cd,
            format!("{MAIN_ENVIRON} is not a regular file"),
        )],
        ContentFact::Error(err) => vec![CheckResult::error(cd, err)],
    }
}

fn eval_config(c: &ConfigCheck, facts: &Facts) -> Vec<CheckResult> {
    let mut expect = Vec::new();
    if let Some(v) = &c.equals {
        expect.push(format!("to equal `{v}`"));
    }
    if !c.one_of.is_empty() {
        expect.push(format!("to be one of {}", c.one_of.join(", ")));
    }
    if let Some(re) = &c.matches {
        expect.push(format!(
            "to match /{}/",
            re.as_str().trim_start_matches("(?m)")
        ));
    }
    if let Some(m) = c.max {
        expect.push(format!("to be at most {m}"));
    }
    if let Some(m) = c.min {
        expect.push(format!("to be at least {m}"));
    }
    if expect.is_empty() {
        expect.push("to be set".into());
    }
    let cd = format!(
        "{} {} is expected {}",
        c.path,
        c.display_key,
        expect.join(" and ")
    );
    let text = match text_of(facts, &c.path) {
        Text::Ok(t) => t,
        Text::Missing => {
            return vec![CheckResult::new(
                c.file_missing,
                cd,
                Some(format!("{} does not exist", c.path)),
            )];
        }
        Text::Problem(e) => return vec![CheckResult::error(cd, e)],
    };
    let kv = parse_key_values(&text, c.separator, c.case_insensitive_keys);
    let Some(v) = kv.get(&c.key) else {
        return vec![CheckResult::new(
            c.key_missing,
            cd,
            Some(format!("{} is not set", c.display_key)),
        )];
    };
    let cmp = |v: &str| {
        if c.case_insensitive_keys {
            v.to_ascii_lowercase()
        } else {
            v.to_string()
        }
    };
    let mut ok = c.equals.as_ref().is_none_or(|e| cmp(e) == cmp(v))
        && (c.one_of.is_empty() || c.one_of.iter().any(|o| cmp(o) == cmp(v)))
        && c.matches.as_ref().is_none_or(|re| re.is_match(v));
    if c.max.is_some() || c.min.is_some() {
        match v.parse::<i64>() {
            Ok(n) => ok &= c.max.is_none_or(|m| n <= m) && c.min.is_none_or(|m| n >= m),
            Err(_) => ok = false,
        }
    }
    vec![CheckResult::judge(ok, cd, || {
        format!("{} is `{v}`", c.display_key)
    })]
}

fn eval_command(c: &CommandCheck, facts: &Facts) -> Vec<CheckResult> {
    let base = format!("Command `{}`", c.run);
    let (exit_status, stdout) = match facts.command(&c.run) {
        CommandFact::Ran {
            exit_status,
            stdout,
        } => (exit_status, String::from_utf8_lossy(&stdout).into_owned()),
        CommandFact::Unsupported(why) => {
            return vec![CheckResult::skip(format!("{base} runs"), why)];
        }
        CommandFact::Error(e) => return vec![CheckResult::error(format!("{base} runs"), e)],
    };
    let mut out = Vec::new();
    if let Some(want) = c.exit_status {
        out.push(CheckResult::judge(
            exit_status == want,
            format!("{base} is expected to exit with status {want}"),
            || format!("it exited with status {exit_status}"),
        ));
    }
    for (re, must) in [(&c.stdout_matches, true), (&c.stdout_not_matches, false)] {
        if let Some(re) = re {
            let m = re.is_match(&stdout);
            out.push(CheckResult::judge(
                m == must,
                format!(
                    "{base} stdout is expected {}to match /{}/",
                    if must { "" } else { "not " },
                    re.as_str().trim_start_matches("(?m)")
                ),
                || {
                    format!(
                        "stdout was: {}",
                        lossy(stdout.as_bytes())
                            .chars()
                            .take(200)
                            .collect::<String>()
                    )
                },
            ));
        }
    }
    if out.is_empty() {
        out.push(CheckResult::judge(
            exit_status == 0,
            format!("{base} is expected to succeed"),
            || format!("it exited with status {exit_status}"),
        ));
    }
    out
}
