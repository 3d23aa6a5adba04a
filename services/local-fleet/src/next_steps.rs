//! What the user can do with the running fleet, as commands that work as
//! printed, from any directory: the operator CLI is named by its full path
//! (it is built next to `scanfleet-dev`, not installed on the PATH) and
//! every address is given explicitly.

use std::path::Path;

use crate::data_dir::DataDir;
use crate::fleet_plan::Ports;

/// The commands printed while the fleet keeps running.
pub fn commands(cli: Option<&Path>, ports: &Ports) -> Vec<String> {
    let cli = cli.map_or_else(
        || "cargo run --quiet --bin scanfleet --".to_owned(),
        |p| p.display().to_string(),
    );
    let (intake, collector) = (ports.intake_url(), ports.collector_url());
    vec![
        format!("{cli} submit --intake {intake} k8s://apps/web-misconfigured/web"),
        format!("{cli} watch --collector {collector} SCAN_ID"),
        format!("{cli} results list --collector {collector}"),
        format!("curl http://{}/v1/results", ports.collector_http()),
    ]
}

/// Prints them, with where the logs and kubesim's audit log are.
pub fn print(cli: Option<&Path>, ports: &Ports, data: &DataDir) {
    println!("\nThe fleet keeps running. In another shell:");
    for command in commands(cli, ports) {
        println!("  {command}");
    }
    if cli.is_none() {
        println!(
            "  (the `cargo run` form works from the repository; `cargo build --bins` makes it faster)"
        );
    }
    println!(
        "Logs: {}\nkubesim audit log (every API call, by identity): {}\nPress Ctrl-C to stop everything.",
        data.logs().display(),
        data.audit_log().display()
    );
}
