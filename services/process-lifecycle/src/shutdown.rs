//! One shutdown signal for SIGTERM (what Kubernetes sends) and SIGINT
//! (Ctrl-C), that every task of a service drains on.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

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
}
