//! Which rights a call to the `Intake` API needs, asked of the gatekeeper
//! before anything is queued.
//!
//! - Submitting needs `create` on `scans.scanfleet.dev` in every namespace
//!   the submission touches: a container's namespace, or a label
//!   selector's (it expands only within it). A batch is authorized whole,
//!   before its first intent is queued.
//! - Reading a scan's status needs `get` on `scans` in its namespace.
//! - Callers are reviewed by intake's home cluster (the default one), whose
//!   RBAC cannot vouch for another cluster's namespaces one by one: a
//!   submission for another cluster of the registry needs `create` on
//!   `scans` in **every** namespace of the home cluster (a cluster-wide
//!   grant, which fleet operators hold and tenants do not).

use std::collections::BTreeSet;

use scanfleet_edge_access::{Access, AccessError, Caller, Gatekeeper, Resource, Verb};
use scanfleet_scan_intents::ClusterName;
use scanfleet_scan_intents::submission::ValidSubmission;
use tonic::Status;

/// Authorizes `submissions` (already validated) for `caller`.
///
/// # Errors
/// `PERMISSION_DENIED` naming the namespaces (all namespaces, for another
/// cluster), `UNAVAILABLE` when the cluster cannot be asked.
pub async fn authorize_submissions<'a>(
    gate: &Gatekeeper,
    caller: &Caller,
    cluster: &ClusterName,
    submissions: impl IntoIterator<Item = &'a ValidSubmission>,
) -> Result<(), Status> {
    let mut namespaces = BTreeSet::new();
    for valid in submissions {
        if valid.cluster.as_ref().is_some_and(|other| other != cluster) {
            // "" is every namespace: a cluster-wide grant.
            namespaces.insert(String::new());
        } else {
            namespaces.insert(valid.target.namespace().as_str().to_owned());
        }
    }
    let mut refused = Vec::new();
    for namespace in namespaces {
        let access = Access::new(Verb::Create, Resource::Scans, namespace.clone());
        if !gate.may(caller, &access).await? {
            refused.push(namespace);
        }
    }
    let user = caller.name.clone();
    Err(match refused.len() {
        0 => return Ok(()),
        1 => AccessError::Forbidden {
            user,
            access: Access::new(Verb::Create, Resource::Scans, refused.remove(0)),
        },
        _ => AccessError::ForbiddenIn {
            user,
            verb: Verb::Create,
            resource: Resource::Scans,
            namespaces: refused,
        },
    }
    .into())
}

/// Authorizes reading the status of a scan in `namespace` (empty when the
/// recorded intent names none: then only a cluster-wide grant will do).
///
/// # Errors
/// `PERMISSION_DENIED` or `UNAVAILABLE`.
pub async fn authorize_status(
    gate: &Gatekeeper,
    caller: &Caller,
    namespace: &str,
) -> Result<(), Status> {
    gate.authorize(caller, Access::new(Verb::Get, Resource::Scans, namespace))
        .await
        .map_err(Status::from)
}
