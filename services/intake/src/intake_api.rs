//! The gRPC `Intake` service: validate, expand, queue, report.
//!
//! Wire types are converted into the domain's `Submission` here and nowhere
//! else; every rule lives in `scanfleet-scan-intents`. A request that breaks
//! any rule is refused whole with `INVALID_ARGUMENT` listing every violation
//! by field path; a full queue is `RESOURCE_EXHAUSTED`, never a silent drop.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, kv};
use prost::Message as _;
use rand_core::RngCore;
use scanfleet_bus::{EnqueueError, Enqueued, IntentQueue, ScanState, ScanStatusBook};
use scanfleet_contracts::v1::{
    self, AcceptedScan, ApiTrigger, GetScanRequest, ScanIntent, ScanStatus, SubmitBatchRequest,
    SubmitBatchResponse, SubmitRequest, SubmitResponse, intake_server::Intake, target_selector,
};
use scanfleet_scan_intents::{
    ContainerRef, FieldViolation, InvalidArgument, Priority, ProfilePin, RandomSource, ScanId,
    SubjectTail, Submission, Target, intent_subject, submission::PinInput, submission::TargetInput,
    submission::ValidSubmission, validate_batch,
};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::config::Config;

/// Header carrying the scan id on intents, for routing without decoding.
pub use scanfleet_bus::HEADER_SCAN_ID;

struct OsRandom;

impl RandomSource for OsRandom {
    fn next_u64(&mut self) -> u64 {
        rand_core::OsRng.next_u64()
    }
}

/// The parts of a request the domain `Submission` does not cover.
struct Extras {
    approach: i32,
    threshold: Option<v1::ThresholdRef>,
    timeout: Duration,
}

/// The `Intake` service.
pub struct IntakeService {
    queue: IntentQueue,
    status: ScanStatusBook,
    idempotency: kv::Store,
    config: Config,
    directory: Option<crate::pod_directory::PodDirectory>,
    rng: Mutex<OsRandom>,
}

impl IntakeService {
    /// Builds the service over a JetStream context whose topology exists.
    ///
    /// # Errors
    /// When the status or idempotency buckets are missing.
    pub async fn new(
        js: jetstream::Context,
        config: Config,
        directory: Option<crate::pod_directory::PodDirectory>,
    ) -> Result<Self, scanfleet_bus::BusError> {
        let status = ScanStatusBook::open(&js).await?;
        let idempotency = js
            .get_key_value(scanfleet_bus::topology::IDEMPOTENCY_BUCKET)
            .await
            .map_err(|e| scanfleet_bus::BusError::Topology {
                what: scanfleet_bus::topology::IDEMPOTENCY_BUCKET.into(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            queue: IntentQueue::new(js),
            status,
            idempotency,
            config,
            directory,
            rng: Mutex::new(OsRandom),
        })
    }

    fn new_id(&self) -> ScanId {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        ScanId::generate(SystemTime::now(), &mut *rng)
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
    }
}

/// Checks the fields the domain submission does not carry.
fn extras(
    request: &SubmitRequest,
    prefix: &str,
    config: &Config,
) -> Result<Extras, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let field = |name: &str| format!("{prefix}{name}");
    if v1::Approach::try_from(request.approach).is_err() {
        violations.push(FieldViolation {
            field: field("approach"),
            description: format!("unknown approach {}", request.approach),
        });
    }
    let timeout = match &request.timeout {
        None => config.default_timeout,
        Some(d) if d.seconds <= 0 && d.nanos <= 0 => config.default_timeout,
        Some(d) if d.seconds < 0 || d.nanos < 0 => {
            violations.push(FieldViolation {
                field: field("timeout"),
                description: "must not be negative".into(),
            });
            config.default_timeout
        }
        Some(d) => {
            let t = Duration::new(d.seconds as u64, d.nanos as u32);
            if t > config.max_timeout {
                violations.push(FieldViolation {
                    field: field("timeout"),
                    description: format!(
                        "{} s is over the limit of {} s",
                        t.as_secs(),
                        config.max_timeout.as_secs()
                    ),
                });
            }
            t
        }
    };
    if let Some(t) = &request.threshold
        && t.name.is_empty()
        && t.digest.is_empty()
    {
        violations.push(FieldViolation {
            field: field("threshold"),
            description: "set name or digest, or leave the threshold out".into(),
        });
    }
    if violations.is_empty() {
        Ok(Extras {
            approach: if request.approach == 0 {
                v1::Approach::Auto as i32
            } else {
                request.approach
            },
            threshold: request.threshold.clone(),
            timeout,
        })
    } else {
        Err(violations)
    }
}

