//! `scanfleet results` and `scanfleet watch`: reading verified results from a
//! collector over gRPC.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use scanfleet_contracts::v1::{
    DriftReport, DriftSide, GetResultRequest, ListResultsRequest, ResultFilter, ScanOutcome,
    ScanResult, WatchResultsRequest, results_client::ResultsClient,
};
use scanfleet_edge_access::Authenticated;
use scanfleet_scan_intents::{ClusterName, NamespaceName, PodName};
use scanfleet_trust::{IN_TOTO_PAYLOAD_TYPE, ScanStatement, TrustedKeys};
use sha2::{Digest, Sha256};

use super::{EXIT_OK, exit_rejected, keys};
use crate::files;
use crate::fleet_connection::{ConnectionArgs, refusal};
use crate::output::{
    Column, OutputArgs, OutputFormat, field_text, print_record, print_records, rfc3339, spinner,
    stream_line,
};

/// Where the collector's gRPC API is, and who the CLI is to it.
#[derive(Debug, Args)]
pub struct CollectorArgs {
    /// The collector's gRPC address [default: the config file's, else
    /// https://127.0.0.1:50052].
    #[arg(long, env = "SCANFLEET_COLLECTOR")]
    collector: Option<String>,
    #[command(flatten)]
    connection: ConnectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum ResultsCommand {
    #[command(after_help = super::examples::RESULTS_LIST)]
    /// List results, newest first.
    List(ListArgs),
    #[command(after_help = super::examples::RESULTS_SHOW)]
    /// Show one result's fields.
    Show(ShowArgs),
    #[command(after_help = super::examples::RESULTS_EXPORT)]
    /// Write a result's HDF report and/or signed envelope to files. With
    /// --key, the envelope is verified and the report checked against the
    /// digest it signs before anything is written (exit 1 when either
    /// check fails).
    Export(ExportArgs),
    #[command(after_help = super::examples::RESULTS_DRIFT)]
    /// Show a container scan's drift: the controls whose status differs
    /// from the image scan of the same digest and profile version (not
    /// found until such an image scan is stored).
    Drift(DriftArgs),
}

/// `scanfleet results list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    collector: CollectorArgs,
    /// Only this cluster.
    #[arg(long, value_parser = |s: &str| ClusterName::new(s))]
    cluster: Option<ClusterName>,
    /// Only this namespace.
    #[arg(long, value_parser = |s: &str| NamespaceName::new(s))]
    namespace: Option<NamespaceName>,
    /// Only this pod.
    #[arg(long, value_parser = |s: &str| PodName::new(s))]
    pod: Option<PodName>,
    /// Only this image digest (sha256:…).
    #[arg(long)]
    image_digest: Option<String>,
    /// Only completed or failed scans.
    #[arg(long, value_parser = ["completed", "failed"])]
    outcome: Option<String>,
    /// At most this many results.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[command(flatten)]
    output: OutputArgs,
}

/// `scanfleet results show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    collector: CollectorArgs,
    /// The scan id.
    scan_id: String,
    #[command(flatten)]
    output: OutputArgs,
}

/// `scanfleet results drift`.
#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    collector: CollectorArgs,
    /// The container scan's id.
    scan_id: String,
    #[command(flatten)]
    output: OutputArgs,
}

/// `scanfleet results export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    collector: CollectorArgs,
    /// The scan id.
    scan_id: String,
    /// Write the HDF report here.
    #[arg(long)]
    hdf: Option<PathBuf>,
    /// Write the DSSE envelope here.
    #[arg(long)]
    envelope: Option<PathBuf>,
    /// A trusted signing public key (SPKI PEM) to verify with; repeat for
    /// rotation.
    #[arg(long = "key")]
    keys: Vec<PathBuf>,
}

/// `scanfleet watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    collector: CollectorArgs,
    /// Scan ids to wait for.
    #[arg(required = true)]
    scan_ids: Vec<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    #[command(flatten)]
    output: OutputArgs,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn connect(args: &CollectorArgs) -> Result<ResultsClient<Authenticated>> {
    args.connection
        .settle(None, args.collector.as_deref())?
        .results()
        .await
}

fn grpc(status: tonic::Status) -> anyhow::Error {
    refusal(status)
}

/// Runs `scanfleet results …`.
pub fn run(cmd: ResultsCommand) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            ResultsCommand::List(args) => list(args).await,
            ResultsCommand::Show(args) => show(args).await,
            ResultsCommand::Export(args) => export(args).await,
            ResultsCommand::Drift(args) => drift(args).await,
        }
    })
}

