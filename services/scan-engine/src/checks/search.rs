//! `search:` checks: capped walks under paths that must not hold
//! world-writable, setuid/setgid, unowned or any regular files.

use std::collections::BTreeSet;

use marked_yaml::Spanned;
use serde::Deserialize;

use super::compile::{CompileError, RawForm, abs_path, one_of};
use super::matchers::{list_paths, lossy};
use super::system_facts::{GROUP, PASSWD, Text, text_of};
use super::{Check, CheckResult, CompiledCheck};
use crate::facts::{FactRequest, Facts, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, WalkEntry, WalkFact};
use crate::system_files::{parse_group, parse_passwd};

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

impl RawForm for RawSearch {
    fn compile(&self) -> Result<Check, CompileError> {
        let s = self;
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
        Ok(Check::new(SearchCheck {
            find,
            paths,
            exclude: s.exclude.clone(),
            allow: s.allow.iter().cloned().collect(),
        }))
    }
}

/// uids in passwd and gids in group, for [`SearchKind::UnknownOwner`].
type KnownIds = (BTreeSet<u32>, BTreeSet<u32>);

impl CompiledCheck for SearchCheck {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        for p in &self.paths {
            out.insert(FactRequest::Walk(p.clone()));
        }
        if self.find == SearchKind::UnknownOwner {
            out.insert(FactRequest::Read(PASSWD.into()));
            out.insert(FactRequest::Read(GROUP.into()));
        }
    }

    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let what = match self.find {
            SearchKind::WorldWritable => "world-writable files",
            SearchKind::SetuidSetgid => "setuid or setgid files",
            SearchKind::UnknownOwner => "files owned by unknown users or groups",
            SearchKind::Files => "regular files",
        };
        let cd = format!("No {what} under {}", self.paths.join(", "));
        match self.offenders(facts) {
            Err(e) => vec![CheckResult::error(cd, e)],
            // Nothing to search means nothing was found: a missing cache
            // directory is the good case, not an unknown one.
            Ok(None) => vec![CheckResult::pass(cd)],
            Ok(Some(offenders)) => vec![CheckResult::judge(offenders.is_empty(), cd, || {
                format!("found {}: {}", offenders.len(), list_paths(&offenders))
            })],
        }
    }
}

impl SearchCheck {
    /// Sorted offending paths, `None` when no searched path exists, or why
    /// the search cannot be trusted.
    fn offenders(&self, facts: &Facts) -> Result<Option<Vec<String>>, String> {
        let known = match self.find {
            SearchKind::UnknownOwner => Some(known_ids(facts)?),
            _ => None,
        };
        let mut offenders = Vec::new();
        let mut searched = 0usize;
        for root in &self.paths {
            let Some(entries) = walked(facts, root)? else {
                continue;
            };
            searched += 1;
            for e in entries {
                let path = lossy(&e.path);
                if !self.is_skipped(&path) && self.is_offender(e, known.as_ref()) {
                    offenders.push(path);
                }
            }
        }
        if searched == 0 {
            return Ok(None);
        }
        offenders.sort();
        offenders.dedup();
        Ok(Some(offenders))
    }

    fn is_skipped(&self, path: &str) -> bool {
        self.allow.contains(path)
            || self
                .exclude
                .iter()
                .any(|x| path == *x || path.starts_with(&format!("{}/", x.trim_end_matches('/'))))
    }

    fn is_offender(&self, e: &WalkEntry, known: Option<&KnownIds>) -> bool {
        let kind = e.mode & S_IFMT;
        match self.find {
            SearchKind::WorldWritable => {
                kind != S_IFLNK && e.mode & 0o002 != 0 && !(kind == S_IFDIR && e.mode & 0o1000 != 0)
            }
            SearchKind::SetuidSetgid => kind != S_IFLNK && e.mode & 0o6000 != 0,
            SearchKind::Files => kind == S_IFREG,
            SearchKind::UnknownOwner => {
                known.is_some_and(|(u, g)| !u.contains(&e.uid) || !g.contains(&e.gid))
            }
        }
    }
}

/// Every uid in passwd and gid in group; a missing file knows no ids.
fn known_ids(facts: &Facts) -> Result<KnownIds, String> {
    let users = match text_of(facts, PASSWD) {
        Text::Ok(t) => parse_passwd(&t).into_iter().map(|e| e.uid).collect(),
        Text::Missing => BTreeSet::new(),
        Text::Problem(e) => return Err(e),
    };
    let groups = match text_of(facts, GROUP) {
        Text::Ok(t) => parse_group(&t).into_iter().map(|e| e.gid).collect(),
        Text::Missing => BTreeSet::new(),
        Text::Problem(e) => return Err(e),
    };
    Ok((users, groups))
}

