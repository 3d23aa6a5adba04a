//! The intake process: parse config, start logging, serve until SIGTERM.

use clap::Parser;
use scanfleet_intake::config::{Args, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("scanfleet-intake: invalid configuration:");
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
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = tx.send(true);
    });
    let ready = |l: scanfleet_intake::Listening| match l.http {
        Some(http) => println!("scanfleet-intake listening grpc={} http={http}", l.grpc),
        None => println!("scanfleet-intake listening grpc={}", l.grpc),
    };
    match scanfleet_intake::run_with_ready(config, rx, ready).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "intake stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
