//! The gRPC `Intake` service: validate, expand, queue, report.
//!
//! Every call is admitted first: the caller is who their bearer token or
//! client certificate proves (`UNAUTHENTICATED` otherwise), within their
//! rate limit; that identity, never anything the caller writes about
//! itself, is the principal recorded in the intent, the status book and
//! the signed statement. Rights are checked before anything is queued
//! (`submission_rights`).
//!
//! Wire types are converted into the domain's `Submission` here and nowhere
//! else; every rule lives in `scanfleet-scan-intents`. A request that breaks
//! any rule is refused whole with `INVALID_ARGUMENT` listing every violation
//! by field path; a full queue is `RESOURCE_EXHAUSTED`, never a silent drop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_nats::jetstream::{self, kv};
use prost::Message as _;
use scanfleet_bus::{EnqueueError, ScanState, ScanStatusBook};
use scanfleet_contracts::v1::{
    self, AcceptedScan, GetScanRequest, ScanIntent, ScanStatus, SubmitBatchRequest,
    SubmitBatchResponse, SubmitRequest, SubmitResponse, intake_server::Intake, target_selector,
};
use scanfleet_edge_access::Gatekeeper;
use scanfleet_scan_engine::adapters::profile_catalog::{CatalogError, Edition, ProfileCatalog};
use scanfleet_scan_intents::{
    ClusterName, ContainerRef, FieldViolation, ImageSpec, IntakeLimits, Intent, InvalidArgument,
    LockedInputs, Occasion, ProfilePin, ScanId, Submission, Target, Trigger, submission::PinInput,
    submission::TargetInput, submission::ValidSubmission, validate_batch,
};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::cluster_queues::ClusterQueues;
use crate::config::Config;
use crate::queueing::{IntentQueueing, new_scan_id};
use crate::submission_rights::{authorize_status, authorize_submissions};

/// The `Intake` service.
pub struct IntakeService {
    queueing: IntentQueueing,
    status: ScanStatusBook,
    idempotency: kv::Store,
    config: Config,
    limits: IntakeLimits,
    /// A pod directory per cluster intake can reach (label selectors).
    directories: crate::pod_directory::PodDirectories,
    queues: ClusterQueues,
    catalog: Option<Arc<ProfileCatalog>>,
    gate: Arc<Gatekeeper>,
}

impl IntakeService {
    /// Builds the service over a JetStream context whose topology exists.
    ///
    /// # Errors
    /// When the status or idempotency buckets are missing.
    pub async fn new(
        js: jetstream::Context,
        config: Config,
        directories: crate::pod_directory::PodDirectories,
        gate: Arc<Gatekeeper>,
    ) -> Result<Self, scanfleet_bus::BusError> {
        let status = ScanStatusBook::open(&js).await?;
        let idempotency = js
            .get_key_value(scanfleet_bus::topology::IDEMPOTENCY_BUCKET)
            .await
            .map_err(|e| scanfleet_bus::BusError::Topology {
                what: scanfleet_bus::topology::IDEMPOTENCY_BUCKET.into(),
                reason: e.to_string(),
            })?;
        let limits = IntakeLimits {
            max_timeout: config.max_timeout,
            ..config.limits
        };
        Ok(Self {
            queues: ClusterQueues::new(js.clone()),
            queueing: IntentQueueing::new(scanfleet_bus::IntentQueue::new(js), status.clone()),
            status,
            idempotency,
            catalog: config
                .profiles
                .clone()
                .map(|root| Arc::new(ProfileCatalog::new(root))),
            limits,
            config,
            directories,
            gate,
        })
    }
}

fn to_submission(request: &SubmitRequest) -> Submission {
    let (cluster, target) = match &request.target {
        None => (String::new(), TargetInput::Unset),
        Some(t) => (
            t.cluster.clone(),
            match &t.selector {
                None => TargetInput::Unset,
                Some(target_selector::Selector::Uri(uri)) => TargetInput::Uri(uri.clone()),
                Some(target_selector::Selector::LabelSelector(ls)) => TargetInput::LabelSelector {
                    namespace: ls.namespace.clone(),
                    selector: ls.selector.clone(),
                    container: ls.container.clone(),
                },
            },
        ),
    };
    let (profile_name, profile_pin) = match &request.profile {
        None => (String::new(), PinInput::Unset),
        Some(p) => (
            p.name.clone(),
            match &p.pin {
                None => PinInput::Unset,
                Some(v1::profile_ref::Pin::Version(v)) => PinInput::Version(v.clone()),
                Some(v1::profile_ref::Pin::Digest(d)) => PinInput::Digest(d.clone()),
            },
        ),
    };
    Submission {
        cluster,
        target,
        profile_name,
        profile_pin,
        profile_inputs: request
            .profile_inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        idempotency_key: request.idempotency_key.clone(),
        approach: request.approach,
        threshold: request
            .threshold
            .as_ref()
            .map(|t| (t.name.clone(), t.digest.clone())),
        timeout: request.timeout.as_ref().map(|d| (d.seconds, d.nanos)),
    }
}

