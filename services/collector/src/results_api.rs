//! The gRPC `Results` service over the store, and the conversions between
//! stored rows and wire messages (the only place that knows both).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use scanfleet_contracts::v1::{
    self, Approach, ComplianceSummary, GetResultRequest, ListResultsRequest, ListResultsResponse,
    ProfileInput, ProfileRef, ScanOutcome, ScanResult, ScanTarget, SeverityCounts,
    ThresholdVerdict, WatchResultsRequest, results_server::Results,
};
use scanfleet_result_store::{PageToken, ResultFilter, ResultStore, StoreError, StoredResult};
use scanfleet_trust::statement::ThresholdVerdict as ClaimedVerdict;
use scanfleet_trust::{InputSource, InputUsed, InputValueUsed, ScanResultPredicate, ScanStatement};
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

/// Maps store errors to gRPC status codes at the edge.
pub fn status(error: StoreError) -> Status {
    match error {
        StoreError::InvalidPageToken(_) => Status::invalid_argument(error.to_string()),
        StoreError::Unavailable(_) => Status::unavailable(error.to_string()),
        other => Status::internal(other.to_string()),
    }
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn millis(field: &str, ts: &prost_types::Timestamp) -> Result<i64, Status> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(Status::invalid_argument(format!(
            "{field}.nanos must be in 0..1e9"
        )));
    }
    ts.seconds
        .checked_mul(1000)
        .and_then(|s| s.checked_add(i64::from(ts.nanos / 1_000_000)))
        .ok_or_else(|| Status::invalid_argument(format!("{field} is out of range")))
}

fn approach(name: &str) -> Approach {
    match name {
        "exec" => Approach::Exec,
        "debug" => Approach::Debug,
        "sidecar" => Approach::Sidecar,
        _ => Approach::Unspecified,
    }
}

/// What the stored (signed, verified) statement claims beyond the row's
/// columns: the inputs, the requester and the threshold applied.
fn provenance(r: &StoredResult) -> Option<ScanResultPredicate> {
    ScanStatement::from_payload(r.statement.as_bytes())
        .ok()
        .map(|s| s.predicate)
}

fn inputs_to_wire(inputs: &[InputUsed]) -> Vec<ProfileInput> {
    inputs
        .iter()
        .map(|i| {
            let (values, list) = match &i.value {
                InputValueUsed::One(v) => (vec![v.clone()], false),
                InputValueUsed::Many(v) => (v.clone(), true),
            };
            ProfileInput {
                name: i.name.clone(),
                values,
                list,
                overridden: i.source == InputSource::Override,
            }
        })
        .collect()
}

/// A stored row as the wire message.
pub fn to_wire(r: &StoredResult) -> ScanResult {
    let claimed = provenance(r);
    let verdict = claimed.as_ref().and_then(|p| p.threshold.clone());
    ScanResult {
        scan_id: r.scan_id.clone(),
        target: Some(ScanTarget {
            cluster: r.cluster.clone(),
            namespace: r.namespace.clone(),
            pod: r.pod.clone(),
            container: r.container.clone(),
            image: Some(v1::ImageRef {
                reference: r.image.clone(),
                digest: r.image_digest.clone(),
            }),
            registry_image: None,
        }),
        profile: Some(ProfileRef {
            name: r.profile_name.clone(),
            pin: Some(v1::profile_ref::Pin::Version(r.profile_version.clone())),
        }),
        approach: approach(&r.approach) as i32,
        outcome: if r.completed {
            ScanOutcome::Completed
        } else {
            ScanOutcome::Failed
        } as i32,
        failure: r.failure.clone().unwrap_or_default(),
        summary: r.counts.as_ref().map(|c| ComplianceSummary {
            passed: c.passed as u32,
            failed: c.failed as u32,
            not_reviewed: c.not_reviewed as u32,
            not_applicable: c.not_applicable as u32,
            error: c.error as u32,
            compliance_percent: c.compliance_percent,
            failed_by_severity: Some(SeverityCounts {
                critical: c.failed_critical as u32,
                high: c.failed_high as u32,
                medium: c.failed_medium as u32,
                low: c.failed_low as u32,
            }),
        }),
        threshold: r.threshold_passed.map(|passed| {
            let v = verdict.unwrap_or(ClaimedVerdict {
                threshold: String::new(),
                sha256: None,
                passed,
                failures: Vec::new(),
            });
            ThresholdVerdict {
                threshold: v.threshold,
                passed,
                failures: v.failures,
                sha256: v.sha256.unwrap_or_default(),
            }
        }),
        started_at: Some(timestamp(r.started_at_ms)),
        finished_at: Some(timestamp(r.finished_at_ms)),
        persisted_at: Some(timestamp(r.persisted_at_ms)),
        signer_key_id: r.signer_key_id.clone(),
        envelope: r.envelope.clone(),
        report_sha256: r.report_sha256.clone().unwrap_or_default(),
        report_size: r.report_size.unwrap_or(0) as u64,
        inputs: claimed
            .as_ref()
            .map(|p| inputs_to_wire(&p.inputs))
            .unwrap_or_default(),
        requested_by: claimed.and_then(|p| p.requested_by).unwrap_or_default(),
    }
}

