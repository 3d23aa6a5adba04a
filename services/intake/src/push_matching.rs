//! From a pushed manifest to intents for the containers that run it.
//!
//! A push maps to every running container, in every cluster intake
//! reaches, whose kubelet-reported image digest equals the pushed digest
//! (the pod caches answer without calling an API server), one
//! high-priority intent each, queued for the container's own cluster. When
//! nothing runs it yet, the push becomes a bounded, expiring watch
//! ([`crate::push_watches`]); every cluster's pod cache tells
//! [`PushMatcher::run`] about every pod it sees start, and the first one
//! running the digest, in whichever cluster, gets its scans.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use scanfleet_bus::EnqueueError;
use scanfleet_registry_events::PushEvent;
use scanfleet_scan_intents::{ImageDigest, ProfileRef};
use tokio::sync::{mpsc, watch};

use crate::container_intents::{Cause, ContainerIntents, Tally};
use crate::metrics::Metrics;
use crate::pod_directory::{PodDirectories, RunningContainer};
use crate::push_watches::{PushWatches, WatchLimits, WatchesFull, Watching};

/// What a route does with a push for a digest no pod runs yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnmatchedPush {
    /// Watch for the first pod running it (container scans follow then).
    #[default]
    Watch,
    /// Scan the pushed image itself now, by digest.
    Image,
    /// Both: scan the image now and watch for pods.
    Both,
}

/// What one push led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Intents for the containers running the digest now.
    Matched(Tally),
    /// No container runs it: an image scan (when the route asks for one)
    /// and a watch for the first pod (when it asks for one).
    Unmatched {
        /// The image scan's offer.
        image: Option<Tally>,
        /// The watch.
        watching: Option<Watching>,
    },
}

/// Why a push could not be handled; the webhook answers 429 or 503 and the
/// registry retries (msg-id dedupe absorbs what was already queued).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The queue refused an intent.
    #[error("{error} (after {} intents of this push were accepted)", .before.total())]
    Enqueue {
        /// The refusal.
        error: EnqueueError,
        /// What was accepted before it.
        before: Tally,
    },
    /// Too many pushes are waiting for pods.
    #[error(transparent)]
    WatchesFull(#[from] WatchesFull),
}

/// Matches pushes to pods and keeps the watches.
#[derive(Clone)]
pub struct PushMatcher {
    directories: PodDirectories,
    intents: ContainerIntents,
    profile: ProfileRef,
    watches: Arc<Mutex<PushWatches>>,
    metrics: Arc<Metrics>,
}

