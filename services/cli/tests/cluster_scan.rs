//! `scanfleet scan k8s://NS/POD/CONTAINER` end to end against kubesim: HDF,
//! threshold exit codes, a signed statement an independent DSSE verifier
//! accepts, refusal of insecure kubeconfigs, cleanup after SIGKILL plus one
//! sweeper pass, and no credential in the logs or on disk.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::ListParams;
use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_session::scan_identity::EXPIRES_AT_ANNOTATION;
use scanfleet_scan_session::sweep_expired;
use scanfleet_test_harness::repo_root;
use support::{assert_fails_with, assert_success, generate_keys, oracle, run, scanfleet, text};

const SELECTOR: &str = "app.kubernetes.io/managed-by=scanfleet";

struct Cluster {
    sim: kubesim::Kubesim,
    admin: ClusterAccess,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn cluster() -> Cluster {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
    let admin = ClusterAccess::from_kubeconfig(&sim.admin_kubeconfig(), "admin")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("admin.kubeconfig");
    write_0600(&kubeconfig, &sim.admin_kubeconfig());
    Cluster {
        sim,
        admin,
        dir,
        kubeconfig,
    }
}

fn write_0600(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn profile() -> PathBuf {
    repo_root().join("profiles/container-baseline")
}

/// The CLI as a child of the async test (kubesim keeps serving meanwhile).
fn cli() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_scanfleet"));
    cmd.kill_on_drop(true);
    cmd
}

async fn output(cmd: &mut tokio::process::Command) -> Output {
    tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the CLI finishes within two minutes")
        .expect("the CLI starts")
}

async fn scanfleet_objects(admin: &ClusterAccess) -> (usize, usize, usize) {
    let lp = ListParams::default().labels(SELECTOR);
    let c = admin.client.clone();
    (
        Api::<ServiceAccount>::all(c.clone())
            .list(&lp)
            .await
            .unwrap()
            .items
            .len(),
        Api::<Role>::all(c.clone())
            .list(&lp)
            .await
            .unwrap()
            .items
            .len(),
        Api::<RoleBinding>::all(c)
            .list(&lp)
            .await
            .unwrap()
            .items
            .len(),
    )
}

/// Polls until no scanfleet object remains (owner garbage collection of the
/// Role and RoleBinding is asynchronous).
async fn assert_nothing_left(admin: &ClusterAccess) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = scanfleet_objects(admin).await;
        if left == (0, 0, 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind (ServiceAccounts, Roles, RoleBindings): {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn image_digest(admin: &ClusterAccess, pod: &str) -> String {
    let pod: Pod = Api::namespaced(admin.client.clone(), "apps")
        .get(pod)
        .await
        .unwrap();
    let id = pod.status.unwrap().container_statuses.unwrap()[0]
        .image_id
        .clone();
    id.rsplit('@').next().unwrap().to_owned()
}

/// What the signed exec scan left for the later steps to check.
struct SignedScan {
    hdf_bytes: Vec<u8>,
    envelope: PathBuf,
    public: PathBuf,
    key_id: String,
}

/// An exec scan with a threshold it fails, HDF to a file, the statement
/// signed: exit 1, the failed check named, progress on stderr.
async fn signed_exec_scan_failing_its_threshold(c: &Cluster) -> SignedScan {
    let d = c.dir.path();
    let (key, public, key_id) = generate_keys(d, "k");
    let strict = d.join("strict.yml");
    std::fs::write(&strict, "failed:\n  total:\n    max: 0\n").unwrap();
    let (hdf_path, envelope) = (d.join("results.json"), d.join("envelope.json"));

    let out = output(
        cli()
            .args(["scan", "k8s://apps/web-misconfigured/web", "--kubeconfig"])
            .arg(&c.kubeconfig)
            .arg("--profile")
            .arg(profile())
            .args(["--approach", "exec", "--threshold"])
            .arg(&strict)
            .arg("--out")
            .arg(&hdf_path)
            .arg("--sign-key")
            .arg(&key)
            .arg("--envelope-out")
            .arg(&envelope),
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "threshold fails: {stderr}");
    assert!(stderr.contains("failed.total.max"), "{stderr}");
    assert!(
        stderr.contains("scanning k8s://apps/web-misconfigured/web")
            && stderr.contains("via exec as scanfleet-scan-"),
        "progress on stderr: {stderr}"
    );
    assert!(out.stdout.is_empty(), "HDF went to --out");
    let hdf_bytes = std::fs::read(&hdf_path).unwrap();
    let hdf: serde_json::Value = serde_json::from_slice(&hdf_bytes).unwrap();
    assert_eq!(
        hdf["profiles"][0]["name"], "container-baseline",
        "HDF of the profile"
    );
    SignedScan {
        hdf_bytes,
        envelope,
        public,
        key_id,
    }
}

/// The envelope verifies in securesystemslib and in the CLI.
fn assert_the_envelope_verifies(s: &SignedScan) {
    let verified = run(oracle()
        .arg("verify")
        .arg(&s.public)
        .arg(&s.key_id)
        .arg(&s.envelope));
    assert_success(&verified);
    assert_eq!(
        text(&verified.stdout).trim(),
        format!("verified {}", s.key_id)
    );
    let verified = run(scanfleet()
        .args([
            "envelope",
            "verify",
            "--payload-type",
            "application/vnd.in-toto+json",
            "--key",
        ])
        .arg(&s.public)
        .arg(&s.envelope));
    assert_success(&verified);
}

/// The statement is about the digest the pod runs and binds the HDF.
async fn assert_the_statement_binds_the_digest_and_the_report(c: &Cluster, s: &SignedScan) {
    let wire: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&s.envelope).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(wire["payload"].as_str().unwrap())
        .unwrap();
    let statement = scanfleet_trust::ScanStatement::from_payload(&payload).unwrap();
    let digest = image_digest(&c.admin, "web-misconfigured").await;
    assert_eq!(
        format!("sha256:{}", statement.subject[0].digest["sha256"]),
        digest
    );
    let p = &statement.predicate;
    assert_eq!(
        (
            p.target.namespace.as_str(),
            p.target.pod.as_str(),
            p.target.container.as_str(),
            p.approach.as_str()
        ),
        ("apps", "web-misconfigured", "web", "exec")
    );
    assert_eq!(p.target.image_digest, digest);
    let report = p.report.as_ref().unwrap();
    assert_eq!(report.size, s.hdf_bytes.len() as u64);
    assert_eq!(
        report.sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&s.hdf_bytes))
    );
    let verdict = p.threshold.as_ref().unwrap();
    assert!(!verdict.passed && !verdict.failures.is_empty());
    assert!(p.summary.as_ref().unwrap().failed > 0);
}

