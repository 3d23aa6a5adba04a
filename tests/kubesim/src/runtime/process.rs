//! Host-process helpers: kill by pid, find a launcher's child, wait (bounded)
//! for a launcher to fork the process that becomes the container.

use std::path::Path;
use std::time::Duration;

/// SIGKILLs `pid` (never pid 0 or 1).
pub(super) fn kill(pid: u32) {
    if pid > 1 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Waits (bounded) for `launcher` to fork its first child.
pub(super) async fn wait_child(launcher: u32) -> Option<u32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(c) = children(launcher).first() {
            return Some(*c);
        }
        if tokio::time::Instant::now() > deadline
            || !Path::new(&format!("/proc/{launcher}")).exists()
        {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
