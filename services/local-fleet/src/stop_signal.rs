//! Ctrl-C and SIGTERM. Both stop the fleet in order; a second one while it
//! stops kills what is left at once. Handlers are installed before any child
//! starts, so a signal during start-up is not lost.

use std::fmt;
use std::process::ExitCode;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Which signal asked the fleet to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl StopReason {
    /// The shell's convention: 128 + the signal number.
    pub fn exit_code(self) -> ExitCode {
        match self {
            StopReason::Interrupt => ExitCode::from(130),
            StopReason::Terminate => ExitCode::from(143),
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Interrupt => "interrupted (SIGINT)",
            StopReason::Terminate => "terminated (SIGTERM)",
        })
    }
}

/// The installed handlers.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Installs the handlers.
    ///
    /// # Errors
    /// When a handler cannot be installed (then the fleet must not start:
    /// it could not be stopped in order).
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next stop signal.
    pub async fn next(&mut self) -> StopReason {
        tokio::select! {
            _ = self.interrupt.recv() => StopReason::Interrupt,
            _ = self.terminate.recv() => StopReason::Terminate,
        }
    }
}
