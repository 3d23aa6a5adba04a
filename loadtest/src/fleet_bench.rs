//! The fleet at 1,000 pods (issue #18, throughput): the real
//! `scanfleet-dev` fleet (nats-server, kubesim, collector, intake and N
//! worker processes), once per worker count with a fresh data directory,
//! under one fleet-wide Kubernetes API budget; then the per-command exec
//! pattern it replaces ([`crate::per_command_scan`]) over the same pods
//! under the same budget.
//!
//! Every API figure comes from kubesim's audit log (what the API server
//! saw), not from the workers' own counters: the busiest 1 s window of the
//! workers' calls must stay within budget + burst, and calls per scan give
//! the bound the budget sets on throughput ([`crate::fleet_audit`]).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::fleet_audit::{self, ADMIN_USER, Efficiency};
use crate::per_command_scan;

/// Options for the fleet benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Extra copies of each of kubesim's 5 sample pods (200: 1,005 pods).
    #[arg(long, default_value_t = 200)]
    replicas: usize,
    /// Worker counts to run, one fleet each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    workers: Vec<u16>,
    /// Scans in flight in the whole fleet, split evenly over the workers
    /// (so every worker count has the same number of slots).
    #[arg(long, default_value_t = 32)]
    slots: usize,
    /// Fleet-wide Kubernetes API budget, calls per second.
    #[arg(long, default_value_t = 60.0)]
    kube_qps: f64,
    /// Fleet-wide Kubernetes API burst.
    #[arg(long, default_value_t = 60)]
    kube_burst: u32,
    /// Containers the per-command pattern scans at once.
    #[arg(long, default_value_t = 32)]
    per_command_parallel: usize,
    /// Skip the per-command side-by-side.
    #[arg(long)]
    skip_per_command: bool,
    /// The `scanfleet-dev` binary (default: next to this one).
    #[arg(long)]
    scanfleet_dev: Option<PathBuf>,
    /// Where each run's data directory is made (removed after the run
    /// unless `--keep-data`).
    #[arg(long, default_value = "/tmp")]
    work_dir: PathBuf,
    /// Keep each fleet's data directory (audit log, worker logs) for a
    /// closer look, and print where it is.
    #[arg(long)]
    keep_data: bool,
    /// Longest wait for one fleet's results, in seconds.
    #[arg(long, default_value_t = 1200)]
    timeout_secs: u64,
}

/// One fleet run, as measured.
#[derive(Debug, Clone, Copy)]
struct FleetRun {
    workers: u16,
    /// Results persisted (completed or not).
    scans: usize,
    /// Results that were not `completed`.
    incomplete: usize,
    /// Submit → last result persisted, as `scanfleet-dev` measured it.
    wall_s: f64,
    /// The workers' API calls in the audit log.
    calls: usize,
    /// Most of those within any 1 s.
    busiest: usize,
    /// Most calls of any caller within any 1 s once the workers started:
    /// the workers' plus intake's pod watch and the edge's reviews.
    busiest_all: usize,
    efficiency: Option<Efficiency>,
}