fn invalid(violations: Vec<FieldViolation>) -> Status {
    Status::invalid_argument(InvalidArgument { violations }.to_string())
}

/// The profile problems of a valid submission, by field, under `prefix`.
fn catalog_violations(error: CatalogError, prefix: &str) -> Result<(), Status> {
    let field = |name: &str| format!("{prefix}{name}");
    let (name, description) = match &error {
        CatalogError::Unknown { .. } => (field("profile.name"), error.to_string()),
        CatalogError::OtherEdition { .. } => (field("profile"), error.to_string()),
        CatalogError::Inputs { error, .. } => (
            field("profile_inputs"),
            error
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        // Not the caller's fault: the fleet holds a profile that does not load.
        CatalogError::Broken { .. } => return Err(Status::failed_precondition(error.to_string())),
    };
    Err(invalid(vec![FieldViolation {
        field: name,
        description,
    }]))
}

/// The hash an idempotency key and target map to: with a key, the same key
/// and target always name the first scan id, even after that intent has
/// been consumed.
fn idempotency_hash(key: &str, cluster: &str, target: &ContainerRef) -> String {
    hex::encode(Sha256::digest(
        format!(
            "{key}\n{cluster}/{}/{}/{}",
            target.namespace, target.pod, target.container
        )
        .as_bytes(),
    ))
}

/// A new scan id, or the one an idempotency key already named.
enum Claimed {
    New(ScanId),
    Existing(String),
}

fn enqueue_status(e: EnqueueError) -> Status {
    match e {
        EnqueueError::QueueFull(reason) => {
            Status::resource_exhausted(format!("scan queue is full ({reason}); retry later"))
        }
        EnqueueError::TooLarge(reason) => Status::invalid_argument(reason),
        EnqueueError::Unavailable { .. } => Status::unavailable(e.to_string()),
        EnqueueError::Rejected(reason) => Status::internal(reason),
    }
}

impl IntakeService {
    /// Refuses overrides of inputs the fleet's policy locks.
    fn check_locked_inputs(&self, valid: &ValidSubmission, prefix: &str) -> Result<(), Status> {
        let refused = self.config.locked_inputs.refused(&valid.profile_inputs);
        if refused.is_empty() {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "{prefix}profile_inputs: {}",
            LockedInputs::explain(&refused)
        )))
    }

    /// Refuses a cluster the registry does not know: no worker could ever
    /// take its intents, so queueing them would only hide the mistake.
    fn check_cluster(&self, valid: &ValidSubmission, prefix: &str) -> Result<(), Status> {
        let Some(cluster) = &valid.cluster else {
            return Ok(());
        };
        let known = self.config.known_clusters();
        if known.contains(&cluster) {
            return Ok(());
        }
        Err(invalid(vec![FieldViolation {
            field: format!("{prefix}target.cluster"),
            description: crate::config::unknown_cluster(cluster.as_str(), &known),
        }]))
    }

    /// Why a queued scan has not started, when the reason is that no
    /// running worker serves its cluster.
    async fn waiting_reason(&self, intent: Option<&ScanIntent>) -> Option<String> {
        let cluster = intent?.target.as_ref()?.cluster.as_str();
        let cluster = ClusterName::new(cluster).ok()?;
        match self.queues.state(&cluster).await {
            Ok(state) if !state.served => Some(format!(
                "waiting: no running worker serves cluster {cluster}; the scan starts when one does"
            )),
            _ => None,
        }
    }

    /// Checks the profile, edition and inputs against the catalog, when
    /// intake holds one.
    fn check_profile(&self, valid: &ValidSubmission, prefix: &str) -> Result<(), Status> {
        let Some(catalog) = &self.catalog else {
            return Ok(());
        };
        let edition = match &valid.profile.pin {
            ProfilePin::Version(v) => Edition::Version(v),
            ProfilePin::Digest(d) => Edition::Digest(d.as_str()),
        };
        match catalog.load(valid.profile.name.as_str(), edition, &valid.profile_inputs) {
            Ok(_) => Ok(()),
            Err(e) => catalog_violations(e, prefix),
        }
    }

    /// Expands a validated submission into containers.
    fn expand(&self, valid: &ValidSubmission, field: &str) -> Result<Vec<ContainerRef>, Status> {
        match &valid.target {
            Target::Container(c) => Ok(vec![c.clone()]),
            Target::Selector {
                namespace,
                selector,
                container,
            } => {
                let cluster = valid.cluster.as_ref().unwrap_or(&self.config.cluster);
                match self.directories.get(cluster) {
                    Some(directory) => Ok(directory
                        .containers(namespace, selector, container.as_ref())
                        .into_iter()
                        .map(|c| c.target)
                        .collect()),
                    None => Err(Status::failed_precondition(format!(
                        "{field}: label-selector targets need a pod directory of cluster {cluster}; \
                         give intake a way to reach it (--kubeconfig or --in-cluster for the \
                         default cluster, kubeconfig or in_cluster in its clusters: entry), or \
                         name the container with a k8s:// URI"
                    ))),
                }
            }
        }
    }

    /// Reserves a scan id for (idempotency key, target), or finds the one
    /// the key already named.
    async fn claim_id(&self, idempotency: Option<&str>) -> Result<Claimed, Status> {
        let Some(k) = idempotency else {
            return Ok(Claimed::New(new_scan_id()));
        };
        if let Some(existing) = self.existing(k).await? {
            return Ok(Claimed::Existing(existing));
        }
        let id = new_scan_id();
        match self
            .idempotency
            .create(k, id.to_string().into_bytes().into())
            .await
        {
            Ok(_) => Ok(Claimed::New(id)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(Claimed::Existing(
                self.existing(k).await?.unwrap_or_default(),
            )),
            Err(e) => Err(Status::unavailable(format!("idempotency store: {e}"))),
        }
    }

    fn intent(
        &self,
        id: ScanId,
        valid: &ValidSubmission,
        target: &ContainerRef,
        principal: &str,
    ) -> Intent {
        let now = SystemTime::now();
        Intent {
            id,
            cluster: valid
                .cluster
                .clone()
                .unwrap_or_else(|| self.config.cluster.clone()),
            target: target.clone().into(),
            image: ImageSpec::default(),
            profile: valid.profile.clone(),
            inputs: valid.profile_inputs.clone(),
            approach: valid.approach,
            threshold: valid.threshold.clone(),
            trigger: Trigger::Api {
                principal: principal.into(),
            },
            requested_at: now,
            deadline: Some(now + valid.timeout.unwrap_or(self.config.default_timeout)),
        }
    }

    async fn accept(
        &self,
        valid: &ValidSubmission,
        target: &ContainerRef,
        principal: &str,
    ) -> Result<AcceptedScan, Status> {
        let cluster = valid.cluster.as_ref().unwrap_or(&self.config.cluster);
        let wire_target = v1::ScanTarget {
            cluster: cluster.as_str().into(),
            namespace: target.namespace.as_str().into(),
            pod: target.pod.as_str().into(),
            container: target.container.as_str().into(),
            image: None,
            registry_image: None,
        };
        let idempotency = valid
            .idempotency_key
            .as_ref()
            .map(|key| idempotency_hash(key, cluster.as_str(), target));
        let id = match self.claim_id(idempotency.as_deref()).await? {
            Claimed::Existing(scan_id) => {
                return Ok(AcceptedScan {
                    scan_id,
                    target: Some(wire_target),
                    deduplicated: true,
                });
            }
            Claimed::New(id) => id,
        };
        let intent = self.intent(id, valid, target, principal);
        let scan_id = intent.id.to_string();
        match self
            .queueing
            .offer(&intent, &Occasion::ApiRequest(&scan_id))
            .await
        {
            Ok(_) => {
                tracing::info!(scan_id = %scan_id, principal, "scan accepted");
                Ok(AcceptedScan {
                    scan_id,
                    target: Some(wire_target),
                    deduplicated: false,
                })
            }
            Err(e) => {
                if let Some(k) = &idempotency {
                    let _ = self.idempotency.delete(k).await;
                }
                Err(enqueue_status(e))
            }
        }
    }

    async fn existing(&self, key: &str) -> Result<Option<String>, Status> {
        self.idempotency
            .get(key)
            .await
            .map_err(|e| Status::unavailable(format!("idempotency store: {e}")))
            .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    async fn submit_valid(
        &self,
        valid: &ValidSubmission,
        field: &str,
        principal: &str,
    ) -> Result<SubmitResponse, Status> {
        let mut scans = Vec::new();
        for target in self.expand(valid, field)? {
            match self.accept(valid, &target, principal).await {
                Ok(a) => scans.push(a),
                Err(status) if !scans.is_empty() => {
                    let queued: Vec<_> = scans
                        .iter()
                        .map(|s: &AcceptedScan| s.scan_id.clone())
                        .collect();
                    return Err(Status::new(
                        status.code(),
                        format!(
                            "{} (already queued before this: {}; resubmit with the same idempotency_key to continue)",
                            status.message(),
                            queued.join(", ")
                        ),
                    ));
                }
                Err(status) => return Err(status),
            }
        }
        Ok(SubmitResponse { scans })
    }
}

#[tonic::async_trait]
impl Intake for IntakeService {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let caller = self.gate.admit_grpc(&request).await?;
        let request = request.into_inner();
        let valid = to_submission(&request)
            .validate(&self.limits)
            .map_err(|e| invalid(e.violations))?;
        self.check_cluster(&valid, "")?;
        authorize_submissions(&self.gate, &caller, &self.config.cluster, [&valid]).await?;
        self.check_locked_inputs(&valid, "")?;
        self.check_profile(&valid, "")?;
        self.submit_valid(&valid, "target", caller.principal())
            .await
            .map(Response::new)
    }

    async fn submit_batch(
        &self,
        request: Request<SubmitBatchRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let caller = self.gate.admit_grpc(&request).await?;
        let requests = request.into_inner().requests;
        let submissions: Vec<Submission> = requests.iter().map(to_submission).collect();
        let valid =
            validate_batch(&submissions, &self.limits).map_err(|e| invalid(e.violations))?;
        for (i, v) in valid.iter().enumerate() {
            self.check_cluster(v, &format!("requests[{i}]."))?;
        }
        authorize_submissions(&self.gate, &caller, &self.config.cluster, &valid).await?;
        for (i, v) in valid.iter().enumerate() {
            self.check_locked_inputs(v, &format!("requests[{i}]."))?;
            self.check_profile(v, &format!("requests[{i}]."))?;
        }
        let mut responses = Vec::with_capacity(valid.len());
        for (i, v) in valid.iter().enumerate() {
            responses.push(
                self.submit_valid(v, &format!("requests[{i}].target"), caller.principal())
                    .await?,
            );
        }
        Ok(Response::new(SubmitBatchResponse { responses }))
    }

    async fn get_scan(
        &self,
        request: Request<GetScanRequest>,
    ) -> Result<Response<ScanStatus>, Status> {
        let caller = self.gate.admit_grpc(&request).await?;
        let scan_id = request.into_inner().scan_id;
        if ScanId::parse(&scan_id).is_err() {
            return Err(Status::invalid_argument(format!(
                "scan_id: {:?} is not a ULID",
                scan_id.chars().take(40).collect::<String>()
            )));
        }
        let Some(record) = self
            .status
            .get(&scan_id)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
        else {
            return Err(Status::not_found(format!("no scan {scan_id}")));
        };
        let intent = ScanIntent::decode(record.intent.as_slice()).ok();
        let namespace = intent
            .as_ref()
            .and_then(|i| i.target.as_ref())
            .map_or("", |t| t.namespace.as_str());
        authorize_status(&self.gate, &caller, namespace).await?;
        let message = match record.state {
            ScanState::Queued if record.message.is_empty() => self
                .waiting_reason(intent.as_ref())
                .await
                .unwrap_or_default(),
            _ => record.message,
        };
        let state = match record.state {
            ScanState::Queued | ScanState::Retrying => v1::ScanState::Queued,
            ScanState::Running => v1::ScanState::Running,
            ScanState::Completed => v1::ScanState::Completed,
            ScanState::Failed => v1::ScanState::Failed,
        };
        Ok(Response::new(ScanStatus {
            scan_id,
            state: state as i32,
            intent,
            updated_at: Some(prost_types::Timestamp {
                seconds: record.updated_at_ms.div_euclid(1000),
                nanos: (record.updated_at_ms.rem_euclid(1000) * 1_000_000) as i32,
            }),
            result: None,
            message,
        }))
    }
}
