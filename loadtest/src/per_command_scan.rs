//! The pattern scanfleet replaces, for the fleet benchmark's side-by-side:
//! an InSpec-style scan through a Kubernetes-container transport that
//! opens one `exec` API call per command the profile runs (as
//! train-k8s-container does), under the same governor budget as the fleet.
//!
//! The commands are written here for `container-baseline`'s 18 controls
//! (19 checks): what an InSpec run of the same controls asks the
//! transport for, one command per resource read, after the transport's own
//! platform detection. InSpec reads a file once per resource that uses it,
//! so `/etc/passwd` is read by each account control; a package check runs
//! one query per package. The count is a floor (real InSpec also probes
//! for the package manager and `stat` flavour), which favours the pattern
//! we replace.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{AttachParams, ListParams};
use scanfleet_kube_access::{ApiThrottle, ClusterAccess, ThrottleConfig};
use tokio::io::AsyncReadExt;

/// Platform detection the transport runs once per target before any
/// control (InSpec's `os` detection through train).
const DETECTION: [&str; 3] = ["uname -s", "uname -m", "cat /etc/os-release"];

/// One command per check of `container-baseline`, in control order.
const CHECKS: [&str; 22] = [
    // cb-accounts-01..05: the passwd and shadow resources read their file.
    "cat /etc/passwd",
    "cat /etc/shadow",
    "cat /etc/shadow",
    "cat /etc/passwd",
    "cat /etc/passwd",
    // cb-accounts-06: the etc_group resource.
    "cat /etc/group",
    // cb-files-01..03: file resources stat their path.
    "stat -c '%f %u %g %a' /etc/passwd",
    "stat -c '%f %u %g %a' /etc/shadow",
    "stat -c '%f %u %g %a' /etc/group",
    // cb-files-04..06: one search each.
    "find / -xdev -type f -perm -0002 2>/dev/null | head -1000",
    "find / -xdev -type f -perm /6000 2>/dev/null | head -1000",
    "find / -xdev -nouser 2>/dev/null | head -1000",
    // cb-files-07.
    "stat -c '%f %u %g %a' /root",
    // cb-runtime-01: the main process and its owner.
    "cat /proc/1/status",
    // cb-runtime-02: its environment.
    "cat /proc/1/environ",
    // cb-runtime-03: the processes resource lists every process.
    "ps -o pid,user,args",
    // cb-runtime-04: two os_release checks, the resource read for each.
    "cat /etc/os-release",
    "cat /etc/os-release",
    // cb-runtime-05: one package query per package.
    "dpkg -s telnet 2>/dev/null || apk info -e telnet",
    "dpkg -s telnetd 2>/dev/null || apk info -e telnetd",
    "dpkg -s rsh-client 2>/dev/null || apk info -e rsh-client",
    "dpkg -s rsh-server 2>/dev/null || apk info -e rsh-server",
];

/// API calls the pattern makes per container (one exec per command).
pub const CALLS_PER_CONTAINER: usize = DETECTION.len() + CHECKS.len();

/// Largest output kept from one command.
const MAX_OUTPUT: usize = 1 << 20;

/// What the per-command run did.
#[derive(Debug, Clone, Copy)]
pub struct PerCommandRun {
    /// Containers scanned.
    pub containers: usize,
    /// Exec calls that opened a session (the command may still have failed
    /// in the container: a distroless one has no shell).
    pub opened: usize,
    /// Exec calls the API server refused or that broke.
    pub failed: usize,
    /// From the first command to the last answer.
    pub wall: Duration,
}

/// Scans every container of every pod in `namespace` with one exec per
/// command, `parallel` containers at a time (each container's commands one
/// after another, as one InSpec run does), through one governor limiter of
/// `qps`/`burst` shared by all.
///
/// # Errors
/// When the client cannot be built or the pods cannot be listed.
pub async fn run(
    admin_kubeconfig: &str,
    namespace: &str,
    qps: f64,
    burst: u32,
    parallel: usize,
) -> Result<PerCommandRun> {
    let throttle = ApiThrottle::new(ThrottleConfig {
        qps,
        burst,
        ..ThrottleConfig::default()
    })?;
    let access =
        ClusterAccess::from_kubeconfig_throttled(admin_kubeconfig, "admin", throttle).await?;
    let pods: kube::Api<Pod> = kube::Api::namespaced(access.client.clone(), namespace);
    let targets: Vec<(String, String)> = pods
        .list(&ListParams::default())
        .await
        .context("listing the pods to scan")?
        .items
        .iter()
        .flat_map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            p.spec
                .iter()
                .flat_map(|s| s.containers.iter())
                .map(move |c| (name.clone(), c.name.clone()))
        })
        .collect();
    let started = Instant::now();
    let outcomes: Vec<(usize, usize)> = futures::stream::iter(targets.iter())
        .map(|(pod, container)| scan_container(&pods, pod, container))
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    Ok(PerCommandRun {
        containers: targets.len(),
        opened: outcomes.iter().map(|o| o.0).sum(),
        failed: outcomes.iter().map(|o| o.1).sum(),
        wall: started.elapsed(),
    })
}

/// Runs every command in one container; returns (opened, failed).
async fn scan_container(pods: &kube::Api<Pod>, pod: &str, container: &str) -> (usize, usize) {
    let mut counts = (0, 0);
    for command in DETECTION.iter().chain(CHECKS.iter()) {
        match exec_once(pods, pod, container, command).await {
            Ok(()) => counts.0 += 1,
            Err(_) => counts.1 += 1,
        }
    }
    counts
}

/// One command, one exec API call: `sh -c COMMAND`, stdout read to the end
/// (bounded), then the status.
async fn exec_once(pods: &kube::Api<Pod>, pod: &str, container: &str, command: &str) -> Result<()> {
    let params = AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(false);
    let mut process = pods
        .exec(pod, ["/bin/sh", "-c", command], &params)
        .await
        .with_context(|| format!("exec {command:?} in {pod}/{container}"))?;
    if let Some(stdout) = process.stdout() {
        let mut out = Vec::new();
        stdout
            .take(MAX_OUTPUT as u64)
            .read_to_end(&mut out)
            .await
            .context("reading stdout")?;
    }
    if let Some(status) = process.take_status() {
        let _ = status.await;
    }
    process.join().await.context("closing the exec session")?;
    Ok(())
}
