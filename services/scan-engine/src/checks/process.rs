//! `process:` checks over the target's visible processes: the main process
//! is not root, and no command line matches a pattern.

use std::collections::BTreeSet;

use marked_yaml::Spanned;
use regex::Regex;
use serde::Deserialize;

use super::compile::{CompileError, RawForm, one_of, regex};
use super::matchers::{list_paths, lossy, pattern};
use super::{Check, CheckResult, CompiledCheck};
use crate::facts::{FactRequest, Facts, ProcessInfo, ProcessesFact};

/// `process:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcess {
    rule: Spanned<String>,
    #[serde(default)]
    pattern: Option<Spanned<String>>,
}

/// Process rules.
#[derive(Debug, Clone)]
pub enum ProcessRule {
    /// The main process (pid 1, else the lowest pid) does not run as uid 0.
    MainNotRoot,
    /// No process's command line matches.
    NoneMatching(Regex),
}

impl RawForm for RawProcess {
    fn compile(&self) -> Result<Check, CompileError> {
        let rule = one_of(
            &self.rule,
            &["main_not_root", "none_matching"],
            "process rule",
        )?;
        Ok(Check::new(match rule {
            "main_not_root" => ProcessRule::MainNotRoot,
            _ => {
                let pat = self.pattern.as_ref().ok_or_else(|| {
                    (
                        *self.rule.span(),
                        "none_matching needs `pattern`".to_string(),
                    )
                })?;
                ProcessRule::NoneMatching(regex(pat)?)
            }
        }))
    }
}

impl CompiledCheck for ProcessRule {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        out.insert(FactRequest::Processes);
    }

    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let cd = match self {
            ProcessRule::MainNotRoot => "The main process does not run as root".to_string(),
            ProcessRule::NoneMatching(re) => {
                format!("No process command line matches /{}/", pattern(re))
            }
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
        vec![match self {
            ProcessRule::MainNotRoot => main_not_root(&procs, cd),
            ProcessRule::NoneMatching(re) => {
                let bad: Vec<String> = procs
                    .iter()
                    .filter(|p| re.is_match(&cmdline(&p.cmdline)))
                    .map(|p| format!("pid {}: {}", p.pid, cmdline(&p.cmdline)))
                    .collect();
                CheckResult::judge(bad.is_empty(), cd, || list_paths(&bad))
            }
        }]
    }
}

/// The main process is pid 1 when the target shows it, else the lowest pid.
fn main_not_root(procs: &[ProcessInfo], cd: String) -> CheckResult {
    let main = procs.iter().find(|p| p.pid == 1).unwrap_or(&procs[0]);
    match main.uid {
        Some(uid) => CheckResult::judge(uid != 0, cd, || {
            format!(
                "pid {} ({}) runs as uid 0",
                main.pid,
                cmdline(&main.cmdline)
            )
        }),
        None => CheckResult::error(cd, format!("uid of pid {} is unreadable", main.pid)),
    }
}

fn cmdline(parts: &[Vec<u8>]) -> String {
    parts.iter().map(|p| lossy(p)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::Status::{Error, Failed, Passed, Skipped};
    use super::super::test_support::{case, compile, facts, planned, run_cases};
    use crate::facts::{FactRequest, ProcessesFact};

    #[test]
    fn process_cases() {
        let ps =
            || facts().processes(&[(1, Some(0), "nginx -g daemon"), (7, Some(101), "sshd -D")]);
        run_cases(vec![
            case(
                "pid 1 is root",
                "process: {rule: main_not_root}",
                ps(),
                &[(
                    Failed,
                    "The main process does not run as root",
                    "pid 1 (nginx -g daemon) runs as uid 0",
                )],
            ),
            case(
                "lowest pid without pid 1",
                "process: {rule: main_not_root}",
                facts().processes(&[(12, Some(1000), "app")]),
                &[(Passed, "The main process does not run as root", "")],
            ),
            case(
                "uid unreadable",
                "process: {rule: main_not_root}",
                facts().processes(&[(1, None, "app")]),
                &[(
                    Error,
                    "The main process does not run as root",
                    "uid of pid 1 is unreadable",
                )],
            ),
            case(
                "matching command line",
                "process: {rule: none_matching, pattern: sshd}",
                ps(),
                &[(
                    Failed,
                    "No process command line matches /sshd/",
                    "pid 7: sshd -D",
                )],
            ),
            case(
                "no /proc",
                "process: {rule: main_not_root}",
                facts().processes(&[]),
                &[(
                    Skipped,
                    "The main process does not run as root",
                    "/proc is not mounted",
                )],
            ),
            case(
                "listing failed",
                "process: {rule: main_not_root}",
                facts().processes_fact(ProcessesFact::Error("EIO".into())),
                &[(Error, "The main process does not run as root", "EIO")],
            ),
        ]);
    }

    #[test]
    fn plan_and_compile_errors() {
        assert_eq!(
            planned("process: {rule: main_not_root}"),
            [FactRequest::Processes].into()
        );
        let e = compile("process: {rule: none_matching}").expect_err("no pattern");
        assert!(e.contains("none_matching needs `pattern`"), "{e}");
    }
}
