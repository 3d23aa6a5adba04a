//! What the supervisor needs to know about a child: how to start it, how to
//! tell it is ready, when it stops relative to the others, and which other
//! child it must be restarted with.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::child_process::ChildProcess;

/// How to start and stop one child.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Its name in logs and messages (`worker-0`); also its log file name.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments; the same on every restart, so ports and paths stay.
    pub args: Vec<String>,
    /// When it counts as started.
    pub ready: Readiness,
    /// How long the first start may take to become ready.
    pub ready_within: Duration,
    /// Children stop in ascending `stop_stage`, one stage at a time.
    pub stop_stage: u8,
    /// How long it may take to stop after SIGTERM before it is killed.
    pub stop_grace: Duration,
    /// The child this one depends on at start-up (by name): when that one
    /// is restarted, this one is restarted too once it is ready again (and
    /// renewed, see [`crate::supervisor::Renewal`]), because what it read at
    /// start-up changed (kubesim's CA and admin token, the reviewer's and
    /// the operator's tokens).
    pub restarts_with: Option<String>,
}

/// When a child counts as started.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// As soon as it runs: nothing waits for it.
    Running,
    /// It accepts TCP connections on this loopback port.
    Listening(u16),
    /// It printed a line starting with this prefix (kubesim prints its URL
    /// once it has written its kubeconfig and its pods have settled).
    Announced(&'static str),
}

impl Readiness {
    /// Whether `run` is ready now (a quick, blocking check).
    pub fn holds(&self, run: &ChildProcess) -> bool {
        match self {
            Readiness::Running => true,
            Readiness::Listening(port) => TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], *port)),
                Duration::from_millis(100),
            )
            .is_ok(),
            Readiness::Announced(prefix) => {
                run.output().lines().any(|line| line.starts_with(prefix))
            }
        }
    }
}