async fn list(args: ListArgs) -> Result<ExitCode> {
    let mut client = connect(&args.collector).await?;
    let filter = ResultFilter {
        cluster: args
            .cluster
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        namespace: args
            .namespace
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default(),
        pod: args.pod.map(|p| p.as_str().to_owned()).unwrap_or_default(),
        image_digest: args.image_digest.unwrap_or_default(),
        outcome: match args.outcome.as_deref() {
            Some("completed") => ScanOutcome::Completed as i32,
            Some("failed") => ScanOutcome::Failed as i32,
            _ => ScanOutcome::Unspecified as i32,
        },
        ..Default::default()
    };
    let mut results = Vec::new();
    let mut token = String::new();
    let progress = spinner("reading results");
    while (results.len() as u32) < args.limit {
        let page = client
            .list(ListResultsRequest {
                filter: Some(filter.clone()),
                page_size: (args.limit - results.len() as u32).min(500),
                page_token: token,
            })
            .await
            .map_err(grpc)?
            .into_inner();
        results.extend(page.results);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        progress.set_message(format!("read {} results", results.len()));
    }
    progress.finish_and_clear();
    let records: Vec<_> = results.iter().map(json).collect();
    print_records(args.output.output, &COLUMNS, &records)?;
    Ok(EXIT_OK)
}

async fn show(args: ShowArgs) -> Result<ExitCode> {
    let mut client = connect(&args.collector).await?;
    let result = client
        .get(GetResultRequest {
            scan_id: args.scan_id,
        })
        .await
        .map_err(grpc)?
        .into_inner();
    print_record(args.output.output, &json(&result))?;
    Ok(EXIT_OK)
}

/// `-o json|yaml` print the whole report; the table has one row per
/// drifted control, after a summary line on stderr (so stdout is only the
/// table).
async fn drift(args: DriftArgs) -> Result<ExitCode> {
    let mut client = connect(&args.collector).await?;
    let report = client
        .get_drift(GetResultRequest {
            scan_id: args.scan_id,
        })
        .await
        .map_err(grpc)?
        .into_inner();
    let record = drift_json(&report);
    match args.output.output {
        OutputFormat::Table => {
            eprintln!(
                "scan {} against image scan {} ({}@{}): {} drifted control(s)",
                report.container_scan_id,
                report.image_scan_id,
                report.profile_name,
                report.profile_version,
                report.controls.len()
            );
            let controls = record["controls"].as_array().cloned().unwrap_or_default();
            print_records(OutputFormat::Table, &DRIFT_COLUMNS, &controls)?;
        }
        format => print_record(format, &record)?,
    }
    Ok(EXIT_OK)
}

/// A drift report as `-o json|yaml` prints it.
fn drift_json(d: &DriftReport) -> serde_json::Value {
    let side = |s: &Option<DriftSide>| {
        let s = s.clone().unwrap_or_default();
        serde_json::json!({"status": s.status, "message": s.message})
    };
    serde_json::json!({
        "containerScanId": d.container_scan_id,
        "imageScanId": d.image_scan_id,
        "profile": {"name": d.profile_name, "version": d.profile_version},
        "computedAt": d.computed_at.map(|ts| rfc3339(ts.seconds, ts.nanos)),
        "controls": d.controls.iter().map(|c| serde_json::json!({
            "id": c.id,
            "title": c.title,
            "image": side(&c.image),
            "container": side(&c.container),
        })).collect::<Vec<_>>(),
    })
}

/// The drift table: one row per control.
const DRIFT_COLUMNS: [Column; 4] = [
    Column::field("CONTROL", "id"),
    Column::derived("IMAGE", |c| field_text(c["image"].get("status"))),
    Column::derived("CONTAINER", |c| field_text(c["container"].get("status"))),
    Column::derived("CONTAINER MESSAGE", |c| {
        field_text(c["container"].get("message"))
    }),
];

async fn export(args: ExportArgs) -> Result<ExitCode> {
    if args.hdf.is_none() && args.envelope.is_none() {
        bail!("nothing to export: give --hdf FILE and/or --envelope FILE");
    }
    let scan_id = args.scan_id;
    let mut client = connect(&args.collector).await?;
    let request = || GetResultRequest {
        scan_id: scan_id.clone(),
    };
    let progress = spinner(format!("exporting {scan_id}"));
    let result = client.get(request()).await.map_err(grpc)?.into_inner();
    let report = match args.hdf {
        Some(_) => Some(
            client
                .get_report(request())
                .await
                .map_err(grpc)?
                .into_inner()
                .body,
        ),
        None => None,
    };
    progress.finish_and_clear();
    if !args.keys.is_empty() {
        let trusted: TrustedKeys = args
            .keys
            .iter()
            .map(|p| keys::load_public_key(p))
            .collect::<Result<_>>()?;
        if let Err(rejection) = verify_export(&trusted, &result.envelope, report.as_deref())? {
            eprintln!("rejected: scan {scan_id}: {rejection}");
            return Ok(exit_rejected());
        }
    }
    if let (Some(path), Some(report)) = (&args.hdf, &report) {
        files::write_output(Some(path), report)?;
    }
    if let Some(path) = &args.envelope {
        files::write_output(Some(path), &result.envelope)?;
    }
    Ok(EXIT_OK)
}

