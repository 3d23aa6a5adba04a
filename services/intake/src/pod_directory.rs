//! Which containers run where: a watch-driven cache of pods, used to expand
//! label selectors (and, next, to match registry pushes to running pods).
//!
//! A reflector keeps a local copy of every pod, so expanding a selector never
//! calls the API server: a flood of submissions costs the cluster nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use scanfleet_scan_intents::{ContainerName, ContainerRef, LabelSelector, NamespaceName, PodName};
use tokio::sync::watch;

/// A running container found in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningContainer {
    /// Where it is.
    pub target: ContainerRef,
    /// The image as the pod spec names it.
    pub image: String,
    /// The `sha256:` digest the kubelet reports, when known.
    pub image_digest: Option<String>,
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
    /// # Errors
    /// When the initial list does not arrive (no permission, unreachable).
    pub async fn start(
        client: kube::Client,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), String> {
        let api: Api<Pod> = Api::all(client);
        let (reader, writer) = reflector::store();
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .applied_objects();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return,
                    next = stream.next() => match next {
                        None => return,
                        Some(Err(e)) => tracing::warn!(error = %e, "pod watch error; backing off"),
                        Some(Ok(_)) => {}
                    },
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
            if let Some(c) = running_containers(&pod, namespace, selector, container) {
                found.extend(c);
            }
        }
        found.sort_by(|a, b| a.target.cmp(&b.target));
        found
    }
}

fn running_containers(
    pod: &Arc<Pod>,
    namespace: &NamespaceName,
    selector: &LabelSelector,
    only: Option<&ContainerName>,
) -> Option<Vec<RunningContainer>> {
    if pod.metadata.namespace.as_deref() != Some(namespace.as_str()) {
        return None;
    }
    let labels: BTreeMap<String, String> = pod.metadata.labels.clone().unwrap_or_default();
    if !selector.matches(&labels) {
        return None;
    }
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
        let image_digest = status
            .map(|s| s.image_id.clone())
            .and_then(|id| id.rsplit_once('@').map(|(_, d)| d.to_owned()))
            .filter(|d| d.starts_with("sha256:"));
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
