//! `scanfleet`: the operator's command line.
//!
//! Exit codes are part of the interface, because CI pipelines branch on them:
//! 0 success, 1 a verdict against the input (bad signature, failed threshold),
//! 2 the input itself is unusable (unreadable, malformed, wrong key type) or
//! the command line is wrong.

mod commands;
mod files;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Diagnostics only (RUST_LOG, default warn); progress and verdicts are
    // printed by the commands themselves.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            commands::exit_invalid_input()
        }
    }
}
