//! The scan engine's one round trip, carried by a Kubernetes exec session
//! that authenticates as the per-scan identity.
//!
//! The script goes in on stdin (never on the command line, where processes
//! in the target could read it and learn the framing boundary); stdout,
//! stderr and the exit status come back on their own channels, so nothing is
//! ever parsed out of a mixed stream. stdout is capped while it is read, so a
//! hostile container cannot make the worker buffer without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::AttachParams;
use scanfleet_scan_engine::shell::{ExecError, ExecOutput, ScriptExecutor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The shell reads the whole script before running any of it. A shell that
/// runs a script as it reads it stops reading stdin while its output is
/// blocked, and the exec stream carries both directions over one
/// connection: with a script and an output larger than the buffers in
/// between, client and server then wait on each other forever (seen under
/// load). Only this bootstrap is on the command line; the script itself,
/// with its framing boundary, still arrives on stdin.
const READ_ALL_THEN_RUN: &str =
    "s=''; while IFS= read -r l; do s=\"$s$l\n\"; done; s=\"$s$l\"; eval \"$s\"";

/// stderr is diagnostics only; this much is kept.
const MAX_STDERR: usize = 64 << 10;

/// How an exec session ended when the command never started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecStart {
    /// The command ran and reported an exit status.
    Ran(Option<i32>),
    /// The runtime could not start the command (e.g. no `/bin/sh` in a
    /// distroless image); the message is the runtime's.
    CommandMissing(String),
}

/// Runs scripts in one container through `pods/exec`.
#[derive(Clone)]
pub struct KubeExec {
    client: kube::Client,
    namespace: String,
    pod: String,
    container: String,
    command: Vec<String>,
    deadline: tokio::time::Instant,
    handle: tokio::runtime::Handle,
    label: String,
    preamble: Option<String>,
    /// Exec round trips made (for the "exactly one" promise and metrics).
    pub round_trips: Arc<AtomicU64>,
    /// Set when the runtime could not start the shell, so `auto` can tell
    /// "distroless" from any other exec failure.
    pub shell_missing: Arc<std::sync::Mutex<Option<String>>>,
}

impl std::fmt::Debug for KubeExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeExec")
            .field("namespace", &self.namespace)
            .field("pod", &self.pod)
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

