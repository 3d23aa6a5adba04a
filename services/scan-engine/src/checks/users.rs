//! `users:` checks: account rules over passwd and shadow (uid 0, empty and
//! weak password hashes, login shells of system accounts, duplicates).

use std::collections::BTreeSet;

use marked_yaml::Spanned;
use serde::Deserialize;

use super::compile::{CompileError, RawForm, one_of};
use super::matchers::{duplicates, list_paths};
use super::system_facts::{PASSWD, SHADOW, Text, text_of};
use super::{Check, CheckResult, CompiledCheck};
use crate::facts::{FactRequest, Facts};
use crate::system_files::{PasswdEntry, parse_passwd, parse_shadow};

/// Shells that mean "no interactive login" unless a profile lists its own.
const NOLOGIN_SHELLS: [&str; 7] = [
    "/sbin/nologin",
    "/usr/sbin/nologin",
    "/bin/false",
    "/usr/bin/false",
    "/bin/sync",
    "/sbin/shutdown",
    "/sbin/halt",
];

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

impl RawForm for RawUsers {
    fn compile(&self) -> Result<Check, CompileError> {
        let u = self;
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
        let nologin_shells = if u.nologin_shells.is_empty() {
            NOLOGIN_SHELLS.iter().map(|s| s.to_string()).collect()
        } else {
            u.nologin_shells.iter().cloned().collect()
        };
        Ok(Check::new(UsersCheck {
            rule,
            system_uid_max: u.system_uid_max.unwrap_or(999),
            exempt: u.exempt.iter().cloned().collect(),
            nologin_shells,
        }))
    }
}

impl CompiledCheck for UsersCheck {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        out.insert(FactRequest::Read(PASSWD.into()));
        if matches!(
            self.rule,
            UsersRule::NoEmptyPasswords | UsersRule::NoWeakHashes
        ) {
            out.insert(FactRequest::Read(SHADOW.into()));
        }
    }

    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let cd = self.code_desc();
        let passwd = match text_of(facts, PASSWD) {
            Text::Ok(t) => parse_passwd(&t),
            Text::Missing => {
                return vec![CheckResult::skip(cd, format!("{PASSWD} does not exist"))];
            }
            Text::Problem(e) => return vec![CheckResult::error(cd, e)],
        };
        let mut bad = match self.offenders(&passwd, facts) {
            Ok(bad) => bad,
            Err(e) => return vec![CheckResult::error(cd, e)],
        };
        bad.sort();
        bad.dedup();
        vec![CheckResult::judge(bad.is_empty(), cd, || {
            format!("offending: {}", list_paths(&bad))
        })]
    }
}

impl UsersCheck {
    fn code_desc(&self) -> String {
        match self.rule {
            UsersRule::OnlyRootUid0 => "Only root has uid 0".to_string(),
            UsersRule::NoEmptyPasswords => "No account has an empty password".into(),
            UsersRule::NoWeakHashes => {
                "No account uses a weak password hash (DES, MD5, NTHASH)".into()
            }
            UsersRule::SystemAccountsNoLogin => format!(
                "System accounts (uid 1..={}) have no login shell",
                self.system_uid_max
            ),
            UsersRule::UniqueUids => "Every account has a unique uid".into(),
            UsersRule::UniqueNames => "Every account name is unique".into(),
        }
    }

    /// What breaks the rule, or why shadow could not be read.
    fn offenders(&self, passwd: &[PasswdEntry], facts: &Facts) -> Result<Vec<String>, String> {
        Ok(match self.rule {
            UsersRule::OnlyRootUid0 => passwd
                .iter()
                .filter(|e| e.uid == 0 && e.name != "root")
                .map(|e| e.name.clone())
                .collect(),
            UsersRule::NoEmptyPasswords | UsersRule::NoWeakHashes => {
                self.bad_passwords(passwd, facts)?
            }
            UsersRule::SystemAccountsNoLogin => passwd
                .iter()
                .filter(|e| {
                    e.uid != 0
                        && e.uid <= self.system_uid_max
                        && !self.exempt.contains(&e.name)
                        && !self.nologin_shells.contains(&e.shell)
                })
                .map(|e| format!("{} ({})", e.name, e.shell))
                .collect(),
            UsersRule::UniqueUids => duplicates(passwd.iter().map(|e| e.uid.to_string())),
            UsersRule::UniqueNames => duplicates(passwd.iter().map(|e| e.name.clone())),
        })
    }

