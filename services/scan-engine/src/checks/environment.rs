//! `environment:` checks: the main process's environment holds no variable
//! whose name looks like a secret. Only names ever reach a report.

use std::collections::BTreeSet;

use marked_yaml::{Span, Spanned};
use regex::Regex;
use serde::Deserialize;

use super::compile::{CompileError, RawForm, one_of, regex};
use super::matchers::{list_paths, lossy};
use super::system_facts::MAIN_ENVIRON;
use super::{Check, CheckResult, CompiledCheck};
use crate::facts::{ContentFact, FactRequest, Facts};

/// Variable names that usually carry secrets, unless a profile says otherwise.
const SECRET_NAMES: &str =
    "(?i)(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)";

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

/// See [`RawEnvironment`].
#[derive(Debug, Clone)]
pub struct EnvCheck {
    pattern: Regex,
    allow: BTreeSet<String>,
}

impl RawForm for RawEnvironment {
    fn compile(&self) -> Result<Check, CompileError> {
        one_of(&self.rule, &["no_secrets"], "environment rule")?;
        let pattern = match &self.name_pattern {
            Some(p) => regex(p)?,
            None => Regex::new(SECRET_NAMES).map_err(|e| (Span::new_blank(), e.to_string()))?,
        };
        Ok(Check::new(EnvCheck {
            pattern,
            allow: self.allow.iter().cloned().collect(),
        }))
    }
}

impl CompiledCheck for EnvCheck {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        out.insert(FactRequest::Read(MAIN_ENVIRON.into()));
    }

    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let cd = "The main process environment holds no variables that look like secrets";
        vec![match facts.content(MAIN_ENVIRON) {
            ContentFact::Data { bytes, .. } => {
                let mut bad: Vec<String> = bytes
                    .split(|b| *b == 0)
                    .filter_map(|kv| {
                        let kv = lossy(kv);
                        let (k, v) = kv.split_once('=')?;
                        (!v.is_empty() && self.pattern.is_match(k) && !self.allow.contains(k))
                            .then(|| k.to_string())
                    })
                    .collect();
                bad.sort();
                // Names only: values are the secrets and must never reach a report.
                CheckResult::judge(bad.is_empty(), cd, || {
                    format!("suspicious variables: {}", list_paths(&bad))
                })
            }
            ContentFact::Missing => CheckResult::skip(
                cd,
                "the main process environment is not visible on this target (/proc is not mounted in the scanned root)",
            ),
            ContentFact::NotRegular => {
                CheckResult::error(cd, format!("{MAIN_ENVIRON} is not a regular file"))
            }
            ContentFact::Error(err) => CheckResult::error(cd, err),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::{Error, Failed, Passed, Skipped};
    use super::super::test_support::{case, compile, facts, planned, read, run_cases};
    use crate::facts::ContentFact;

    const ENV: &str = "/proc/1/environ";
    const CD: &str = "The main process environment holds no variables that look like secrets";

    #[test]
    fn environment_cases() {
        let env = || {
            facts().file(
                ENV,
                "PATH=/bin\0DB_PASSWORD=hunter2\0API_KEY=\0GITHUB_TOKEN=x\0",
            )
        };
        run_cases(vec![
            case(
                "secret names, never values; empty values ignored",
                "environment: {rule: no_secrets}",
                env(),
                &[(
                    Failed,
                    CD,
                    "suspicious variables: DB_PASSWORD, GITHUB_TOKEN",
                )],
            ),
            case(
                "allowed names",
                "environment: {rule: no_secrets, allow: [DB_PASSWORD, GITHUB_TOKEN]}",
                env(),
                &[(Passed, CD, "")],
            ),
            case(
                "own pattern",
                "environment: {rule: no_secrets, name_pattern: '^PATH$'}",
                env(),
                &[(Failed, CD, "suspicious variables: PATH")],
            ),
            case(
                "no /proc",
                "environment: {rule: no_secrets}",
                facts().no_file(ENV),
                &[(Skipped, CD, "not visible on this target")],
            ),
            case(
                "not a file",
                "environment: {rule: no_secrets}",
                facts().content(ENV, ContentFact::NotRegular),
                &[(Error, CD, "/proc/1/environ is not a regular file")],
            ),
        ]);
        let got = super::super::test_support::compile("environment: {rule: no_secrets}")
            .unwrap()
            .evaluate(&env().build());
        assert!(!format!("{got:?}").contains("hunter2"), "{got:?}");
    }

    #[test]
    fn plan_and_compile_errors() {
        assert_eq!(
            planned("environment: {rule: no_secrets}"),
            [read(ENV)].into()
        );
        let e = compile("environment: {rule: tidy}").expect_err("unknown rule");
        assert!(e.contains("unknown environment rule `tidy`"), "{e}");
    }
}
