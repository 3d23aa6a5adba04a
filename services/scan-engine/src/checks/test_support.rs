//! Unit-test doubles for check kinds: checks compiled from YAML text and
//! facts built in memory, so each kind's case table reads as data.

use std::collections::BTreeSet;

use super::{Check, CheckResult, RawCheck, Status};
use crate::facts::{
    CommandFact, ContentFact, FactRequest, FactValue, Facts, FileStat, ProcessInfo, ProcessesFact,
    StatFact, WalkEntry, WalkFact,
};

/// Compiles one check written as YAML (`file: {path: /x}`).
pub fn compile(yaml: &str) -> Result<Check, String> {
    let node = marked_yaml::parse_yaml(0, yaml).map_err(|e| e.to_string())?;
    let raw: RawCheck = marked_yaml::from_node(&node).map_err(|e| e.to_string())?;
    raw.compile().map_err(|(_, msg)| msg)
}

/// The facts a check written as YAML plans to gather.
pub fn planned(yaml: &str) -> BTreeSet<FactRequest> {
    let mut out = BTreeSet::new();
    compile(yaml)
        .unwrap_or_else(|e| panic!("{yaml}: {e}"))
        .plan(&mut out);
    out
}

/// A read request, for plan assertions.
pub fn read(path: &str) -> FactRequest {
    FactRequest::Read(path.into())
}

/// Facts assembled in memory.
#[derive(Default)]
pub struct FactsBuilder(Facts);

/// An empty set of facts.
pub fn facts() -> FactsBuilder {
    FactsBuilder::default()
}

impl FactsBuilder {
    /// The facts, for evaluating a check directly.
    pub fn build(self) -> Facts {
        self.0
    }
    fn put(mut self, req: FactRequest, v: FactValue) -> Self {
        self.0.values.insert(req, v);
        self
    }
    /// `path` reads back as `text`, whole.
    pub fn file(self, path: &str, text: &str) -> Self {
        self.content(
            path,
            ContentFact::Data {
                bytes: text.as_bytes().to_vec(),
                total_len: text.len() as u64,
            },
        )
    }
    /// `path` reads back as `c`.
    pub fn content(self, path: &str, c: ContentFact) -> Self {
        self.put(FactRequest::Read(path.into()), FactValue::Content(c))
    }
    /// `path` does not exist (read).
    pub fn no_file(self, path: &str) -> Self {
        self.content(path, ContentFact::Missing)
    }
    /// `lstat(path)` gives this mode and owner.
    pub fn stat(self, path: &str, mode: u32, uid: u32, gid: u32) -> Self {
        let st = FileStat {
            mode,
            uid,
            gid,
            size: 0,
            link_target: None,
        };
        self.stat_fact(path, StatFact::Present(st))
    }
    /// `path` is a symlink to `target`.
    pub fn symlink(self, path: &str, target: &str) -> Self {
        let st = FileStat {
            mode: 0o120_777,
            uid: 0,
            gid: 0,
            size: target.len() as u64,
            link_target: Some(target.as_bytes().to_vec()),
        };
        self.stat_fact(path, StatFact::Present(st))
    }
    /// `lstat(path)` gives `s`.
    pub fn stat_fact(self, path: &str, s: StatFact) -> Self {
        self.put(FactRequest::Stat(path.into()), FactValue::Stat(s))
    }
    /// A complete walk of `root` finding `(path, mode, uid, gid)` entries.
    pub fn walk(self, root: &str, entries: &[(&str, u32, u32, u32)]) -> Self {
        let entries = entries
            .iter()
            .map(|(p, mode, uid, gid)| WalkEntry {
                path: p.as_bytes().to_vec(),
                mode: *mode,
                uid: *uid,
                gid: *gid,
            })
            .collect();
        self.walk_fact(
            root,
            WalkFact::Entries {
                entries,
                complete: true,
                truncated: false,
            },
        )
    }
    /// The walk of `root` gives `w`.
    pub fn walk_fact(self, root: &str, w: WalkFact) -> Self {
        self.put(FactRequest::Walk(root.into()), FactValue::Walk(w))
    }
    /// Visible processes as `(pid, uid, space-separated cmdline)`.
    pub fn processes(self, list: &[(u32, Option<u32>, &str)]) -> Self {
        let list = list
            .iter()
            .map(|(pid, uid, cmd)| ProcessInfo {
                pid: *pid,
                uid: *uid,
                cmdline: cmd.split(' ').map(|a| a.as_bytes().to_vec()).collect(),
            })
            .collect();
        self.processes_fact(ProcessesFact::Listed(list))
    }
    /// The process listing gives `p`.
    pub fn processes_fact(self, p: ProcessesFact) -> Self {
        self.put(FactRequest::Processes, FactValue::Processes(p))
    }
    /// `cmd` ran with this status and stdout.
    pub fn command(self, cmd: &str, exit_status: i32, stdout: &str) -> Self {
        let ran = CommandFact::Ran {
            exit_status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        };
        self.command_fact(cmd, ran)
    }
    /// Running `cmd` gives `c`.
    pub fn command_fact(self, cmd: &str, c: CommandFact) -> Self {
        self.put(FactRequest::Command(cmd.into()), FactValue::Command(c))
    }
}

/// One row of a kind's case table: a check, the facts it sees, and every
/// result expected as `(status, code_desc, text the message contains)`.
pub struct Case {
    /// What the row shows.
    pub name: &'static str,
    /// The check as YAML.
    pub check: &'static str,
    /// What the target observed.
    pub facts: FactsBuilder,
    /// Expected results, in order; an empty message pattern matches anything.
    pub want: Vec<(Status, &'static str, &'static str)>,
}

/// Shorthand for a [`Case`].
pub fn case(
    name: &'static str,
    check: &'static str,
    facts: FactsBuilder,
    want: &[(Status, &'static str, &'static str)],
) -> Case {
    Case {
        name,
        check,
        facts,
        want: want.to_vec(),
    }
}

/// Runs every case and reports every mismatch at once.
pub fn run_cases(cases: Vec<Case>) {
    let mut wrong = Vec::new();
    for c in cases {
        let got = match compile(c.check) {
            Ok(check) => check.evaluate(&c.facts.build()),
            Err(e) => {
                wrong.push(format!("{}: does not compile: {e}", c.name));
                continue;
            }
        };
        if !matches(&got, &c.want) {
            wrong.push(format!("{}:\n  want {:?}\n  got  {got:?}", c.name, c.want));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn matches(got: &[CheckResult], want: &[(Status, &str, &str)]) -> bool {
    got.len() == want.len()
        && got.iter().zip(want).all(|(g, (status, desc, msg))| {
            g.status == *status
                && g.code_desc == *desc
                && g.message.as_deref().unwrap_or_default().contains(msg)
        })
}