impl KubeExec {
    /// `client` must be the per-scan identity's; `deadline` bounds the whole
    /// session (connect, script, output).
    pub fn new(
        client: kube::Client,
        namespace: &str,
        pod: &str,
        container: &str,
        deadline: tokio::time::Instant,
    ) -> Self {
        Self {
            client,
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
            command: vec!["/bin/sh".into(), "-c".into(), READ_ALL_THEN_RUN.into()],
            deadline,
            handle: tokio::runtime::Handle::current(),
            label: format!("k8s://{namespace}/{pod}/{container}"),
            preamble: None,
            round_trips: Arc::new(AtomicU64::new(0)),
            shell_missing: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Shell text run before every script (the debug container's
    /// end-on-exit trap).
    pub fn with_preamble(mut self, preamble: String) -> Self {
        self.preamble = Some(preamble);
        self
    }

    /// Names the scanned container in HDF when the exec goes elsewhere (a
    /// debug or sidecar container reading the target through `/proc`).
    pub fn labelled(mut self, label: String) -> Self {
        self.label = label;
        self
    }

    /// Runs `script` and returns its output, or how it failed to start.
    ///
    /// # Errors
    /// [`ExecError`] for transport failures, the output cap and the deadline.
    pub async fn run(
        &self,
        script: &[u8],
        max_stdout: u64,
    ) -> Result<(ExecOutput, ExecStart), ExecError> {
        let remaining = self
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(remaining, self.run_unbounded(script, max_stdout)).await {
            Ok(r) => r,
            Err(_) => Err(ExecError::Failed(format!(
                "exec into {} did not finish before the scan deadline",
                self.label
            ))),
        }
    }

    async fn run_unbounded(
        &self,
        script: &[u8],
        max_stdout: u64,
    ) -> Result<(ExecOutput, ExecStart), ExecError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = AttachParams::default()
            .container(self.container.clone())
            .stdin(true)
            .stdout(true)
            .stderr(true);
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut process = pods
            .exec(&self.pod, self.command.clone(), &params)
            .await
            .map_err(|e| ExecError::Failed(format!("exec into {}: {e}", self.label)))?;
        tracing::debug!(container = %self.container, "exec session open");
        let (Some(mut stdin), Some(mut stdout), Some(mut stderr), Some(status)) = (
            process.stdin(),
            process.stdout(),
            process.stderr(),
            process.take_status(),
        ) else {
            return Err(ExecError::Failed("exec session without streams".into()));
        };
        let mut script = script.to_vec();
        if let Some(p) = &self.preamble {
            script.splice(0..0, p.bytes());
        }
        let writer = async move {
            // A script that exits early closes stdin; that is not an error.
            let _ = stdin.write_all(&script).await;
            let _ = stdin.shutdown().await;
            drop(stdin);
        };
        let err_reader = async move {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let room = MAX_STDERR.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            kept
        };
        let out_reader = async move {
            let mut out = Vec::new();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) => return Ok(out),
                    Ok(n) => {
                        if (out.len() + n) as u64 > max_stdout {
                            return Err(ExecError::OutputCap { cap: max_stdout });
                        }
                        out.extend_from_slice(&buf[..n]);
                    }
                    Err(e) => return Err(ExecError::Failed(format!("reading stdout: {e}"))),
                }
            }
        };
        // The writer runs on its own: a command that never starts (no shell)
        // stops reading stdin, and the readers must not wait on it.
        let writer = tokio::spawn(writer);
        let (stderr, stdout) = tokio::join!(err_reader, out_reader);
        writer.abort();
        tracing::debug!(container = %self.container, "exec output complete");
        let stdout = match stdout {
            Ok(s) => s,
            Err(e) => {
                process.abort();
                return Err(e);
            }
        };
        let status = status.await;
        let _ = process.join().await;
        tracing::debug!(container = %self.container, ?status, "exec session closed");
        let start = exec_start(status.as_ref());
        let exit_code = match &start {
            ExecStart::Ran(code) => *code,
            ExecStart::CommandMissing(_) => None,
        };
        Ok((
            ExecOutput {
                stdout,
                stderr,
                exit_code,
            },
            start,
        ))
    }
}

/// Reads the channel-3 Status: success, a non-zero exit code, or a command
/// the runtime could not start.
pub fn exec_start(
    status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
) -> ExecStart {
    let Some(status) = status else {
        return ExecStart::Ran(None);
    };
    if status.status.as_deref() == Some("Success") {
        return ExecStart::Ran(Some(0));
    }
    if status.reason.as_deref() == Some("NonZeroExitCode") {
        let code = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.parse().ok());
        return ExecStart::Ran(code);
    }
    let message = status.message.clone().unwrap_or_default();
    let lower = message.to_ascii_lowercase();
    if lower.contains("executable file not found")
        || lower.contains("no such file or directory")
        || lower.contains("not found in $path")
    {
        return ExecStart::CommandMissing(message);
    }
    ExecStart::Ran(None)
}

impl ScriptExecutor for KubeExec {
    fn execute(&self, script: &[u8], max_stdout: u64) -> Result<ExecOutput, ExecError> {
        // The engine's targets are synchronous; the session runs them on a
        // blocking thread, from which the async exec is driven.
        let (out, start) = self.handle.block_on(self.run(script, max_stdout))?;
        match start {
            ExecStart::Ran(_) => Ok(out),
            ExecStart::CommandMissing(m) => {
                *self.shell_missing.lock().unwrap_or_else(|p| p.into_inner()) = Some(m.clone());
                Err(ExecError::Failed(format!(
                    "{} has no {}: {m}",
                    self.label, self.command[0]
                )))
            }
        }
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}

/// How long until `deadline`, for messages.
pub fn remaining(deadline: tokio::time::Instant) -> Duration {
    deadline.saturating_duration_since(tokio::time::Instant::now())
}
