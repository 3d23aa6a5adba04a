//! One module per subcommand; each exposes its clap `Args` and a `run`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cluster_scan;
mod dev;
mod envelope;
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

/// Continuous, least-privilege compliance scanning for Kubernetes containers.
#[derive(Debug, Parser)]
#[command(name = "scanfleet", version, about)]
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
    /// given threshold fails.
    Scan(scan::Args),
    /// Check a profile (YAML or InSpec) without a target.
    #[command(subcommand)]
    Profile(profile_check::ProfileCommand),
    /// Gate an HDF file with a SAF threshold file: exit 0 pass, 1 fail
    /// (every failed check printed), 2 invalid input.
    Threshold(threshold::Args),
    /// Queue scans through intake.
    Submit(submit::SubmitArgs),
    /// Read verified results from a collector.
    #[command(subcommand)]
    Results(results::ResultsCommand),
    /// Wait for scans' results to arrive, with progress.
    Watch(results::WatchArgs),
    /// Run the whole fleet locally against kubesim's sample workloads
    /// (nats-server, kubesim, collector, intake, workers) and scan them.
    Dev(dev::DevArgs),
}

/// Dispatches to the chosen subcommand.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Envelope(cmd) => envelope::run(cmd),
        Command::Scan(args) => scan::run(args),
        Command::Profile(cmd) => profile_check::run(cmd),
        Command::Threshold(args) => threshold::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Results(cmd) => results::run(cmd),
        Command::Watch(args) => results::watch(args),
        Command::Dev(args) => dev::run(args),
    }
}
