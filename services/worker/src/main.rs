//! The worker process: parse config, start logging, work until SIGTERM.

use clap::Parser;
use scanfleet_worker::config::{Args, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("scanfleet-worker: invalid configuration:");
            for e in errors {
                eprintln!("  - {e}");
            }
            return std::process::ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.json_logs {
        logs.json().init();
    } else {
        logs.init();
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping: no new intents; draining running scans");
        let _ = tx.send(true);
    });
    let ready = |l: scanfleet_worker::worker_service::Listening| {
        println!("scanfleet-worker listening http={}", l.http);
    };
    match scanfleet_worker::worker_service::run_with_ready(config, rx, ready).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "worker stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