    /// Accounts whose hash (in passwd itself, or in shadow) is empty or weak.
    fn bad_passwords(&self, passwd: &[PasswdEntry], facts: &Facts) -> Result<Vec<String>, String> {
        let shadow = match text_of(facts, SHADOW) {
            Text::Ok(t) => parse_shadow(&t),
            Text::Missing => Vec::new(),
            Text::Problem(e) => return Err(e),
        };
        let mut hashes: Vec<(String, String)> = passwd
            .iter()
            .filter(|e| e.password != "x")
            .map(|e| (e.name.clone(), e.password.clone()))
            .collect();
        hashes.extend(shadow);
        Ok(hashes
            .into_iter()
            .filter(|(name, h)| {
                !self.exempt.contains(name)
                    && if self.rule == UsersRule::NoEmptyPasswords {
                        h.is_empty()
                    } else {
                        is_weak_hash(h)
                    }
            })
            .map(|(n, _)| n)
            .collect())
    }
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

#[cfg(test)]
mod tests {
    use super::super::Status::{Error, Failed, Passed, Skipped};
    use super::super::test_support::{case, compile, facts, planned, read, run_cases};

    const PW: &str = "root:x:0:0::/root:/bin/sh\n\
        toor:x:0:0::/root:/bin/sh\n\
        daemon:x:2:2::/:/usr/sbin/nologin\n\
        sync:x:5:0::/:/bin/sh\n\
        old:abCDefGHijKLm:1000:1000::/home/old:/bin/sh\n\
        dup:x:1000:1000::/home/dup:/bin/sh\n";
    const SHADOW: &str = "root:!:19000::::::\nsync:*:19000::::::\nnew:$6$salt$hash:1::::::\nmd5:$1$x$y:1::::::\nblank::1::::::\n";

    fn both() -> super::super::test_support::FactsBuilder {
        facts().file("/etc/passwd", PW).file("/etc/shadow", SHADOW)
    }

    #[test]
    fn rule_cases() {
        run_cases(vec![
            case(
                "uid 0",
                "users: {rule: only_root_uid0}",
                both(),
                &[(Failed, "Only root has uid 0", "offending: toor")],
            ),
            case(
                "empty passwords",
                "users: {rule: no_empty_passwords}",
                both(),
                &[(
                    Failed,
                    "No account has an empty password",
                    "offending: blank",
                )],
            ),
            case(
                "weak hashes, from passwd and shadow",
                "users: {rule: no_weak_hashes}",
                both(),
                &[(
                    Failed,
                    "No account uses a weak password hash (DES, MD5, NTHASH)",
                    "offending: md5, old",
                )],
            ),
            case(
                "weak hashes, exempt",
                "users: {rule: no_weak_hashes, exempt: [md5, old]}",
                both(),
                &[(
                    Passed,
                    "No account uses a weak password hash (DES, MD5, NTHASH)",
                    "",
                )],
            ),
            case(
                "system accounts",
                "users: {rule: system_accounts_no_login}",
                both(),
                &[(
                    Failed,
                    "System accounts (uid 1..=999) have no login shell",
                    "offending: sync (/bin/sh)",
                )],
            ),
            case(
                "system accounts, own shells and range",
                "users: {rule: system_accounts_no_login, system_uid_max: 4, nologin_shells: [/usr/sbin/nologin]}",
                both(),
                &[(
                    Passed,
                    "System accounts (uid 1..=4) have no login shell",
                    "",
                )],
            ),
            case(
                "unique uids",
                "users: {rule: unique_uids}",
                both(),
                &[(
                    Failed,
                    "Every account has a unique uid",
                    "offending: 0, 1000",
                )],
            ),
            case(
                "unique names",
                "users: {rule: unique_names}",
                both(),
                &[(Passed, "Every account name is unique", "")],
            ),
        ]);
    }

    #[test]
    fn unreadable_files() {
        run_cases(vec![
            case(
                "no passwd",
                "users: {rule: unique_uids}",
                facts().no_file("/etc/passwd"),
                &[(
                    Skipped,
                    "Every account has a unique uid",
                    "/etc/passwd does not exist",
                )],
            ),
            case(
                "no shadow is no hashes",
                "users: {rule: no_empty_passwords}",
                facts()
                    .file("/etc/passwd", "root:x:0:0::/:/bin/sh\n")
                    .no_file("/etc/shadow"),
                &[(Passed, "No account has an empty password", "")],
            ),
            case(
                "shadow unreadable",
                "users: {rule: no_weak_hashes}",
                facts().file("/etc/passwd", PW),
                &[(
                    Error,
                    "No account uses a weak password hash (DES, MD5, NTHASH)",
                    "cannot read /etc/shadow",
                )],
            ),
        ]);
    }

    #[test]
    fn plan_and_compile_errors() {
        assert_eq!(
            planned("users: {rule: unique_uids}"),
            [read("/etc/passwd")].into()
        );
        assert_eq!(
            planned("users: {rule: no_empty_passwords}"),
            [read("/etc/passwd"), read("/etc/shadow")].into()
        );
        let e = compile("users: {rule: strong}").expect_err("unknown rule");
        assert!(
            e.contains("unknown users rule `strong`; expected one of: only_root_uid0"),
            "{e}"
        );
    }
}
