//! `config:` checks: one key of a key/value config file (sshd_config,
//! login.defs, sysctl-style files) equals, is one of, matches or lies
//! within bounds.

use std::collections::BTreeSet;

use marked_yaml::Spanned;
use regex::Regex;
use serde::Deserialize;

use super::compile::{CompileError, RawForm, one_of, regex};
use super::matchers::{expectations, pattern};
use super::system_facts::{Text, text_of};
use super::{Check, CheckResult, CompiledCheck, Status};
use crate::facts::{FactRequest, Facts};
use crate::system_files::{Separator, parse_key_values};

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

/// The status a profile chose for a missing key or file (failed by default).
fn outcome(o: &Option<Spanned<String>>) -> Result<Status, CompileError> {
    Ok(match o {
        Some(s) => match one_of(s, &["passed", "failed", "skipped"], "outcome")? {
            "passed" => Status::Passed,
            "skipped" => Status::Skipped,
            _ => Status::Failed,
        },
        None => Status::Failed,
    })
}

impl RawForm for RawConfig {
    fn compile(&self) -> Result<Check, CompileError> {
        let c = self;
        let separator = match &c.separator {
            Some(s) => match one_of(s, &["whitespace", "equals"], "separator")? {
                "equals" => Separator::Equals,
                _ => Separator::Whitespace,
            },
            None => Separator::Whitespace,
        };
        Ok(Check::new(ConfigCheck {
            path: c.path.clone(),
            key: if c.case_insensitive_keys {
                c.key.to_ascii_lowercase()
            } else {
                c.key.clone()
            },
            display_key: c.key.clone(),
            separator,
            case_insensitive_keys: c.case_insensitive_keys,
            equals: c.equals.clone(),
            one_of: c.one_of.clone(),
            matches: c.matches.as_ref().map(regex).transpose()?,
            max: c.max,
            min: c.min,
            key_missing: outcome(&c.key_missing)?,
            file_missing: outcome(&c.file_missing)?,
        }))
    }
}

impl CompiledCheck for ConfigCheck {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        out.insert(FactRequest::Read(self.path.clone()));
    }

    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let cd = self.code_desc();
        let text = match text_of(facts, &self.path) {
            Text::Ok(t) => t,
            Text::Missing => {
                let why = format!("{} does not exist", self.path);
                return vec![CheckResult::new(self.file_missing, cd, Some(why))];
            }
            Text::Problem(e) => return vec![CheckResult::error(cd, e)],
        };
        let kv = parse_key_values(&text, self.separator, self.case_insensitive_keys);
        let Some(v) = kv.get(&self.key) else {
            let why = format!("{} is not set", self.display_key);
            return vec![CheckResult::new(self.key_missing, cd, Some(why))];
        };
        vec![CheckResult::judge(self.accepts(v), cd, || {
            format!("{} is `{v}`", self.display_key)
        })]
    }
}

impl ConfigCheck {
    fn code_desc(&self) -> String {
        let mut expect = Vec::new();
        if let Some(v) = &self.equals {
            expect.push(format!("to equal `{v}`"));
        }
        if !self.one_of.is_empty() {
            expect.push(format!("to be one of {}", self.one_of.join(", ")));
        }
        if let Some(re) = &self.matches {
            expect.push(format!("to match /{}/", pattern(re)));
        }
        if let Some(m) = self.max {
            expect.push(format!("to be at most {m}"));
        }
        if let Some(m) = self.min {
            expect.push(format!("to be at least {m}"));
        }
        format!(
            "{} {} is expected {}",
            self.path,
            self.display_key,
            expectations(expect)
        )
    }

