//! `scanfleet submit`: ask intake to scan containers. Targets and names go
//! to intake as given: intake owns their rules and names the field that
//! broke one (`target.uri`, …), so there is no second copy here.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use scanfleet_contracts::v1::{
    Approach, LabelSelectorTarget, ProfileRef, SubmitRequest, TargetSelector, profile_ref::Pin,
    target_selector::Selector,
};

use super::EXIT_OK;
use crate::fleet_connection::{ConnectionArgs, refusal, shell_word};
use crate::output::{Column, OutputArgs, print_records, spinner};

/// One row per queued container.
const COLUMNS: [Column; 3] = [
    Column::field("SCAN ID", "scanId"),
    Column::field("TARGET", "target"),
    Column::derived("STATUS", |r| {
        if r["deduplicated"] == true {
            "already submitted".into()
        } else {
            "queued".into()
        }
    }),
];

/// What to scan, with which profile.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The intake's gRPC address [default: the config file's, else
    /// https://127.0.0.1:50051].
    #[arg(long, env = "SCANFLEET_INTAKE")]
    intake: Option<String>,
    #[command(flatten)]
    connection: ConnectionArgs,
    /// One container: k8s://NAMESPACE/POD/CONTAINER.
    #[arg(conflicts_with = "namespace", value_name = "k8s://NS/POD/CONTAINER")]
    target: Option<String>,
    /// Every running pod in this namespace (with --selector to narrow it).
    #[arg(long)]
    namespace: Option<String>,
    /// Label selector, e.g. app=web,tier!=cache.
    #[arg(long, requires = "namespace")]
    selector: Option<String>,
    /// Only this container of each selected pod.
    #[arg(long, requires = "namespace")]
    container: Option<String>,
    /// The cluster (default: intake's own).
    #[arg(long)]
    cluster: Option<String>,
    /// Profile name.
    #[arg(long, default_value = "container-baseline")]
    profile: String,
    /// Profile version.
    #[arg(long, default_value = "1.0.0")]
    profile_version: String,
    /// How to reach the container.
    #[arg(long, default_value = "auto", value_parser = ["auto", "exec", "debug", "sidecar"])]
    approach: String,
    /// Scan deadline in seconds (default: intake's).
    #[arg(long)]
    timeout: Option<u64>,
    /// Repeat-safe key: the same key and target always return the same scan.
    #[arg(long)]
    idempotency_key: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(args: SubmitArgs) -> Result<ExitCode> {
    let selector = match (&args.target, &args.namespace) {
        (Some(uri), None) => Selector::Uri(uri.clone()),
        (None, Some(namespace)) => Selector::LabelSelector(LabelSelectorTarget {
            namespace: namespace.clone(),
            selector: args.selector.clone().unwrap_or_default(),
            container: args.container.clone().unwrap_or_default(),
        }),
        _ => bail!("give a target (k8s://NS/POD/CONTAINER) or --namespace"),
    };
    let approach = match args.approach.as_str() {
        "exec" => Approach::Exec,
        "debug" => Approach::Debug,
        "sidecar" => Approach::Sidecar,
        _ => Approach::Auto,
    };
    let request = SubmitRequest {
        target: Some(TargetSelector {
            cluster: args.cluster.clone().unwrap_or_default(),
            selector: Some(selector),
        }),
        profile: Some(ProfileRef {
            name: args.profile.clone(),
            pin: Some(Pin::Version(args.profile_version.clone())),
        }),
        approach: approach as i32,
        threshold: None,
        timeout: args.timeout.map(|s| prost_types::Duration {
            seconds: s as i64,
            nanos: 0,
        }),
        profile_inputs: Default::default(),
        idempotency_key: args.idempotency_key.clone().unwrap_or_default(),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(async move {
            let connection = args.connection.settle(args.intake.as_deref(), None)?;
            let progress = spinner("submitting to intake");
            let response = connection
                .intake()
                .await?
                .submit(request)
                .await
                .map_err(refusal);
            progress.finish_and_clear();
            let response = response?.into_inner();
            let records: Vec<_> = response
                .scans
                .iter()
                .map(|scan| {
                    let t = scan.target.clone().unwrap_or_default();
                    serde_json::json!({
                        "scanId": scan.scan_id,
                        "cluster": t.cluster,
                        "target": format!("k8s://{}/{}/{}", t.namespace, t.pod, t.container),
                        "deduplicated": scan.deduplicated,
                    })
                })
                .collect();
            print_records(args.output.output, &COLUMNS, &records)?;
            // The program as invoked and the connection flags given, so the
            // hint works as printed even when `scanfleet` is not on the PATH
            // and the fleet is not at the defaults.
            let program = std::env::args()
                .next()
                .unwrap_or_else(|| "scanfleet".into());
            let hint = std::iter::once(shell_word(&program))
                .chain(std::iter::once("watch".to_owned()))
                .chain(args.connection.as_flags())
                .chain(response.scans.iter().map(|s| s.scan_id.clone()))
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!(
                "{} scan(s) queued; follow with: {hint}",
                response.scans.len()
            );
            Ok(EXIT_OK)
        })
}
