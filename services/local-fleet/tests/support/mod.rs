//! Helpers shared by the local fleet's end-to-end tests: `scanfleet-dev`
//! as a child with its output captured, its children found through /proc,
//! and the fleet's own APIs (intake, collector, NATS, kubesim's audit log)
//! asked what happened.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use scanfleet_contracts::v1::intake_client::IntakeClient;
use scanfleet_contracts::v1::results_client::ResultsClient;
use scanfleet_contracts::v1::target_selector::Selector;
use scanfleet_contracts::v1::{
    LabelSelectorTarget, ListResultsRequest, ProfileRef, ScanResult, SubmitRequest, TargetSelector,
    profile_ref::Pin,
};
use scanfleet_edge_access::EdgeClient;

/// The line `scanfleet-dev` prints once the demo is done and the fleet
/// keeps running.
pub const RUNNING: &str = "Press Ctrl-C to stop everything";

/// `scanfleet-dev`, after checking the programs it runs were built.
pub fn dev() -> Command {
    let exe = Path::new(env!("CARGO_BIN_EXE_scanfleet-dev"));
    for sibling in [
        "kubesim",
        "scanfleet-intake",
        "scanfleet-worker",
        "scanfleet-collector",
        "scanfleet",
    ] {
        assert!(
            exe.with_file_name(sibling).is_file(),
            "{sibling} is not built next to scanfleet-dev; run the workspace tests (cargo nextest run --workspace) or cargo build --bins"
        );
    }
    Command::new(exe)
}

/// Polls `check` every 50 ms until it holds; fails the test after `within`.
pub fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Live (not zombie) processes whose command line mentions `dir`, as
/// (pid, command line); every child of `scanfleet-dev` does.
pub fn processes_mentioning(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        if state.starts_with('Z') || stat.is_empty() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(&needle) {
            found.push((pid, text));
        }
    }
    found
}

/// Fails unless every process of the fleet in `dir` is gone within 10 s.
pub fn assert_nothing_left(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_mentioning(dir);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left running:\n{}",
            left.iter()
                .map(|(pid, cmd)| format!("{pid}: {cmd}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `signal` to `pid`.
pub fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), signal).unwrap();
}

type Lines = Arc<Mutex<Vec<String>>>;

fn capture(stream: impl std::io::Read + Send + 'static, into: Lines, tag: &'static str) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            eprintln!("[dev {tag}] {line}");
            into.lock().unwrap().push(line);
        }
    });
}

/// A running `scanfleet-dev` (not `--once`) and where its fleet listens.
pub struct Fleet {
    child: Child,
    dir: PathBuf,
    stdout: Lines,
    stderr: Lines,
    /// NATS client URL.
    pub nats: String,
    /// Intake's gRPC URL.
    pub intake: String,
    /// The collector's gRPC URL.
    pub collector: String,
    /// The fleet's operator (its CA bundle and token from the data dir).
    pub caller: EdgeClient,
}

impl Fleet {
    /// Starts the fleet in `dir` and waits until its demo is done.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        let mut child = dev()
            .arg("--data-dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, stderr) = (Lines::default(), Lines::default());
        capture(child.stdout.take().unwrap(), stdout.clone(), "out");
        capture(child.stderr.take().unwrap(), stderr.clone(), "err");
        let mut fleet = Self {
            child,
            dir: dir.to_path_buf(),
            stdout,
            stderr,
            nats: String::new(),
            intake: String::new(),
            collector: String::new(),
            caller: EdgeClient::default(),
        };
        wait_until("the fleet to run", Duration::from_secs(240), || {
            assert!(
                fleet.child.try_wait().unwrap().is_none(),
                "scanfleet-dev exited early:\n{}",
                fleet.stderr_text()
            );
            fleet.stdout_text().contains(RUNNING)
        });
        let err = fleet.stderr_text();
        let after = |prefix: &str| {
            let line = err
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} line:\n{err}"));
            line[prefix.len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        };
        fleet.nats = after("✓ nats-server (JetStream, TLS, one identity per service) at ");
        fleet.intake = after("✓ intake gRPC ");
        fleet.collector = after("✓ collector (SQLite) gRPC ");
        fleet.caller = fleet.read_caller();
        fleet
    }

    /// The operator as the data dir names it now (CA bundle and token
    /// file, the files the printed commands read).
    pub fn read_caller(&self) -> EdgeClient {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap();
        EdgeClient {
            ca_pem: Some(read("pki/ca.pem")),
            token: Some(read("operator.token").into()),
            ..Default::default()
        }
    }

    /// `scanfleet-dev`'s own pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything printed on stdout so far.
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// Everything printed on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The pid of the one child whose command line holds `marker`.
    pub fn child_pid(&self, marker: &str) -> Option<u32> {
        let mine = self.child.id();
        let found: Vec<u32> = processes_mentioning(&self.dir)
            .into_iter()
            .filter(|(pid, cmd)| *pid != mine && cmd.contains(marker))
            .map(|(pid, _)| pid)
            .collect();
        assert!(found.len() <= 1, "more than one {marker}: {found:?}");
        found.first().copied()
    }

    /// SIGKILLs the child holding `marker` and waits until the supervisor
    /// has started a new one; returns the new pid.
    pub fn kill_and_wait_for_restart(&self, marker: &str) -> u32 {
        let old = self
            .child_pid(marker)
            .unwrap_or_else(|| panic!("no {marker} running"));
        signal(old, Signal::SIGKILL);
        let mut new = None;
        wait_until(
            &format!("{marker} to be restarted"),
            Duration::from_secs(30),
            || {
                new = self.child_pid(marker).filter(|&pid| pid != old);
                new.is_some()
            },
        );
        new.unwrap()
    }

