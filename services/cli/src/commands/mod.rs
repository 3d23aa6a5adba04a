//! One module per subcommand; each exposes its clap `Args` and a `run`.
//!
//! Exit codes are part of the interface, because CI pipelines branch on them:
//! 0 success, 1 a verdict against the input (bad signature, failed threshold),
//! 2 the input itself is unusable (unreadable, malformed, wrong key type) or
//! the command line is wrong, 3 a server or cluster is unavailable (a retry
//! later may succeed, unlike 1 and 2). `examples::EXIT_STATUS` shows them in
//! `--help`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

mod bus;
mod cluster_scan;
mod envelope;
mod examples;
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
/// A server or cluster could not be reached; trying again later may work.
pub fn exit_unavailable() -> ExitCode {
    ExitCode::from(3)
}

/// A server or cluster that did not answer (exit status 3), as opposed to
/// one that answered no (1 or 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// `--version`: the version, the commit and the day it was built (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SCANFLEET_COMMIT"),
    ", built ",
    env!("SCANFLEET_BUILD_DATE"),
    ")"
);

/// The scanfleet operator's command line: signing keys and DSSE envelopes,
/// one-shot scans (a directory tree, or a running container through a
/// least-privilege scan session) gated by thresholds, and a running fleet's
/// intake (submit scans) and collector (watch and read verified results).
///
/// The local fleet itself is `scanfleet-dev` (`scripts/dev`).
#[derive(Debug, Parser)]
#[command(name = "scanfleet", version = VERSION, after_help = examples::EXIT_STATUS)]
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
    #[command(after_help = examples::SCAN)]
    Scan(Box<scan::Args>),
    /// Check a profile (YAML or InSpec) without a target.
    #[command(subcommand)]
    Profile(profile_check::ProfileCommand),
    /// Gate an HDF file with a SAF threshold file: exit 0 pass, 1 fail
    /// (every failed check printed), 2 invalid input.
    #[command(after_help = examples::THRESHOLD)]
    Threshold(threshold::Args),
    /// Ask intake to scan one container or every matching pod of a
    /// namespace; prints one scan id per container.
    #[command(after_help = examples::SUBMIT)]
    Submit(submit::SubmitArgs),
    /// List, show and export verified results from a collector.
    #[command(subcommand)]
    Results(results::ResultsCommand),
    /// Wait for scans' results to arrive, printing each; exits 1 when one
    /// failed or did not arrive in time.
    #[command(after_help = examples::WATCH)]
    Watch(results::WatchArgs),
    /// Set the bus up once, as the NATS admin: the identities, then the
    /// streams, consumers and buckets (`bus init`).
    #[command(subcommand)]
    Bus(bus::BusCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = examples::COMPLETION)]
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages for scanfleet and every subcommand.
    #[command(after_help = examples::MAN)]
    Man {
        /// Directory for the pages (scanfleet.1, scanfleet-scan.1, …).
        #[arg(long)]
        out_dir: std::path::PathBuf,
    },
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
            ExitCode::from(exit_status_of(&error))
        }
    }
}

/// 3 when a server or cluster did not answer, else 2.
fn exit_status_of(error: &anyhow::Error) -> u8 {
    let unavailable = error.chain().any(|cause| {
        cause.is::<Unavailable>()
            || matches!(
                cause.downcast_ref::<scanfleet_bus::BusError>(),
                Some(scanfleet_bus::BusError::Unreachable(_))
            )
            || matches!(
                cause.downcast_ref::<scanfleet_edge_access::EdgeConnectError>(),
                Some(scanfleet_edge_access::EdgeConnectError::Unreachable { .. })
            )
    });
    if unavailable { 3 } else { 2 }
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
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "scanfleet",
                &mut std::io::stdout(),
            );
            Ok(EXIT_OK)
        }
        Command::Man { out_dir } => {
            std::fs::create_dir_all(&out_dir)?;
            clap_mangen::generate_to(Cli::command(), &out_dir)?;
            println!("man pages written to {}", out_dir.display());
            Ok(EXIT_OK)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every leaf command's `--help` ends with examples, and each example
    /// parses with the real definitions (a renamed flag fails here).
    #[test]
    fn every_command_has_examples_that_parse() {
        fn leaves(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
            let subs: Vec<_> = cmd
                .get_subcommands()
                .filter(|s| s.get_name() != "help")
                .collect();
            if subs.is_empty() {
                let help = cmd
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                out.push((path.clone(), help));
            }
            for sub in subs {
                let mut p = path.clone();
                p.push(sub.get_name().to_owned());
                leaves(sub, p, out);
            }
        }
        let mut found = Vec::new();
        leaves(&Cli::command(), Vec::new(), &mut found);
        assert!(found.len() >= 18, "{} leaf commands", found.len());
        for (path, help) in found {
            let name = path.join(" ");
            assert!(
                help.starts_with("Examples:"),
                "`scanfleet {name}` has no examples"
            );
            let examples: Vec<&str> = help.lines().skip(1).map(str::trim).collect();
            assert!(!examples.is_empty(), "`scanfleet {name}`");
            for example in examples {
                let words: Vec<&str> = example
                    .split(" > ")
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect();
                assert_eq!(&words[1..=path.len()], path.as_slice(), "{example}");
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("example `{example}` does not parse: {e}");
                }
            }
        }
    }

    #[test]
    fn unreachable_servers_exit_3_and_everything_else_2() {
        let nats = anyhow::Error::new(scanfleet_bus::BusError::Unreachable("NATS x".into()))
            .context("bus init needs the NATS admin identity");
        assert_eq!(exit_status_of(&nats), 3);
        let refused = anyhow::Error::new(scanfleet_bus::BusError::Connect("authorization".into()));
        assert_eq!(exit_status_of(&refused), 2);
        let grpc = crate::fleet_connection::refusal(tonic::Status::unavailable("down"));
        assert_eq!(exit_status_of(&grpc.context("listing")), 3);
        let denied = crate::fleet_connection::refusal(tonic::Status::permission_denied("no"));
        assert_eq!(exit_status_of(&denied), 2);
    }

    #[test]
    fn the_version_names_the_commit_and_build_date() {
        let version = Cli::command().render_version();
        assert!(
            version.contains("(commit ") && version.contains(", built "),
            "{version}"
        );
    }
}
