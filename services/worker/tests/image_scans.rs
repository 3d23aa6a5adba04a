//! A pushed image scanned end to end, every part real: a Distribution
//! registry (TLS, htpasswd) notifies intake's webhook route over HTTPS;
//! intake queues an image scan for the pushed digest (no pod runs it;
//! the route's policy is `image`) on the secured bus; a worker process
//! claims it, pulls the image by digest with the login from its
//! `dockerconfigjson` file, unpacks it, scans the root and publishes a
//! signed statement whose subject is the image digest; the collector
//! verifies and stores it.

mod support;

use std::time::Duration;

use base64::Engine as _;
use scanfleet_contracts::v1::{GetResultRequest, ScanOutcome, ScanResult};
use scanfleet_test_harness::registry::{Notifications, TestRegistry, build_layout};
use scanfleet_test_harness::write_private;
use scanfleet_trust::statement::TargetKind;
use scanfleet_trust::{Envelope, IN_TOTO_PAYLOAD_TYPE, ScanStatement, SigningKey, TrustedKeys};
use support::{Fleet, Worker};

const SECRET: &str = "registry-notify-77c3";
const USER: &str = "ci";
const PASSWORD: &str = "pull-pw-3f9a";

/// Intake's webhook route for Distribution: shared-secret header, image
/// scans for digests no pod runs.
fn intake_flags(dir: &std::path::Path) -> Vec<String> {
    let secret = dir.join("dist.secret");
    write_private(&secret, format!("{SECRET}\n").as_bytes());
    let config = dir.join("intake.yml");
    std::fs::write(
        &config,
        format!(
            "webhooks:\n  profile: {{name: container-baseline, version: 1.0.0}}\n  endpoints:\n    distribution: {{secret_file: {secret:?}, header: X-Registry-Secret, unmatched: image}}\n"
        ),
    )
    .unwrap();
    // Pushes are matched against running pods first: intake lists them
    // with the fleet's admin kubeconfig (written before intake starts).
    let kubeconfig = dir.join("worker.kubeconfig");
    vec![
        "--http-listen".into(),
        "127.0.0.1:0".into(),
        "--config".into(),
        config.display().to_string(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
    ]
}

/// A `dockerconfigjson` document with one login for `registry`.
fn docker_config(registry: &str, user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!(r#"{{"auths": {{"{registry}": {{"auth": "{auth}"}}}}}}"#)
}

/// The statement as signed, verified again here with the worker's key.
fn verified_statement(fleet: &Fleet, r: &ScanResult) -> ScanStatement {
    let pem = std::fs::read_to_string(&fleet.key_path).unwrap();
    let mut trusted = TrustedKeys::new();
    trusted.insert(
        SigningKey::from_pkcs8_pem(&pem)
            .unwrap()
            .public_key()
            .clone(),
    );
    let envelope = Envelope::from_json(&r.envelope).unwrap();
    trusted
        .verify(&envelope, Some(IN_TOTO_PAYLOAD_TYPE))
        .expect("the stored envelope verifies with the worker's key");
    ScanStatement::from_payload(&envelope.payload).unwrap()
}

/// A registry that notifies the fleet's intake of pushes, and a worker
/// that pulls from it with a login from its `dockerconfigjson` file.
fn notifying_registry_and_worker(fleet: &Fleet) -> (TestRegistry, Worker) {
    let http = fleet.intake.http.expect("intake serves webhooks");
    let registry = TestRegistry::start(
        USER,
        PASSWORD,
        Some(Notifications {
            url: format!("https://{http}/v1/webhooks/distribution"),
            header: ("X-Registry-Secret".into(), SECRET.into()),
            ca_file: Some(fleet.creds.pki.ca_file()),
        }),
    );
    let auth_file = fleet.dir.path().join("registry-auth.json");
    write_private(
        &auth_file,
        docker_config(&format!("https://{}", registry.host()), USER, PASSWORD).as_bytes(),
    );
    let ca = registry.pki.ca.display().to_string();
    let auth = auth_file.display().to_string();
    let worker = fleet.worker_with(
        "w1",
        2,
        &["--registry-ca", &ca, "--registry-auth-file", &auth],
    );
    (registry, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pushed_image_is_scanned_by_digest_and_its_signed_result_stored() {
    let fleet = Fleet::start_with(intake_flags).await;
    let (registry, worker) = notifying_registry_and_worker(&fleet);

    // An image with a second uid-0 account, which container-baseline's
    // cb-accounts-01 fails, and a world-writable file.
    let layout = fleet.dir.path().join("layout");
    build_layout(
        &layout,
        "v1",
        &[
            (
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n",
                0o644,
            ),
            ("etc/group", b"root:x:0:\n", 0o644),
            ("srv/drop.txt", b"anyone\n", 0o666),
        ],
    );
    let digest = registry.push(&layout, "v1", "shop/web");

    let results = fleet
        .wait_results(1, Duration::from_secs(90), &[&worker])
        .await;
    assert_eq!(results.len(), 1, "one result: {results:?}");
    let r = &results[0];
    assert_eq!(r.outcome(), ScanOutcome::Completed, "{}", r.failure);
    let target = r.target.as_ref().unwrap();
    assert_eq!(target.image.as_ref().unwrap().digest, digest);
    assert!(target.namespace.is_empty() && target.pod.is_empty());
    assert!(r.summary.as_ref().unwrap().failed >= 1, "{:?}", r.summary);

    let statement = verified_statement(&fleet, r);
    assert_eq!(
        statement.subject[0].digest["sha256"],
        digest.strip_prefix("sha256:").unwrap(),
        "the statement is about the pushed digest"
    );
    assert_eq!(
        statement.subject[0].name,
        format!("{}/shop/web", registry.host())
    );
    assert_eq!(statement.predicate.target.kind, TargetKind::Image);
    assert_eq!(statement.predicate.scan_id, r.scan_id);

    // The stored report is the one the statement binds, and it says why.
    let report = fleet
        .creds
        .results(fleet.collector.listening.grpc)
        .await
        .get_report(GetResultRequest {
            scan_id: r.scan_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.sha256, r.report_sha256);
    let hdf: serde_json::Value = serde_json::from_slice(&report.body).unwrap();
    let control = hdf["profiles"][0]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "cb-accounts-01")
        .expect("cb-accounts-01 in the report");
    let results = control["results"].as_array().unwrap();
    assert!(
        results.iter().any(|x| x["status"] == "failed"
            && x["message"].as_str().unwrap_or_default().contains("toor")),
        "cb-accounts-01 fails naming toor: {control}"
    );
    assert_eq!(
        worker
            .metric("scanfleet_worker_results_total{status=\"completed\"}")
            .await,
        1.0
    );
    assert_eq!(fleet.messages("SCAN_RESULTS").await, 1);
}

/// A `kubernetes.io/dockerconfigjson` Secret `apps/registry-pull` with one
/// login for `registry`, replacing any earlier one.
async fn put_pull_secret(fleet: &Fleet, registry: &str, password: &str) {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    let api = kube::Api::<Secret>::namespaced(fleet.admin.client.clone(), "apps");
    let _ = api
        .delete("registry-pull", &kube::api::DeleteParams::default())
        .await;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("registry-pull".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(
            [(
                ".dockerconfigjson".to_owned(),
                ByteString(docker_config(registry, USER, password).into_bytes()),
            )]
            .into(),
        ),
        ..Default::default()
    };
    api.create(&kube::api::PostParams::default(), &secret)
        .await
        .expect("create the pull secret");
}

/// Logins from a Kubernetes pull Secret, read at each scan: a wrong
/// password fails the scan once, permanently, with a signed failed result
/// naming the registry and the step (no retry, no redelivery); after the
/// Secret is fixed, the next pushed image is scanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pull_secret_is_read_per_scan_and_a_wrong_login_fails_once() {
    let fleet = Fleet::start_with(intake_flags).await;
    let http = fleet.intake.http.expect("intake serves webhooks");
    let registry = TestRegistry::start(
        USER,
        PASSWORD,
        Some(Notifications {
            url: format!("https://{http}/v1/webhooks/distribution"),
            header: ("X-Registry-Secret".into(), SECRET.into()),
            ca_file: Some(fleet.creds.pki.ca_file()),
        }),
    );
    put_pull_secret(&fleet, &registry.host(), "not-the-password").await;
    let ca = registry.pki.ca.display().to_string();
    let worker = fleet.worker_with(
        "w1",
        2,
        &[
            "--registry-ca",
            &ca,
            "--registry-pull-secret",
            "apps/registry-pull",
        ],
    );

    let first = fleet.dir.path().join("first");
    build_layout(&first, "v1", &[("etc/app.conf", b"x=1\n", 0o644)]);
    let refused = registry.push(&first, "v1", "shop/web");
    let results = fleet
        .wait_results(1, Duration::from_secs(90), &[&worker])
        .await;
    let r = &results[0];
    assert_eq!(r.outcome(), ScanOutcome::Failed);
    let host = registry.host();
    assert!(
        r.failure.contains(&format!(
            "registry {host} refused the credentials for user \"{USER}\""
        )),
        "{}",
        r.failure
    );
    assert!(
        r.failure.contains("while "),
        "names the step: {}",
        r.failure
    );
    assert!(!r.failure.contains("not-the-password"), "{}", r.failure);
    let statement = verified_statement(&fleet, r);
    assert_eq!(statement.predicate.target.kind, TargetKind::Image);
    assert_eq!(
        statement.subject[0].digest["sha256"],
        refused.strip_prefix("sha256:").unwrap()
    );
    support::eventually(
        "the refused intent is dead-lettered",
        Duration::from_secs(20),
        || async { fleet.messages("SCAN_DLQ").await == 1 },
    )
    .await;
    for (series, want) in [
        ("scanfleet_worker_results_total{status=\"failed\"}", 1.0),
        ("scanfleet_worker_results_total{status=\"retried\"}", 0.0),
        ("scanfleet_worker_redeliveries_total", 0.0),
    ] {
        assert_eq!(worker.metric(series).await, want, "{series}");
    }

    // The Secret is fixed; the worker reads it again for the next scan.
    put_pull_secret(&fleet, &host, PASSWORD).await;
    let second = fleet.dir.path().join("second");
    build_layout(&second, "v1", &[("etc/app.conf", b"x=2\n", 0o644)]);
    let digest = registry.push(&second, "v1", "shop/api");
    let results = fleet
        .wait_results(2, Duration::from_secs(90), &[&worker])
        .await;
    let r = results
        .iter()
        .find(|r| r.target.as_ref().unwrap().image.as_ref().unwrap().digest == digest)
        .expect("a result for the second image");
    assert_eq!(r.outcome(), ScanOutcome::Completed, "{}", r.failure);
}

/// The image of the drift test: busybox with the applets its pods use,
/// root the only account, nothing world-writable.
fn busybox_root(root: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for dir in ["bin", "dev", "etc", "proc", "root", "srv"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let mode = |path: &str, mode: u32| {
        std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    mode("root", 0o700);
    std::fs::copy(kubesim::image::BUSYBOX, root.join("bin/busybox")).unwrap();
    mode("bin/busybox", 0o755);
    for applet in ["sh", "sleep", "chmod", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    mode("etc/passwd", 0o644);
    mode("etc/group", 0o644);
}

/// The manifest digest an OCI layout holds for `tag`.
fn layout_digest(layout: &std::path::Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str())
        .expect("the layout holds the tag")
        .to_owned()
}

/// A pod in `apps` whose container `app` runs `script` in the image.
async fn start_pod(fleet: &Fleet, name: &str, script: &str) {
    use k8s_openapi::api::core::v1::Pod;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"containers": [{"name": "app", "image": DRIFT_IMAGE,
                                 "command": ["/bin/sh", "-c", script]}]}
    }))
    .unwrap();
    kube::Api::<Pod>::namespaced(fleet.admin.client.clone(), "apps")
        .create(&kube::api::PostParams::default(), &pod)
        .await
        .expect("create the pod");
}

/// The reference kubesim runs the pushed image under.
const DRIFT_IMAGE: &str = "registry.test/shop/web:v1";

/// What the drifting pod does after start: a uid-0 account (cb-accounts-01
/// and, sharing root's uid, cb-accounts-05) and a world-writable file
/// (cb-files-04).
const DRIFTING: &str = "echo 'toor:x:0:0::/root:/sbin/nologin' >> /etc/passwd && \
     echo anyone > /srv/drop.txt && chmod 666 /srv/drop.txt && exec sleep 3600";

/// The drifted control ids of `scan_id`, once the collector recorded them.
async fn drifted(fleet: &Fleet, scan_id: &str) -> scanfleet_contracts::v1::DriftReport {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = fleet
            .creds
            .results(fleet.collector.listening.grpc)
            .await
            .get_drift(GetResultRequest {
                scan_id: scan_id.into(),
            })
            .await;
        match got {
            Ok(d) => return d.into_inner(),
            Err(e) if e.code() == tonic::Code::NotFound && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no drift report for {scan_id}: {e:?}"),
        }
    }
}