/// The wire filter as a store filter.
///
/// # Errors
/// `INVALID_ARGUMENT` naming the bad field.
pub fn filter_from_wire(filter: Option<v1::ResultFilter>) -> Result<ResultFilter, Status> {
    let Some(f) = filter else {
        return Ok(ResultFilter::default());
    };
    let text = |s: String| (!s.is_empty()).then_some(s);
    Ok(ResultFilter {
        cluster: text(f.cluster),
        namespace: text(f.namespace),
        pod: text(f.pod),
        image_digest: text(f.image_digest),
        completed: match ScanOutcome::try_from(f.outcome) {
            Ok(ScanOutcome::Completed) => Some(true),
            Ok(ScanOutcome::Failed) => Some(false),
            Ok(ScanOutcome::Unspecified) => None,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "filter.outcome: unknown value {}",
                    f.outcome
                )));
            }
        },
        threshold_passed: f.threshold_passed,
        since_ms: f
            .since
            .as_ref()
            .map(|t| millis("filter.since", t))
            .transpose()?,
        until_ms: f
            .until
            .as_ref()
            .map(|t| millis("filter.until", t))
            .transpose()?,
    })
}

/// Whether a stored row passes a filter (for `Watch`, which filters in
/// memory what the store filters in SQL).
pub fn matches(filter: &ResultFilter, r: &StoredResult) -> bool {
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    eq(&filter.cluster, &r.cluster)
        && eq(&filter.namespace, &r.namespace)
        && eq(&filter.pod, &r.pod)
        && eq(&filter.image_digest, &r.image_digest)
        && filter.completed.is_none_or(|c| c == r.completed)
        && filter
            .threshold_passed
            .is_none_or(|t| r.threshold_passed == Some(t))
        && filter.since_ms.is_none_or(|s| r.finished_at_ms >= s)
        && filter.until_ms.is_none_or(|u| r.finished_at_ms < u)
}

/// The `Results` service.
pub struct ResultsService {
    /// The store.
    pub store: Arc<ResultStore>,
    /// Newly stored results.
    pub persisted: broadcast::Sender<StoredResult>,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<ScanResult, Status>> + Send>>;

#[tonic::async_trait]
impl Results for ResultsService {
    async fn get(
        &self,
        request: Request<GetResultRequest>,
    ) -> Result<Response<ScanResult>, Status> {
        let scan_id = request.into_inner().scan_id;
        if scan_id.is_empty() {
            return Err(Status::invalid_argument("scan_id is required"));
        }
        match self.store.get(&scan_id).await.map_err(status)? {
            Some(r) => Ok(Response::new(to_wire(&r))),
            None => Err(Status::not_found(format!("no result for scan {scan_id}"))),
        }
    }

    async fn list(
        &self,
        request: Request<ListResultsRequest>,
    ) -> Result<Response<ListResultsResponse>, Status> {
        let request = request.into_inner();
        let filter = filter_from_wire(request.filter)?;
        let token = if request.page_token.is_empty() {
            None
        } else {
            Some(PageToken::decode(&request.page_token).map_err(status)?)
        };
        let page = self
            .store
            .list(&filter, request.page_size, token.as_ref())
            .await
            .map_err(status)?;
        Ok(Response::new(ListResultsResponse {
            results: page.results.iter().map(to_wire).collect(),
            next_page_token: page.next.map(|t| t.encode()).unwrap_or_default(),
        }))
    }

    async fn get_report(
        &self,
        request: Request<GetResultRequest>,
    ) -> Result<Response<v1::Report>, Status> {
        let scan_id = request.into_inner().scan_id;
        if scan_id.is_empty() {
            return Err(Status::invalid_argument("scan_id is required"));
        }
        match self.store.report(&scan_id).await.map_err(status)? {
            Some(r) => Ok(Response::new(v1::Report {
                scan_id,
                media_type: r.media_type,
                sha256: r.sha256,
                body: r.body,
            })),
            None => Err(Status::not_found(format!(
                "no report stored for scan {scan_id}"
            ))),
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<WatchResultsRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let request = request.into_inner();
        let filter = filter_from_wire(request.filter)?;
        // Subscribe before reading existing rows so nothing falls between.
        let live = self.persisted.subscribe();
        let mut wanted: std::collections::BTreeSet<String> =
            request.scan_ids.iter().cloned().collect();
        let by_id = !wanted.is_empty();
        let mut initial = Vec::new();
        if by_id {
            for id in &request.scan_ids {
                if let Some(r) = self.store.get(id).await.map_err(status)? {
                    wanted.remove(id);
                    initial.push(r);
                }
            }
        } else if request.include_existing {
            let mut token = None;
            loop {
                let page = self
                    .store
                    .list(&filter, 0, token.as_ref())
                    .await
                    .map_err(status)?;
                initial.extend(page.results);
                match page.next {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
        }
        let stream = async_stream(initial, by_id, wanted, filter, live);
        Ok(Response::new(Box::pin(stream)))
    }
}

fn async_stream(
    initial: Vec<StoredResult>,
    by_id: bool,
    mut wanted: std::collections::BTreeSet<String>,
    filter: ResultFilter,
    mut live: broadcast::Receiver<StoredResult>,
) -> impl Stream<Item = Result<ScanResult, Status>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    // A row stored between subscribing and listing arrives both ways.
    let already_sent: std::collections::BTreeSet<String> =
        initial.iter().map(|r| r.scan_id.clone()).collect();
    tokio::spawn(async move {
        for r in &initial {
            if tx.send(Ok(to_wire(r))).await.is_err() {
                return;
            }
        }
        if by_id && wanted.is_empty() {
            return;
        }
        loop {
            match live.recv().await {
                Ok(r) => {
                    let relevant = if by_id {
                        wanted.remove(&r.scan_id)
                    } else {
                        matches(&filter, &r) && !already_sent.contains(&r.scan_id)
                    };
                    if relevant && tx.send(Ok(to_wire(&r))).await.is_err() {
                        return;
                    }
                    if by_id && wanted.is_empty() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let _ = tx
                        .send(Err(Status::data_loss(format!(
                            "watcher fell {n} results behind; re-list and watch again"
                        ))))
                        .await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
