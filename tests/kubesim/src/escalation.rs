//! RBAC privilege-escalation prevention on Role/ClusterRole and binding
//! writes: allowed with `escalate`/`bind`, or when the writer already holds
//! every rule granted (§5 of the API note).

use serde_json::Value;

use crate::rbac::{self, RbacSource, Rule, User};
use crate::resources::{RBAC_GROUP, RequestInfo, ResourceType};
use crate::state::State;
use crate::status::ApiError;

/// Escalation prevention for RBAC writes (§5 of the API note).
pub fn check_escalation(
    state: &State,
    user: &User,
    t: &ResourceType,
    ns: &str,
    url_name: &str,
    obj: &Value,
) -> Result<(), ApiError> {
    if user.is_master() {
        return Ok(());
    }
    let obj_name = obj["metadata"]["name"].as_str().unwrap_or("");
    let (owner_rules, errors) = rbac::rules_for(state, user, ns);
    let owner: Vec<Rule> = owner_rules.into_iter().map(|g| g.rule).collect();
    match t.kind {
        "Role" | "ClusterRole" => {
            let escalate = RequestInfo {
                is_resource: true,
                verb: "escalate".into(),
                group: RBAC_GROUP.into(),
                version: "v1".into(),
                resource: t.plural.into(),
                name: url_name.into(),
                namespace: ns.into(),
                ..Default::default()
            };
            if rbac::authorize(state, user, &escalate).allowed {
                return Ok(());
            }
            let servant = Rule::all_from_role(obj);
            let missing = rbac::uncovered(&owner, &servant);
            if missing.is_empty() {
                return Ok(());
            }
            Err(rbac::escalation_forbidden(
                t.plural, obj_name, user, &missing, &errors,
            ))
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let kind = obj["roleRef"]["kind"].as_str().unwrap_or("");
            let role_name = obj["roleRef"]["name"].as_str().unwrap_or("");
            let bind = RequestInfo {
                is_resource: true,
                verb: "bind".into(),
                group: obj["roleRef"]["apiGroup"]
                    .as_str()
                    .unwrap_or(RBAC_GROUP)
                    .into(),
                version: "v1".into(),
                resource: if kind == "Role" {
                    "roles"
                } else {
                    "clusterroles"
                }
                .into(),
                name: role_name.into(),
                namespace: ns.into(),
                ..Default::default()
            };
            if rbac::authorize(state, user, &bind).allowed {
                return Ok(());
            }
            let role = if kind == "Role" {
                state.role(ns, role_name)
            } else {
                state.cluster_role(role_name)
            };
            let Some(role) = role else {
                return Err(ApiError::not_found(
                    RBAC_GROUP,
                    if kind == "Role" {
                        "roles"
                    } else {
                        "clusterroles"
                    },
                    role_name,
                ));
            };
            let missing = rbac::uncovered(&owner, &Rule::all_from_role(&role));
            if missing.is_empty() {
                return Ok(());
            }
            Err(rbac::escalation_forbidden(
                t.plural, obj_name, user, &missing, &errors,
            ))
        }
        _ => Ok(()),
    }
}
