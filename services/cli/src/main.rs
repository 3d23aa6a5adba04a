//! `scanfleet`: the operator command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

#[derive(Parser)]
#[command(
    name = "scanfleet",
    version,
    about = "Compliance scanning for container fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan a directory tree with a profile and write HDF results.
    Scan(commands::scan::Args),
    /// Gate an HDF file with a SAF threshold file.
    Threshold(commands::threshold::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => commands::scan::run(args),
        Command::Threshold(args) => commands::threshold::run(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(2)
    })
}