/// Drift end to end: a pushed image is scanned (real notification,
/// signed result verified, stored); then two pods of that digest run on
/// kubesim, one unchanged and one that adds a uid-0 account and a
/// world-writable file after start. Each container scan's drift report
/// names the image scan, and the changing pod's drifts by exactly the
/// controls its changes fail (beyond what any running container differs
/// from its unpacked image by, which the unchanged pod shows).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_container_that_changed_itself_drifts_from_its_image_scan() {
    let scratch = tempfile::tempdir().unwrap();
    let layout = scratch.path().join("layout");
    scanfleet_test_harness::registry::build_layout_with(&layout, "v1", busybox_root);
    let digest = layout_digest(&layout, "v1");
    let unpacked = scratch.path().join("unpacked");
    busybox_root(&unpacked);
    let image: kubesim::image::ImageSpec = serde_json::from_value(serde_json::json!({
        "name": DRIFT_IMAGE, "rootDir": unpacked, "digest": digest,
        "entrypoint": ["sleep"], "cmd": ["3600"],
    }))
    .unwrap();
    let fleet = Fleet::start_with_images(intake_flags, vec![image]).await;
    let (registry, worker) = notifying_registry_and_worker(&fleet);

    let pushed = registry.push(&layout, "v1", "shop/web");
    assert_eq!(pushed, digest, "the registry holds the layout's manifest");
    let results = fleet
        .wait_results(1, Duration::from_secs(90), &[&worker])
        .await;
    let image_scan = &results[0];
    assert_eq!(
        image_scan.outcome(),
        ScanOutcome::Completed,
        "{}",
        image_scan.failure
    );
    let statement = verified_statement(&fleet, image_scan);
    assert_eq!(statement.predicate.target.kind, TargetKind::Image);
    assert_eq!(statement.predicate.target.image_digest, digest);

    start_pod(&fleet, "steady", "exec sleep 3600").await;
    start_pod(&fleet, "drifting", DRIFTING).await;
    // The changes are made before the scan looks (read on the host
    // through the container's root).
    support::eventually(
        "the drifting pod changed its files",
        Duration::from_secs(30),
        || async {
            let Some(pid) = fleet.sim.container_pid("apps", "drifting", "app") else {
                return false;
            };
            let root = std::path::PathBuf::from(format!("/proc/{pid}/root"));
            let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
            use std::os::unix::fs::PermissionsExt as _;
            let drop = std::fs::metadata(root.join("srv/drop.txt")).map(|m| m.permissions().mode());
            passwd.contains("toor:x:0:0") && drop.is_ok_and(|m| m & 0o777 == 0o666)
        },
    )
    .await;
    support::eventually("the steady pod runs", Duration::from_secs(30), || async {
        fleet.sim.container_pid("apps", "steady", "app").is_some()
    })
    .await;
    let steady_scan = fleet.submit("k8s://apps/steady/app").await;
    let drifting_scan = fleet.submit("k8s://apps/drifting/app").await;
    let results = fleet
        .wait_results(3, Duration::from_secs(90), &[&worker])
        .await;
    for r in &results {
        assert_eq!(
            r.outcome(),
            ScanOutcome::Completed,
            "{}: {}",
            r.scan_id,
            r.failure
        );
        assert_eq!(
            r.target.as_ref().unwrap().image.as_ref().unwrap().digest,
            digest
        );
    }

    let scans = [steady_scan.as_str(), drifting_scan.as_str()];
    drift_reports_name_exactly_the_changes(&fleet, image_scan, &results, scans).await;
}

