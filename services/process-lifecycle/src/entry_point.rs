//! The whole of a service binary's `main`: parse, configure, log, run until
//! a signal, and turn the outcome into an exit code. Each service's
//! `main.rs` is one call to [`main`].

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use tokio::sync::watch;

use crate::configuration::invalid_config;
use crate::logging::{LogFormat, init_logging};
use crate::shutdown::shutdown_on_signal;

/// A service process, as the entry point sees it.
pub trait Service: Sized + Send + 'static {
    /// The binary's name, in messages and the "listening" line.
    const NAME: &'static str;
    /// The command line (flags and `SCANFLEET_*` variables).
    type Args: clap::Parser;
    /// Where it serves once ready, printed after `NAME listening `.
    type Listening: Display + Send;

    /// Validates everything; every problem at once.
    ///
    /// # Errors
    /// One line per problem.
    fn configure(args: Self::Args) -> Result<Self, Vec<String>>;

    /// How to write logs.
    fn log_format(&self) -> LogFormat;

    /// Runs until `shutdown` turns true, calling `ready` once it serves.
    fn run(
        self,
        shutdown: watch::Receiver<bool>,
        ready: impl FnOnce(Self::Listening) + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Exit code 0 for a clean stop, 1 for a failure (logged), 2 for invalid
/// configuration (printed, every problem at once).
pub fn main<S: Service>() -> ExitCode {
    let config = match S::configure(<S::Args as clap::Parser>::parse()) {
        Ok(config) => config,
        Err(errors) => return invalid_config(S::NAME, &errors),
    };
    init_logging(config.log_format());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let stop = match shutdown_on_signal() {
            Ok(stop) => stop,
            Err(e) => {
                tracing::error!(error = %e, "cannot handle SIGTERM");
                return ExitCode::FAILURE;
            }
        };
        // Scripts and tests read this line to find ports chosen by the OS.
        let ready = |listening: S::Listening| println!("{} listening {listening}", S::NAME);
        exit_code(S::NAME, config.run(stop, ready).await)
    })
}

/// How a service's outcome becomes its exit code (failures are logged).
pub fn exit_code(name: &str, outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{name} stopped");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_exits_non_zero() {
        assert_eq!(exit_code("t", Ok(())), ExitCode::SUCCESS);
        let failed = exit_code("t", Err(anyhow::anyhow!("critical task http failed")));
        assert_eq!(failed, ExitCode::FAILURE);
    }
}
