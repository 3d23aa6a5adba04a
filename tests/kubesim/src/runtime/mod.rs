//! Containers as real processes.
//!
//! Every container runs in its own PID, mount and UTS namespaces (or joins a
//! pod sandbox's PID namespace for `shareProcessNamespace`, or its target's
//! for an ephemeral container with `targetContainerName`), rooted in an
//! overlay of its image, with the uid/gid and capability bounding set its
//! securityContext asks for. Processes are started through util-linux
//! (`setpriv`, `unshare`, `nsenter`) and coreutils `chroot`, so no unsafe code
//! is needed; `setpriv --pdeathsig KILL` plus `unshare --kill-child` make
//! every container die with kubesim, and the kernel tears the namespaces and
//! their mounts down with the last process.
//!
//! Files: [`identity`] (who a container runs as), [`launch`] (starting one
//! container), [`service_account`] (the projected token volume),
//! [`pod_status`] (what the kubelet reports), [`process`] (pid helpers);
//! this file holds the runtime's state and the pod lifecycle.

mod identity;
mod launch;
mod pod_status;
mod process;
mod service_account;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::clock::Clock;
use crate::image::Image;
use crate::store::Store;

pub use identity::{DEFAULT_CAPS, Identity};
pub use launch::{exec_command, find_binary};
pub use service_account::SA_MOUNT;

use process::{kill, wait_child};

/// A running (or finished) container.
#[derive(Debug, Clone)]
pub struct Container {
    /// Host pid of the container's main process.
    pub pid: u32,
    /// Host pid of the launcher (unshare / nsenter).
    pub launcher: u32,
    /// The container's root as seen inside its mount namespace.
    pub merged: PathBuf,
    /// Image.
    pub image: Arc<Image>,
    /// Identity.
    pub identity: Identity,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Whether it still runs.
    pub running: bool,
}

#[derive(Default)]
struct PodRun {
    sandbox: Option<(u32, u32)>,
    containers: BTreeMap<String, Container>,
}

struct Inner {
    /// Every container process is in this process group; the watchdog
    /// SIGKILLs the whole group when kubesim's end of its stdin closes.
    pgid: i32,
    _watchdog: Mutex<Option<tokio::process::Child>>,
    store: Arc<Store>,
    clock: Arc<Clock>,
    signer: Arc<crate::tokens::TokenSigner>,
    ca_pem: String,
    images: BTreeMap<String, Arc<Image>>,
    work: PathBuf,
    pods: Mutex<BTreeMap<String, PodRun>>,
    waiters: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    next_ip: AtomicU32,
}

impl Inner {
    /// The image a container's `image` names: a fixture image by its exact
    /// name, or by digest (`repo[:tag]@sha256:…`, the tag ignored as
    /// containerd does) when the repository and digest match a built image.
    fn image(&self, reference: &str) -> Option<Arc<Image>> {
        if let Some(i) = self.images.get(reference) {
            return Some(i.clone());
        }
        let (name, digest) = reference.split_once('@')?;
        let repo = name
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map_or(name, |(r, _)| r);
        self.images
            .values()
            .find(|i| i.image_id() == format!("{repo}@{digest}"))
            .cloned()
    }
}

/// The container runtime.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

/// Why a container did not start: (waiting/terminated reason, message).
type StartError = (String, String);

fn pod_key(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap_or("").to_string()
}

impl Runtime {
    /// A runtime serving `images`, keeping container layers under `work`.
    pub fn new(
        store: Arc<Store>,
        clock: Arc<Clock>,
        signer: Arc<crate::tokens::TokenSigner>,
        ca_pem: String,
        images: Vec<Image>,
        work: PathBuf,
    ) -> std::io::Result<Self> {
        // PR_SET_PDEATHSIG does not survive the uid change of non-root
        // containers, so parent death is handled by a watchdog: it blocks on
        // a pipe only kubesim holds, and kills the process group at EOF.
        let watchdog = tokio::process::Command::new("/bin/sh")
            .args(["-c", "read _; kill -KILL 0"])
            .process_group(0)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let pgid = watchdog.id().unwrap_or(0) as i32;
        Ok(Self {
            inner: Arc::new(Inner {
                pgid,
                _watchdog: Mutex::new(Some(watchdog)),
                store,
                clock,
                signer,
                ca_pem,
                images: images
                    .into_iter()
                    .map(|i| (i.spec.name.clone(), Arc::new(i)))
                    .collect(),
                work,
                pods: Mutex::new(BTreeMap::new()),
                waiters: Mutex::new(Vec::new()),
                next_ip: AtomicU32::new(2),
            }),
        })
    }

    /// The process group every container process belongs to.
    pub fn process_group(&self) -> i32 {
        self.inner.pgid
    }

