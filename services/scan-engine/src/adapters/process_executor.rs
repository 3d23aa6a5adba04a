//! Runs the scan script through a local process (`chroot ROOT /bin/sh`,
//! `/bin/busybox sh`, `nsenter ... sh`): the test and CI stand-in for a
//! Kubernetes exec session.
//!
//! Every run has a deadline. A target that never answers (a stopped
//! container, a FIFO the script blocks on, a hostile `sh`) must cost a worker
//! a bounded amount of time, so on expiry the whole process group is killed
//! and the run fails with [`ExecError::TimedOut`].

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::shell::{ExecError, ExecOutput, ScriptExecutor};

/// How much stderr is kept: it is diagnostics only.
const MAX_STDERR: usize = 64 << 10;

/// Deadline used unless [`ProcessExecutor::with_deadline`] says otherwise:
/// far above any real scan (the 20,000-file benchmark takes well under a
/// second), yet bounded.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);

/// How long to wait for the output pipes to close after the process group
/// was killed. Only a process that left the group (setsid) can hold them
/// open longer; its output is then abandoned rather than waited for.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How often the exit status is polled once stdout is closed.
const EXIT_POLL: Duration = Duration::from_millis(5);

/// Executes scripts by piping them into a program's stdin.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    program: String,
    args: Vec<String>,
    label: String,
    deadline: Duration,
}

impl ProcessExecutor {
    /// `program args...` must read a POSIX sh script on stdin. The run's
    /// deadline is [`DEFAULT_DEADLINE`].
    pub fn new(program: impl Into<String>, args: Vec<String>, label: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args,
            label: label.into(),
            deadline: DEFAULT_DEADLINE,
        }
    }

    /// The same executor with another deadline for each run, measured from
    /// process start to exit.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The deadline each run gets.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }
}

/// Kills the child's whole process group (the child leads it), so helpers it
/// forked (`nsenter` forks into the target's pid namespace) die with it.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
}

/// Reads a pipe to EOF on its own thread, keeping at most `cap` bytes; the
/// flag says whether more arrived than was kept.
fn drain<R: Read + Send + 'static>(
    mut pipe: R,
    cap: usize,
) -> mpsc::Receiver<std::io::Result<(Vec<u8>, bool)>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        let res = loop {
            match pipe.read(&mut buf) {
                Ok(0) => break Ok((kept, false)),
                Ok(n) => {
                    if kept.len() + n > cap {
                        let room = cap - kept.len();
                        kept.extend_from_slice(&buf[..room]);
                        break Ok((kept, true));
                    }
                    kept.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let _ = tx.send(res);
    });
    rx
}

impl ScriptExecutor for ProcessExecutor {
    fn execute(&self, script: &[u8], max_stdout: u64) -> Result<ExecOutput, ExecError> {
        let started = Instant::now();
        let end = started + self.deadline;
        let timed_out = || ExecError::TimedOut {
            after: self.deadline,
        };
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| ExecError::Failed(format!("cannot start {}: {e}", self.program)))?;
        let mut stdin = child.stdin.take().expect("piped");
        let script = script.to_vec();
        // Not joined: a script that never reads stdin must not block us; the
        // writer ends when the pipe closes.
        std::thread::spawn(move || {
            // A script that exits early closes the pipe; that is not our error.
            let _ = stdin.write_all(&script);
        });
        let err_rx = drain(child.stderr.take().expect("piped"), MAX_STDERR);
        let cap = usize::try_from(max_stdout).unwrap_or(usize::MAX);
        let out_rx = drain(child.stdout.take().expect("piped"), cap);

        let stdout = match out_rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(Ok((_, true))) => {
                kill_group(&mut child);
                let _ = child.wait();
                return Err(ExecError::OutputCap { cap: max_stdout });
            }
            Ok(Ok((bytes, false))) => bytes,
            Ok(Err(e)) => {
                kill_group(&mut child);
                let _ = child.wait();
                return Err(ExecError::Failed(format!("reading stdout: {e}")));
            }
            Err(_) => {
                kill_group(&mut child);
                let _ = child.wait();
                return Err(timed_out());
            }
        };
        // stdout is closed; the process may still be running (it closed its
        // stdout early), so the exit is awaited under the same deadline.
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= end => {
                    kill_group(&mut child);
                    let _ = child.wait();
                    return Err(timed_out());
                }
                Ok(None) => std::thread::sleep(EXIT_POLL),
                Err(e) => {
                    kill_group(&mut child);
                    return Err(ExecError::Failed(format!(
                        "waiting for {}: {e}",
                        self.program
                    )));
                }
            }
        };
        let stderr = match err_rx.recv_timeout(DRAIN_GRACE) {
            Ok(Ok((bytes, _))) => bytes,
            _ => Vec::new(),
        };
        Ok(ExecOutput {
            stdout,
            stderr,
            exit_code: status.code(),
        })
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}
