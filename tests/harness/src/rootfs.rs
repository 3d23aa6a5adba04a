//! The scan engine's ground-truth fixtures, shared by the engine's own tests
//! and the CLI's SAF tests: building the fixture trees from their committed
//! recipes, running one as a live container, and reading the committed table
//! of expected control statuses.
//!
//! Everything here needs root (ownership, setuid bits, device nodes,
//! namespaces); CI runs the tests as root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{repo_root, run, system_tool, text};

/// The scenario columns of the expected-status table, in order.
pub const SCENARIOS: [&str; 4] = ["weak", "hardened", "weak-live", "hardened-live"];

/// The profiles shipped under `profiles/`.
pub const SHIPPED_PROFILES: [&str; 2] = ["container-baseline", "container-hardening"];

/// (profile, control id) -> scenario -> expected status key.
pub type StatusTable = BTreeMap<(String, String), BTreeMap<String, String>>;

/// Builds a fixture tree from `services/scan-engine/fixtures/<recipe>` into `dest`.
///
/// # Panics
/// When the recipe fails (for instance when not run as root).
pub fn build_fixture(recipe: &str, dest: &Path) {
    let out = run(Command::new("/bin/sh")
        .arg(
            repo_root()
                .join("services/scan-engine/fixtures")
                .join(recipe),
        )
        .arg(dest)
        .env("BUSYBOX", system_tool("busybox")));
    assert!(
        out.status.success(),
        "fixture recipe {recipe} failed (it needs root): {}",
        text(&out.stderr)
    );
}

/// Reads `services/scan-engine/fixtures/expected-status.tsv`.
///
/// # Panics
/// When the table is missing or malformed: the tests that use it must fail.
pub fn expected_status_table() -> StatusTable {
    let path = repo_root().join("services/scan-engine/fixtures/expected-status.tsv");
    let body = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = body
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty());
    let (_, header) = lines.next().expect("expected-status.tsv has a header");
    let header: Vec<&str> = header.split('\t').collect();
    assert_eq!(
        header,
        [&["profile", "control"][..], &SCENARIOS[..]].concat(),
        "expected-status.tsv columns"
    );
    let mut table = StatusTable::new();
    for (n, line) in lines {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            f.len(),
            2 + SCENARIOS.len(),
            "expected-status.tsv:{}: wrong number of columns",
            n + 1
        );
        let row = SCENARIOS
            .iter()
            .zip(&f[2..])
            .map(|(s, v)| (s.to_string(), v.to_string()))
            .collect();
        let dup = table.insert((f[0].to_string(), f[1].to_string()), row);
        assert!(
            dup.is_none(),
            "expected-status.tsv:{}: duplicate row",
            n + 1
        );
    }
    table
}

/// A "running container": a process tree in fresh PID, mount and network
/// namespaces, chrooted into a fixture rootfs with its own `/proc`. Killed on drop.
pub struct LiveContainer {
    unshare: Child,
    /// Host pid of the container's pid 1.
    pub pid: u32,
}

impl LiveContainer {
    /// Starts `argv` as pid 1 inside `root`, with a clean environment, and
    /// returns once pid 1 runs `sleep` and every program named in `ready` is
    /// visible in the container's `/proc` (so scans never race start-up).
    ///
    /// # Panics
    /// When the container exits early or is not ready within 10 s.
    pub fn start(root: &Path, argv: &[&str], ready: &[&str]) -> Self {
        let mut unshare = Command::new(system_tool("unshare"))
            .args([
                "--pid",
                "--mount",
                "--net",
                "--fork",
                "--kill-child",
                "--mount-proc",
            ])
            .arg(format!("--root={}", root.display()))
            .args(argv)
            // The scanner's own environment (CI tokens, ...) must not leak into
            // the environment check's verdict.
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .spawn()
            .expect("start unshare");
        let deadline = Instant::now() + Duration::from_secs(10);
        let upid = unshare.id();
        loop {
            let children = std::fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))
                .unwrap_or_default();
            if let Some(pid) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
            {
                // Ready once pid 1 has exec'd its final program, /proc is
                // mounted inside and the companions have exec'd theirs.
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let proc_ready = Path::new(&format!("/proc/{pid}/root/proc/1/status")).exists();
                if proc_ready && cmd.starts_with(b"sleep") && running(pid, ready) {
                    return Self { unshare, pid };
                }
            }
            if let Ok(Some(status)) = unshare.try_wait() {
                panic!("container exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "container did not start within 10 s (waiting for {ready:?})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The weak-live scenario of the expected-status table: a root main
    /// process with a secret in its environment, a netcat listener and the
    /// weak fixture's stand-ins for an SSH daemon, a legacy network daemon,
    /// cron, a package manager, a tracer and a container runtime daemon.
    pub fn weak_live(weak_root: &Path) -> Self {
        Self::start(
            weak_root,
            &[
                "/bin/sh",
                "-c",
                "nc -l -p 4444 & /usr/sbin/sshd -D & /usr/sbin/in.telnetd & \
                 /usr/sbin/crond -f & /usr/bin/apt-get install -y curl & \
                 /usr/bin/strace -p 1 & /usr/bin/dockerd & \
                 exec env SECRET_TOKEN=s3cr3t APP_MODE=prod sleep 600",
            ],
            &[
                "nc",
                "/usr/sbin/sshd",
                "/usr/sbin/in.telnetd",
                "/usr/sbin/crond",
                "/usr/bin/apt-get",
                "/usr/bin/strace",
                "/usr/bin/dockerd",
            ],
        )
    }

    /// The hardened-live scenario: an unprivileged main process (uid 1000)
    /// with a clean environment.
    pub fn hardened_live(hardened_root: &Path) -> Self {
        Self::start(
            hardened_root,
            &["/bin/su", "app", "-s", "/bin/sh", "-c", "exec sleep 600"],
            &[],
        )
    }

    /// The container's root as the host sees it.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }
}

/// Whether every program in `names` appears as an argument (by path or bare
/// name) of some process in the container whose pid 1 is host pid `pid`.
fn running(pid: u32, names: &[&str]) -> bool {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/root/proc")) else {
        return false;
    };
    let args: Vec<Vec<u8>> = dir
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .flat_map(|c| c.split(|b| *b == 0).map(<[u8]>::to_vec).collect::<Vec<_>>())
        .collect();
    names.iter().all(|n| {
        args.iter()
            .any(|a| a.as_slice() == n.as_bytes() || a.ends_with(format!("/{n}").as_bytes()))
    })
}

impl Drop for LiveContainer {
    fn drop(&mut self) {
        // --kill-child: killing unshare takes the container's pid 1 with it.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}
