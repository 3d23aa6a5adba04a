//! Defaulting on create, as upstream's defaulters and admission do: pod and
//! container defaults, the initial pod status, and the ServiceAccount
//! admission plugin's projected token volume.

use serde_json::{Value, json};

use crate::state::State;

/// Five characters from upstream's `generateName` alphabet.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Pod spec defaults and the initial (Pending, scheduled) status.
pub fn default_pod(state: &State, pod: &mut Value) {
    let spec = &mut pod["spec"];
    if spec["serviceAccountName"].as_str().unwrap_or("").is_empty() {
        spec["serviceAccountName"] = json!("default");
    }
    spec["serviceAccount"] = spec["serviceAccountName"].clone();
    for (k, v) in [
        ("nodeName", json!(crate::state::NODE_NAME)),
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
    ] {
        if spec.get(k).is_none_or(Value::is_null) {
            spec[k] = v;
        }
    }
    if let Some(cs) = spec["containers"].as_array_mut() {
        for c in cs {
            default_container(c);
        }
    }
    let now = state.clock.timestamp();
    pod["status"] = json!({
        "phase": "Pending",
        "qosClass": "BestEffort",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}],
    });
}

/// The ServiceAccount admission plugin: unless the pod or its account opts
/// out, a projected `kube-api-access-*` volume (token, CA, namespace) is
/// added and mounted into every container and init container.
pub fn mount_service_account_token(state: &State, ns: &str, sa: &str, pod: &mut Value) {
    let sa_auto = state
        .store
        .get("serviceaccounts", ns, sa)
        .and_then(|s| s["automountServiceAccountToken"].as_bool());
    let auto = pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or(sa_auto)
        .unwrap_or(true);
    let mount = crate::runtime::SA_MOUNT;
    if !auto {
        return;
    }
    let name = format!("kube-api-access-{}", random_suffix());
    let volume = json!({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}});
    let spec = &mut pod["spec"];
    let mut volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
    volumes.push(volume);
    spec["volumes"] = Value::Array(volumes);
    for field in ["containers", "initContainers"] {
        for c in spec[field].as_array_mut().into_iter().flatten() {
            let mut mounts = c["volumeMounts"].as_array().cloned().unwrap_or_default();
            if mounts.iter().any(|m| m["mountPath"] == mount) {
                continue;
            }
            mounts.push(json!({"name": name, "readOnly": true, "mountPath": mount}));
            c["volumeMounts"] = Value::Array(mounts);
        }
    }
}

/// Container defaults upstream applies.
pub fn default_container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or("").to_string();
    let latest =
        !image.rsplit('/').next().unwrap_or("").contains(':') || image.ends_with(":latest");
    for (k, v) in [
        ("terminationMessagePath", json!("/dev/termination-log")),
        ("terminationMessagePolicy", json!("File")),
        (
            "imagePullPolicy",
            json!(if latest { "Always" } else { "IfNotPresent" }),
        ),
        ("resources", json!({})),
    ] {
        if c.get(k).is_none_or(Value::is_null) {
            c[k] = v;
        }
    }
}