/// Verifies the envelope and, when a report was fetched, that it is the
/// one the statement signs. The inner `Err` is a rejection (exit 1); the
/// outer one a statement that cannot be read at all (exit 2).
fn verify_export(
    trusted: &TrustedKeys,
    envelope: &[u8],
    report: Option<&[u8]>,
) -> Result<Result<(), String>> {
    let verified = match trusted.verify_json(
        envelope,
        scanfleet_trust::DEFAULT_MAX_ENVELOPE_BYTES,
        Some(IN_TOTO_PAYLOAD_TYPE),
    ) {
        Ok(v) => v,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let statement = ScanStatement::from_payload(&verified.payload)?;
    if let Some(report) = report {
        let signed = statement
            .predicate
            .report
            .as_ref()
            .map(|r| r.sha256.clone());
        let actual = hex::encode(Sha256::digest(report));
        if signed.as_deref() != Some(actual.as_str()) {
            return Ok(Err(format!(
                "report digest {actual} is not the signed {}",
                signed.unwrap_or_else(|| "(none)".into())
            )));
        }
    }
    eprintln!("verified: signed by trusted key {}", verified.key_id);
    Ok(Ok(()))
}

/// Runs `scanfleet watch`.
pub fn watch(args: WatchArgs) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        let mut client = connect(&args.collector).await?;
        let mut pending: BTreeSet<String> = args.scan_ids.iter().cloned().collect();
        let bar = indicatif::ProgressBar::new(pending.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} results [{elapsed}] {msg}",
            )
            .map_err(|e| anyhow!("{e}"))?,
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        let mut stream = client
            .watch(WatchResultsRequest {
                filter: None,
                scan_ids: args.scan_ids.clone(),
                include_existing: true,
            })
            .await
            .map_err(grpc)?
            .into_inner();
        let mut failed = 0;
        let mut shown = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
        while !pending.is_empty() {
            let next = tokio::time::timeout_at(deadline, stream.message()).await;
            let result = match next {
                Err(_) => break,
                Ok(Err(status)) => return Err(grpc(status)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(r))) => r,
            };
            pending.remove(&result.scan_id);
            if result.outcome != ScanOutcome::Completed as i32 {
                failed += 1;
            }
            bar.inc(1);
            let line = stream_line(args.output.output, &COLUMNS, &json(&result), shown == 0)?;
            shown += 1;
            bar.suspend(|| println!("{line}"));
        }
        bar.finish_and_clear();
        if !pending.is_empty() {
            eprintln!(
                "timed out after {} s; still waiting for: {}",
                args.timeout,
                pending.into_iter().collect::<Vec<_>>().join(", ")
            );
            return Ok(exit_rejected());
        }
        if failed > 0 {
            eprintln!("{failed} scan(s) did not complete");
            return Ok(exit_rejected());
        }
        Ok(EXIT_OK)
    })
}

/// The table of results: the fields people scan for, from the JSON record.
const COLUMNS: [Column; 7] = [
    Column::field("SCAN ID", "scanId"),
    Column::field("TARGET", "target"),
    Column::field("OUTCOME", "outcome"),
    Column::derived("COMPL.", |r| match r["compliancePercent"].as_f64() {
        Some(p) => format!("{p:.1}%"),
        None => "-".into(),
    }),
    Column::derived("C/H/M/L", |r| {
        if r["compliancePercent"].is_null() {
            return "-".into();
        }
        let f = &r["failedBySeverity"];
        format!(
            "{}/{}/{}/{}",
            f["critical"], f["high"], f["medium"], f["low"]
        )
    }),
    Column::derived("THRESHOLD", |r| match r["thresholdPassed"].as_bool() {
        Some(true) => "pass".into(),
        Some(false) => "FAIL".into(),
        None => "-".into(),
    }),
    Column::derived("SIGNER", |r| {
        let id = field_text(r.get("signerKeyId"));
        id.get(..12).unwrap_or(&id).to_owned()
    }),
];

/// A result as `-o json|yaml` prints it (and the table reads it).
fn json(r: &ScanResult) -> serde_json::Value {
    let t = r.target.clone().unwrap_or_default();
    let s = r.summary.unwrap_or_default();
    let f = s.failed_by_severity.unwrap_or_default();
    serde_json::json!({
        "scanId": r.scan_id,
        "target": format!("{}/{}/{}", t.namespace, t.pod, t.container),
        "cluster": t.cluster,
        "namespace": t.namespace,
        "pod": t.pod,
        "container": t.container,
        "imageDigest": t.image.map(|i| i.digest).unwrap_or_default(),
        "outcome": if r.outcome == ScanOutcome::Completed as i32 { "completed" } else { "failed" },
        "failure": r.failure,
        "compliancePercent": r.summary.map(|s| s.compliance_percent),
        "passed": s.passed,
        "failed": s.failed,
        "failedBySeverity": {"critical": f.critical, "high": f.high, "medium": f.medium, "low": f.low},
        "thresholdPassed": r.threshold.as_ref().map(|t| t.passed),
        "signerKeyId": r.signer_key_id,
        "reportSha256": r.report_sha256,
        "finishedAt": r.finished_at.map(|ts| rfc3339(ts.seconds, ts.nanos)),
    })
}