/// A distroless target through a debug container, HDF on stdout, a
/// threshold that holds: exit 0.
async fn assert_a_debug_scan_passes_a_lenient_threshold(c: &Cluster) {
    let lenient = c.dir.path().join("lenient.yml");
    std::fs::write(&lenient, "compliance:\n  min: 0\n").unwrap();
    let out = output(
        cli()
            .args(["scan", "k8s://apps/distroless-app/app", "--kubeconfig"])
            .arg(&c.kubeconfig)
            .arg("--profile")
            .arg(profile())
            .arg("--threshold")
            .arg(&lenient),
    )
    .await;
    assert_success(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("via debug"), "auto chose debug: {stderr}");
    let hdf: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(hdf["profiles"][0]["controls"].as_array().unwrap().len() > 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_k8s_scan_writes_hdf_gates_it_and_signs_a_statement_about_the_digest() {
    let c = cluster().await;
    let signed = signed_exec_scan_failing_its_threshold(&c).await;
    assert_the_envelope_verifies(&signed);
    assert_the_statement_binds_the_digest_and_the_report(&c, &signed).await;
    assert_a_debug_scan_passes_a_lenient_threshold(&c).await;

    // A scan that cannot run (no such pod) is exit 2 with the reason.
    let out = output(
        cli()
            .args(["scan", "k8s://apps/no-such-pod/app", "--kubeconfig"])
            .arg(&c.kubeconfig)
            .arg("--profile")
            .arg(profile()),
    )
    .await;
    assert_fails_with(&out, 2, "pod apps/no-such-pod not found");
    assert_nothing_left(&c.admin).await;
    c.sim.shutdown().await;
}

#[test]
fn insecure_kubeconfigs_and_bad_targets_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = |name: &str, cluster: &str| {
        let path = dir.path().join(name);
        write_0600(
            &path,
            &format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
                 clusters:\n- name: k\n  cluster:\n{cluster}\
                 users:\n- name: u\n  user:\n    token: not-a-real-token\n\
                 contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
            ),
        );
        path
    };
    let insecure = kubeconfig(
        "insecure.yaml",
        "    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\n",
    );
    let plain = kubeconfig("plain.yaml", "    server: http://127.0.0.1:1\n");
    let scan = |kc: &Path, target: &str| {
        run(scanfleet()
            .args(["scan", target, "--kubeconfig"])
            .arg(kc)
            .arg("--profile")
            .arg(profile()))
    };
    let out = scan(&insecure, "k8s://apps/web/web");
    assert_fails_with(&out, 2, "insecure-skip-tls-verify");
    let out = scan(&plain, "k8s://apps/web/web");
    assert_fails_with(&out, 2, "https://");
    let out = scan(&plain, "k8s://apps/web");
    assert_fails_with(
        &out,
        2,
        "target \"k8s://apps/web\": must have the form k8s://NAMESPACE/POD/CONTAINER (found 2 segments)",
    );
    // Cluster names follow the one rule too.
    let out = run(scanfleet()
        .args([
            "scan",
            "k8s://apps/web/web",
            "--cluster-name",
            "Prod_EU",
            "--profile",
        ])
        .arg(profile()));
    assert_fails_with(&out, 2, "invalid value 'Prod_EU' for '--cluster-name");
    // --root and a target are mutually exclusive; k8s flags need a target.
    let out = run(scanfleet()
        .args(["scan", "k8s://apps/web/web", "--root", "/", "--profile"])
        .arg(profile()));
    assert_fails_with(&out, 2, "cannot be used with");
    let out = run(scanfleet()
        .args(["scan", "--root", "/", "--kubeconfig"])
        .arg(&plain)
        .arg("--profile")
        .arg(profile()));
    assert_fails_with(&out, 2, "--kubeconfig applies only to a k8s:// target");
    // Every input problem at once.
    let out = run(scanfleet().args([
        "scan",
        "k8s://apps/web/web",
        "--profile",
        "/nonexistent-profile",
        "--input",
        "novalue",
    ]));
    assert_fails_with(&out, 2, "--kubeconfig FILE is required");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--input novalue: expected NAME=VALUE"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_killed_with_sigkill_leaves_nothing_after_one_sweeper_pass() {
    let c = cluster().await;
    // The exec stalls, so the kill lands while the identity is in use.
    c.sim.set_faults(vec![kubesim::faults::FaultRule {
        path: "*/exec".into(),
        rate: 1.0,
        fault: kubesim::faults::Fault::Latency { millis: 20_000 },
    }]);
    let mut child = cli()
        .args(["scan", "k8s://apps/web-misconfigured/web", "--kubeconfig"])
        .arg(&c.kubeconfig)
        .arg("--profile")
        .arg(profile())
        .args(["--approach", "exec"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Mid-scan: the identity is complete (account, Role, binding, token).
    let deadline = Instant::now() + Duration::from_secs(30);
    while scanfleet_objects(&c.admin).await != (1, 1, 1) || c.sim.issued_tokens().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the scan never got its identity: {:?}",
            scanfleet_objects(&c.admin).await
        );
        assert!(child.try_wait().unwrap().is_none(), "the CLI exited early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap(); // SIGKILL: no destructor, no handler runs
    let status = child.wait().await.unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");

    let accounts: Api<ServiceAccount> = Api::namespaced(c.admin.client.clone(), "apps");
    let left = accounts
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .unwrap()
        .items;
    assert_eq!(left.len(), 1, "the killed scan left its identity");
    let expires_at: jiff::Timestamp = left[0].metadata.annotations.as_ref().unwrap()
        [EXPIRES_AT_ANNOTATION]
        .parse()
        .unwrap();
    // Not yet expired: a sweep now must leave a live scan alone.
    assert_eq!(
        sweep_expired(&c.admin, jiff::Timestamp::now())
            .await
            .unwrap(),
        0
    );
    let after_expiry = expires_at
        .checked_add(jiff::SignedDuration::from_secs(1))
        .unwrap();
    assert_eq!(sweep_expired(&c.admin, after_expiry).await.unwrap(), 1);
    assert_nothing_left(&c.admin).await;
    c.sim.set_faults(Vec::new());
    c.sim.shutdown().await;
}

/// Files under `root` changed since `since`, small enough to be a config.
fn recent_files(root: &Path, since: SystemTime, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            recent_files(&entry.path(), since, out);
        } else if meta.is_file()
            && meta.len() <= 4 << 20
            && meta.modified().is_ok_and(|m| m >= since)
        {
            out.push(entry.path());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_kubeconfig_reaches_the_logs_or_the_disk() {
    let c = cluster().await;
    let since = SystemTime::now() - Duration::from_secs(1);
    let work = tempfile::tempdir().unwrap();
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut logs = String::new();
    for (target, approach) in [
        ("k8s://apps/web-misconfigured/web", "exec"),
        ("k8s://apps/distroless-app/app", "debug"),
        ("k8s://apps/app-with-scanner/app", "sidecar"),
    ] {
        let out = output(
            cli()
                .current_dir(work.path())
                .env("RUST_LOG", "debug")
                .env("TMPDIR", &tmp)
                .args(["scan", target, "--kubeconfig"])
                .arg(&c.kubeconfig)
                .arg("--profile")
                .arg(profile())
                .args(["--approach", approach, "--out", "results.json"]),
        )
        .await;
        assert_success(&out);
        logs.push_str(&text(&out.stdout));
        logs.push_str(&text(&out.stderr));
    }
    assert!(
        logs.contains("DEBUG") && logs.contains("scan identity ready"),
        "debug logging was on: {}",
        &logs[..logs.len().min(2000)]
    );
    let tokens = c.sim.issued_tokens();
    assert_eq!(tokens.len(), 3, "one token per scan");
    for token in &tokens {
        assert!(token.len() > 100, "a real JWT");
        assert!(!logs.contains(token.as_str()), "a scan token was logged");
        // A fragment long enough to be unique, in case of line wrapping.
        assert!(
            !logs.contains(&token[token.len() - 40..]),
            "part of a scan token was logged"
        );
    }
    assert!(
        !logs.contains(&c.sim.admin_token),
        "the admin token was logged"
    );

    // No file written during the test holds a token, in the working
    // directory, the CLI's TMPDIR, /tmp or ~/.kube. The only file with the
    // admin token is the kubeconfig this test wrote for the CLI.
    let mut files = Vec::new();
    for root in [
        work.path().to_path_buf(),
        PathBuf::from("/tmp"),
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".kube"))
            .unwrap_or_default(),
    ] {
        recent_files(&root, since, &mut files);
    }
    assert!(
        files.iter().any(|f| f.ends_with("results.json")),
        "the walk saw the CLI's own output: {files:?}"
    );
    for file in &files {
        let Ok(bytes) = std::fs::read(file) else {
            continue; // removed meanwhile (another test's temp file)
        };
        let content = String::from_utf8_lossy(&bytes);
        for token in &tokens {
            assert!(
                !content.contains(token.as_str()),
                "{} holds a scan token",
                file.display()
            );
        }
        if file != &c.kubeconfig {
            assert!(
                !content.contains(&c.sim.admin_token),
                "{} holds the admin token",
                file.display()
            );
        }
    }
    let mode = std::fs::metadata(&c.kubeconfig)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_nothing_left(&c.admin).await;
    c.sim.shutdown().await;
}
