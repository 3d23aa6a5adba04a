//! Validating admission: ValidatingAdmissionPolicy and its bindings
//! (`admissionregistration.k8s.io/v1`), evaluated with CEL on every write.
//!
//! Every write path calls [`check`] (or [`prepare`] then
//! [`Pending::validate`] where the object is only known under the store's
//! lock, as in an update): creates and updates of every kind, deletes, the
//! `serviceaccounts/token` and `pods/ephemeralcontainers` subresources, the
//! review kinds and exec's CONNECT. It runs where upstream's validating
//! admission runs, after authorization, defaulting, object validation and
//! RBAC escalation checks, just before the store. A refusal is upstream's
//! Status: `<resource> "<name>" is forbidden: ValidatingAdmissionPolicy 'P'
//! with binding 'B' denied request: <message>`, with the validation's reason
//! (`Invalid` 422 unless it names `Forbidden` 403, `Unauthorized` 401 or
//! `RequestEntityTooLarge` 413) and the message as the one cause.
//!
//! Writes of the policies and bindings themselves are exempt, as upstream.

pub mod expressions;
pub mod matching;
pub mod objects;
pub mod policy;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use serde_json::{Value, json};

use crate::rbac::User;
use crate::resources::ResourceType;
use crate::state::State;
use crate::status::ApiError;
use policy::{Denial, Hook, Input};

/// The admission group.
pub const GROUP: &str = "admissionregistration.k8s.io";

/// An admission operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Operation {
    /// POST (subresource creates such as TokenRequest included).
    #[default]
    Create,
    /// PUT and PATCH (the ephemeral-containers subresource included).
    Update,
    /// DELETE (each object of a deletecollection).
    Delete,
    /// exec, attach, port-forward.
    Connect,
}

impl Operation {
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }

    fn options_kind(self) -> Option<&'static str> {
        match self {
            Operation::Create => Some("CreateOptions"),
            Operation::Update => Some("UpdateOptions"),
            Operation::Delete => Some("DeleteOptions"),
            Operation::Connect => None,
        }
    }
}

/// What a request does, as admission sees it (upstream's
/// `admission.Attributes`).
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// The operation.
    pub operation: Operation,
    /// Resource group.
    pub group: String,
    /// Resource version.
    pub version: String,
    /// Resource plural.
    pub resource: String,
    /// Subresource (`token`, `ephemeralcontainers`, `exec`), or empty.
    pub subresource: String,
    /// The object's kind as `(group, version, kind)` (a TokenRequest for
    /// `serviceaccounts/token`, PodExecOptions for exec).
    pub kind: (String, String, String),
    /// Object name (empty for a generated name not yet known).
    pub name: String,
    /// Namespace (the namespace's own name for a Namespace).
    pub namespace: String,
    /// Who asks.
    pub user: User,
}

impl Attributes {
    /// A request on `t` itself.
    pub fn new(op: Operation, t: &ResourceType, ns: &str, name: &str, user: &User) -> Self {
        Self {
            operation: op,
            group: t.group.into(),
            version: t.version.into(),
            resource: t.plural.into(),
            subresource: String::new(),
            kind: (t.group.into(), t.version.into(), t.kind.into()),
            name: name.into(),
            namespace: if t.kind == "Namespace" { name } else { ns }.into(),
            user: user.clone(),
        }
    }

    /// The same request on subresource `sub`, whose object is a `kind`.
    pub fn on_subresource(mut self, sub: &str, kind: (&str, &str, &str)) -> Self {
        self.subresource = sub.into();
        self.kind = (kind.0.into(), kind.1.into(), kind.2.into());
        self
    }

    fn exempt(&self) -> bool {
        self.group == GROUP
            && [
                "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding",
                "ValidatingWebhookConfiguration",
                "MutatingWebhookConfiguration",
                "MutatingAdmissionPolicy",
                "MutatingAdmissionPolicyBinding",
            ]
            .contains(&self.kind.2.as_str())
    }

    /// The `request` variable: an AdmissionRequest with `omitempty` fields
    /// left out when empty, so `has(request.subResource)` reads as upstream.
    fn request(&self) -> Value {
        let (kg, kv, kk) = &self.kind;
        let kind = json!({"group": kg, "version": kv, "kind": kk});
        let resource =
            json!({"group": self.group, "version": self.version, "resource": self.resource});
        let mut user = json!({"username": self.user.name});
        if !self.user.uid.is_empty() {
            user["uid"] = json!(self.user.uid);
        }
        if !self.user.groups.is_empty() {
            user["groups"] = json!(self.user.groups);
        }
        if !self.user.extra.is_empty() {
            user["extra"] = json!(self.user.extra);
        }
        let mut r = json!({"uid": uuid::Uuid::new_v4().to_string(), "kind": kind,
            "resource": resource, "requestKind": kind, "requestResource": resource,
            "operation": self.operation.as_str(), "userInfo": user, "dryRun": false});
        for (key, value) in [
            ("subResource", &self.subresource),
            ("requestSubResource", &self.subresource),
            ("name", &self.name),
            ("namespace", &self.namespace),
        ] {
            if !value.is_empty() {
                r[key] = json!(value);
            }
        }
        if let Some(k) = self.operation.options_kind() {
            r["options"] = json!({"kind": k, "apiVersion": "meta.k8s.io/v1"});
        }
        r
    }
}

