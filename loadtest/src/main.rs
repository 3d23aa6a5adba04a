//! `loadtest`: measures scanfleet's hot paths and prints figures.
//!
//! Benchmarks print numbers for `docs/benchmarks.md`; they never assert on
//! time, because a loaded CI machine would make such assertions flaky.

mod engine_scan;
mod envelope_throughput;
mod fleet_audit;
mod fleet_bench;
mod image_pull;
mod inspec_scan;
mod per_command_scan;
mod result_pipeline;
mod scan_sessions;

use clap::{Parser, Subcommand};

/// scanfleet load generators.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Sign, verify, encrypt and decrypt result envelopes in one thread.
    Envelopes(envelope_throughput::Args),
    /// Publish signed results through a real nats-server into a collector
    /// (SQLite) and measure publish-to-persisted throughput and latency.
    Results(result_pipeline::Args),
    /// Run secure scan sessions (exec, debug, sidecar) against an
    /// in-process kubesim and report API calls and wall time per scan.
    Sessions(scan_sessions::Args),
    /// Run container-hardening on a busybox rootfs of 20,000+ files through
    /// the local-root and the shell target (one exec round trip).
    Engine(engine_scan::Args),
    /// Run a generated InSpec-syntax profile of 400+ controls through an
    /// exec scan session on kubesim: load, wall time, round trips, bytes.
    Inspec(inspec_scan::Args),
    /// Pull, unpack and scan a generated ~100 MB, 20,000-file image from a
    /// real registry on loopback: wall time per phase and peak RSS.
    Image(image_pull::Args),
    /// Run the real `scanfleet-dev` fleet over 1,000+ pods with 1, 2, 4 and
    /// 8 workers under one API budget (rate from kubesim's audit log), then
    /// the per-command exec pattern over the same pods and budget.
    Fleet(fleet_bench::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Envelopes(args) => envelope_throughput::run(&args),
        Bench::Results(args) => result_pipeline::run(&args),
        Bench::Sessions(args) => scan_sessions::run(&args),
        Bench::Engine(args) => engine_scan::run(&args),
        Bench::Inspec(args) => inspec_scan::run(&args),
        Bench::Image(args) => image_pull::run(&args),
        Bench::Fleet(args) => fleet_bench::run(&args),
    }
}
