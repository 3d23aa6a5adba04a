//! What the user can do with the running fleet, as commands that work as
//! printed, from any directory: the operator CLI is named by its full path
//! (it is built next to `scanfleet-dev`, not installed on the PATH), and
//! every command carries the fleet's credentials: the CLI through its
//! config file (addresses, CA bundle, the operator's token), curl through
//! the CA bundle and the token file.

use std::path::Path;

use crate::data_dir::DataDir;
use crate::fleet_plan::Ports;

/// What a caller needs, as files.
pub struct Access<'a> {
    /// The CLI config file.
    pub cli_config: &'a Path,
    /// The CA bundle.
    pub ca_file: &'a Path,
    /// The operator's token.
    pub token_file: &'a Path,
}

/// The commands printed while the fleet keeps running.
pub fn commands(cli: Option<&Path>, access: &Access<'_>, ports: &Ports) -> Vec<String> {
    let cli = cli.map_or_else(
        || "cargo run --quiet --bin scanfleet --".to_owned(),
        |p| p.display().to_string(),
    );
    let config = access.cli_config.display();
    vec![
        format!("{cli} submit --config {config} k8s://apps/web-misconfigured/web"),
        format!("{cli} watch --config {config} SCAN_ID"),
        format!("{cli} results list --config {config}"),
        format!(
            "curl --cacert {} -H \"Authorization: Bearer $(cat {})\" https://{}/v1/results",
            access.ca_file.display(),
            access.token_file.display(),
            ports.collector_http()
        ),
    ]
}

/// Prints them, with where the logs and kubesim's audit log are.
pub fn print(cli: Option<&Path>, access: &Access<'_>, ports: &Ports, data: &DataDir) {
    println!("\nThe fleet keeps running. In another shell:");
    for command in commands(cli, access, ports) {
        println!("  {command}");
    }
    if cli.is_none() {
        println!(
            "  (the `cargo run` form works from the repository; `cargo build --bins` makes it faster)"
        );
    }
    println!(
        "Every edge serves TLS and checks who calls: these commands call as ServiceAccount \
         scanfleet-system/operator ({}).",
        access.token_file.display()
    );
    println!(
        "Logs: {}\nkubesim audit log (every API call, by identity): {}\nPress Ctrl-C to stop everything.",
        data.logs().display(),
        data.audit_log().display()
    );
}
