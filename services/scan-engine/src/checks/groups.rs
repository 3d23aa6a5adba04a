//! `groups:` checks: rules over `/etc/group` (gid 0, duplicate gids,
//! members of the root group).

use std::collections::BTreeSet;

use marked_yaml::Spanned;
use serde::Deserialize;

use super::compile::{CompileError, RawForm, one_of};
use super::matchers::{duplicates, list_paths};
use super::system_facts::{GROUP, Text, text_of};
use super::{Check, CheckResult, CompiledCheck};
use crate::facts::{FactRequest, Facts};
use crate::system_files::parse_group;

/// `groups:` check fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroups {
    rule: Spanned<String>,
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

impl RawForm for RawGroups {
    fn compile(&self) -> Result<Check, CompileError> {
        let rule = match one_of(
            &self.rule,
            &["only_root_gid0", "unique_gids", "root_group_no_members"],
            "groups rule",
        )? {
            "only_root_gid0" => GroupsRule::OnlyRootGid0,
            "unique_gids" => GroupsRule::UniqueGids,
            _ => GroupsRule::RootGroupNoMembers,
        };
        Ok(Check::new(rule))
    }
}

impl CompiledCheck for GroupsRule {
    fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        out.insert(FactRequest::Read(GROUP.into()));
    }

    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let cd = match self {
            GroupsRule::OnlyRootGid0 => "Only the root group has gid 0",
            GroupsRule::UniqueGids => "Every group has a unique gid",
            GroupsRule::RootGroupNoMembers => "The root group has no supplementary members",
        };
        let groups = match text_of(facts, GROUP) {
            Text::Ok(t) => parse_group(&t),
            Text::Missing => return vec![CheckResult::skip(cd, format!("{GROUP} does not exist"))],
            Text::Problem(e) => return vec![CheckResult::error(cd, e)],
        };
        let mut bad: Vec<String> = match self {
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
}

#[cfg(test)]
mod tests {
    use super::super::Status::{Error, Failed, Passed, Skipped};
    use super::super::test_support::{case, compile, facts, planned, read, run_cases};

    const GR: &str = "root:x:0:root,admin\nwheel:x:0:\nusers:x:100:\nstaff:x:100:\n";

    #[test]
    fn rule_cases() {
        run_cases(vec![
            case(
                "gid 0",
                "groups: {rule: only_root_gid0}",
                facts().file("/etc/group", GR),
                &[(Failed, "Only the root group has gid 0", "offending: wheel")],
            ),
            case(
                "duplicate gids",
                "groups: {rule: unique_gids}",
                facts().file("/etc/group", GR),
                &[(Failed, "Every group has a unique gid", "offending: 0, 100")],
            ),
            case(
                "root members, root itself allowed",
                "groups: {rule: root_group_no_members}",
                facts().file("/etc/group", GR),
                &[(
                    Failed,
                    "The root group has no supplementary members",
                    "offending: admin",
                )],
            ),
            case(
                "clean",
                "groups: {rule: unique_gids}",
                facts().file("/etc/group", "root:x:0:\n"),
                &[(Passed, "Every group has a unique gid", "")],
            ),
            case(
                "no group file",
                "groups: {rule: unique_gids}",
                facts().no_file("/etc/group"),
                &[(
                    Skipped,
                    "Every group has a unique gid",
                    "/etc/group does not exist",
                )],
            ),
            case(
                "not gathered",
                "groups: {rule: unique_gids}",
                facts(),
                &[(
                    Error,
                    "Every group has a unique gid",
                    "internal: /etc/group was not read",
                )],
            ),
        ]);
    }

    #[test]
    fn plan_and_compile_errors() {
        assert_eq!(
            planned("groups: {rule: unique_gids}"),
            [read("/etc/group")].into()
        );
        let e = compile("groups: {rule: tidy}").expect_err("unknown rule");
        assert!(e.contains("unknown groups rule `tidy`"), "{e}");
    }
}
