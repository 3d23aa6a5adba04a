//! `scanfleet profile check PATH [-o json]`: loads and plans a profile (YAML
//! or InSpec) without a target and says, per control, whether it runs (else
//! each unsupported construct with `file:line`), which facts it gathers and
//! how many round trips it needs.
//!
//! Exit status: 0 every control is supported, 1 some control is not,
//! 2 the profile does not load (every problem printed with `file:line:col`).

use std::path::PathBuf;
use std::process::ExitCode;

use scanfleet_scan_engine::adapters::profile_dir::read_profile_dir;
use scanfleet_scan_engine::inspec::profile_check::{ProfileCheck, check_profile};

use super::{EXIT_OK, exit_invalid_input, exit_rejected};

/// `scanfleet profile ...`
#[derive(Debug, clap::Subcommand)]
pub enum ProfileCommand {
    /// Load and plan a profile without a target; exit 1 if any control uses
    /// a construct scanfleet does not run.
    Check(CheckArgs),
}

/// Arguments of `scanfleet profile check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Profile directory (inspec.yml with controls/*.yml, or controls/*.rb and libraries/*.rb).
    pub path: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Override a profile input: NAME=VALUE. Repeatable.
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
}

/// How to print the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// Runs `scanfleet profile ...`.
///
/// # Errors
/// Bad `--input` syntax.
pub fn run(cmd: ProfileCommand) -> anyhow::Result<ExitCode> {
    let ProfileCommand::Check(args) = cmd;
    let overrides = super::scan::parse_inputs(&args.inputs)?;
    let report = match read_profile_dir(&args.path).and_then(|s| check_profile(&s, &overrides)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", args.path.display());
            return Ok(exit_invalid_input());
        }
    };
    match args.output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", text(&report)),
    }
    Ok(if report.unsupported == 0 {
        EXIT_OK
    } else {
        exit_rejected()
    })
}

/// The report for people: one line per control, problems indented below.
fn text(r: &ProfileCheck) -> String {
    let mut out = format!(
        "{} {} ({} profile): {} controls, {} facts planned, {} round trip{}\n",
        r.name,
        r.version.as_deref().unwrap_or(""),
        r.format,
        r.controls.len(),
        r.facts_planned,
        r.round_trips,
        if r.round_trips == 1 { "" } else { "s" }
    );
    for c in &r.controls {
        let mark = if c.supported { "ok  " } else { "FAIL" };
        out.push_str(&format!(
            "{mark} {} ({}): {} facts, {} round trip{}\n",
            c.id,
            c.location,
            c.facts.len(),
            c.round_trips,
            if c.round_trips == 1 { "" } else { "s" }
        ));
        for p in &c.problems {
            out.push_str(&format!("       {p}\n"));
        }
        for d in &c.dynamic_calls {
            out.push_str(&format!("       second round trip: {d}\n"));
        }
        for w in &c.warnings {
            out.push_str(&format!("       warning: {w}\n"));
        }
    }
    if r.unsupported > 0 {
        out.push_str(&format!(
            "{} of {} controls use constructs scanfleet does not run; they would report an error.\n",
            r.unsupported,
            r.controls.len()
        ));
    }
    out
}
