//! `packages:` checks: packages that must or must not be installed,
//! according to the dpkg or apk database.

use std::collections::BTreeSet;

use marked_yaml::Span;
use serde::Deserialize;

use super::compile::{CompileError, RawForm};
use super::system_facts::{installed_packages, package_db_requests};
use super::{Check, CheckResult, CompiledCheck};
use crate::facts::{FactRequest, Facts};

/// `packages:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackages {
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    present: Vec<String>,
}

/// See [`RawPackages`].
#[derive(Debug, Clone)]
pub struct PackagesCheck {
    absent: Vec<String>,
    present: Vec<String>,
}

impl RawForm for RawPackages {
    fn compile(&self) -> Result<Check, CompileError> {
        if self.absent.is_empty() && self.present.is_empty() {
            return Err((
                Span::new_blank(),
                "packages check needs `absent` or `present`".into(),
            ));
        }
        Ok(Check::new(PackagesCheck {
            absent: self.absent.clone(),
            present: self.present.clone(),
        }))
    }
}

impl CompiledCheck for PackagesCheck {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        out.extend(package_db_requests());
    }

    /// One result per named package, absent ones first.
    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let db = installed_packages(facts);
        let wanted =
            (self.absent.iter().map(|n| (n, false))).chain(self.present.iter().map(|n| (n, true)));
        let mut out = Vec::new();
        for (name, want) in wanted {
            let cd = format!(
                "Package {name} is expected {}to be installed",
                if want { "" } else { "not " }
            );
            if let Some(e) = db.problems.first() {
                out.push(CheckResult::error(cd, e.clone()));
                continue;
            }
            let has = db.versions.get(name);
            out.push(CheckResult::judge(
                has.is_some() == want,
                cd,
                || match has {
                    Some(v) => format!("{name} {v} is installed"),
                    None if db.any_db => format!("{name} is not installed"),
                    None => "no dpkg or apk package database found".to_string(),
                },
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::{Error, Failed, Passed};
    use super::super::test_support::{case, compile, facts, planned, read, run_cases};
    use crate::facts::ContentFact;

    const DPKG: &str = "Package: curl\nStatus: install ok installed\nVersion: 7.88\n\nPackage: gone\nStatus: deinstall ok config-files\n";
    const APK: &str = "P:busybox\nV:1.36\n";

    #[test]
    fn package_cases() {
        run_cases(vec![
            case(
                "dpkg",
                "packages: {absent: [curl, gone], present: [bash]}",
                facts()
                    .file("/var/lib/dpkg/status", DPKG)
                    .no_file("/lib/apk/db/installed"),
                &[
                    (
                        Failed,
                        "Package curl is expected not to be installed",
                        "curl 7.88 is installed",
                    ),
                    (Passed, "Package gone is expected not to be installed", ""),
                    (
                        Failed,
                        "Package bash is expected to be installed",
                        "bash is not installed",
                    ),
                ],
            ),
            case(
                "apk",
                "packages: {present: [busybox]}",
                facts()
                    .no_file("/var/lib/dpkg/status")
                    .file("/lib/apk/db/installed", APK),
                &[(Passed, "Package busybox is expected to be installed", "")],
            ),
            case(
                "no database",
                "packages: {present: [busybox], absent: [curl]}",
                facts()
                    .no_file("/var/lib/dpkg/status")
                    .no_file("/lib/apk/db/installed"),
                &[
                    (Passed, "Package curl is expected not to be installed", ""),
                    (
                        Failed,
                        "Package busybox is expected to be installed",
                        "no dpkg or apk package database found",
                    ),
                ],
            ),
            case(
                "unreadable database",
                "packages: {absent: [curl]}",
                facts()
                    .content("/var/lib/dpkg/status", ContentFact::NotRegular)
                    .file("/lib/apk/db/installed", APK),
                &[(
                    Error,
                    "Package curl is expected not to be installed",
                    "/var/lib/dpkg/status is not a regular file",
                )],
            ),
        ]);
    }

    #[test]
    fn plan_and_compile_errors() {
        assert_eq!(
            planned("packages: {absent: [x]}"),
            [read("/var/lib/dpkg/status"), read("/lib/apk/db/installed")].into()
        );
        let e = compile("packages: {}").expect_err("nothing asked");
        assert!(e.contains("needs `absent` or `present`"), "{e}");
    }
}
