//! The command line of `scanfleet-dev`.

use std::path::PathBuf;

/// The whole scanfleet fleet on this machine against kubesim's sample
/// workloads (README command 1, `scripts/dev`).
///
/// Starts nats-server (JetStream), kubesim (real-process containers; needs
/// root), the collector (SQLite), intake and N workers, each a real process;
/// scans every sample container and prints the verified results; then keeps
/// the fleet running, restarting any process that crashes, until Ctrl-C or
/// SIGTERM, which stops it in order: intake, workers (they finish their
/// scans), collector, nats-server, kubesim. A second Ctrl-C kills what is
/// left at once.
#[derive(clap::Parser, Debug)]
#[command(name = "scanfleet-dev", version)]
pub struct Options {
    /// Worker processes.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
    /// Scans each worker runs at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Where state goes (NATS store, SQLite results, signing keys, logs,
    /// kubesim's audit log); kept, so a restart with the same directory
    /// resumes the backlog. A temporary directory, removed at exit, when
    /// omitted.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Make a new signing key; the previous public keys stay trusted, so
    /// results signed before still verify.
    #[arg(long)]
    pub rotate_signing_key: bool,
    /// Scan every sample pod once, print the table, stop everything, and
    /// exit non-zero if any scan did not complete.
    #[arg(long)]
    pub once: bool,
    /// Extra copies of each sample pod (for load figures).
    #[arg(long, default_value_t = 0)]
    pub replicas: usize,
    /// How long to wait for the sample scans' results, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// The Kubernetes API budget of kubesim, the fleet's one cluster, in
    /// calls per second: for all workers together, however many run (they
    /// lease permits from it on the bus). kubesim's audit log,
    /// DATA_DIR/kubesim-audit.jsonl, shows the rate the API server saw.
    #[arg(long, default_value_t = 20.0)]
    pub kube_qps: f64,
    /// The fleet-wide Kubernetes API burst of kubesim (all workers together).
    #[arg(long, default_value_t = 40)]
    pub kube_burst: u32,
    /// How long a stopping worker may take to finish its running scans, in
    /// seconds; unfinished ones go back to the queue.
    #[arg(long, default_value_t = 30)]
    pub drain_grace_secs: u64,
    /// kubesim fault rules (YAML list of {path, rate, fault}; see
    /// tests/kubesim/README.md), to watch the fleet under a slow or failing
    /// API server.
    #[arg(long, value_name = "FILE")]
    pub kubesim_faults: Option<PathBuf>,
}
