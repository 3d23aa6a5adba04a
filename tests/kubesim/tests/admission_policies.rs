//! ValidatingAdmissionPolicy through kube-rs: the objects are stored,
//! listed and watched like any kind; bindings enforce them on creates,
//! updates, deletes and subresources with upstream's Status; matching,
//! `matchConditions`, `variables`, messages and `failurePolicy` behave as
//! upstream's. Requires root (kubesim runs containers in namespaces).

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Client;
use kube::api::{
    Api, AttachParams, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use serde_json::{Value, json};

use common::*;

const POLICY_API: &str = "admissionregistration.k8s.io/v1";

fn policy(name: &str, spec: Value) -> Value {
    json!({"apiVersion": POLICY_API, "kind": "ValidatingAdmissionPolicy",
           "metadata": {"name": name}, "spec": spec})
}

fn bind(name: &str, policy: &str, extra: Value) -> Value {
    let mut spec = json!({"policyName": policy, "validationActions": ["Deny"]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": POLICY_API, "kind": "ValidatingAdmissionPolicyBinding",
           "metadata": {"name": name}, "spec": spec})
}

/// Rules matching `resources` for every operation in the core group.
fn core(resources: Value) -> Value {
    json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                              "operations": ["*"], "resources": resources}]})
}

async fn install(c: &Client, p: Value, b: Value) {
    let _: ValidatingAdmissionPolicy = apply(c, None, p).await;
    let _: ValidatingAdmissionPolicyBinding = apply(c, None, b).await;
}

async fn remove(c: &Client, policy: &str, binding: &str) {
    let dp = DeleteParams::default();
    Api::<ValidatingAdmissionPolicyBinding>::all(c.clone())
        .delete(binding, &dp)
        .await
        .expect("binding deleted");
    Api::<ValidatingAdmissionPolicy>::all(c.clone())
        .delete(policy, &dp)
        .await
        .expect("policy deleted");
}

async fn create_sa(c: &Client, ns: &str, name: &str) -> Result<ServiceAccount, kube::Error> {
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &sa)
        .await
}

fn denied(policy: &str, binding: &str, message: &str) -> String {
    format!(
        "ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {message}"
    )
}

#[tokio::test]
async fn policies_are_stored_validated_and_watched_like_any_kind() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(c.clone());
    let mut events = policies
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch starts")
        .boxed();
    install(
        &c,
        policy(
            "names",
            json!({"matchConstraints": core(json!(["serviceaccounts"])),
            "validations": [{"expression": "object.metadata.name.startsWith('ok-')"}]}),
        ),
        bind("names", "names", json!({})),
    )
    .await;
    let stored = policies.get("names").await.expect("stored");
    let spec = stored.spec.expect("spec");
    assert_eq!(spec.failure_policy.as_deref(), Some("Fail"), "defaulted");
    let constraints = spec.match_constraints.expect("constraints");
    assert_eq!(constraints.match_policy.as_deref(), Some("Equivalent"));
    assert_eq!(
        constraints.resource_rules.unwrap()[0].scope.as_deref(),
        Some("*")
    );
    let added = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(WatchEvent::Added(p)) = events.try_next().await.expect("watch event") {
                return p.metadata.name;
            }
        }
    })
    .await
    .expect("ADDED within 10 s")
    .expect("named");
    assert_eq!(added, "names");
    let listed = Api::<ValidatingAdmissionPolicyBinding>::all(c.clone())
        .list(&ListParams::default())
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);

    // CEL that does not compile is refused when applied, naming the field.
    let bad = serde_json::from_value::<ValidatingAdmissionPolicy>(policy(
        "broken",
        json!({"matchConstraints": core(json!(["pods"])),
               "validations": [{"expression": "object.metadata.("}]}),
    ))
    .unwrap();
    let e = api_error(policies.create(&PostParams::default(), &bad).await);
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message.starts_with(
            "ValidatingAdmissionPolicy.admissionregistration.k8s.io \"broken\" is invalid: spec.validations[0].expression: Invalid value: \"object.metadata.(\": compilation failed: ERROR: <input>:1:"
        ),
        "{}",
        e.message
    );

    // An update takes effect on the next request; a delete removes it.
    let patch = json!({"spec": {"validations": [{"expression": "object.metadata.name.startsWith('ok2-')"}]}});
    policies
        .patch("names", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    let e = api_error(create_sa(&c, "apps", "ok-1").await);
    assert!(e.message.ends_with(&denied(
        "names",
        "names",
        "failed expression: object.metadata.name.startsWith('ok2-')"
    )));
    remove(&c, "names", "names").await;
    create_sa(&c, "apps", "ok-1")
        .await
        .expect("no policy, no refusal");
    sim.shutdown().await;
}

