//! Ephemeral containers and shared PID namespaces: reading a target's root
//! under the kernel's ptrace rules, GET/PUT/PATCH of `ephemeralcontainers`,
//! and a sidecar reading the app's root.
//! Requires root (kubesim runs containers in namespaces).

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use common::*;

#[tokio::test]
async fn ephemeral_containers_read_the_target_root_under_ptrace_rules() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let debug = |name: &str, sc: serde_json::Value| {
        json!({"spec": {"ephemeralContainers": [{
        "name": name, "image": "kubesim.local/scanner:1.0", "command": ["sleep", "infinity"],
        "targetContainerName": "app", "securityContext": sc}]}})
    };
    // Same uid as the distroless target (65532): allowed.
    pods.patch_ephemeral_containers(
        "distroless-app",
        &PatchParams::default(),
        &Patch::Strategic(debug(
            "same-uid",
            json!({"runAsUser": 65532, "runAsGroup": 65532}),
        )),
    )
    .await
    .expect("add ephemeral container");
    wait_ephemeral_running(&pods, "distroless-app", "same-uid").await;
    let (o, _, st) = run(
        &pods,
        "distroless-app",
        "same-uid",
        &["cat", "/proc/1/root/app/config.json"],
        None,
    )
    .await;
    assert_eq!(exit_code(&st), 0);
    assert_eq!(String::from_utf8_lossy(&o), "{\"listen\": \":8080\"}\n");
    let (o, _, _) = run(
        &pods,
        "distroless-app",
        "same-uid",
        &["cat", "/etc/os-release"],
        None,
    )
    .await;
    assert!(
        String::from_utf8_lossy(&o).contains("kubesim-scanner"),
        "debug container has its own root"
    );

    // Root without CAP_SYS_PTRACE against a non-root target: EACCES.
    pods.patch_ephemeral_containers(
        "distroless-app",
        &PatchParams::default(),
        &Patch::Strategic(debug("root-noptrace", json!({"runAsUser": 0}))),
    )
    .await
    .expect("add second");
    wait_ephemeral_running(&pods, "distroless-app", "root-noptrace").await;
    let (_, e, st) = run(
        &pods,
        "distroless-app",
        "root-noptrace",
        &["cat", "/proc/1/root/app/config.json"],
        None,
    )
    .await;
    assert_ne!(exit_code(&st), 0);
    assert!(
        String::from_utf8_lossy(&e).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&e)
    );

    // Root with SYS_PTRACE: allowed.
    pods.patch_ephemeral_containers(
        "distroless-app",
        &PatchParams::default(),
        &Patch::Strategic(debug(
            "root-ptrace",
            json!({"runAsUser": 0, "capabilities": {"add": ["SYS_PTRACE"]}}),
        )),
    )
    .await
    .expect("add third");
    wait_ephemeral_running(&pods, "distroless-app", "root-ptrace").await;
    let (o, _, _) = run(
        &pods,
        "distroless-app",
        "root-ptrace",
        &["ls", "/proc/1/root/app"],
        None,
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&o), "config.json\nsleep\n");

    // Removing or changing an ephemeral container is refused.
    let e = api_error(
        pods.patch_ephemeral_containers(
            "distroless-app",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ephemeralContainers": []}})),
        )
        .await,
    );
    assert_eq!(e.code, 422);
    assert!(e.message.starts_with("Pod \"distroless-app\" is invalid: [spec.ephemeralContainers: Forbidden: existing ephemeral containers \"same-uid\" may not be removed\n, "), "{}", e.message);
    assert_eq!(e.details.expect("details").causes.len(), 3);
    let e = api_error(pods.patch_ephemeral_containers("distroless-app", &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"ephemeralContainers": [{"name": "x", "image": "kubesim.local/scanner:1.0", "targetContainerName": "nope"}]}}))).await);
    assert!(
        e.message
            .contains("spec.ephemeralContainers[3].targetContainerName: Not found: \"nope\""),
        "{}",
        e.message
    );
    // Container names are DNS-1123 labels, ephemeral ones included.
    let e = api_error(pods.patch_ephemeral_containers("distroless-app", &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"ephemeralContainers": [{"name": "Debug_1", "image": "kubesim.local/scanner:1.0"}]}}))).await);
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains(
            "spec.ephemeralContainers[3].name: Invalid value: \"Debug_1\": a lowercase RFC 1123 label"
        ),
        "{}",
        e.message
    );

    // PUT (replace) appends when the existing entries are kept unchanged.
    let mut whole = pods
        .get_ephemeral_containers("distroless-app")
        .await
        .expect("get subresource");
    let mut list = whole
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.clone())
        .expect("list");
    list.push(
        serde_json::from_value(
            json!({"name": "via-put", "image": "kubesim.local/scanner:1.0",
        "command": ["sleep", "infinity"], "targetContainerName": "app"}),
        )
        .expect("container"),
    );
    whole.spec.as_mut().expect("spec").ephemeral_containers = Some(list);
    // Other changes in the submitted pod are dropped, as upstream does.
    whole.metadata.labels = Some([("dropped".to_string(), "yes".to_string())].into());
    let replaced = pods
        .replace_ephemeral_containers("distroless-app", &PostParams::default(), &whole)
        .await
        .expect("replace");
    assert_eq!(
        replaced
            .spec
            .and_then(|s| s.ephemeral_containers)
            .map(|l| l.len()),
        Some(4)
    );
    assert!(
        replaced
            .metadata
            .labels
            .is_none_or(|l| !l.contains_key("dropped"))
    );
    wait_ephemeral_running(&pods, "distroless-app", "via-put").await;

    // A finished ephemeral container is reported terminated.
    pods.patch_ephemeral_containers("distroless-app", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"ephemeralContainers": [{
        "name": "oneshot", "image": "kubesim.local/scanner:1.0", "command": ["sh", "-c", "exit 4"], "targetContainerName": "app"}]}})))
        .await
        .expect("add oneshot");
    let code = eventually("oneshot terminated", Duration::from_secs(20), || async {
        let p = pods.get("distroless-app").await.ok()?;
        p.status?
            .ephemeral_container_statuses?
            .into_iter()
            .find(|s| s.name == "oneshot")?
            .state?
            .terminated
            .map(|t| t.exit_code)
    })
    .await;
    assert_eq!(code, 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn shared_process_namespace_lets_the_sidecar_read_the_app_root() {
    let sim = demo().await;
    let c = admin(&sim).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "apps");
    let (o, _, _) = run(
        &pods,
        "app-with-scanner",
        "scanner",
        &["ps", "-o", "pid,user,args"],
        None,
    )
    .await;
    let text = String::from_utf8_lossy(&o).into_owned();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0][..2],
        ["1", "root"],
        "PID 1 is the pod sandbox:\n{text}"
    );
    assert!(
        rows.iter().any(|r| r[1] == "1000" && r[2] == "sleep"),
        "app process visible:\n{text}"
    );
    let (o, e, st) = run(&pods, "app-with-scanner", "scanner",
        &["sh", "-c", "cat /proc/$(ps -o pid,user,args | awk '$2 == 1000 && $3 == \"sleep\" {print $1}')/root/etc/app/config.yaml"], None).await;
    assert_eq!(exit_code(&st), 0, "{}", String::from_utf8_lossy(&e));
    assert!(String::from_utf8_lossy(&o).contains("db_password: hunter2"));
    // The hardened container cannot read the sidecar's root (different uid, no caps).
    let (o, _, _) = run(&pods, "app-with-scanner", "app", &["sh", "-c", "ls /proc/$(ps -o pid,user,args | awk '$2 == \"root\" && $3 == \"sleep\" {p = $1} END {print p}')/root/ 2>&1 || true"], None).await;
    assert!(
        String::from_utf8_lossy(&o).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&o)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_image_pulled_by_digest_runs_the_fixture_image() {
    let sim = demo().await;
    let pods: Api<Pod> = Api::namespaced(admin(&sim).await, "apps");
    let sidecar = pods.get("app-with-scanner").await.expect("pod");
    let image_id = sidecar
        .status
        .and_then(|s| s.container_statuses)
        .into_iter()
        .flatten()
        .find(|s| s.name == "scanner")
        .map(|s| s.image_id)
        .expect("scanner status");
    assert!(
        image_id.starts_with("kubesim.local/scanner@sha256:"),
        "{image_id}"
    );
    // By digest, with or without a tag, as containerd pulls it.
    let tagged = image_id.replace("scanner@", "scanner:1.0@");
    for (name, image) in [
        ("by-digest", image_id.as_str()),
        ("tag-and-digest", &tagged),
    ] {
        let patch = json!({"spec": {"ephemeralContainers": [{"name": name, "image": image,
            "command": ["sleep", "infinity"], "targetContainerName": "app"}]}});
        pods.patch_ephemeral_containers(
            "distroless-app",
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
        .expect("added");
        wait_ephemeral_running(&pods, "distroless-app", name).await;
    }
    let statuses = pods
        .get("distroless-app")
        .await
        .expect("pod")
        .status
        .and_then(|s| s.ephemeral_container_statuses)
        .expect("statuses");
    assert!(
        statuses.iter().all(|s| s.image_id == image_id),
        "{statuses:?}"
    );
    // A digest no image has is not pulled.
    let unknown = format!("kubesim.local/scanner@sha256:{}", "0".repeat(64));
    let patch = json!({"spec": {"ephemeralContainers": [{"name": "unknown", "image": unknown,
        "command": ["sleep", "infinity"], "targetContainerName": "app"}]}});
    pods.patch_ephemeral_containers(
        "distroless-app",
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .expect("accepted by the API");
    let reason = eventually("ErrImagePull", Duration::from_secs(20), || async {
        pods.get("distroless-app")
            .await
            .ok()?
            .status?
            .ephemeral_container_statuses?
            .into_iter()
            .find(|s| s.name == "unknown")?
            .state?
            .waiting?
            .reason
            .filter(|r| r != "ContainerCreating")
    })
    .await;
    assert_eq!(reason, "ErrImagePull");
    sim.shutdown().await;
}
