//! The `kubesim` binary end to end: readiness line, kubeconfig, audit log,
//! fault injection, fixture errors, and clean exit on SIGTERM, SIGINT and
//! parent death (no container process left behind). Requires root.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

/// Host pids of every process whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("procfs").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) && f.first() != Some(&"Z") {
            out.push(pid);
        }
    }
    out
}

fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

struct Running {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed assertion must not leave kubesim running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn(extra: &[&str]) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    // setpriv ties kubesim's life to this test process, even on a panic.
    let mut child = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--"])
        .arg(env!("CARGO_BIN_EXE_kubesim"))
        .arg("--kubeconfig-out")
        .arg(dir.path().join("admin.kubeconfig"))
        .arg("--audit-log")
        .arg(dir.path().join("audit.jsonl"))
        .args(extra)
        // The work dir lands in the test's temp dir, so even the SIGKILL
        // test leaves no files behind.
        .env("TMPDIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kubesim starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    let url = line.trim().to_string();
    assert!(
        url.starts_with("https://127.0.0.1:"),
        "ready line is the URL: {url:?}"
    );
    Running { child, url, dir }
}

/// The container processes of a running kubesim (its watchdog's group).
fn containers(pid: u32) -> Vec<u32> {
    // The watchdog is the child that leads its own process group.
    let pgid = children_of(pid)
        .into_iter()
        .find(|c| group_members(*c as i32).contains(c))
        .expect("watchdog process") as i32;
    group_members(pgid)
}

fn wait_gone(pids: &[u32], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                    s.rsplit_once(')')
                        .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
                })
            })
            .collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left behind: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn no_kubesim_mounts() {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains("/kubesim-"),
        "mounts left behind:\n{mounts}"
    );
}

async fn check_serving(r: &Running) {
    let kc = std::fs::read_to_string(r.dir.path().join("admin.kubeconfig")).expect("kubeconfig");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(r.dir.path().join("admin.kubeconfig"))
            .expect("meta")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(kc.contains(&r.url));
    let pods: Api<Pod> = Api::namespaced(common::client_from(&kc).await, "apps");
    let p = pods.get("web-hardened").await.expect("served");
    assert_eq!(p.status.and_then(|s| s.phase).as_deref(), Some("Running"));
}

#[tokio::test]
async fn sigterm_and_sigint_leave_no_process_or_mount() {
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let mut r = spawn(&[]);
        check_serving(&r).await;
        let pid = r.child.id();
        let procs = containers(pid);
        assert!(procs.len() >= 6, "containers plus watchdog: {procs:?}");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).expect("signal");
        let status = tokio::task::spawn_blocking(move || r.child.wait().map(|s| (s, r)))
            .await
            .expect("join")
            .expect("wait")
            .0;
        assert!(status.success(), "{signal}: clean exit, got {status}");
        wait_gone(&procs, Duration::from_secs(10));
        no_kubesim_mounts();
    }
}

#[tokio::test]
async fn parent_death_kills_every_container() {
    let mut r = spawn(&[]);
    check_serving(&r).await;
    let procs = containers(r.child.id());
    r.child.kill().expect("SIGKILL kubesim");
    let _ = r.child.wait();
    wait_gone(&procs, Duration::from_secs(10));
    no_kubesim_mounts();
}

#[tokio::test]
async fn audit_log_records_each_request_and_faults_fire() {
    let faults = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(
        faults.path(),
        "- {path: /api/v1/namespaces/apps/serviceaccounts*, rate: 1.0, fault: {kind: tooManyRequests, retryAfterSeconds: 7}}\n\
         - {path: /api/v1/namespaces/default/serviceaccounts*, rate: 1.0, fault: {kind: internalError}}\n\
         - {path: /api/v1/namespaces/kube-system/*, rate: 1.0, fault: {kind: dropConnection}}\n\
         - {path: /api/v1/namespaces/kube-public/*, rate: 1.0, fault: {kind: latency, millis: 300}}\n",
    )
    .expect("write faults");
    let mut r = spawn(&["--faults", faults.path().to_str().expect("utf8 path")]);
    check_serving(&r).await;
    let kc = std::fs::read_to_string(r.dir.path().join("admin.kubeconfig")).expect("kubeconfig");
    let c = common::client_without_retries(&kc).await;
    let sas =
        |ns: &str| Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(c.clone(), ns);
    let e = common::api_error(sas("apps").get("default").await);
    assert_eq!((e.code, e.reason.as_str()), (429, "TooManyRequests"));
    let e = common::api_error(sas("default").get("default").await);
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    match sas("kube-system").get("default").await {
        Err(kube::Error::Api(s)) => panic!("expected a transport error, got {s:?}"),
        Err(_) => {}
        Ok(_) => panic!("expected the connection to drop"),
    }
    let t = Instant::now();
    sas("kube-public")
        .get("default")
        .await
        .expect("slow but served");
    // Not a timing assertion on performance: the fault must have been applied.
    assert!(t.elapsed() >= Duration::from_millis(300));

    let audit = std::fs::read_to_string(r.dir.path().join("audit.jsonl")).expect("audit log");
    let lines: Vec<kubesim::audit::AuditRecord> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect();
    let get = lines
        .iter()
        .find(|l| l.resource == "pods" && l.name == "web-hardened")
        .expect("pod get audited");
    assert_eq!(
        (
            get.user.as_str(),
            get.verb.as_str(),
            get.namespace.as_str(),
            get.code
        ),
        ("kubesim-admin", "get", "apps", 200)
    );
    assert!(get.groups.contains(&"system:masters".to_string()));
    assert!(
        lines
            .iter()
            .any(|l| l.code == 429 && l.namespace == "apps" && l.resource == "serviceaccounts")
    );
    assert!(
        !audit.contains(
            &kc.lines()
                .find(|l| l.contains("token:"))
                .expect("token line")
                .replace("    token: ", "")
        )
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(r.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = tokio::task::spawn_blocking(move || r.child.wait().map(|s| (s, r))).await;
}

#[test]
fn bad_fixture_fails_with_every_problem_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("fixture.yaml");
    std::fs::write(&f, "pods:\n- {kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: ghost:1}]}}\nobjects:\n- {kind: ConfigMap}\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .arg("--fixture")
        .arg(&f)
        .arg("--kubeconfig-out")
        .arg(dir.path().join("kc"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("uses image \"ghost:1\", which the fixture does not declare"),
        "{err}"
    );
    assert!(
        err.contains("objects[0]: unsupported kind \"ConfigMap\""),
        "{err}"
    );
    assert!(!Path::new(&dir.path().join("kc")).exists());
}
