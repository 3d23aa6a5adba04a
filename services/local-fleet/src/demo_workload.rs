//! The demo workload: kubesim's sample pods (optionally copied for load),
//! one submission that scans every container in namespace `apps`, and the
//! wait for their verified results.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, ObjectMeta, PostParams};
use scanfleet_contracts::v1::intake_client::IntakeClient;
use scanfleet_contracts::v1::results_client::ResultsClient;
use scanfleet_contracts::v1::target_selector::Selector;
use scanfleet_contracts::v1::{
    LabelSelectorTarget, ListResultsRequest, ProfileRef, ScanResult, SubmitRequest, TargetSelector,
    profile_ref::Pin,
};
use scanfleet_edge_access::{Authenticated, EdgeClient};

/// The namespace of the sample workloads.
pub const NAMESPACE: &str = "apps";

/// Scan id → (pod, container), in scan id order.
pub type Scans = BTreeMap<String, (String, String)>;

/// Creates `replicas` copies of each sample pod and waits until all run.
///
/// # Errors
/// When kubesim refuses or the pods do not all run within two minutes.
pub async fn replicate_sample_pods(kubeconfig: &Path, replicas: usize) -> Result<()> {
    let text = std::fs::read_to_string(kubeconfig)?;
    let access =
        scanfleet_kube_access::ClusterAccess::from_kubeconfig(&text, "kubesim admin").await?;
    let pods: kube::Api<Pod> = kube::Api::namespaced(access.client.clone(), NAMESPACE);
    let samples = pods.list(&ListParams::default()).await?.items;
    for sample in &samples {
        for r in 0..replicas {
            let name = format!("{}-r{r}", sample.metadata.name.clone().unwrap_or_default());
            let copy = Pod {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some(NAMESPACE.into()),
                    labels: sample.metadata.labels.clone(),
                    ..Default::default()
                },
                spec: sample.spec.clone(),
                status: None,
            };
            pods.create(&PostParams::default(), &copy).await?;
        }
    }
    let want = samples.len() * (replicas + 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = pods
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if running >= want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {running} of {want} pods running after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asks intake, as `caller`, to scan every container in the sample
/// namespace.
///
/// # Errors
/// When intake cannot be reached or refuses.
pub async fn submit_all(caller: &EdgeClient, intake: &str) -> Result<Scans> {
    let (channel, auth) = caller.connect(intake).await?;
    let mut client = IntakeClient::with_interceptor(channel, auth);
    let accepted = client
        .submit(SubmitRequest {
            target: Some(TargetSelector {
                cluster: String::new(),
                selector: Some(Selector::LabelSelector(LabelSelectorTarget {
                    namespace: NAMESPACE.into(),
                    ..Default::default()
                })),
            }),
            profile: Some(ProfileRef {
                name: "container-baseline".into(),
                pin: Some(Pin::Version("1.0.0".into())),
            }),
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow!("intake refused the submission: {}", s.message()))?
        .into_inner()
        .scans;
    Ok(accepted
        .into_iter()
        .map(|a| {
            let t = a.target.unwrap_or_default();
            (a.scan_id, (t.pod, t.container))
        })
        .collect())
}

/// Polls the collector until every scan's result is stored or `within`
/// passes; returns what arrived. A collector that is restarting is waited
/// for, not an error.
///
/// # Errors
/// When the collector cannot be reached at first (later outages are
/// waited for).
pub async fn wait_for_results(
    caller: &EdgeClient,
    collector: &str,
    scans: &Scans,
    within: Duration,
) -> Result<BTreeMap<String, ScanResult>> {
    let (channel, auth) = caller.connect(collector).await?;
    let mut client = ResultsClient::with_interceptor(channel, auth);
    let deadline = Instant::now() + within;
    let mut found = BTreeMap::new();
    let mut last = usize::MAX;
    let mut answering = true;
    loop {
        match stored_among(&mut client, scans).await {
            Ok(now) => {
                found = now;
                answering = true;
            }
            Err(e) if answering => {
                eprintln!(
                    "  the collector is not answering ({}); waiting",
                    e.message()
                );
                answering = false;
            }
            Err(_) => {}
        }
        if found.len() != last {
            eprintln!("  {}/{} results persisted", found.len(), scans.len());
            last = found.len();
        }
        if found.len() == scans.len() || Instant::now() > deadline {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn stored_among(
    client: &mut ResultsClient<Authenticated>,
    scans: &Scans,
) -> Result<BTreeMap<String, ScanResult>, tonic::Status> {
    let mut found = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list(ListResultsRequest {
                page_size: 500,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        for r in page.results {
            if scans.contains_key(&r.scan_id) {
                found.insert(r.scan_id.clone(), r);
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(found);
        }
        page_token = page.next_page_token;
    }
}
