//! The worker process: parse config, start logging, work until SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use scanfleet_process_lifecycle as lifecycle;
use scanfleet_worker::config::{Args, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(errors) => return lifecycle::invalid_config("scanfleet-worker", &errors),
    };
    lifecycle::init_logging(config.json_logs);
    let stop = match lifecycle::shutdown_on_signal() {
        Ok(stop) => stop,
        Err(e) => {
            tracing::error!(error = %e, "cannot handle SIGTERM");
            return ExitCode::FAILURE;
        }
    };
    // Scripts and tests read this line to find the port chosen by the OS.
    let ready = |l: scanfleet_worker::worker_service::Listening| {
        println!("scanfleet-worker listening http={}", l.http);
    };
    match scanfleet_worker::worker_service::run_with_ready(config, stop, ready).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "worker stopped");
            ExitCode::FAILURE
        }
    }
}