/// Runs the benchmark.
pub fn run(args: &Args) -> Result<()> {
    if args.workers.is_empty() || args.workers.contains(&0) || args.slots == 0 {
        bail!("--workers needs at least one count, none 0, and --slots at least 1");
    }
    if args.kube_qps <= 0.0 || args.kube_burst == 0 {
        bail!("--kube-qps and --kube-burst must be positive");
    }
    let dev = match &args.scanfleet_dev {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("scanfleet-dev"),
    };
    if !dev.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release --bins --locked`",
            dev.display()
        );
    }
    println!(
        "fleet at {} pods ({} replicas of 5 sample pods); API budget {} qps, burst {} for the whole fleet; {} slots",
        5 * (args.replicas + 1),
        args.replicas,
        args.kube_qps,
        args.kube_burst,
        args.slots
    );
    print_header();
    let mut runs = Vec::new();
    for &workers in &args.workers {
        let run = fleet_run(args, &dev, workers)?;
        print_row(&run, args);
        runs.push(run);
    }
    if args.skip_per_command {
        return Ok(());
    }
    let per_command = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(per_command_side(args))?;
    print_side_by_side(&runs, &per_command, args);
    Ok(())
}

fn print_header() {
    println!(
        "{:>7} {:>6} {:>8} {:>8} {:>10} {:>10} {:>10} {:>9} {:>8} {:>8}",
        "workers",
        "scans",
        "wall",
        "scans/s",
        "max API/s",
        "max all/s",
        "mean API/s",
        "calls/scan",
        "bound",
        "of bound"
    );
}

fn print_row(run: &FleetRun, args: &Args) {
    let Some(e) = run.efficiency else {
        println!("{:>7} {:>6} no results measured", run.workers, run.scans);
        return;
    };
    let limit = args.kube_qps + f64::from(args.kube_burst);
    println!(
        "{:>7} {:>6} {:>7.1}s {:>8.2} {:>10} {:>10} {:>10.1} {:>9.2} {:>8.2} {:>7.1}%{}{}",
        run.workers,
        run.scans,
        run.wall_s,
        e.scans_per_s,
        run.busiest,
        run.busiest_all,
        run.calls as f64 / run.wall_s,
        e.calls_per_scan,
        e.bound,
        e.percent_of_bound,
        if run.busiest as f64 > limit {
            format!("  OVER budget+burst ({limit})")
        } else {
            String::new()
        },
        if run.incomplete > 0 {
            format!("  {} incomplete", run.incomplete)
        } else {
            String::new()
        },
    );
}

/// What one `scanfleet-dev --once` printed, and when.
struct DevOutput {
    stdout: String,
    stderr_tail: Vec<String>,
    /// When `✓ intake` was printed (Unix ms): the workers start after it.
    workers_from_ms: Option<f64>,
    success: bool,
}

/// Runs one fleet of `workers` workers over the replicated pods and reads
/// its figures from its output and its audit log.
fn fleet_run(args: &Args, dev: &Path, workers: u16) -> Result<FleetRun> {
    let data = tempfile::Builder::new()
        .prefix("fleet-bench-")
        .tempdir_in(&args.work_dir)
        .with_context(|| format!("making a data dir in {}", args.work_dir.display()))?;
    let concurrency = args.slots.div_ceil(usize::from(workers));
    let mut command = Command::new(dev);
    command.args([
        "--once".to_string(),
        format!("--workers={workers}"),
        format!("--concurrency={concurrency}"),
        format!("--kube-qps={}", args.kube_qps),
        format!("--kube-burst={}", args.kube_burst),
        format!("--replicas={}", args.replicas),
        format!("--timeout-secs={}", args.timeout_secs),
        format!("--data-dir={}", data.path().display()),
    ]);
    let out = run_dev(command)?;
    let (scans, wall_s) = parse_results_line(&out.stdout).with_context(|| {
        format!(
            "scanfleet-dev with {workers} workers printed no results line; its last words:\n{}",
            out.stderr_tail.join("\n")
        )
    })?;
    let incomplete = out
        .stderr_tail
        .iter()
        .find_map(|l| l.strip_suffix(" scans did not complete"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    if !out.success && incomplete == 0 {
        bail!(
            "scanfleet-dev with {workers} workers failed:\n{}",
            out.stderr_tail.join("\n")
        );
    }
    let since = out
        .workers_from_ms
        .context("scanfleet-dev never said intake was up")?;
    let audit = fleet_audit::read_audit(&data.path().join("kubesim-audit.jsonl"))?;
    let times = fleet_audit::arrivals(&audit, |r| fleet_audit::from_a_worker(r, since));
    let all = fleet_audit::arrivals(&audit, |r| r.received_unix_ms >= since);
    if args.keep_data {
        println!("        (kept {})", data.keep().display());
    }
    Ok(FleetRun {
        workers,
        scans,
        incomplete,
        wall_s,
        calls: times.len(),
        busiest: fleet_audit::busiest_second(&times),
        busiest_all: fleet_audit::busiest_second(&all),
        efficiency: fleet_audit::efficiency(scans, wall_s, times.len(), args.kube_qps),
    })
}

/// Runs `command` to its end, stamping when intake came up.
fn run_dev(mut command: Command) -> Result<DevOutput> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting scanfleet-dev")?;
    let mut stdout = child.stdout.take().context("scanfleet-dev stdout")?;
    let stderr = child.stderr.take().context("scanfleet-dev stderr")?;
    let stderr_reader = std::thread::spawn(move || {
        let mut tail = Vec::new();
        let mut intake_at = None;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if intake_at.is_none() && line.starts_with("✓ intake") {
                intake_at = Some(unix_ms());
            }
            tail.push(line);
            if tail.len() > 40 {
                tail.remove(0);
            }
        }
        (tail, intake_at)
    });
    let mut text = String::new();
    stdout
        .read_to_string(&mut text)
        .context("reading scanfleet-dev's output")?;
    let status = child.wait().context("waiting for scanfleet-dev")?;
    let (stderr_tail, workers_from_ms) = stderr_reader
        .join()
        .map_err(|_| anyhow::anyhow!("the stderr reader panicked"))?;
    Ok(DevOutput {
        stdout: text,
        stderr_tail,
        workers_from_ms,
        success: status.success(),
    })
}

/// `N results in X s (Y scans/s); …` → (N, X).
fn parse_results_line(stdout: &str) -> Option<(usize, f64)> {
    stdout.lines().find_map(|l| {
        let (n, rest) = l.trim().split_once(" results in ")?;
        let (secs, _) = rest.split_once(" s")?;
        Some((n.parse().ok()?, secs.parse().ok()?))
    })
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or_default()
}

/// The per-command pattern's figures, from its own audit log.
struct PerCommandFigures {
    run: per_command_scan::PerCommandRun,
    calls: usize,
    busiest: usize,
}

/// Starts kubesim in-process with the same pods as the fleets had, and
/// scans them with one exec per command under the same budget.
async fn per_command_side(args: &Args) -> Result<PerCommandFigures> {
    let dir = tempfile::Builder::new()
        .prefix("fleet-bench-per-command-")
        .tempdir_in(&args.work_dir)?;
    let (sim, audit_path) = crate::fleet_audit::start_audited_kubesim(dir.path()).await?;
    let kubeconfig = dir.path().join("admin.kubeconfig");
    std::fs::write(&kubeconfig, sim.admin_kubeconfig())?;
    scanfleet_local_fleet::demo_workload::replicate_sample_pods(&kubeconfig, args.replicas)
        .await
        .context("copying the sample pods")?;
    let since = unix_ms();
    let run = per_command_scan::run(
        &sim.admin_kubeconfig(),
        scanfleet_local_fleet::demo_workload::NAMESPACE,
        args.kube_qps,
        args.kube_burst,
        args.per_command_parallel,
    )
    .await;
    let audit = fleet_audit::read_audit(&audit_path);
    sim.shutdown().await;
    let run = run?;
    let times = fleet_audit::arrivals(&audit?, |r| {
        r.received_unix_ms >= since && r.user == ADMIN_USER && r.subresource == "exec"
    });
    Ok(PerCommandFigures {
        run,
        calls: times.len(),
        busiest: fleet_audit::busiest_second(&times),
    })
}

fn print_side_by_side(runs: &[FleetRun], pc: &PerCommandFigures, args: &Args) {
    let wall = pc.run.wall.as_secs_f64();
    println!(
        "\nper-command exec (train-k8s-container pattern, {} commands per container, {} containers at once, same budget):",
        per_command_scan::CALLS_PER_CONTAINER,
        args.per_command_parallel
    );
    println!(
        "  {} containers, {} exec calls in the audit log ({} opened, {} failed), {:.1} s, {:.2} containers/s, {:.1} calls/container, max {} API calls in 1 s",
        pc.run.containers,
        pc.calls,
        pc.run.opened,
        pc.run.failed,
        wall,
        pc.run.containers as f64 / wall.max(0.001),
        pc.calls as f64 / pc.run.containers.max(1) as f64,
        pc.busiest
    );
    println!(
        "{:>7} {:>22} {:>22}",
        "workers", "wall ours/per-command", "calls ours/per-command"
    );
    for run in runs {
        println!(
            "{:>7} {:>21.1}% {:>21.1}%",
            run.workers,
            100.0 * run.wall_s / wall.max(0.001),
            100.0 * run.calls as f64 / pc.calls.max(1) as f64
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_results_line;

    #[test]
    fn reads_the_fleets_results_line() {
        let out = "table\n\n1206 results in 151.3 s (8.0 scans/s); submit→persisted p50 70.00 s, p99 140.00 s\n";
        assert_eq!(parse_results_line(out), Some((1206, 151.3)));
        assert_eq!(parse_results_line("no figures\n"), None);
    }
}
