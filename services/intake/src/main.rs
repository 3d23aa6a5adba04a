//! The intake process: parse config, start logging, serve until SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use scanfleet_intake::config::{Args, Config};
use scanfleet_process_lifecycle as lifecycle;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(errors) => return lifecycle::invalid_config("scanfleet-intake", &errors),
    };
    lifecycle::init_logging(config.json_logs);
    let stop = match lifecycle::shutdown_on_signal() {
        Ok(stop) => stop,
        Err(e) => {
            tracing::error!(error = %e, "cannot handle SIGTERM");
            return ExitCode::FAILURE;
        }
    };
    // Scripts and tests read this line to find ports chosen by the OS.
    let ready = |l: scanfleet_intake::Listening| match l.http {
        Some(http) => println!("scanfleet-intake listening grpc={} http={http}", l.grpc),
        None => println!("scanfleet-intake listening grpc={}", l.grpc),
    };
    match scanfleet_intake::run_with_ready(config, stop, ready).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "intake stopped");
            ExitCode::FAILURE
        }
    }
}