/// The entries of a complete walk of `root`, `None` when it does not exist,
/// or why the walk cannot be trusted (a partial search would pass falsely).
fn walked<'f>(facts: &'f Facts, root: &str) -> Result<Option<&'f Vec<WalkEntry>>, String> {
    match facts.walk(root) {
        None => Err(format!("internal: {root} was not walked")),
        Some(WalkFact::Missing) => Ok(None),
        Some(WalkFact::Error(e)) => Err(format!("walking {root}: {e}")),
        Some(WalkFact::Entries {
            truncated: true,
            entries,
            ..
        }) => Err(format!(
            "search under {root} stopped at the entry cap ({} entries); raise the cap or narrow the paths",
            entries.len()
        )),
        Some(WalkFact::Entries {
            complete: false, ..
        }) => Err(format!("some directories under {root} could not be read")),
        Some(WalkFact::Entries { entries, .. }) => Ok(Some(entries)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::{Error, Failed, Passed};
    use super::super::test_support::{case, compile, facts, planned, read, run_cases};
    use crate::facts::{FactRequest, WalkFact};

    const DIR: u32 = 0o040_000;
    const REG: u32 = 0o100_000;

    #[test]
    fn finds_what_it_is_asked_for() {
        let tree = [
            ("/d", DIR | 0o1777, 0, 0),
            ("/d/open", DIR | 0o777, 0, 0),
            ("/d/w", REG | 0o666, 0, 0),
            ("/d/link", 0o120_777, 0, 0),
            ("/d/su", REG | 0o4755, 0, 0),
            ("/d/orphan", REG | 0o644, 4242, 0),
        ];
        let ids = |f: super::super::test_support::FactsBuilder| {
            f.file("/etc/passwd", "root:x:0:0::/:/bin/sh\n")
                .file("/etc/group", "root:x:0:\n")
        };
        run_cases(vec![
            case(
                "world-writable, sticky dirs and links exempt",
                "search: {find: world_writable, paths: [/d]}",
                facts().walk("/d", &tree),
                &[(
                    Failed,
                    "No world-writable files under /d",
                    "found 2: /d/open, /d/w",
                )],
            ),
            case(
                "setuid",
                "search: {find: setuid_setgid, paths: [/d], allow: [/d/su]}",
                facts().walk("/d", &tree),
                &[(Passed, "No setuid or setgid files under /d", "")],
            ),
            case(
                "unknown owner",
                "search: {find: unknown_owner, paths: [/d]}",
                ids(facts().walk("/d", &tree)),
                &[(
                    Failed,
                    "No files owned by unknown users or groups under /d",
                    "found 1: /d/orphan",
                )],
            ),
            case(
                "any file, excluded subtree",
                "search: {find: files, paths: [/d], exclude: [/d/]}",
                facts().walk("/d", &tree),
                &[(Passed, "No regular files under /d", "")],
            ),
            case(
                "nothing to search passes",
                "search: {find: files, paths: [/d, /e]}",
                facts()
                    .walk_fact("/d", WalkFact::Missing)
                    .walk_fact("/e", WalkFact::Missing),
                &[(Passed, "No regular files under /d, /e", "")],
            ),
        ]);
    }

    #[test]
    fn an_untrustworthy_walk_is_an_error() {
        let cut = WalkFact::Entries {
            entries: vec![],
            complete: true,
            truncated: true,
        };
        let partial = WalkFact::Entries {
            entries: vec![],
            complete: false,
            truncated: false,
        };
        run_cases(vec![
            case(
                "entry cap",
                "search: {find: files, paths: [/d]}",
                facts().walk_fact("/d", cut),
                &[(
                    Error,
                    "No regular files under /d",
                    "stopped at the entry cap (0 entries)",
                )],
            ),
            case(
                "unreadable dirs",
                "search: {find: files, paths: [/d]}",
                facts().walk_fact("/d", partial),
                &[(
                    Error,
                    "No regular files under /d",
                    "some directories under /d could not be read",
                )],
            ),
            case(
                "walk failed",
                "search: {find: files, paths: [/d]}",
                facts().walk_fact("/d", WalkFact::Error("EIO".into())),
                &[(Error, "No regular files under /d", "walking /d: EIO")],
            ),
            case(
                "not walked",
                "search: {find: files, paths: [/d]}",
                facts(),
                &[(
                    Error,
                    "No regular files under /d",
                    "internal: /d was not walked",
                )],
            ),
        ]);
    }

    #[test]
    fn plan_and_compile_errors() {
        assert_eq!(
            planned("search: {find: unknown_owner, paths: [/a]}"),
            [
                FactRequest::Walk("/a".into()),
                read("/etc/passwd"),
                read("/etc/group")
            ]
            .into()
        );
        for (yaml, needle) in [
            (
                "search: {find: files, paths: []}",
                "search needs at least one path",
            ),
            ("search: {find: files, paths: [tmp]}", "must be absolute"),
            ("search: {find: dirs, paths: [/]}", "unknown search `dirs`"),
        ] {
            let e = compile(yaml).expect_err(yaml);
            assert!(e.contains(needle), "{yaml}: {e}");
        }
    }
}