    /// Whether `v` meets every expectation; values compare case-insensitively
    /// when keys do (sshd treats `PermitRootLogin No` as `no`).
    fn accepts(&self, v: &str) -> bool {
        let cmp = |v: &str| {
            if self.case_insensitive_keys {
                v.to_ascii_lowercase()
            } else {
                v.to_string()
            }
        };
        let mut ok = self.equals.as_ref().is_none_or(|e| cmp(e) == cmp(v))
            && (self.one_of.is_empty() || self.one_of.iter().any(|o| cmp(o) == cmp(v)))
            && self.matches.as_ref().is_none_or(|re| re.is_match(v));
        if self.max.is_some() || self.min.is_some() {
            match v.parse::<i64>() {
                Ok(n) => ok &= self.max.is_none_or(|m| n <= m) && self.min.is_none_or(|m| n >= m),
                Err(_) => ok = false,
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::{Error, Failed, Passed, Skipped};
    use super::super::test_support::{case, compile, facts, planned, read, run_cases};

    const SSHD: &str = "/etc/ssh/sshd_config";
    const CONF: &str = "# comment\nPermitRootLogin No\nMaxAuthTries 6\npermitrootlogin yes\n";

    #[test]
    fn value_cases() {
        let sshd = || facts().file(SSHD, CONF);
        run_cases(vec![
            case(
                "first value wins, case-insensitive",
                "config: {path: /etc/ssh/sshd_config, key: PermitRootLogin, case_insensitive_keys: true, equals: 'no'}",
                sshd(),
                &[(
                    Passed,
                    "/etc/ssh/sshd_config PermitRootLogin is expected to equal `no`",
                    "",
                )],
            ),
            case(
                "case-sensitive value",
                "config: {path: /etc/ssh/sshd_config, key: PermitRootLogin, one_of: ['no', prohibit-password]}",
                sshd(),
                &[(
                    Failed,
                    "/etc/ssh/sshd_config PermitRootLogin is expected to be one of no, prohibit-password",
                    "PermitRootLogin is `No`",
                )],
            ),
            case(
                "bounds",
                "config: {path: /etc/ssh/sshd_config, key: MaxAuthTries, max: 4, min: 1}",
                sshd(),
                &[(
                    Failed,
                    "/etc/ssh/sshd_config MaxAuthTries is expected to be at most 4 and to be at least 1",
                    "MaxAuthTries is `6`",
                )],
            ),
            case(
                "not a number",
                "config: {path: /etc/ssh/sshd_config, key: PermitRootLogin, min: 0}",
                sshd(),
                &[(
                    Failed,
                    "/etc/ssh/sshd_config PermitRootLogin is expected to be at least 0",
                    "PermitRootLogin is `No`",
                )],
            ),
            case(
                "equals separator and regex",
                "config: {path: /etc/sysctl.conf, key: net.ipv4.ip_forward, separator: equals, matches: '^0$'}",
                facts().file("/etc/sysctl.conf", "net.ipv4.ip_forward = 0\n"),
                &[(
                    Passed,
                    "/etc/sysctl.conf net.ipv4.ip_forward is expected to match /^0$/",
                    "",
                )],
            ),
        ]);
    }

    #[test]
    fn missing_cases() {
        run_cases(vec![
            case(
                "key missing, default",
                "config: {path: /etc/ssh/sshd_config, key: Banner}",
                facts().file(SSHD, CONF),
                &[(
                    Failed,
                    "/etc/ssh/sshd_config Banner is expected to be set",
                    "Banner is not set",
                )],
            ),
            case(
                "key missing, chosen outcome",
                "config: {path: /etc/ssh/sshd_config, key: Banner, key_missing: passed}",
                facts().file(SSHD, CONF),
                &[(
                    Passed,
                    "/etc/ssh/sshd_config Banner is expected to be set",
                    "Banner is not set",
                )],
            ),
            case(
                "file missing, chosen outcome",
                "config: {path: /etc/ssh/sshd_config, key: Banner, file_missing: skipped}",
                facts().no_file(SSHD),
                &[(
                    Skipped,
                    "/etc/ssh/sshd_config Banner is expected to be set",
                    "/etc/ssh/sshd_config does not exist",
                )],
            ),
            case(
                "file unreadable",
                "config: {path: /etc/ssh/sshd_config, key: Banner}",
                facts(),
                &[(
                    Error,
                    "/etc/ssh/sshd_config Banner is expected to be set",
                    "cannot read /etc/ssh/sshd_config",
                )],
            ),
        ]);
    }

    #[test]
    fn plan_and_compile_errors() {
        assert_eq!(
            planned("config: {path: /etc/x, key: k}"),
            [read("/etc/x")].into()
        );
        for (yaml, needle) in [
            (
                "config: {path: /x, key: k, separator: colon}",
                "unknown separator `colon`",
            ),
            (
                "config: {path: /x, key: k, key_missing: ignored}",
                "unknown outcome `ignored`; expected one of: passed, failed, skipped",
            ),
        ] {
            let e = compile(yaml).expect_err(yaml);
            assert!(e.contains(needle), "{yaml}: {e}");
        }
    }
}
