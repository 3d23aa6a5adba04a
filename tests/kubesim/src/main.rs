//! The `kubesim` binary: parses flags, starts [`kubesim::Kubesim`], writes the
//! admin kubeconfig, prints the URL, and runs until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// A Kubernetes API stand-in whose containers are real processes.
#[derive(Debug, Parser)]
#[command(name = "kubesim", version)]
struct Args {
    /// Fixture YAML (namespaces, images, pods); the demo fixture when omitted.
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write the cluster-admin kubeconfig (mode 0600).
    #[arg(long)]
    kubeconfig_out: PathBuf,
    /// Audit log: one JSON line per request.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Fault rules (YAML list of {path, rate, fault}).
    #[arg(long)]
    faults: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let fixture = match &args.fixture {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read fixture {}", p.display()))?;
            kubesim::fixture::Fixture::parse(&p.display().to_string(), &text)?
        }
        None => kubesim::fixture::Fixture::parse("demo", kubesim::fixture::DEMO)?,
    };
    let mut config = kubesim::Config::with_fixture(fixture);
    config.listen = args.listen;
    config.audit_log = args.audit_log.clone();
    if let Some(p) = &args.faults {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read faults {}", p.display()))?;
        config.faults = yaml_serde::from_str(&text)
            .with_context(|| format!("invalid fault rules in {}", p.display()))?;
    }
    let sim = kubesim::Kubesim::start(config).await?;
    kubesim::kubeconfig::write(&args.kubeconfig_out, &sim.admin_kubeconfig())
        .with_context(|| format!("cannot write {}", args.kubeconfig_out.display()))?;
    let pending = sim
        .wait_pods_settled(std::time::Duration::from_secs(60))
        .await;
    if !pending.is_empty() {
        tracing::warn!("pods still starting: {pending:?}");
    }
    println!("{}", sim.url);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}
