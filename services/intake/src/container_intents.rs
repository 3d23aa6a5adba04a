//! Queueing one intent for one running container found in the pod cache,
//! for the two triggers that do not come through the gRPC API: a registry
//! push and a schedule fire.
//!
//! The two differ exactly where the domain says they do
//! (`TriggerKind::priority` / `coalesces`): a push is high priority on its
//! own subject (tail = scan id), a schedule is low priority on the subject
//! ending in the dedupe key, so the stream's one-message-per-subject limit
//! keeps at most one periodic intent queued per (container, image digest,
//! profile version). Both use `DedupeKey::msg_id` with their occasion as
//! `Nats-Msg-Id`, so a registry redelivery or a second replica firing the
//! same slot is absorbed by the duplicate window.
//!
//! The status book gets `queued` only after the stream accepted a new
//! message: a coalesced or duplicate offer has no scan of its own, and the
//! book is forward-only, so a worker that already moved the scan on is
//! never overwritten.

use std::time::{Duration, SystemTime};

use async_nats::HeaderMap;
use prost::Message as _;
use rand_core::RngCore;
use scanfleet_bus::{EnqueueError, Enqueued, IntentQueue, ScanState, ScanStatusBook};
use scanfleet_contracts::v1;
use scanfleet_registry_events::PushEvent;
use scanfleet_scan_intents::{
    ClusterName, DedupeKey, ImageIdentity, Occasion, ProfilePin, ProfileRef, RandomSource, ScanId,
    SubjectTail, TriggerKind, intent_subject,
};

use crate::intake_api::HEADER_SCAN_ID;
use crate::pod_directory::RunningContainer;

/// Why this intent is queued.
#[derive(Debug, Clone, Copy)]
pub enum Cause<'a> {
    /// A registry announced this push.
    Push(&'a PushEvent),
    /// A schedule fired for this slot.
    Schedule {
        /// The schedule's name.
        name: &'a str,
        /// The un-jittered slot.
        slot: SystemTime,
    },
}

impl Cause<'_> {
    fn kind(&self) -> TriggerKind {
        match self {
            Cause::Push(_) => TriggerKind::RegistryPush,
            Cause::Schedule { .. } => TriggerKind::Schedule,
        }
    }
}

/// Tallies of offers, for responses, logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    /// New messages on the stream.
    pub queued: u64,
    /// Same `Nats-Msg-Id` inside the duplicate window: the earlier one
    /// stands.
    pub duplicate: u64,
    /// Same subject still queued or running: coalesced into it.
    pub already_queued: u64,
}

impl Tally {
    /// Adds one outcome.
    pub fn count(&mut self, e: &Enqueued) {
        match e {
            Enqueued::Queued { .. } => self.queued += 1,
            Enqueued::Duplicate { .. } => self.duplicate += 1,
            Enqueued::AlreadyQueued => self.already_queued += 1,
        }
    }

    /// Every offer the stream accepted in some form.
    pub fn total(&self) -> u64 {
        self.queued + self.duplicate + self.already_queued
    }
}

struct OsRandom;

impl RandomSource for OsRandom {
    fn next_u64(&mut self) -> u64 {
        rand_core::OsRng.next_u64()
    }
}

/// Builds and offers intents for running containers.
#[derive(Clone)]
pub struct ContainerIntents {
    queue: IntentQueue,
    status: ScanStatusBook,
    cluster: ClusterName,
    timeout: Duration,
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

impl ContainerIntents {
    /// Intents for containers of `cluster`, with deadline `timeout` after
    /// queueing.
    pub fn new(
        queue: IntentQueue,
        status: ScanStatusBook,
        cluster: ClusterName,
        timeout: Duration,
    ) -> Self {
        Self {
            queue,
            status,
            cluster,
            timeout,
        }
    }

