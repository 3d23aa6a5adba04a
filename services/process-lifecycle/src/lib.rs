//! The start and stop of a scanfleet service process, shared by intake, the
//! worker and the collector so that they behave alike for operators: the
//! same exit code for bad configuration, the same log switch, and the same
//! reaction to SIGTERM and Ctrl-C (stop taking work, finish, exit 0).

use std::fmt::Display;
use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Exit code for configuration that cannot be used, so that supervisors and
/// scripts can tell "fix your config" (2) from "it ran and failed" (1).
pub const EXIT_INVALID_CONFIG: u8 = 2;

/// Prints every configuration error at once (fixing them one start at a
/// time is the slow path operators complain about) and gives the exit code.
pub fn invalid_config<E: Display>(program: &str, errors: &[E]) -> ExitCode {
    eprintln!("{program}: invalid configuration:");
    for e in errors {
        eprintln!("  - {e}");
    }
    ExitCode::from(EXIT_INVALID_CONFIG)
}

/// Logs go to stderr so that stdout stays free for the one "listening"
/// line that scripts and tests parse; JSON is for log shippers. `RUST_LOG`
/// overrides the default `info` level.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
}

/// A shutdown signal that turns `true` on the first SIGTERM or SIGINT.
///
/// Handlers are installed before this returns, so a signal that arrives
/// during start-up is not lost; a process that cannot install them refuses
/// to start rather than run unstoppable by its supervisor.
///
/// # Errors
/// When a signal handler cannot be installed. Must be called inside a
/// Tokio runtime.
pub fn shutdown_on_signal() -> std::io::Result<watch::Receiver<bool>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "stopping");
        let _ = tx.send(true);
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sigterm_turns_the_shutdown_signal_on() {
        let mut rx = shutdown_on_signal().unwrap();
        assert!(!*rx.borrow());
        // Through kill(1): the crate stays free of unsafe code.
        let me = std::process::id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &me])
            .status()
            .unwrap();
        assert!(status.success());
        rx.changed().await.unwrap();
        assert!(*rx.borrow());
    }

    #[test]
    fn invalid_configuration_exits_with_code_2() {
        let code = invalid_config("scanfleet-test", &["--nats-url: missing"]);
        assert_eq!(code, ExitCode::from(2));
    }
}