#[tokio::test]
async fn refusals_carry_upstreams_status_and_message() {
    let sim = demo().await;
    let c = admin(&sim).await;
    install(
        &c,
        policy("names", json!({"matchConstraints": core(json!(["serviceaccounts"])),
            "variables": [{"name": "prefix", "expression": "'ok-'"}],
            "validations": [
                {"expression": "object.metadata.name.startsWith(variables.prefix)",
                 "messageExpression": "'name ' + object.metadata.name + ' lacks ' + variables.prefix",
                 "message": "static"},
                {"expression": "object.metadata.name != 'ok-forbidden'",
                 "message": "  not this one  ", "reason": "Forbidden"}]})),
        bind("names-binding", "names", json!({})),
    )
    .await;
    let e = api_error(create_sa(&c, "apps", "bad").await);
    let message = denied("names", "names-binding", "name bad lacks ok-");
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        format!("serviceaccounts \"bad\" is forbidden: {message}")
    );
    let d = e.details.expect("details");
    assert_eq!(
        (d.name.as_str(), d.kind.as_str()),
        ("bad", "serviceaccounts")
    );
    assert_eq!(d.causes.len(), 1);
    assert_eq!(d.causes[0].message, message);
    let e = api_error(create_sa(&c, "apps", "ok-forbidden").await);
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert!(
        e.message
            .ends_with(&denied("names", "names-binding", "not this one"))
    );
    create_sa(&c, "apps", "ok-fine").await.expect("allowed");

    // Warn alone does not refuse; a policy with no binding is not enforced.
    let warn = json!({"spec": {"validationActions": ["Warn"]}});
    Api::<ValidatingAdmissionPolicyBinding>::all(c.clone())
        .patch(
            "names-binding",
            &PatchParams::default(),
            &Patch::Merge(&warn),
        )
        .await
        .expect("binding patched");
    create_sa(&c, "apps", "warned").await.expect("Warn only");
    remove(&c, "names", "names-binding").await;

    // An evaluation error is the failurePolicy's to decide.
    for (failure, outcome) in [("Fail", false), ("Ignore", true)] {
        install(
            &c,
            policy(
                "errs",
                json!({"failurePolicy": failure,
                "matchConstraints": core(json!(["serviceaccounts"])),
                "validations": [{"expression": "object.spec.x == 1"}]}),
            ),
            bind("errs", "errs", json!({})),
        )
        .await;
        let r = create_sa(&c, "apps", &format!("e-{}", failure.to_lowercase())).await;
        assert_eq!(r.is_ok(), outcome, "{failure}: {r:?}");
        if let Err(kube::Error::Api(e)) = r {
            assert!(e.message.ends_with(&denied(
                "errs",
                "errs",
                "expression 'object.spec.x == 1' resulted in error: no such key: spec"
            )));
        }
        remove(&c, "errs", "errs").await;
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn matching_selects_requests_as_upstream() {
    let sim = demo().await;
    let c = admin(&sim).await;
    sa(&c, "apps", "narrow").await;
    let _: k8s_openapi::api::rbac::v1::ClusterRoleBinding = apply(
        &c,
        None,
        cluster_binding("narrow-admin", "cluster-admin", "apps", "narrow"),
    )
    .await;
    let narrow = with_token(
        &sim,
        &token(&c, "apps", "narrow", 3600, None).await.unwrap(),
    )
    .await;
    install(
        &c,
        policy("only-narrow", json!({
            "matchConstraints": {
                "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "DELETE"], "resources": ["serviceaccounts"]}],
                "excludeResourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["*"], "resources": ["serviceaccounts"], "resourceNames": ["spared"]}],
                "namespaceSelector": {"matchLabels": {"team": "payments"}}},
            "matchConditions": [{"name": "narrow",
                "expression": "request.userInfo.username == 'system:serviceaccount:apps:narrow'"}],
            "validations": [{"expression": "false", "messageExpression":
                "request.operation + ' ' + request.resource.resource + ' ' + request.name + ' in ' + request.namespace + (oldObject == null ? '' : ' (was ' + oldObject.metadata.name + ')')"}]})),
        bind("only-narrow", "only-narrow", json!({"matchResources": {
            "objectSelector": {"matchExpressions": [{"key": "keep", "operator": "DoesNotExist"}]}}})),
    )
    .await;
    // matchConditions: the admin is not matched; the narrow account is.
    create_sa(&c, "apps", "by-admin")
        .await
        .expect("admin not matched");
    let e = api_error(create_sa(&narrow, "apps", "x").await);
    assert!(e.message.ends_with(&denied(
        "only-narrow",
        "only-narrow",
        "CREATE serviceaccounts x in apps"
    )));
    // excludeResourceRules, namespaceSelector (scanning has no team label).
    create_sa(&narrow, "apps", "spared")
        .await
        .expect("excluded by name");
    create_sa(&narrow, "scanning", "x")
        .await
        .expect("namespace not selected");
    // DELETE sees oldObject; the objectSelector matches old or new.
    let accounts: Api<ServiceAccount> = Api::namespaced(narrow.clone(), "apps");
    let e = api_error(accounts.delete("by-admin", &DeleteParams::default()).await);
    assert!(
        e.message
            .ends_with("DELETE serviceaccounts by-admin in apps (was by-admin)")
    );
    let label = json!({"metadata": {"labels": {"keep": "yes"}}});
    Api::<ServiceAccount>::namespaced(c.clone(), "apps")
        .patch("by-admin", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("labelled");
    accounts
        .delete("by-admin", &DeleteParams::default())
        .await
        .expect("objectSelector no longer matches");
    remove(&c, "only-narrow", "only-narrow").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn subresources_are_admitted_with_their_own_objects() {
    let sim = demo().await;
    let c = admin(&sim).await;
    install(
        &c,
        policy("subs", json!({"matchConstraints": {"resourceRules": [{"apiGroups": [""],
                "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE", "CONNECT"],
                "resources": ["serviceaccounts/token", "pods/ephemeralcontainers", "pods/exec"]}]},
            "validations": [
                {"expression": "request.subResource != 'token' || object.spec.expirationSeconds <= 1800",
                 "messageExpression": "'token ' + request.name + ' for ' + string(object.spec.expirationSeconds) + 's'"},
                {"expression": "request.subResource != 'ephemeralcontainers' || object.spec.ephemeralContainers.all(e, (has(oldObject.spec.ephemeralContainers) && oldObject.spec.ephemeralContainers.exists(o, o.name == e.name)) || e.image == 'kubesim.local/scanner:1.0')",
                 "message": "only the scanner image"},
                {"expression": "request.subResource != 'exec' || !('cat' in object.command)",
                 "messageExpression": "'no cat in ' + object.container"}]})),
        bind("subs", "subs", json!({})),
    )
    .await;
    token(&c, "scanning", "scanner", 1800, None)
        .await
        .expect("1800 s allowed");
    let e = api_error(token(&c, "scanning", "scanner", 3600, None).await);
    assert_eq!(
        e.message,
        format!(
            "serviceaccounts \"scanner\" is forbidden: {}",
            denied("subs", "subs", "token scanner for 3600s")
        )
    );

    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let add = |name: &str, image: &str| {
        json!({"spec": {"ephemeralContainers": [{"name": name, "image": image,
            "targetContainerName": "app", "command": ["sleep", "60"]}]}})
    };
    let pp = PatchParams::default();
    let e = api_error(
        pods.patch_ephemeral_containers(
            "distroless-app",
            &pp,
            &Patch::Strategic(add("evil", "kubesim.local/shell-misconfigured:1.0")),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    assert!(
        e.message
            .starts_with("pods \"distroless-app\" is forbidden: ")
    );
    assert!(
        e.message
            .ends_with(&denied("subs", "subs", "only the scanner image"))
    );
    pods.patch_ephemeral_containers(
        "distroless-app",
        &pp,
        &Patch::Strategic(add("dbg", "kubesim.local/scanner:1.0")),
    )
    .await
    .expect("the scanner image is allowed");

    wait_ephemeral_running(&pods, "distroless-app", "dbg").await;
    let ap = AttachParams::default().container("dbg").stderr(true);
    let e = api_error(
        pods.exec(
            "distroless-app",
            vec!["cat", "/proc/1/root/etc/os-release"],
            &ap,
        )
        .await,
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            422,
            format!(
                "pods \"distroless-app\" is forbidden: {}",
                denied("subs", "subs", "no cat in dbg")
            )
            .as_str()
        )
    );
    let (out, _, st) = run(&pods, "distroless-app", "dbg", &["ls", "/"], None).await;
    assert_eq!(exit_code(&st), 0, "{}", String::from_utf8_lossy(&out));
    remove(&c, "subs", "subs").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn parameters_are_a_configuration_error() {
    let sim = demo().await;
    let c = admin(&sim).await;
    install(
        &c,
        policy(
            "params",
            json!({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": core(json!(["serviceaccounts"])),
            "validations": [{"expression": "params.data.allowed == 'true'"}]}),
        ),
        bind(
            "params",
            "params",
            json!({"paramRef": {"name": "cfg", "namespace": "default",
            "parameterNotFoundAction": "Deny"}}),
        ),
    )
    .await;
    let e = api_error(create_sa(&c, "apps", "x").await);
    assert_eq!(
        e.message,
        format!(
            "serviceaccounts \"x\" is forbidden: {}",
            denied(
                "params",
                "params",
                "failed to configure binding: paramKind kind `/v1, Kind=ConfigMap` not known"
            )
        )
    );
    sim.shutdown().await;
}
