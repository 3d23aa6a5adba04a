//! `scanfleet-dev`: the whole fleet on one machine (README command 1).
//!
//! nats-server, kubesim, the collector, intake and the workers run as real
//! processes under a small supervisor, so the local fleet keeps the
//! promises the deployed one makes: a crashed process is restarted
//! ([`supervisor`], [`restart_policy`]), a restart with the same data
//! directory loses nothing ([`signing_keys`]), and stopping lets in-flight
//! scans finish and remove their per-scan identities ([`fleet_plan`] says
//! in which order). The bus runs as deployed ([`bus_credentials`]): TLS
//! and one least-privilege NATS identity per service. kubesim's audit log
//! in the data directory shows every API call the scanner made.
//!
//! Layout: [`options`] (the command line), [`programs`] and [`data_dir`]
//! (where things are), [`child_spec`] and [`child_process`] (one child),
//! [`session`] (the steps of one run), [`fleet_credentials`] (TLS and
//! the identities every edge checks), [`demo_workload`],
//! [`report_table`] and [`next_steps`] (what the user sees), and
//! [`stop_signal`].
//!
//! This is a developer tool, not part of a deployment: the operator CLI
//! (`scanfleet`) carries no supervisor.

pub mod bus_credentials;
pub mod child_process;
pub mod child_spec;
pub mod data_dir;
pub mod demo_workload;
pub mod fleet_credentials;
pub mod fleet_plan;
pub mod next_steps;
pub mod options;
pub mod programs;
pub mod report_table;
pub mod restart_policy;
pub mod session;
pub mod signing_keys;
pub mod stop_signal;
pub mod supervisor;

use std::process::ExitCode;

use anyhow::{Context, Result};

pub use options::Options;

use crate::data_dir::DataDir;
use crate::fleet_credentials::FleetPki;
use crate::fleet_plan::{FleetPlan, Ports};
use crate::programs::Programs;
use crate::restart_policy::RestartPolicy;
use crate::stop_signal::StopSignals;
use crate::supervisor::Supervisor;

/// Runs the fleet; prints an error and gives exit status 1 on failure.
pub fn main(options: Options) -> ExitCode {
    match run(options) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the fleet until `--once` is done, a stop signal arrives, or a child
/// is given up on; stops every child in order in all three cases. An error
/// once children run is printed before they are stopped, so it comes first,
/// and gives exit status 1.
///
/// # Errors
/// When the fleet cannot even begin (no runtime, programs missing).
pub fn run(options: Options) -> Result<ExitCode> {
    // One thread: every child is spawned from it, and `--pdeathsig` fires
    // when the thread that spawned a child ends, so it must live as long as
    // the process.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut signals = StopSignals::install().context("installing signal handlers")?;
        let programs = Programs::locate()?;
        let data = DataDir::open(options.data_dir.as_deref())?;
        let plan = FleetPlan {
            programs: &programs,
            data: &data,
            options: &options,
            ports: Ports::pick()?,
            pki: FleetPki::create(&data)?,
        };
        let mut supervisor = Supervisor::new(&data.logs(), RestartPolicy::default());
        let outcome = tokio::select! {
            r = session::run(&plan, &mut supervisor) => r,
            reason = signals.next() => {
                eprintln!("{reason}: stopping the fleet in order (again to kill it at once)");
                Ok(reason.exit_code())
            }
        };
        let code = outcome.unwrap_or_else(|error| {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        });
        tokio::select! {
            () = supervisor.stop_in_order() => {}
            reason = signals.next() => {
                eprintln!("{reason} again: killing every process");
                supervisor.kill_all();
            }
        }
        Ok(code)
    })
}
