//! Secure scan sessions on kubesim (started here, in-process): API calls
//! and wall time per scan for each approach. Scans run one at a time, so
//! every request in kubesim's audit log between a scan's start and end
//! belongs to that scan (admin calls and per-scan identity calls alike,
//! creation and cleanup included).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use scanfleet_kube_access::{ApiThrottle, ClusterAccess, ThrottleConfig};
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_session::{Approach, ScanRequest, SessionConfig, run_scan};
use scanfleet_test_harness::repo_root;

/// Options for the scan-session benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scans per approach.
    #[arg(long, default_value_t = 20)]
    scans: usize,
    /// Profile directory under the repository's `profiles/`.
    #[arg(long, default_value = "container-baseline")]
    profile: String,
    /// Governor QPS (high by default so the session, not the limiter, is
    /// measured).
    #[arg(long, default_value_t = 1000.0)]
    qps: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Runs the benchmark.
pub fn run(args: &Args) -> Result<()> {
    if args.scans == 0 {
        bail!("--scans must be at least 1");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench(args))
}

async fn bench(args: &Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (sim, audit_path) = crate::fleet_audit::start_audited_kubesim(dir.path()).await?;
    let throttle = ApiThrottle::new(ThrottleConfig {
        qps: args.qps,
        burst: args.qps.ceil() as u32,
        ..ThrottleConfig::default()
    })?;
    let admin =
        ClusterAccess::from_kubeconfig_throttled(&sim.admin_kubeconfig(), "admin", throttle)
            .await?;
    let profile = Arc::new(load_profile_dir(
        &repo_root().join("profiles").join(&args.profile),
        &BTreeMap::new(),
    )?);
    let session = SessionConfig::default();
    println!(
        "scan sessions on kubesim: {} scans per approach, profile {}, governor {} qps",
        args.scans, args.profile, args.qps
    );
    println!(
        "{:<8} {:<28} {:>9} {:>9} {:>9} {:>9}",
        "approach", "target", "calls/scan", "p50", "p99", "max"
    );
    for (approach, pod, container) in [
        (Approach::Exec, "web-misconfigured", "web"),
        (Approach::Debug, "distroless-app", "app"),
        (Approach::Sidecar, "app-with-scanner", "app"),
    ] {
        let mut times = Vec::with_capacity(args.scans);
        let mut calls = Vec::with_capacity(args.scans);
        let mut breakdown = BTreeMap::<String, usize>::new();
        for i in 0..args.scans {
            let before = crate::fleet_audit::read_audit(&audit_path)?.len();
            let started = Instant::now();
            let outcome = run_scan(
                &admin,
                &session,
                ScanRequest {
                    scan_id: format!("01bench{}{i:06}", approach.as_str()),
                    namespace: "apps".into(),
                    pod: pod.into(),
                    container: container.into(),
                    approach,
                    profile: profile.clone(),
                    deadline: Duration::from_secs(60),
                },
            )
            .await
            .with_context(|| format!("{approach} scan {i}"))?;
            times.push(started.elapsed());
            if outcome.approach != approach {
                bail!("asked for {approach}, got {}", outcome.approach);
            }
            let records = crate::fleet_audit::read_audit(&audit_path)?;
            let new = &records[before..];
            calls.push(new.len());
            if i == 0 {
                for r in new {
                    let who = if r.user.starts_with("system:serviceaccount:") {
                        "scan"
                    } else {
                        "admin"
                    };
                    let what = if r.subresource.is_empty() {
                        r.resource.clone()
                    } else {
                        format!("{}/{}", r.resource, r.subresource)
                    };
                    *breakdown
                        .entry(format!("{who} {} {what}", r.verb))
                        .or_default() += 1;
                }
            }
        }
        times.sort();
        let (min_calls, max_calls) = (
            calls.iter().min().copied().unwrap_or(0),
            calls.iter().max().copied().unwrap_or(0),
        );
        let per_scan = if min_calls == max_calls {
            min_calls.to_string()
        } else {
            format!("{min_calls}-{max_calls}")
        };
        println!(
            "{:<8} {:<28} {:>9} {:>8.0}ms {:>8.0}ms {:>8.0}ms",
            approach.as_str(),
            format!("{pod}/{container}"),
            per_scan,
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
        );
        let parts: Vec<String> = breakdown.iter().map(|(k, n)| format!("{n}x {k}")).collect();
        println!("         calls: {}", parts.join(", "));
    }
    sim.shutdown().await;
    Ok(())
}
