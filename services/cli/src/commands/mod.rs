//! One module per subcommand; each exposes its clap `Args` and a `run`.
//!
//! Exit codes are part of the interface, because CI pipelines branch on them:
//! 0 success, 1 a verdict against the input (bad signature, failed threshold),
//! 2 the input itself is unusable (unreadable, malformed, wrong key type) or
//! the command line is wrong.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bus;
mod cluster_scan;
mod envelope;
mod image_scan;
mod keys;
mod profile_check;
mod results;
pub mod scan;
mod submit;
pub mod threshold;

/// The command succeeded.
pub const EXIT_OK: ExitCode = ExitCode::SUCCESS;
/// A verdict went against the input (e.g. a signature did not verify).
pub fn exit_rejected() -> ExitCode {
    ExitCode::from(1)
}
/// The input could not be used at all (also clap's code for usage errors).
pub fn exit_invalid_input() -> ExitCode {
    ExitCode::from(2)
}

/// The scanfleet operator's command line: signing keys and DSSE envelopes,
/// one-shot scans (a directory tree, or a running container through a
/// least-privilege scan session) gated by thresholds, and a running fleet's
/// intake (submit scans) and collector (watch and read verified results).
///
/// Exit status: 0 success, 1 a verdict against the input (a signature that
/// does not verify, a failed threshold, a failed or missing scan), 2 unusable
/// input or command line. The local fleet itself is `scanfleet-dev`
/// (`scripts/dev`).
#[derive(Debug, Parser)]
#[command(name = "scanfleet", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage Ed25519 signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Sign, verify, encrypt and decrypt DSSE envelopes.
    #[command(subcommand)]
    Envelope(envelope::EnvelopeCommand),
    /// Scan a directory tree (e.g. an unpacked image) or a running container
    /// (k8s://NS/POD/CONTAINER) with a profile and write HDF; exits 1 when a
    /// given threshold fails, 2 when the input is unusable or the scan
    /// could not run.
    Scan(Box<scan::Args>),
    /// Check a profile (YAML or InSpec) without a target.
    #[command(subcommand)]
    Profile(profile_check::ProfileCommand),
    /// Gate an HDF file with a SAF threshold file: exit 0 pass, 1 fail
    /// (every failed check printed), 2 invalid input.
    Threshold(threshold::Args),
    /// Ask intake to scan one container or every matching pod of a
    /// namespace; prints one scan id per container.
    Submit(submit::SubmitArgs),
    /// List, show and export verified results from a collector.
    #[command(subcommand)]
    Results(results::ResultsCommand),
    /// Wait for scans' results to arrive, printing each; exits 1 when one
    /// failed or did not arrive in time.
    Watch(results::WatchArgs),
    /// Set the bus up once, as the NATS admin: the identities, then the
    /// streams, consumers and buckets (`bus init`).
    #[command(subcommand)]
    Bus(bus::BusCommand),
}

/// The whole command: diagnostics to stderr, parse, run, map errors to
/// exit status 2.
pub fn main() -> ExitCode {
    // Diagnostics only (RUST_LOG, default warn); progress and verdicts are
    // printed by the commands themselves.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit_invalid_input()
        }
    }
}

/// Dispatches to the chosen subcommand.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Envelope(cmd) => envelope::run(cmd),
        Command::Scan(args) => scan::run(*args),
        Command::Profile(cmd) => profile_check::run(cmd),
        Command::Threshold(args) => threshold::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Results(cmd) => results::run(cmd),
        Command::Watch(args) => results::watch(args),
        Command::Bus(cmd) => bus::run(cmd),
    }
}
