//! The remote POSIX-shell target: a whole fact plan becomes ONE `sh` script
//! (busybox ash compatible), run in one exec round trip, whose framed stdout
//! is parsed back into facts.
//!
//! Framing: every record starts with `\n<B> ` where `<B>` is a 128-bit random
//! boundary drawn per scan. Content already in the target (file names, file
//! contents, command output) existed before the boundary was chosen, so it
//! cannot contain it and cannot forge a record. File contents additionally
//! carry their length, so a file that changes while it is read is reported as
//! an error instead of being silently misread. stdout, stderr and the exit
//! status stay separate; nothing is parsed out of stderr.
//!
//! This module does no IO: running the script is the [`ScriptExecutor`]'s job
//! (Kubernetes exec in the worker, `chroot DIR /bin/sh` in tests). The
//! script is written by `script.rs` and its output read by `framing.rs`.

use crate::facts::{FactPlan, Facts, GatherLimits, GatherStats};
use crate::scan::{Target, TargetError};

mod framing;
mod script;

pub use framing::parse_output;
pub use script::{generate_script, new_boundary};

/// What an executor returns: the three channels, kept apart.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Script stdout (the framed facts).
    pub stdout: Vec<u8>,
    /// Script stderr (diagnostics only; possibly truncated by the executor).
    pub stderr: Vec<u8>,
    /// Exit status, when the transport reports one.
    pub exit_code: Option<i32>,
}

/// Why an executor failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// stdout grew beyond the cap; the executor stopped reading.
    #[error("output exceeded {cap} bytes")]
    OutputCap {
        /// The cap in bytes.
        cap: u64,
    },
    /// The script did not finish within the executor's deadline; the
    /// executor killed it (a hung or hostile target must not hold a worker).
    #[error("the scan script did not finish within {after:?} and was killed")]
    TimedOut {
        /// The deadline that expired.
        after: std::time::Duration,
    },
    /// The script could not be run.
    #[error("{0}")]
    Failed(String),
}

/// The script never touches `/dev` (minimal and distroless roots may have an
/// empty one) and never lets a child read stdin, which is the script itself.
///
/// Runs one script, once, feeding it on stdin (never on a command line, where
/// other processes in the target could read it and learn the boundary).
pub trait ScriptExecutor {
    /// Runs `script` with `sh` and returns its output.
    ///
    /// # Errors
    /// [`ExecError::OutputCap`] when stdout exceeds `max_stdout` bytes (the
    /// executor must stop reading at that point, so memory stays bounded).
    fn execute(&self, script: &[u8], max_stdout: u64) -> Result<ExecOutput, ExecError>;

    /// Names the target for HDF `target_id`.
    fn describe(&self) -> String;
}

/// A target that gathers facts with one shell script.
pub struct ShellTarget<E> {
    executor: E,
    root_prefix: String,
    limits: GatherLimits,
}

impl<E: ScriptExecutor> ShellTarget<E> {
    /// `root_prefix` is prepended to every path (e.g. `/proc/1/root` for the
    /// debug-container and sidecar approaches); empty for a chroot or the
    /// container's own shell.
    pub fn new(executor: E, root_prefix: impl Into<String>, limits: GatherLimits) -> Self {
        Self {
            executor,
            root_prefix: root_prefix.into().trim_end_matches('/').to_string(),
            limits,
        }
    }
}

impl<E: ScriptExecutor> Target for ShellTarget<E> {
    fn gather(&self, plan: &FactPlan) -> Result<Facts, TargetError> {
        let boundary = new_boundary();
        let script = generate_script(plan, &boundary, &self.root_prefix, &self.limits);
        let out = self
            .executor
            .execute(script.as_bytes(), self.limits.max_output_bytes)
            .map_err(|e| match e {
                ExecError::OutputCap { cap } => TargetError::OutputCap { cap },
                ExecError::TimedOut { after } => TargetError::TimedOut { after },
                ExecError::Failed(m) => TargetError::Exec(m),
            })?;
        let values = parse_output(
            &out.stdout,
            &boundary,
            &self.root_prefix,
            plan,
            &self.limits,
        )
        .map_err(|e| {
            let tail = String::from_utf8_lossy(&out.stderr[out.stderr.len().saturating_sub(400)..])
                .into_owned();
            TargetError::Framing(format!(
                "{e} (exit status {:?}; stderr tail: {tail:?})",
                out.exit_code
            ))
        })?;
        Ok(Facts {
            values,
            stats: GatherStats {
                round_trips: 1,
                bytes_transferred: (out.stdout.len() + out.stderr.len()) as u64,
            },
            declared: crate::facts::Declarations {
                commands_outside_target: !self.root_prefix.is_empty(),
                ..Default::default()
            },
        })
    }

    fn target_id(&self) -> String {
        self.executor.describe()
    }
}
