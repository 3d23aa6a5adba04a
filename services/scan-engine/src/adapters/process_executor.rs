//! Runs the scan script through a local process (`chroot ROOT /bin/sh`,
//! `/bin/busybox sh`, `nsenter ... sh`): the test and CI stand-in for a
//! Kubernetes exec session.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::shell::{ExecError, ExecOutput, ScriptExecutor};

/// How much stderr is kept: it is diagnostics only.
const MAX_STDERR: usize = 64 << 10;

/// Executes scripts by piping them into a program's stdin.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    program: String,
    args: Vec<String>,
    label: String,
}

impl ProcessExecutor {
    /// `program args...` must read a POSIX sh script on stdin.
    pub fn new(program: impl Into<String>, args: Vec<String>, label: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args,
            label: label.into(),
        }
    }
}

impl ScriptExecutor for ProcessExecutor {
    fn execute(&self, script: &[u8], max_stdout: u64) -> Result<ExecOutput, ExecError> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ExecError::Failed(format!("cannot start {}: {e}", self.program)))?;
        let mut stdin = child.stdin.take().expect("piped");
        let script = script.to_vec();
        let writer = std::thread::spawn(move || {
            // A script that exits early closes the pipe; that is not our error.
            let _ = stdin.write_all(&script);
        });
        let mut stderr = child.stderr.take().expect("piped");
        let err_reader = std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = MAX_STDERR.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            kept
        });
        let mut stdout = child.stdout.take().expect("piped");
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut over = false;
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if (out.len() + n) as u64 > max_stdout {
                        over = true;
                        let _ = child.kill();
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ExecError::Failed(format!("reading stdout: {e}"))),
            }
        }
        drop(stdout);
        let status = child
            .wait()
            .map_err(|e| ExecError::Failed(format!("waiting for {}: {e}", self.program)))?;
        let _ = writer.join();
        let stderr = err_reader.join().unwrap_or_default();
        if over {
            return Err(ExecError::OutputCap { cap: max_stdout });
        }
        Ok(ExecOutput {
            stdout: out,
            stderr,
            exit_code: status.code(),
        })
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}
