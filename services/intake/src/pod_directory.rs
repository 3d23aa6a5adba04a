//! Which containers run where: a watch-driven cache of pods per cluster,
//! used to expand label selectors, to match registry pushes to running pods
//! by digest, and to tell the push watches when a pod starts.
//!
//! A reflector keeps a local copy of every pod, so expanding a selector or
//! matching a digest never calls the API server: a flood of submissions or
//! pushes costs the cluster nothing. [`PodDirectories`] holds one cache per
//! cluster intake reaches, so a push or a schedule sees the whole fleet
//! through one owner of the matching rules.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use scanfleet_scan_intents::{
    ClusterName, ContainerName, ContainerRef, ImageDigest, LabelSelector, NamespaceName, PodName,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// A running container found in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningContainer {
    /// The cluster it runs in: its intent is queued for that cluster's
    /// workers.
    pub cluster: ClusterName,
    /// Where it is in that cluster.
    pub target: ContainerRef,
    /// The image as the pod spec names it.
    pub image: String,
    /// The manifest digest the kubelet reports in `imageID`, when known.
    pub image_digest: Option<ImageDigest>,
}

/// The pod cache of one cluster.
#[derive(Clone)]
pub struct PodDirectory {
    cluster: ClusterName,
    store: Store<Pod>,
}

impl PodDirectory {
    /// Starts watching every pod the client may list in `cluster`, and
    /// waits until the first full list is in. The watch ends when
    /// `shutdown` flips.
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
        cluster: ClusterName,
        client: kube::Client,
        mut shutdown: watch::Receiver<bool>,
        started: Option<mpsc::Sender<Vec<RunningContainer>>>,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), String> {
        let api: Api<Pod> = Api::all(client);
        let (reader, writer) = reflector::store();
        let name = cluster.clone();
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
                            let running = pod_containers(&name, &pod, None);
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
        Ok((
            Self {
                cluster,
                store: reader,
            },
            task,
        ))
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
                found.extend(pod_containers(&self.cluster, &pod, container));
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
            .flat_map(|pod| pod_containers(&self.cluster, pod, None))
            .filter(|c| c.image_digest.as_ref() == Some(digest))
            .collect();
        found.sort_by(|a, b| a.target.cmp(&b.target));
        found
    }
}

/// The pod caches of every cluster intake reaches, by name. Pushes and
/// schedules ask the fleet through this, so each matching rule has one
/// owner ([`PodDirectory`]) however many clusters there are.
#[derive(Clone, Default)]
pub struct PodDirectories {
    by_cluster: Arc<BTreeMap<ClusterName, PodDirectory>>,
}

impl PodDirectories {
    /// The set of `directories`.
    pub fn new(directories: impl IntoIterator<Item = PodDirectory>) -> Self {
        Self {
            by_cluster: Arc::new(
                directories
                    .into_iter()
                    .map(|d| (d.cluster.clone(), d))
                    .collect(),
            ),
        }
    }

    /// The cache of `cluster`, if intake reaches it.
    pub fn get(&self, cluster: &ClusterName) -> Option<&PodDirectory> {
        self.by_cluster.get(cluster)
    }

    /// Whether intake reaches no cluster at all.
    pub fn is_empty(&self) -> bool {
        self.by_cluster.is_empty()
    }

    /// The clusters intake reaches, sorted.
    pub fn clusters(&self) -> impl Iterator<Item = &ClusterName> {
        self.by_cluster.keys()
    }

    /// [`PodDirectory::containers`] in each of `clusters` (every cluster
    /// when `None`; one intake does not reach has no pods to offer).
    /// Sorted by cluster, then target.
    pub fn containers(
        &self,
        clusters: Option<&[ClusterName]>,
        namespace: &NamespaceName,
        selector: &LabelSelector,
        container: Option<&ContainerName>,
    ) -> Vec<RunningContainer> {
        self.by_cluster
            .iter()
            .filter(|(name, _)| clusters.is_none_or(|only| only.contains(name)))
            .flat_map(|(_, d)| d.containers(namespace, selector, container))
            .collect()
    }

    /// [`PodDirectory::running_digest`] in every cluster. Sorted by
    /// cluster, then target.
    pub fn running_digest(&self, digest: &ImageDigest) -> Vec<RunningContainer> {
        self.by_cluster
            .values()
            .flat_map(|d| d.running_digest(digest))
            .collect()
    }
}

/// The running containers of a running pod of `cluster` (only `only` when
/// given).
pub fn pod_containers(
    cluster: &ClusterName,
    pod: &Pod,
    only: Option<&ContainerName>,
) -> Vec<RunningContainer> {
    running_containers(cluster, pod, only).unwrap_or_default()
}

fn running_containers(
    cluster: &ClusterName,
    pod: &Pod,
    only: Option<&ContainerName>,
) -> Option<Vec<RunningContainer>> {
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
            cluster: cluster.clone(),
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
