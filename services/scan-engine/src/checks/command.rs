//! `command:` checks: a shell command's exit status and stdout, on targets
//! that can run commands (the local-root target skips them).

use std::collections::BTreeSet;

use marked_yaml::Spanned;
use regex::Regex;
use serde::Deserialize;

use super::compile::{CompileError, RawForm, regex};
use super::matchers::{lossy, pattern};
use super::{Check, CheckResult, CompiledCheck};
use crate::facts::{CommandFact, FactRequest, Facts};

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

/// See [`RawCommand`].
#[derive(Debug, Clone)]
pub struct CommandCheck {
    run: String,
    exit_status: Option<i32>,
    stdout_matches: Option<Regex>,
    stdout_not_matches: Option<Regex>,
}

impl RawForm for RawCommand {
    fn compile(&self) -> Result<Check, CompileError> {
        Ok(Check::new(CommandCheck {
            run: self.run.clone(),
            exit_status: self.exit_status,
            stdout_matches: self.stdout_matches.as_ref().map(regex).transpose()?,
            stdout_not_matches: self.stdout_not_matches.as_ref().map(regex).transpose()?,
        }))
    }
}

impl CompiledCheck for CommandCheck {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        out.insert(FactRequest::Command(self.run.clone()));
    }

    /// One result per expectation; with none, the command must succeed.
    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let base = format!("Command `{}`", self.run);
        let (exit_status, stdout) = match facts.command(&self.run) {
            CommandFact::Ran {
                exit_status,
                stdout,
                ..
            } => (exit_status, String::from_utf8_lossy(&stdout).into_owned()),
            CommandFact::Unsupported(why) => {
                return vec![CheckResult::skip(format!("{base} runs"), why)];
            }
            CommandFact::Error(e) => return vec![CheckResult::error(format!("{base} runs"), e)],
        };
        let exited = || format!("it exited with status {exit_status}");
        let mut out = Vec::new();
        if let Some(want) = self.exit_status {
            let cd = format!("{base} is expected to exit with status {want}");
            out.push(CheckResult::judge(exit_status == want, cd, exited));
        }
        for (re, must) in [
            (&self.stdout_matches, true),
            (&self.stdout_not_matches, false),
        ] {
            let Some(re) = re else { continue };
            let cd = format!(
                "{base} stdout is expected {}to match /{}/",
                if must { "" } else { "not " },
                pattern(re)
            );
            out.push(CheckResult::judge(re.is_match(&stdout) == must, cd, || {
                let shown: String = lossy(stdout.as_bytes()).chars().take(200).collect();
                format!("stdout was: {shown}")
            }));
        }
        if out.is_empty() {
            let cd = format!("{base} is expected to succeed");
            out.push(CheckResult::judge(exit_status == 0, cd, exited));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::{Error, Failed, Passed, Skipped};
    use super::super::test_support::{case, facts, planned, run_cases};
    use crate::facts::{CommandFact, FactRequest};

    #[test]
    fn command_cases() {
        run_cases(vec![
            case(
                "succeeds by default",
                "command: {run: 'true'}",
                facts().command("true", 0, ""),
                &[(Passed, "Command `true` is expected to succeed", "")],
            ),
            case(
                "failing status",
                "command: {run: 'false'}",
                facts().command("false", 1, ""),
                &[(
                    Failed,
                    "Command `false` is expected to succeed",
                    "it exited with status 1",
                )],
            ),
            case(
                "status and stdout",
                "command: {run: id -u, exit_status: 0, stdout_matches: '^0$', stdout_not_matches: '^1'}",
                facts().command("id -u", 0, "0\n"),
                &[
                    (
                        Passed,
                        "Command `id -u` is expected to exit with status 0",
                        "",
                    ),
                    (
                        Passed,
                        "Command `id -u` stdout is expected to match /^0$/",
                        "",
                    ),
                    (
                        Passed,
                        "Command `id -u` stdout is expected not to match /^1/",
                        "",
                    ),
                ],
            ),
            case(
                "stdout shown printable",
                "command: {run: cat x, stdout_matches: ok}",
                facts().command("cat x", 0, "bad\x1b[31m"),
                &[(
                    Failed,
                    "Command `cat x` stdout is expected to match /ok/",
                    "stdout was: bad?[31m",
                )],
            ),
            case(
                "target cannot run commands",
                "command: {run: id}",
                facts().command_fact("id", CommandFact::Unsupported("files only".into())),
                &[(Skipped, "Command `id` runs", "files only")],
            ),
            case(
                "run failed",
                "command: {run: id}",
                facts().command_fact("id", CommandFact::Error("boom".into())),
                &[(Error, "Command `id` runs", "boom")],
            ),
        ]);
    }

    #[test]
    fn plans_the_command() {
        assert_eq!(
            planned("command: {run: id -u}"),
            [FactRequest::Command("id -u".into())].into()
        );
    }
}