    fn pods(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PodRun>> {
        self.inner.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A container of a pod, if started.
    pub fn container(&self, pod_uid: &str, name: &str) -> Option<Container> {
        self.pods().get(pod_uid)?.containers.get(name).cloned()
    }

    /// A container's stdout/stderr so far (`pods/log`).
    pub fn logs(&self, pod_uid: &str, name: &str) -> Option<String> {
        let c = self.container(pod_uid, name)?;
        let dir = c.merged.parent()?;
        std::fs::read(dir.join("log"))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Number of live container processes (for scale figures).
    pub fn running_containers(&self) -> usize {
        self.pods()
            .values()
            .map(|p| p.containers.values().filter(|c| c.running).count())
            .sum()
    }

    /// Starts the containers of a newly created pod.
    pub fn pod_created(&self, pod: &Value) {
        let rt = self.clone();
        let pod = pod.clone();
        let ip = self.inner.next_ip.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move { rt.start_pod(pod, ip).await });
    }

    async fn start_pod(&self, pod: Value, ip: u32) {
        let uid = pod_key(&pod);
        self.pods().entry(uid.clone()).or_default();
        let shared = pod["spec"]["shareProcessNamespace"] == true;
        let mut join = None;
        if shared {
            match self.start_sandbox(&uid).await {
                Ok(pids) => {
                    if let Some(p) = self.pods().get_mut(&uid) {
                        p.sandbox = Some(pids);
                    }
                    join = Some(pids.1);
                }
                Err(e) => tracing::warn!("sandbox for pod {uid} failed: {e}"),
            }
        }
        let now = self.inner.clock.timestamp();
        let ip = format!("10.244.{}.{}", ip / 250, ip % 250 + 2);
        self.patch_status(&pod, |st| {
            st["podIP"] = json!(ip);
            st["podIPs"] = json!([{"ip": ip}]);
            st["hostIP"] = json!("172.18.0.2");
            st["hostIPs"] = json!([{"ip": "172.18.0.2"}]);
            st["startTime"] = json!(now);
        });
        let containers = pod["spec"]["containers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in containers {
            let name = c["name"].as_str().unwrap_or("").to_string();
            self.set_state(
                &pod,
                &name,
                false,
                json!({"waiting": {"reason": "ContainerCreating"}}),
                false,
            );
            self.run_container(&pod, &c, join, false).await;
        }
    }

    async fn start_sandbox(&self, pod_uid: &str) -> std::io::Result<(u32, u32)> {
        let mut cmd = tokio::process::Command::new("setpriv");
        cmd.args([
            "--pdeathsig",
            "KILL",
            "--",
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            "--",
            "sleep",
            "infinity",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(self.inner.pgid);
        let mut child = cmd.spawn()?;
        let launcher = child.id().unwrap_or(0);
        let pid = wait_child(launcher).await.ok_or_else(|| {
            std::io::Error::other(format!("sandbox of pod {pod_uid} did not start"))
        })?;
        let h = tokio::spawn(async move {
            let _ = child.wait().await;
        });
        self.inner
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(h);
        Ok((launcher, pid))
    }

    /// Resolves image, identity and argv, then launches one container and
    /// records its status transitions.
    async fn run_container(&self, pod: &Value, c: &Value, join: Option<u32>, ephemeral: bool) {
        let name = c["name"].as_str().unwrap_or("").to_string();
        match self.launch(pod, c, join, ephemeral).await {
            Ok(()) => {}
            Err((reason, message)) => {
                let state = if reason == "StartError" {
                    let now = self.inner.clock.timestamp();
                    json!({"terminated": {"exitCode": 128, "reason": reason, "message": message,
                                          "startedAt": "1970-01-01T00:00:00Z", "finishedAt": now}})
                } else {
                    json!({"waiting": {"reason": reason, "message": message}})
                };
                self.set_state(pod, &name, ephemeral, state, false);
            }
        }
    }

    /// Starts ephemeral containers that have no status yet.
    pub fn ephemeral_changed(&self, pod: &Value) {
        let rt = self.clone();
        let pod = pod.clone();
        tokio::spawn(async move {
            let uid = pod_key(&pod);
            let known: Vec<String> = pod["status"]["ephemeralContainerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["name"].as_str().map(str::to_string))
                .collect();
            for c in pod["spec"]["ephemeralContainers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                let name = c["name"].as_str().unwrap_or("").to_string();
                if known.contains(&name) || rt.container(&uid, &name).is_some() {
                    continue;
                }
                rt.set_state(
                    &pod,
                    &name,
                    true,
                    json!({"waiting": {"reason": "ContainerCreating"}}),
                    false,
                );
                let join = {
                    let pods = rt.pods();
                    let p = pods.get(&uid);
                    match (p.and_then(|p| p.sandbox), c["targetContainerName"].as_str()) {
                        (Some((_, s)), _) => Some(s),
                        (None, Some(t)) => p
                            .and_then(|p| p.containers.get(t))
                            .filter(|c| c.running)
                            .map(|c| c.pid),
                        (None, None) => None,
                    }
                };
                rt.run_container(&pod, &c, join, true).await;
            }
        });
    }

    /// Kills a deleted pod's processes.
    pub fn pod_deleted(&self, pod: &Value) {
        if let Some(p) = self.pods().remove(&pod_key(pod)) {
            for c in p.containers.values() {
                kill(c.launcher);
                kill(c.pid);
            }
            if let Some((l, s)) = p.sandbox {
                kill(l);
                kill(s);
            }
        }
    }

    /// Kills everything and waits for the launchers to be reaped, so no
    /// process, namespace or mount outlives the server.
    pub async fn shutdown(&self) {
        let pods: Vec<PodRun> = std::mem::take(&mut *self.pods()).into_values().collect();
        for p in &pods {
            for c in p.containers.values() {
                kill(c.launcher);
                kill(c.pid);
            }
            if let Some((l, s)) = p.sandbox {
                kill(l);
                kill(s);
            }
        }
        let waiters: Vec<_> =
            std::mem::take(&mut *self.inner.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for w in waiters {
            let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
        }
        // Closing the pipe makes the watchdog kill whatever is left.
        let watchdog = self
            .inner
            ._watchdog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut w) = watchdog {
            drop(w.stdin.take());
            let _ = tokio::time::timeout(Duration::from_secs(10), w.wait()).await;
        }
    }
}