impl PushMatcher {
    /// A matcher over the pods of `directories`, scanning pushed images
    /// with `profile`.
    pub fn new(
        directories: PodDirectories,
        intents: ContainerIntents,
        profile: ProfileRef,
        limits: WatchLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            directories,
            intents,
            profile,
            watches: Arc::new(Mutex::new(PushWatches::new(limits))),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PushWatches> {
        self.watches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The gauge counts watches still waiting for a pod (claimed ones only
    /// linger until their TTL to catch late sibling containers).
    fn publish_pending(&self, w: &PushWatches) {
        self.metrics
            .push_watches_pending
            .store(w.unclaimed() as u64, Ordering::Relaxed);
    }

    /// Handles one push: intents for the containers running it now, or
    /// what `unmatched` says (an image scan, a watch, or both).
    ///
    /// # Errors
    /// [`PushError`] when the queue refuses or the watch table is full.
    pub async fn push(
        &self,
        event: &PushEvent,
        unmatched: UnmatchedPush,
    ) -> Result<PushOutcome, PushError> {
        let digest = ImageDigest::parse(event.digest.as_str())
            .expect("registry-events and scan-intents accept the same sha256 form");
        let running = self.directories.running_digest(&digest);
        if running.is_empty() {
            let image = match unmatched {
                UnmatchedPush::Watch => None,
                UnmatchedPush::Image | UnmatchedPush::Both => Some(self.scan_image(event).await?),
            };
            let watching = match unmatched {
                UnmatchedPush::Image => None,
                UnmatchedPush::Watch | UnmatchedPush::Both => Some(self.watch(event, &digest)?),
            };
            return Ok(PushOutcome::Unmatched { image, watching });
        }
        self.offer_all(&running, event)
            .await
            .map(PushOutcome::Matched)
    }

    fn watch(&self, event: &PushEvent, digest: &ImageDigest) -> Result<Watching, PushError> {
        let mut w = self.lock();
        let watching = w.watch(event.clone(), Instant::now())?;
        self.publish_pending(&w);
        if watching == Watching::Added {
            Metrics::add(&self.metrics.push_watches_added, 1);
        }
        tracing::info!(digest = %digest, repository = %event.repository,
            "no pod runs the pushed digest yet; watching for one");
        Ok(watching)
    }

    /// Queues a scan of the pushed image itself, by digest.
    async fn scan_image(&self, event: &PushEvent) -> Result<Tally, PushError> {
        let mut tally = Tally::default();
        match self.intents.offer_image(event, &self.profile).await {
            Ok(e) => tally.count(&e),
            Err(error) => {
                return Err(PushError::Enqueue {
                    error,
                    before: tally,
                });
            }
        }
        Metrics::add(&self.metrics.push_intents_queued, tally.queued);
        tracing::info!(digest = %event.digest.as_str(), repository = %event.repository,
            queued = tally.queued, "no pod runs the pushed digest yet; scanning the image");
        Ok(tally)
    }

    async fn offer_all(
        &self,
        containers: &[RunningContainer],
        event: &PushEvent,
    ) -> Result<Tally, PushError> {
        let mut tally = Tally::default();
        for c in containers {
            match self
                .intents
                .offer(c, &self.profile, Cause::Push(event))
                .await
            {
                Ok(e) => tally.count(&e),
                Err(error) => {
                    Metrics::add(&self.metrics.push_intents_queued, tally.queued);
                    return Err(PushError::Enqueue {
                        error,
                        before: tally,
                    });
                }
            }
        }
        Metrics::add(&self.metrics.push_intents_queued, tally.queued);
        Ok(tally)
    }

    /// Pending watches.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Checks one pod update against the watches: the first pod running a
    /// watched digest, in any cluster, claims it, and each of its containers running the
    /// digest gets an intent once (containers that start later in the same
    /// pod get theirs with a later update). A refused intent is released so
    /// the pod's next update (or a re-list) tries again.
    pub async fn pod_updated(&self, containers: Vec<RunningContainer>) {
        let mut by_digest: BTreeMap<ImageDigest, Vec<RunningContainer>> = BTreeMap::new();
        for c in containers {
            if let Some(d) = c.image_digest.clone() {
                by_digest.entry(d).or_default().push(c);
            }
        }
        for (digest, group) in by_digest {
            let first = &group[0];
            let pod = format!(
                "{}/{}/{}",
                first.cluster.as_str(),
                first.target.namespace.as_str(),
                first.target.pod.as_str()
            );
            let names: Vec<String> = group
                .iter()
                .map(|c| c.target.container.as_str().to_owned())
                .collect();
            let claimed = {
                let mut w = self.lock();
                let c = w.claim(&digest, &pod, &names, Instant::now());
                self.publish_pending(&w);
                c
            };
            let Some(claimed) = claimed else { continue };
            if claimed.first {
                Metrics::add(&self.metrics.push_watches_matched, 1);
            }
            let fresh: Vec<RunningContainer> = group
                .into_iter()
                .filter(|c| {
                    claimed
                        .containers
                        .iter()
                        .any(|n| n == c.target.container.as_str())
                })
                .collect();
            if fresh.is_empty() {
                continue;
            }
            let mut done = Vec::new();
            let mut failed = None;
            for c in &fresh {
                match self
                    .offer_all(std::slice::from_ref(c), &claimed.event)
                    .await
                {
                    Ok(_) => done.push(c.target.container.as_str().to_owned()),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                None => tracing::info!(%digest, %pod, containers = ?done,
                    "watched push matched a starting pod"),
                Some(e) => {
                    tracing::warn!(%digest, %pod, error = %e,
                        "could not queue the scan of a watched push; will retry on the next update");
                    let undone: Vec<String> = claimed
                        .containers
                        .into_iter()
                        .filter(|n| !done.contains(n))
                        .collect();
                    self.lock().release(&digest, &undone);
                }
            }
        }
        Metrics::add(&self.metrics.pod_updates_checked, 1);
    }

    /// Consumes pod updates from the pod caches (every cluster's, on one
    /// channel) and expires watches on time, until `shutdown` flips or the
    /// caches stop.
    pub async fn run(
        self,
        mut started: mpsc::Receiver<Vec<RunningContainer>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let next_expiry = self.lock().next_expiry();
            let expiry = async {
                match next_expiry {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let update = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                update = started.recv() => match update {
                    Some(containers) => Some(containers),
                    None => return,
                },
                () = expiry => None,
            };
            match update {
                Some(containers) => self.pod_updated(containers).await,
                None => {
                    let mut w = self.lock();
                    let n = w.expire(Instant::now());
                    self.publish_pending(&w);
                    drop(w);
                    if n > 0 {
                        Metrics::add(&self.metrics.push_watches_expired, n as u64);
                        tracing::info!(expired = n, "push watches expired without a pod");
                    }
                }
            }
        }
    }
}
