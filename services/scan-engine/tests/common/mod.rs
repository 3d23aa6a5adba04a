//! Shared test support: the ground-truth fixture and the two targets over it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use scanfleet_scan_engine::adapters::local_root::LocalRoot;
use scanfleet_scan_engine::adapters::process_executor::ProcessExecutor;
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::profile::Profile;
use scanfleet_scan_engine::shell::ShellTarget;
use scanfleet_test_harness::{repo_root, run, system_tool, text};

/// Builds the weak fixture rootfs from its committed recipe into a temp dir.
pub fn weak_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("rootfs");
    let recipe = repo_root().join("services/scan-engine/fixtures/rootfs-weak.sh");
    let out = run(Command::new("/bin/sh")
        .arg(&recipe)
        .arg(&root)
        .env("BUSYBOX", system_tool("busybox")));
    assert!(
        out.status.success(),
        "fixture recipe failed (it needs root): {}",
        text(&out.stderr)
    );
    dir
}

/// The rootfs inside a fixture temp dir.
pub fn rootfs(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("rootfs")
}

/// Local-root target over `root`.
pub fn local(root: &Path, limits: GatherLimits) -> LocalRoot {
    LocalRoot::new(root, limits).expect("root exists")
}

/// Shell target that runs the script through `chroot ROOT /bin/sh` (CI runs as root).
pub fn chrooted(root: &Path, limits: GatherLimits) -> ShellTarget<ProcessExecutor> {
    let exec = ProcessExecutor::new(
        system_tool("chroot").display().to_string(),
        vec![root.display().to_string(), "/bin/sh".into()],
        format!("chroot:{}", root.display()),
    );
    ShellTarget::new(exec, "", limits)
}

/// Shell target that runs the host's busybox sh with a root prefix (the
/// `/proc/1/root` approach).
pub fn prefixed(root: &Path, limits: GatherLimits) -> ShellTarget<ProcessExecutor> {
    let exec = ProcessExecutor::new(
        system_tool("busybox").display().to_string(),
        vec!["sh".into()],
        "busybox-prefix".to_string(),
    );
    ShellTarget::new(exec, root.display().to_string(), limits)
}

/// Loads a shipped profile.
pub fn shipped(name: &str) -> Profile {
    load_profile_dir(
        &repo_root().join("profiles").join(name),
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("shipped profile {name} must load: {e}"))
}

/// A "running container": a process tree in fresh PID, mount and network
/// namespaces, chrooted into a fixture rootfs with its own `/proc`. Killed on drop.
pub struct LiveContainer {
    unshare: std::process::Child,
    /// Host pid of the container's pid 1.
    pub pid: u32,
}

impl LiveContainer {
    /// Starts `argv` as pid 1 inside `root`, with a clean environment, and
    /// returns once pid 1 runs `sleep` and every program named in `ready` is
    /// visible in the container's `/proc` (so scans never race start-up).
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
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start unshare");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let uid = unshare.id();
        loop {
            let children = std::fs::read_to_string(format!("/proc/{uid}/task/{uid}/children"))
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
                std::time::Instant::now() < deadline,
                "container did not start within 10 s (waiting for {ready:?})"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The container's root as the host sees it.
    pub fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }

    /// A shell target entering the container like `kubectl exec` would.
    pub fn exec_target(&self, limits: GatherLimits) -> ShellTarget<ProcessExecutor> {
        let exec = ProcessExecutor::new(
            system_tool("nsenter").display().to_string(),
            vec![
                "--target".into(),
                self.pid.to_string(),
                "--pid".into(),
                "--mount".into(),
                "--root".into(),
                "--wd".into(),
                "/bin/sh".into(),
            ],
            format!("nsenter:{}", self.pid),
        );
        ShellTarget::new(exec, "", limits)
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