    /// Whether `scanfleet-dev` still runs.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Its exit status, once it exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Sends `sig` to `scanfleet-dev` and waits for it to exit.
    pub fn stop(&mut self, sig: Signal, within: Duration) -> ExitStatus {
        signal(self.child.id(), sig);
        let mut status = None;
        wait_until("scanfleet-dev to exit", within, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // A failed test: SIGKILL; --pdeathsig stops the children.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asks intake to scan every container in namespace `apps`; the scan ids.
pub async fn submit_apps(caller: &EdgeClient, intake: &str) -> Vec<String> {
    let (channel, auth) = caller.connect(intake).await.unwrap();
    let mut client = IntakeClient::with_interceptor(channel, auth);
    let response = client
        .submit(SubmitRequest {
            target: Some(TargetSelector {
                cluster: String::new(),
                selector: Some(Selector::LabelSelector(LabelSelectorTarget {
                    namespace: "apps".into(),
                    ..Default::default()
                })),
            }),
            profile: Some(ProfileRef {
                name: "container-baseline".into(),
                pin: Some(Pin::Version("1.0.0".into())),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!response.scans.is_empty());
    response.scans.into_iter().map(|s| s.scan_id).collect()
}

/// The stored results among `ids`; `None` while the collector does not answer.
pub async fn stored(
    caller: &EdgeClient,
    collector: &str,
    ids: &BTreeSet<String>,
) -> Option<BTreeMap<String, ScanResult>> {
    let (channel, auth) = caller.connect(collector).await.ok()?;
    let mut client = ResultsClient::with_interceptor(channel, auth);
    let mut found = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list(ListResultsRequest {
                page_size: 500,
                page_token,
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner();
        for r in page.results {
            if ids.contains(&r.scan_id) {
                found.insert(r.scan_id.clone(), r);
            }
        }
        if page.next_page_token.is_empty() {
            return Some(found);
        }
        page_token = page.next_page_token;
    }
}

/// Polls until every one of `ids` is stored (or `within` passes) and
/// returns the stored results, however many.
pub async fn wait_stored(
    caller: &EdgeClient,
    collector: &str,
    ids: &BTreeSet<String>,
    within: Duration,
) -> BTreeMap<String, ScanResult> {
    let deadline = Instant::now() + within;
    let mut found = BTreeMap::new();
    loop {
        if let Some(now) = stored(caller, collector, ids).await {
            found = now;
        }
        if found.len() == ids.len() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Messages in a JetStream stream, looked up as the fleet's admin identity
/// (no service identity may look at every stream).
pub async fn stream_messages(fleet: &Fleet, stream: &str) -> u64 {
    let bus = fleet.dir.join("bus");
    let settings = scanfleet_bus::NatsSettings {
        urls: vec![fleet.nats.clone()],
        auth: scanfleet_bus::NatsAuth::NKey {
            seed: std::fs::read_to_string(bus.join("admin.nk")).unwrap(),
        },
        ca: Some(bus.join("ca.pem")),
        client_cert: None,
        connect_attempts: 3,
    };
    let client = scanfleet_bus::connect(&settings, scanfleet_bus::BusIdentity::Admin)
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.unwrap();
    stream.info().await.unwrap().state.messages
}

/// kubesim's audit log in `dir`, one JSON value per request.
pub fn audit_log(dir: &Path) -> Vec<serde_json::Value> {
    let path = dir.join("kubesim-audit.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The per-scan ServiceAccounts in kubesim's audit log.
#[derive(Debug, Default)]
pub struct Identities {
    /// Successful creates (the name is in the request body, not the log).
    pub created: usize,
    /// Successful deletes.
    pub deleted: usize,
    /// Accounts that got a token (so were in use) and were never deleted.
    pub never_deleted: BTreeSet<String>,
    /// API calls made *as* a per-scan identity (verb resource/subresource).
    pub calls_as_scan_identity: Vec<String>,
}

/// Reads the per-scan identities' lifecycle out of the audit log.
pub fn identities(audit: &[serde_json::Value]) -> Identities {
    let mut ids = Identities::default();
    let mut deleted = BTreeSet::new();
    for r in audit {
        let ok = r["code"].as_u64().is_some_and(|c| (200..300).contains(&c));
        let field = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        if field("user").starts_with("system:serviceaccount:apps:scanfleet-scan-") {
            ids.calls_as_scan_identity.push(format!(
                "{} {}/{}",
                field("verb"),
                field("resource"),
                field("subresource")
            ));
        }
        // The fleet's own identities (scanfleet-system/reviewer and
        // operator, made once at start) are not scan identities.
        if field("resource") != "serviceaccounts" || !ok || field("namespace") == "scanfleet-system"
        {
            continue;
        }
        match (field("verb").as_str(), field("subresource").as_str()) {
            ("create", "") => ids.created += 1,
            ("create", "token") => {
                ids.never_deleted.insert(field("name"));
            }
            ("delete", "") => {
                ids.deleted += 1;
                deleted.insert(field("name"));
            }
            _ => {}
        }
    }
    ids.never_deleted.retain(|name| !deleted.contains(name));
    ids
}
