//! `os_release:` checks: a key of `/etc/os-release` (or
//! `/usr/lib/os-release`) matches, is one of, or is none of given values.

use std::collections::BTreeSet;

use marked_yaml::Spanned;
use regex::Regex;
use serde::Deserialize;

use super::compile::{CompileError, RawForm, regex};
use super::matchers::{expectations, pattern};
use super::system_facts::{os_release, os_release_problem, os_release_requests};
use super::{Check, CheckResult, CompiledCheck};
use crate::facts::{FactRequest, Facts};

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

/// See [`RawOsRelease`].
#[derive(Debug, Clone)]
pub struct OsReleaseCheck {
    key: String,
    matches: Option<Regex>,
    one_of: Vec<String>,
    not_one_of: Vec<String>,
}

impl RawForm for RawOsRelease {
    fn compile(&self) -> Result<Check, CompileError> {
        Ok(Check::new(OsReleaseCheck {
            key: self.key.clone(),
            matches: self.matches.as_ref().map(regex).transpose()?,
            one_of: self.one_of.clone(),
            not_one_of: self.not_one_of.clone(),
        }))
    }
}

impl CompiledCheck for OsReleaseCheck {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        out.extend(os_release_requests());
    }

    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let mut expect = Vec::new();
        if let Some(re) = &self.matches {
            expect.push(format!("to match /{}/", pattern(re)));
        }
        if !self.one_of.is_empty() {
            expect.push(format!("to be one of {}", self.one_of.join(", ")));
        }
        if !self.not_one_of.is_empty() {
            expect.push(format!("not to be any of {}", self.not_one_of.join(", ")));
        }
        let cd = format!(
            "os-release {} is expected {}",
            self.key,
            expectations(expect)
        );
        let Some(map) = os_release(facts) else {
            return vec![match os_release_problem(facts) {
                Some(e) => CheckResult::error(cd, e),
                None => CheckResult::fail(cd, "no os-release file found"),
            }];
        };
        let Some(v) = map.get(&self.key) else {
            return vec![CheckResult::fail(cd, format!("{} is not set", self.key))];
        };
        let ok = self.matches.as_ref().is_none_or(|re| re.is_match(v))
            && (self.one_of.is_empty() || self.one_of.contains(v))
            && !self.not_one_of.contains(v);
        vec![CheckResult::judge(ok, cd, || {
            format!("{} is `{v}`", self.key)
        })]
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::{Error, Failed, Passed};
    use super::super::test_support::{case, compile, facts, planned, read, run_cases};
    use crate::facts::ContentFact;

    const ETC: &str = "/etc/os-release";
    const USR: &str = "/usr/lib/os-release";

    #[test]
    fn key_cases() {
        let alpine = || {
            facts()
                .file(ETC, "ID=alpine\nVERSION_ID=3.20.1\n")
                .no_file(USR)
        };
        run_cases(vec![
            case(
                "set",
                "os_release: {key: ID}",
                alpine(),
                &[(Passed, "os-release ID is expected to be set", "")],
            ),
            case(
                "all expectations",
                "os_release: {key: ID, matches: '^al', one_of: [alpine, debian], not_one_of: [ubuntu]}",
                alpine(),
                &[(
                    Passed,
                    "os-release ID is expected to match /^al/ and to be one of alpine, debian and not to be any of ubuntu",
                    "",
                )],
            ),
            case(
                "forbidden value",
                "os_release: {key: VERSION_ID, not_one_of: [3.20.1]}",
                alpine(),
                &[(
                    Failed,
                    "os-release VERSION_ID is expected not to be any of 3.20.1",
                    "VERSION_ID is `3.20.1`",
                )],
            ),
            case(
                "unset key",
                "os_release: {key: NAME}",
                alpine(),
                &[(
                    Failed,
                    "os-release NAME is expected to be set",
                    "NAME is not set",
                )],
            ),
            case(
                "fallback file",
                "os_release: {key: ID, one_of: [debian]}",
                facts().no_file(ETC).file(USR, "ID=debian\n"),
                &[(Passed, "os-release ID is expected to be one of debian", "")],
            ),
            case(
                "no file",
                "os_release: {key: ID}",
                facts().no_file(ETC).no_file(USR),
                &[(
                    Failed,
                    "os-release ID is expected to be set",
                    "no os-release file found",
                )],
            ),
            case(
                "unreadable",
                "os_release: {key: ID}",
                facts()
                    .content(ETC, ContentFact::Error("EACCES".into()))
                    .no_file(USR),
                &[(
                    Error,
                    "os-release ID is expected to be set",
                    "cannot read /etc/os-release: EACCES",
                )],
            ),
        ]);
    }

    #[test]
    fn plan_and_compile_errors() {
        assert_eq!(
            planned("os_release: {key: ID}"),
            [read(ETC), read(USR)].into()
        );
        let e = compile("os_release: {key: ID, matches: '['}").expect_err("bad regex");
        assert!(e.contains("invalid regex `[`"), "{e}");
    }
}
