//! `scanfleet threshold -i HDF -T FILE`: a SAF-compatible threshold gate that
//! reports every failed check and refuses input saf would silently pass.
//!
//! Exit status: 0 pass, 1 a bound failed, 2 invalid input.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use scanfleet_scan_engine::threshold::{Threshold, counts_from_hdf, evaluate, parse_threshold};

/// Arguments of `scanfleet threshold`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// HDF (InSpec exec-json) results file.
    #[arg(short = 'i', long = "input")]
    pub input: PathBuf,
    /// SAF threshold file (YAML or JSON).
    #[arg(short = 'T', long = "templateFile", alias = "template-file")]
    pub template: PathBuf,
}

/// Exit status for invalid input.
pub const INVALID_INPUT: u8 = 2;

/// Loads a threshold file, printing every problem.
pub fn load_threshold(path: &PathBuf) -> Result<Threshold, ExitCode> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read threshold file {}: {e}", path.display());
            return Err(ExitCode::from(INVALID_INPUT));
        }
    };
    parse_threshold(&text, &path.display().to_string()).map_err(|e| {
        eprintln!("error: invalid threshold file:");
        for p in &e.problems {
            eprintln!("  {p}");
        }
        ExitCode::from(INVALID_INPUT)
    })
}

/// Evaluates a threshold against an HDF document and prints the verdict.
pub fn gate(threshold: &Threshold, hdf: &serde_json::Value, label: &str) -> ExitCode {
    let counts = match counts_from_hdf(hdf) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {label} is not a valid HDF file:");
            for p in &e.problems {
                eprintln!("  {p}");
            }
            return ExitCode::from(INVALID_INPUT);
        }
    };
    let failures = evaluate(threshold, &counts);
    if failures.is_empty() {
        println!("All validation tests passed");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("Error: {f}");
        }
        eprintln!(
            "{} of {} threshold checks failed",
            failures.len(),
            threshold.bounds.len()
        );
        ExitCode::from(1)
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threshold = match load_threshold(&args.template) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    let text = match std::fs::read_to_string(&args.input)
        .with_context(|| format!("cannot read HDF file {}", args.input.display()))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    let hdf: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {} is not JSON: {e}", args.input.display());
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    Ok(gate(&threshold, &hdf, &args.input.display().to_string()))
}