    /// Offers one intent to scan `container` with `profile`.
    ///
    /// # Errors
    /// The queue's refusal: full (backpressure), unavailable, too large.
    pub async fn offer(
        &self,
        container: &RunningContainer,
        profile: &ProfileRef,
        cause: Cause<'_>,
    ) -> Result<Enqueued, EnqueueError> {
        let now = SystemTime::now();
        let id = ScanId::generate(now, &mut OsRandom);
        let kind = cause.kind();
        let image = match &container.image_digest {
            Some(d) => ImageIdentity::Digest(d.clone()),
            None => ImageIdentity::Reference(container.image.clone()),
        };
        let key = DedupeKey::new(&self.cluster, &container.target, &image, profile);
        let msg_id = match cause {
            Cause::Push(event) => key.msg_id(&Occasion::RegistryEvent(&event.event_id)),
            Cause::Schedule { name, slot } => key.msg_id(&Occasion::ScheduleSlot {
                schedule: name,
                slot_unix: slot
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            }),
        };
        let tail = if kind.coalesces() {
            SubjectTail::DedupeKey(&key)
        } else {
            SubjectTail::ScanId(&id)
        };
        let subject = intent_subject(
            kind.priority(),
            &self.cluster,
            &container.target.namespace,
            tail,
        );
        let trigger = match cause {
            Cause::Push(e) => v1::trigger::Source::RegistryPush(v1::RegistryPushTrigger {
                registry: e.registry.clone(),
                repository: e.repository.clone(),
                digest: e.digest.as_str().into(),
                tag: e.tag.clone().unwrap_or_default(),
            }),
            Cause::Schedule { name, .. } => v1::trigger::Source::Schedule(v1::ScheduleTrigger {
                schedule_name: name.into(),
            }),
        };
        let intent = v1::ScanIntent {
            id: id.to_string(),
            target: Some(v1::ScanTarget {
                cluster: self.cluster.as_str().into(),
                namespace: container.target.namespace.as_str().into(),
                pod: container.target.pod.as_str().into(),
                container: container.target.container.as_str().into(),
                image: Some(v1::ImageRef {
                    reference: container.image.clone(),
                    digest: container
                        .image_digest
                        .as_ref()
                        .map(|d| d.as_str().to_owned())
                        .unwrap_or_default(),
                }),
            }),
            profile: Some(v1::ProfileRef {
                name: profile.name.as_str().into(),
                pin: Some(match &profile.pin {
                    ProfilePin::Version(v) => v1::profile_ref::Pin::Version(v.clone()),
                    ProfilePin::Digest(d) => v1::profile_ref::Pin::Digest(d.as_str().into()),
                }),
            }),
            approach: v1::Approach::Auto as i32,
            threshold: None,
            priority: match kind.priority() {
                scanfleet_scan_intents::Priority::High => v1::Priority::High,
                scanfleet_scan_intents::Priority::Low => v1::Priority::Low,
            } as i32,
            trigger: Some(v1::Trigger {
                source: Some(trigger),
            }),
            requested_at: Some(timestamp(now)),
            deadline: Some(timestamp(now + self.timeout)),
            profile_inputs: Default::default(),
        };
        let bytes = intent.encode_to_vec();
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_SCAN_ID, intent.id.as_str());
        headers.insert(
            scanfleet_bus::HEADER_TRACEPARENT,
            scanfleet_bus::trace_headers::new_traceparent().as_str(),
        );
        let outcome = self
            .queue
            .enqueue(&subject, &msg_id, headers, bytes.clone().into())
            .await?;
        if let Enqueued::Queued { .. } = outcome {
            if let Err(e) = self
                .status
                .advance(&intent.id, ScanState::Queued, "", Some(&bytes))
                .await
            {
                // The intent is on the stream and will run; only the status
                // record is missing until the worker writes one.
                tracing::warn!(scan_id = %intent.id, error = %e, "status book not updated");
            }
            tracing::debug!(scan_id = %intent.id, %subject, "intent queued");
        }
        Ok(outcome)
    }
}
