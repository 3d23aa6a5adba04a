//! The collector process: parse config, start logging, run until SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use scanfleet_collector::config::{Args, Config};
use scanfleet_process_lifecycle as lifecycle;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(errors) => return lifecycle::invalid_config("scanfleet-collector", &errors),
    };
    lifecycle::init_logging(config.json_logs);
    let stop = match lifecycle::shutdown_on_signal() {
        Ok(stop) => stop,
        Err(e) => {
            tracing::error!(error = %e, "cannot handle SIGTERM");
            return ExitCode::FAILURE;
        }
    };
    // Tests and scripts read this line to find ports chosen by the OS.
    let ready = |l: scanfleet_collector::Listening| {
        println!(
            "scanfleet-collector listening grpc={} http={}",
            l.grpc, l.http
        );
    };
    match scanfleet_collector::run_with_ready(config, stop, ready).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "collector stopped");
            ExitCode::FAILURE
        }
    }
}
