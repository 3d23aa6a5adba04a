//! Which containers run where: a watch-driven cache of pods, used to expand
//! label selectors, to match registry pushes to running pods by digest, and
//! to tell the push watches when a pod starts.
//!
//! A reflector keeps a local copy of every pod, so expanding a selector or
//! matching a digest never calls the API server: a flood of submissions or
//! pushes costs the cluster nothing.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use scanfleet_scan_intents::{
    ContainerName, ContainerRef, ImageDigest, LabelSelector, NamespaceName, PodName,
};
use std::collections::BTreeMap;
use tokio::sync::{mpsc, watch};

/// A running container found in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningContainer {
    /// Where it is.
    pub target: ContainerRef,
    /// The image as the pod spec names it.
    pub image: String,
    /// The manifest digest the kubelet reports in `imageID`, when known.
    pub image_digest: Option<ImageDigest>,
}

/// The pod cache.
#[derive(Clone)]
pub struct PodDirectory {
    store: Store<Pod>,
}

impl PodDirectory {
    /// Starts watching every pod the client may list, and waits until the
    /// first full list is in. The watch ends when `shutdown` flips.
    ///
    /// With `started`, the running containers of every pod the watch sees
    /// added or changed are sent there (after the cache has the pod), so the
    /// push watches learn about new pods without polling. The channel is
    /// bounded and awaited: a slow receiver slows the watch, never loses a
    /// pod.
    ///
    /// # Errors
    /// When the initial list does not arrive (no permission, unreachable).
    pub async fn start(
        client: kube::Client,
        mut shutdown: watch::Receiver<bool>,
        started: Option<mpsc::Sender<Vec<RunningContainer>>>,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), String> {
        let api: Api<Pod> = Api::all(client);
        let (reader, writer) = reflector::store();
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .applied_objects();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                let next = tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return,
                    next = stream.next() => next,
                };
                match next {
                    None => return,
                    Some(Err(e)) => tracing::warn!(error = %e, "pod watch error; backing off"),
                    Some(Ok(pod)) => {
                        if let Some(tx) = &started {
                            let running = pod_containers(&pod, None);
                            if !running.is_empty() && tx.send(running).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            reader.wait_until_ready(),
        )
        .await
        .map_err(|_| "the pod list did not arrive within 30 s".to_owned())?
        .map_err(|e| e.to_string())?;
        Ok((Self { store: reader }, task))
    }

    /// Running containers in `namespace` whose pod matches `selector`, only
    /// `container` of each pod when given. Sorted for stable output.
    pub fn containers(
        &self,
        namespace: &NamespaceName,
        selector: &LabelSelector,
        container: Option<&ContainerName>,
    ) -> Vec<RunningContainer> {
        let mut found = Vec::new();
        for pod in self.store.state() {
            if pod.metadata.namespace.as_deref() != Some(namespace.as_str()) {
                continue;
            }
            let labels: BTreeMap<String, String> = pod.metadata.labels.clone().unwrap_or_default();
            if selector.matches(&labels) {
                found.extend(pod_containers(&pod, container));
            }
        }
        found.sort_by(|a, b| a.target.cmp(&b.target));
        found
    }

    /// Running containers anywhere whose kubelet-reported image is
    /// `digest`. Matching is by digest alone, not by repository: a digest
    /// names content, and the same manifest pulled through a mirror or
    /// another repository path is the same image. Sorted.
    pub fn running_digest(&self, digest: &ImageDigest) -> Vec<RunningContainer> {
        let mut found: Vec<RunningContainer> = self
            .store
            .state()
            .iter()
            .flat_map(|pod| pod_containers(pod, None))
            .filter(|c| c.image_digest.as_ref() == Some(digest))
            .collect();
        found.sort_by(|a, b| a.target.cmp(&b.target));
        found
    }
}

/// The running containers of a running pod (only `only` when given).
pub fn pod_containers(pod: &Pod, only: Option<&ContainerName>) -> Vec<RunningContainer> {
    running_containers(pod, only).unwrap_or_default()
}

fn running_containers(pod: &Pod, only: Option<&ContainerName>) -> Option<Vec<RunningContainer>> {
    let namespace = NamespaceName::new(pod.metadata.namespace.as_deref()?).ok()?;
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let pod_name = PodName::new(pod.metadata.name.as_deref()?).ok()?;
    let spec = pod.spec.as_ref()?;
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let mut out = Vec::new();
    for c in &spec.containers {
        if only.is_some_and(|o| o.as_str() != c.name) {
            continue;
        }
        let Ok(name) = ContainerName::new(&c.name) else {
            continue;
        };
        let status = statuses.iter().find(|s| s.name == c.name);
        let running = status
            .and_then(|s| s.state.as_ref())
            .and_then(|st| st.running.as_ref());
        if running.is_none() {
            continue;
        }
        let image_digest = status.and_then(|s| ImageDigest::from_image_id(&s.image_id));
        out.push(RunningContainer {
            target: ContainerRef {
                namespace: namespace.clone(),
                pod: pod_name.clone(),
                container: name,
            },
            image: c.image.clone().unwrap_or_default(),
            image_digest,
        });
    }
    Some(out)
}
