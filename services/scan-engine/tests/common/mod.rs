//! Shared test support: the ground-truth fixture and the two targets over it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use scanfleet_scan_engine::adapters::local_root::LocalRoot;
use scanfleet_scan_engine::adapters::process_executor::ProcessExecutor;
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::profile::Profile;
use scanfleet_scan_engine::shell::ShellTarget;
pub use scanfleet_test_harness::rootfs::LiveContainer;
use scanfleet_test_harness::rootfs::build_fixture;
use scanfleet_test_harness::{repo_root, system_tool};

/// Builds the weak fixture rootfs from its committed recipe into a temp dir.
pub fn weak_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    build_fixture("rootfs-weak.sh", &dir.path().join("rootfs"));
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

/// A shell target entering a live container like `kubectl exec` would.
pub fn exec_target(c: &LiveContainer, limits: GatherLimits) -> ShellTarget<ProcessExecutor> {
    let exec = ProcessExecutor::new(
        system_tool("nsenter").display().to_string(),
        vec![
            "--target".into(),
            c.pid.to_string(),
            "--pid".into(),
            "--mount".into(),
            "--root".into(),
            "--wd".into(),
            "/bin/sh".into(),
        ],
        format!("nsenter:{}", c.pid),
    );
    ShellTarget::new(exec, "", limits)
}
