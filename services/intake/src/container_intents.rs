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
//! Building differs per trigger; queueing does not: both go through
//! [`IntentQueueing::offer`], the path the gRPC API takes too.

use std::time::{Duration, SystemTime};

use scanfleet_bus::{EnqueueError, Enqueued};
use scanfleet_registry_events::PushEvent;
use scanfleet_scan_intents::{
    Approach, ClusterName, ImageSpec, ImageTarget, Intent, IntentTarget, Occasion, ProfileRef,
    Trigger, TriggerKind,
};

use crate::pod_directory::RunningContainer;
use crate::queueing::{IntentQueueing, new_scan_id};

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
    /// The trigger kind, for priority and coalescing.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Cause::Push(_) => TriggerKind::RegistryPush,
            Cause::Schedule { .. } => TriggerKind::Schedule,
        }
    }

    fn trigger(&self) -> Trigger {
        match self {
            Cause::Push(e) => Trigger::RegistryPush {
                registry: e.registry.clone(),
                repository: e.repository.clone(),
                digest: e.digest.as_str().into(),
                tag: e.tag.clone().unwrap_or_default(),
            },
            Cause::Schedule { name, .. } => Trigger::Schedule {
                name: (*name).into(),
            },
        }
    }

    fn occasion(&self) -> Occasion<'_> {
        match self {
            Cause::Push(event) => Occasion::RegistryEvent(&event.event_id),
            Cause::Schedule { name, slot } => Occasion::ScheduleSlot {
                schedule: name,
                slot_unix: slot
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            },
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

/// Builds and offers intents for running containers.
#[derive(Clone)]
pub struct ContainerIntents {
    queueing: IntentQueueing,
    home: ClusterName,
    timeout: Duration,
}

impl ContainerIntents {
    /// Intents with deadline `timeout` after queueing. A container's
    /// intent is for the cluster it runs in; an image scan by digest runs
    /// in no cluster's pod, so it is queued for `home` (intake's default
    /// cluster), whose workers pull the image themselves.
    pub fn new(queueing: IntentQueueing, home: ClusterName, timeout: Duration) -> Self {
        Self {
            queueing,
            home,
            timeout,
        }
    }

    /// The intent to scan `container` with `profile` because of `cause`.
    pub fn intent(
        &self,
        container: &RunningContainer,
        profile: &ProfileRef,
        cause: Cause<'_>,
    ) -> Intent {
        let now = SystemTime::now();
        Intent {
            id: new_scan_id(),
            cluster: container.cluster.clone(),
            target: container.target.clone().into(),
            image: ImageSpec {
                reference: container.image.clone(),
                digest: container.image_digest.clone(),
            },
            profile: profile.clone(),
            inputs: Default::default(),
            approach: Approach::Auto,
            threshold: None,
            trigger: cause.trigger(),
            requested_at: now,
            deadline: Some(now + self.timeout),
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
        let intent = self.intent(container, profile, cause);
        self.queueing.offer(&intent, &cause.occasion()).await
    }

    /// Offers one intent to scan the pushed image itself, by digest (no
    /// pod runs it yet), for the home cluster's workers. Its routing keys
    /// it by (digest, profile) alone, so it is one piece of work however
    /// many clusters will run the image.
    ///
    /// # Errors
    /// The queue's refusal; a push whose names an image target refuses
    /// (registry-events checks them by the same grammar, so this does not
    /// happen) is refused rather than queued.
    pub async fn offer_image(
        &self,
        event: &PushEvent,
        profile: &ProfileRef,
    ) -> Result<Enqueued, EnqueueError> {
        let target = ImageTarget::new(&event.registry, &event.repository, event.digest.as_str())
            .map_err(|e| EnqueueError::Rejected(format!("pushed image: {e}")))?;
        let cause = Cause::Push(event);
        let now = SystemTime::now();
        let intent = Intent {
            id: new_scan_id(),
            cluster: self.home.clone(),
            image: ImageSpec {
                reference: target.reference(),
                digest: Some(target.digest().clone()),
            },
            target: IntentTarget::Image(target),
            profile: profile.clone(),
            inputs: Default::default(),
            approach: Approach::Auto,
            threshold: None,
            trigger: cause.trigger(),
            requested_at: now,
            deadline: Some(now + self.timeout),
        };
        self.queueing.offer(&intent, &cause.occasion()).await
    }
}