fn invalid(violations: Vec<FieldViolation>) -> Status {
    Status::invalid_argument(InvalidArgument { violations }.to_string())
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

impl IntakeService {
    /// Expands a validated submission into containers.
    fn expand(&self, valid: &ValidSubmission, field: &str) -> Result<Vec<ContainerRef>, Status> {
        match &valid.target {
            Target::Container(c) => Ok(vec![c.clone()]),
            Target::Selector {
                namespace,
                selector,
                container,
            } => match &self.directory {
                Some(directory) => Ok(directory
                    .containers(namespace, selector, container.as_ref())
                    .into_iter()
                    .map(|c| c.target)
                    .collect()),
                None => Err(Status::failed_precondition(format!(
                    "{field}: label-selector targets need the pod directory; start intake \
                     with --kubeconfig, or name the container with a k8s:// URI"
                ))),
            },
        }
    }

    async fn accept(
        &self,
        valid: &ValidSubmission,
        extras: &Extras,
        target: &ContainerRef,
        principal: &str,
    ) -> Result<AcceptedScan, Status> {
        let cluster = valid
            .cluster
            .clone()
            .unwrap_or_else(|| self.config.cluster.clone());
        let wire_target = v1::ScanTarget {
            cluster: cluster.as_str().into(),
            namespace: target.namespace.as_str().into(),
            pod: target.pod.as_str().into(),
            container: target.container.as_str().into(),
            image: None,
        };
        // With an idempotency key, the same key and target always map to the
        // first scan id, even after that intent has been consumed.
        let idempotency = valid.idempotency_key.as_ref().map(|key| {
            hex::encode(Sha256::digest(
                format!(
                    "{key}\n{}/{}/{}/{}",
                    cluster.as_str(),
                    wire_target.namespace,
                    wire_target.pod,
                    wire_target.container
                )
                .as_bytes(),
            ))
        });
        if let Some(k) = &idempotency
            && let Some(existing) = self.existing(k).await?
        {
            return Ok(AcceptedScan {
                scan_id: existing,
                target: Some(wire_target),
                deduplicated: true,
            });
        }
        let id = self.new_id();
        if let Some(k) = &idempotency {
            match self
                .idempotency
                .create(k, id.to_string().into_bytes().into())
                .await
            {
                Ok(_) => {}
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    let existing = self.existing(k).await?.unwrap_or_default();
                    return Ok(AcceptedScan {
                        scan_id: existing,
                        target: Some(wire_target),
                        deduplicated: true,
                    });
                }
                Err(e) => return Err(Status::unavailable(format!("idempotency store: {e}"))),
            }
        }
        let now = SystemTime::now();
        let intent = ScanIntent {
            id: id.to_string(),
            target: Some(wire_target.clone()),
            profile: Some(v1::ProfileRef {
                name: valid.profile.name.as_str().into(),
                pin: Some(match &valid.profile.pin {
                    ProfilePin::Version(v) => v1::profile_ref::Pin::Version(v.clone()),
                    ProfilePin::Digest(d) => v1::profile_ref::Pin::Digest(d.as_str().into()),
                }),
            }),
            approach: extras.approach,
            threshold: extras.threshold.clone(),
            priority: v1::Priority::High as i32,
            trigger: Some(v1::Trigger {
                source: Some(v1::trigger::Source::Api(ApiTrigger {
                    principal: principal.into(),
                })),
            }),
            requested_at: Some(timestamp(now)),
            deadline: Some(timestamp(now + extras.timeout)),
            profile_inputs: valid.profile_inputs.clone().into_iter().collect(),
        };
        let bytes = intent.encode_to_vec();
        self.status
            .advance(&intent.id, ScanState::Queued, "", Some(&bytes))
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let subject = intent_subject(
            Priority::High,
            &cluster,
            &target.namespace,
            SubjectTail::ScanId(&id),
        );
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_SCAN_ID, intent.id.as_str());
        let traceparent = scanfleet_bus::trace_headers::new_traceparent();
        tracing::debug!(scan_id = %intent.id, trace_id = scanfleet_bus::trace_headers::trace_id(&traceparent).unwrap_or_default(), "trace started");
        headers.insert(scanfleet_bus::HEADER_TRACEPARENT, traceparent.as_str());
        match self
            .queue
            .enqueue(&subject, &intent.id, headers, bytes.into())
            .await
        {
            Ok(Enqueued::Queued { .. })
            | Ok(Enqueued::Duplicate { .. })
            | Ok(Enqueued::AlreadyQueued) => {
                tracing::info!(scan_id = %intent.id, %subject, "intent queued");
                Ok(AcceptedScan {
                    scan_id: intent.id,
                    target: Some(wire_target),
                    deduplicated: false,
                })
            }
            Err(e) => {
                let _ = self
                    .status
                    .advance(
                        &intent.id,
                        ScanState::Failed,
                        &format!("not queued: {e}"),
                        None,
                    )
                    .await;
                if let Some(k) = &idempotency {
                    let _ = self.idempotency.delete(k).await;
                }
                Err(match e {
                    EnqueueError::QueueFull(reason) => Status::resource_exhausted(format!(
                        "scan queue is full ({reason}); retry later"
                    )),
                    EnqueueError::TooLarge(reason) => Status::invalid_argument(reason),
                    EnqueueError::Unavailable { .. } => Status::unavailable(e.to_string()),
                    EnqueueError::Rejected(reason) => Status::internal(reason),
                })
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
        extras: &Extras,
        field: &str,
        principal: &str,
    ) -> Result<SubmitResponse, Status> {
        let mut scans = Vec::new();
        for target in self.expand(valid, field)? {
            match self.accept(valid, extras, &target, principal).await {
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

fn principal<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get("x-scanfleet-principal")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect()
}

#[tonic::async_trait]
impl Intake for IntakeService {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let who = principal(&request);
        let request = request.into_inner();
        let validated = to_submission(&request).validate(&self.config.limits);
        let extras = extras(&request, "", &self.config);
        let (valid, extras) = match (validated, extras) {
            (Ok(v), Ok(e)) => (v, e),
            (v, e) => {
                let mut violations = v.err().map(|i| i.violations).unwrap_or_default();
                violations.extend(e.err().unwrap_or_default());
                return Err(invalid(violations));
            }
        };
        self.submit_valid(&valid, &extras, "target", &who)
            .await
            .map(Response::new)
    }

    async fn submit_batch(
        &self,
        request: Request<SubmitBatchRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let who = principal(&request);
        let requests = request.into_inner().requests;
        let submissions: Vec<Submission> = requests.iter().map(to_submission).collect();
        let mut violations = Vec::new();
        let valid = validate_batch(&submissions, &self.config.limits)
            .map_err(|e| violations.extend(e.violations))
            .ok();
        let mut all_extras = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            match extras(r, &format!("requests[{i}]."), &self.config) {
                Ok(e) => all_extras.push(e),
                Err(v) => violations.extend(v),
            }
        }
        let Some(valid) = valid.filter(|_| violations.is_empty()) else {
            return Err(invalid(violations));
        };
        let mut responses = Vec::with_capacity(valid.len());
        for (i, (v, e)) in valid.iter().zip(&all_extras).enumerate() {
            responses.push(
                self.submit_valid(v, e, &format!("requests[{i}].target"), &who)
                    .await?,
            );
        }
        Ok(Response::new(SubmitBatchResponse { responses }))
    }

    async fn get_scan(
        &self,
        request: Request<GetScanRequest>,
    ) -> Result<Response<ScanStatus>, Status> {
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
        let state = match record.state {
            ScanState::Queued | ScanState::Retrying => v1::ScanState::Queued,
            ScanState::Running => v1::ScanState::Running,
            ScanState::Completed => v1::ScanState::Completed,
            ScanState::Failed => v1::ScanState::Failed,
        };
        Ok(Response::new(ScanStatus {
            scan_id,
            state: state as i32,
            intent: ScanIntent::decode(record.intent.as_slice()).ok(),
            updated_at: Some(prost_types::Timestamp {
                seconds: record.updated_at_ms.div_euclid(1000),
                nanos: (record.updated_at_ms.rem_euclid(1000) * 1_000_000) as i32,
            }),
            result: None,
            message: record.message,
        }))
    }
}
