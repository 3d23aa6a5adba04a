//! Scale figures for kubesim: starts N pods (default 500) in one server and
//! prints how long they took to reach Running and how much memory kubesim
//! and the container processes use. Figures only; nothing is asserted.
//!
//! Usage: `cargo run --release -p kubesim --bin kubesim-scale -- [PODS]`

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Proportional set size: shared pages (busybox, libc of the launchers)
/// are split among the processes mapping them, so the sum is meaningful.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn group_pids(pgid: i32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if rest.split_whitespace().nth(2).and_then(|g| g.parse().ok()) == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pods: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("PODS must be a number")?
        .unwrap_or(500);
    let mut fixture = kubesim::fixture::Fixture::parse("demo", kubesim::fixture::DEMO)?;
    fixture.pods.clear();
    fixture.namespaces.push(kubesim::fixture::NamespaceSpec {
        name: "scale".into(),
        labels: Default::default(),
    });
    for i in 0..pods {
        fixture.pods.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("p{i:04}"), "namespace": "scale"},
            "spec": {"containers": [{"name": "c", "image": "kubesim.local/scanner:1.0",
                                     "securityContext": {"runAsUser": 10001}}]}}));
    }
    let rss_before = rss_kib(std::process::id());
    let t0 = Instant::now();
    let sim = kubesim::Kubesim::start(kubesim::Config::with_fixture(fixture)).await?;
    let created = t0.elapsed();
    let pending = sim.wait_pods_settled(Duration::from_secs(600)).await;
    let running_at = t0.elapsed();
    let running = sim.state().runtime.running_containers();
    let server_rss = rss_kib(std::process::id());
    let procs = group_pids(sim.state().runtime.process_group());
    let container_rss: u64 = procs.iter().map(|p| rss_kib(*p)).sum();
    let container_pss: u64 = procs.iter().map(|p| pss_kib(*p)).sum();
    println!("pods requested:              {pods}");
    println!(
        "containers running:          {running} (pending: {})",
        pending.len()
    );
    println!(
        "API objects created in:      {:.2} s",
        created.as_secs_f64()
    );
    println!(
        "all pods Running after:      {:.2} s",
        running_at.as_secs_f64()
    );
    println!(
        "kubesim RSS:                 {:.1} MiB (before start {:.1} MiB)",
        server_rss as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
    println!(
        "container-side processes:    {} using {:.1} MiB PSS ({:.1} MiB summed RSS)",
        procs.len(),
        container_pss as f64 / 1024.0,
        container_rss as f64 / 1024.0
    );
    let t1 = Instant::now();
    sim.shutdown().await;
    println!(
        "shutdown (all killed) in:    {:.2} s",
        t1.elapsed().as_secs_f64()
    );
    Ok(())
}
