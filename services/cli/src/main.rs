//! `scanfleet`: the operator's command line (exit codes: see `commands`).

mod commands;
mod files;
mod fleet_connection;

fn main() -> std::process::ExitCode {
    commands::main()
}