/// The collector's drift reports of the steady and the drifting scan, and
/// the summaries their signed statements carry.
async fn drift_reports_name_exactly_the_changes(
    fleet: &Fleet,
    image_scan: &ScanResult,
    results: &[ScanResult],
    [steady_scan, drifting_scan]: [&str; 2],
) {
    let statement = verified_statement(fleet, image_scan);
    let steady = drifted(fleet, steady_scan).await;
    let drifting = drifted(fleet, drifting_scan).await;
    for d in [&steady, &drifting] {
        assert_eq!(d.image_scan_id, image_scan.scan_id);
        assert_eq!(
            (d.profile_name.as_str(), d.profile_version.as_str()),
            ("container-baseline", "1.0.0")
        );
    }
    let ids = |d: &scanfleet_contracts::v1::DriftReport| -> std::collections::BTreeSet<String> {
        d.controls.iter().map(|c| c.id.clone()).collect()
    };
    // Runtime controls the image scan skipped are not drift, so a pod
    // that changed nothing drifts by nothing.
    assert!(ids(&steady).is_empty(), "{steady:?}");
    assert_eq!(
        ids(&drifting).into_iter().collect::<Vec<_>>(),
        ["cb-accounts-01", "cb-accounts-05", "cb-files-04"],
        "{drifting:?}"
    );
    // The worker scanned the image itself, so each container scan's
    // signed statement carries the same drift the collector recorded.
    for (scan_id, report) in [(steady_scan, &steady), (drifting_scan, &drifting)] {
        let r = results.iter().find(|r| r.scan_id == scan_id).unwrap();
        let signed = verified_statement(fleet, r).predicate.drift;
        let signed = signed.expect("the statement carries drift");
        assert_eq!(signed.image_scan_id, image_scan.scan_id);
        assert_eq!(signed.controls, ids(report).into_iter().collect::<Vec<_>>());
    }
    assert_eq!(
        statement.predicate.drift, None,
        "an image scan claims no drift"
    );
    for control in &drifting.controls {
        let (image, container) = (
            control.image.as_ref().unwrap(),
            control.container.as_ref().unwrap(),
        );
        let expect = match control.id.as_str() {
            "cb-accounts-01" => "toor",
            // The uid root and toor now share.
            "cb-accounts-05" => "offending: 0",
            "cb-files-04" => "/srv/drop.txt",
            _ => continue,
        };
        assert_eq!(
            (image.status.as_str(), container.status.as_str()),
            ("passed", "failed"),
            "{control:?}"
        );
        assert!(container.message.contains(expect), "{control:?}");
    }
}