/// The policies that may apply to one request, read before the object is
/// final so that [`Pending::validate`] never touches the store.
pub struct Pending {
    attrs: Attributes,
    hooks: Vec<Hook>,
    namespace: Option<Value>,
}

/// Reads the policies, their bindings and the request's namespace.
pub fn prepare(state: &State, attrs: Attributes) -> Pending {
    let mut pending = Pending {
        attrs,
        hooks: Vec::new(),
        namespace: None,
    };
    if pending.attrs.exempt() {
        return pending;
    }
    let (bindings, _) = state
        .store
        .list(&format!("validatingadmissionpolicybindings.{GROUP}"), None);
    if bindings.is_empty() {
        return pending;
    }
    let mut bindings: Vec<ValidatingAdmissionPolicyBinding> = bindings
        .into_iter()
        .filter_map(|b| serde_json::from_value(b).ok())
        .collect();
    bindings.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let (policies, _) = state
        .store
        .list(&format!("validatingadmissionpolicies.{GROUP}"), None);
    for p in policies {
        let Ok(policy) = serde_json::from_value::<ValidatingAdmissionPolicy>(p) else {
            continue;
        };
        let name = policy.metadata.name.clone().unwrap_or_default();
        let mine: Vec<ValidatingAdmissionPolicyBinding> = bindings
            .iter()
            .filter(|b| b.spec.policy_name == name)
            .cloned()
            .collect();
        if !mine.is_empty() {
            pending.hooks.push(Hook {
                policy,
                bindings: mine,
            });
        }
    }
    let a = &pending.attrs;
    if !a.namespace.is_empty() && a.resource != "namespaces" {
        pending.namespace = state.store.get("namespaces", "", &a.namespace);
    }
    pending
}

impl Pending {
    /// Evaluates every policy against the new and old object (`None` for
    /// the object of a DELETE and the old object of a CREATE or CONNECT).
    ///
    /// # Errors
    /// The first refusal, as upstream's Status.
    pub fn validate(&self, object: Option<&Value>, old: Option<&Value>) -> Result<(), ApiError> {
        if self.hooks.is_empty() {
            return Ok(());
        }
        let request = self.attrs.request();
        let input = Input {
            attrs: &self.attrs,
            request: &request,
            namespace: self.namespace.as_ref(),
            object,
            old_object: old,
        };
        let denial = self
            .hooks
            .iter()
            .flat_map(|h| policy::evaluate(h, &input))
            .next();
        match denial {
            Some(d) => Err(refusal(&self.attrs, &d, object.or(old))),
            None => Ok(()),
        }
    }
}

/// [`prepare`] and [`Pending::validate`] in one step.
///
/// # Errors
/// The first refusal.
pub fn check(
    state: &State,
    attrs: Attributes,
    object: Option<&Value>,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    prepare(state, attrs).validate(object, old)
}

/// `admission.NewForbidden` with the denial's reason and code, and the
/// message as the one cause.
fn refusal(a: &Attributes, d: &Denial, object: Option<&Value>) -> ApiError {
    let message = match &d.binding {
        Some(b) => format!(
            "ValidatingAdmissionPolicy '{}' with binding '{b}' denied request: {}",
            d.policy, d.message
        ),
        None => format!(
            "ValidatingAdmissionPolicy '{}' denied request: {}",
            d.policy, d.message
        ),
    };
    let name = if a.name.is_empty() {
        object
            .and_then(|o| {
                let m = &o["metadata"];
                m["name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .or(m["generateName"].as_str().filter(|n| !n.is_empty()))
            })
            .unwrap_or("Unknown")
            .to_string()
    } else {
        a.name.clone()
    };
    let mut e = ApiError::forbidden(&a.group, &a.resource, &name, &message);
    (e.reason, e.code) = match d.reason.as_str() {
        "Forbidden" => ("Forbidden", 403),
        "Unauthorized" => ("Unauthorized", 401),
        "RequestEntityTooLarge" => ("RequestEntityTooLarge", 413),
        _ => ("Invalid", 422),
    };
    if let Some(details) = e.details.as_mut() {
        details["causes"] = json!([{"message": message}]);
    }
    e
}
