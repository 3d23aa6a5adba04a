//! One run of `scanfleet-dev`, step by step: the signing key, the fleet
//! started in order, the demo workload scanned and reported, then (unless
//! `--once`) the fleet kept running under supervision.

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use crate::bus_credentials::BusCredentials;
use crate::demo_workload::{self, NAMESPACE};
use scanfleet_edge_access::EdgeClient;

use crate::fleet_credentials::FleetIdentities;
use crate::fleet_plan::{FleetPlan, KUBESIM};
use crate::signing_keys::{self, SigningKeys};
use crate::supervisor::Supervisor;
use crate::{next_steps, report_table};

/// Runs the fleet until `--once` is done or a child is given up on.
///
/// # Errors
/// When a step fails or a child keeps crashing.
pub async fn run(plan: &FleetPlan<'_>, supervisor: &mut Supervisor) -> Result<ExitCode> {
    let options = plan.options;
    eprintln!("data dir: {}", plan.data.root().display());
    let keys = signing_keys::load_or_create(&plan.data.keys(), options.rotate_signing_key)?;
    eprintln!(
        "✓ signing key {} ({}; {} trusted)",
        keys.key_id,
        if keys.created {
            "new"
        } else {
            "reused from the data dir"
        },
        keys.trusted_files.len()
    );
    let identities = FleetIdentities::new(
        plan.data,
        &plan.pki,
        &plan.ports.intake_url(),
        &plan.ports.collector_url(),
    );
    let operator = start_fleet(plan, &keys, &identities, supervisor).await?;
    let incomplete = tokio::select! {
        r = scan_demo_workload(plan, &keys, &operator) => r?,
        e = supervisor.supervise() => return Err(e),
    };
    report_table::print_memory(&supervisor.running("worker"));
    if options.once {
        if incomplete > 0 {
            eprintln!("{incomplete} scans did not complete");
            return Ok(ExitCode::from(1));
        }
        return Ok(ExitCode::SUCCESS);
    }
    next_steps::print(
        plan.programs.cli.as_deref(),
        &next_steps::Access {
            cli_config: &identities.cli_config,
            ca_file: &plan.pki.ca_file,
            token_file: &identities.operator_token_file,
        },
        &plan.ports,
        plan.data,
    );
    Err(supervisor.supervise().await)
}

/// Starts every child in order, each once what it connects to is ready;
/// the identities the edges check are issued as soon as kubesim runs, and
/// again whenever it is restarted, before the children that read them are
/// restarted. Returns the operator, as a client.
async fn start_fleet(
    plan: &FleetPlan<'_>,
    keys: &SigningKeys,
    identities: &FleetIdentities,
    supervisor: &mut Supervisor,
) -> Result<EdgeClient> {
    let ports = &plan.ports;
    let bus = BusCredentials::load_or_create(&plan.data.bus())?;
    bus.write_server_config()?;
    supervisor.start(plan.nats_server()).await?;
    bus.bootstrap(&ports.nats_url()).await?;
    eprintln!(
        "✓ nats-server (JetStream, TLS, one identity per service) at {}",
        ports.nats_url()
    );
    supervisor.start(plan.kubesim()).await?;
    if plan.options.replicas > 0 {
        demo_workload::replicate_sample_pods(&plan.data.kubeconfig(), plan.options.replicas)
            .await?;
    }
    eprintln!(
        "✓ kubesim with the demo workloads (namespace {NAMESPACE}; audit log {})",
        plan.data.audit_log().display()
    );
    let operator = identities.issue().await?;
    let renewed = identities.clone();
    supervisor.renew_after_restart(
        KUBESIM,
        Box::new(move || {
            let identities = renewed.clone();
            Box::pin(async move { identities.issue().await.map(drop) })
        }),
    )?;
    eprintln!(
        "✓ TLS from a throwaway CA ({}); reviewer and operator identities on kubesim",
        plan.pki.ca_file.display()
    );
    supervisor
        .start(plan.collector(&keys.trusted_files, identities))
        .await?;
    eprintln!(
        "✓ collector (SQLite) gRPC {} HTTP https://{}",
        ports.collector_url(),
        ports.collector_http()
    );
    supervisor.start(plan.intake(identities)).await?;
    eprintln!("✓ intake gRPC {}", ports.intake_url());
    start_workers(plan, keys, supervisor).await?;
    Ok(operator)
}

async fn start_workers(
    plan: &FleetPlan<'_>,
    keys: &SigningKeys,
    supervisor: &mut Supervisor,
) -> Result<()> {
    let config = plan.data.worker_config();
    std::fs::write(&config, plan.worker_config())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", config.display()))?;
    for index in 0..plan.options.workers {
        supervisor
            .start(plan.worker(index, &keys.private_key))
            .await?;
    }
    eprintln!(
        "✓ {} workers (concurrency {} each)",
        plan.options.workers, plan.options.concurrency
    );
    Ok(())
}

/// Scans every sample container, prints the table and the figures, and
/// returns how many scans did not complete.
async fn scan_demo_workload(
    plan: &FleetPlan<'_>,
    keys: &SigningKeys,
    operator: &EdgeClient,
) -> Result<usize> {
    let submitted_at = Instant::now();
    let submitted_wall = SystemTime::now();
    let scans = demo_workload::submit_all(operator, &plan.ports.intake_url()).await?;
    eprintln!(
        "→ queued {} scans (every container in namespace {NAMESPACE})",
        scans.len()
    );
    let results = demo_workload::wait_for_results(
        operator,
        &plan.ports.collector_url(),
        &scans,
        Duration::from_secs(plan.options.timeout_secs),
    )
    .await?;
    let elapsed = submitted_at.elapsed();
    report_table::print_table(&scans, &results, &keys.trusted);
    report_table::print_figures(&results, submitted_wall, elapsed);
    Ok(report_table::incomplete(&scans, &results))
}
