//! `scanfleet-dev`: the whole fleet on one machine against kubesim.

use clap::Parser;

fn main() -> std::process::ExitCode {
    scanfleet_local_fleet::main(scanfleet_local_fleet::Options::parse())
}
