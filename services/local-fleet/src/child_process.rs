//! One run of one child process: started under `setpriv --pdeathsig TERM`
//! so it cannot outlive `scanfleet-dev` even if that is SIGKILLed, in its own
//! process group so a terminal's Ctrl-C reaches only `scanfleet-dev` (which
//! then stops the children in order, instead of all of them at once), with
//! stdout and stderr appended to the child's log file across restarts.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Most log bytes read back (readiness lines, log tails in errors).
const MAX_LOG_READ: u64 = 64 * 1024;

/// A started child.
pub struct ChildProcess {
    child: Child,
    started: Instant,
    log: PathBuf,
    /// Where this run's output starts in the log.
    log_from: u64,
    exit: Option<ExitStatus>,
}

impl ChildProcess {
    /// Starts `program` with `args`, appending its output to `log` after a
    /// line that marks which run this is.
    ///
    /// # Errors
    /// When the log cannot be opened or the program cannot be started.
    pub fn spawn(program: &Path, args: &[String], log: &Path, run: u32) -> Result<Self> {
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        if run > 0 {
            writeln!(out, "--- scanfleet-dev: restart {run} ---")
                .with_context(|| format!("writing {}", log.display()))?;
        }
        let log_from = out
            .seek(SeekFrom::End(0))
            .with_context(|| format!("{}", log.display()))?;
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "TERM", "--"])
            .arg(program)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {} under setpriv", program.display()))?;
        Ok(Self {
            child,
            started: Instant::now(),
            log: log.to_path_buf(),
            log_from,
            exit: None,
        })
    }

    /// The process id (setpriv execs in place, so it is the program's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How long this run has lasted.
    pub fn ran_for(&self) -> Duration {
        self.started.elapsed()
    }

    /// The exit status once the child has exited (it is reaped then).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            match self.child.try_wait() {
                Ok(status) => self.exit = status,
                // Not our child any more (cannot happen): treat as gone.
                Err(_) => self.exit = Some(ExitStatus::default()),
            }
        }
        self.exit
    }

    /// Sends `signal` unless the child was already reaped (its pid may
    /// belong to another process by now).
    pub fn signal(&mut self, signal: Signal) {
        if self.exited().is_none()
            && let Ok(pid) = i32::try_from(self.pid())
        {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
    }

    /// This run's output so far (at most the last 64 KiB of it).
    pub fn output(&self) -> String {
        read_tail(&self.log, self.log_from)
    }

    /// The last `n` lines of the log, earlier runs included (a run killed
    /// at once has written nothing of its own).
    pub fn log_tail(&self, n: usize) -> String {
        let text = read_tail(&self.log, 0);
        let lines: Vec<&str> = text.lines().collect();
        match &lines[lines.len().saturating_sub(n)..] {
            [] => "(no output)".to_owned(),
            tail => tail.join("\n"),
        }
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }
}

/// The end of `log` from `from` on, at most [`MAX_LOG_READ`] bytes.
fn read_tail(log: &Path, from: u64) -> String {
    let Ok(mut file) = std::fs::File::open(log) else {
        return String::new();
    };
    let end = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = from.max(end.saturating_sub(MAX_LOG_READ));
    let mut text = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_ok() {
        let _ = file.take(MAX_LOG_READ).read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}
