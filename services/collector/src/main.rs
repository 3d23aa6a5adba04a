//! The collector process: parse config, start logging, run until SIGTERM.

use clap::Parser;
use scanfleet_collector::config::{Args, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("scanfleet-collector: invalid configuration:");
            for e in errors {
                eprintln!("  - {e}");
            }
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(config.json_logs);
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = tx.send(true);
    });
    // Tests and scripts read this line to find ports chosen by the OS.
    let ready = |l: scanfleet_collector::Listening| {
        println!(
            "scanfleet-collector listening grpc={} http={}",
            l.grpc, l.http
        );
    };
    match scanfleet_collector::run_with_ready(config, rx, ready).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "collector stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
