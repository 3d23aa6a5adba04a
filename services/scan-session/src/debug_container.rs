//! The debug approach: an ephemeral container in the target's PID namespace
//! reads a distroless target through `/proc/1/root`.
//!
//! The container is as weak as the job allows. It cannot escalate, cannot
//! write its own root, runs under RuntimeDefault seccomp, and holds no
//! capability, *except* when the target's user is root or unknown. Then it
//! must pass the kernel's ptrace access check on `/proc/1/root`
//! (`SYS_PTRACE`), and read files as the target's root would
//! (`DAC_READ_SEARCH`, which is read-only). When the target's uid is known,
//! the container runs as that uid and needs nothing.
//!
//! Its main process is a bounded `sleep` with a unique argument. The scan
//! script ends it on exit, so the container ends when its script ends; the
//! bound ends it at the scan deadline if the script never ran.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{
    Capabilities, EphemeralContainer, Pod, SeccompProfile, SecurityContext,
};
use kube::Api;
use kube::api::{Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::json;

/// Who the target container runs as, as far as the pod spec says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetUser {
    /// uid, when the spec names one.
    pub uid: Option<i64>,
    /// gid, when the spec names one.
    pub gid: Option<i64>,
}

impl TargetUser {
    /// From the container's securityContext, falling back to the pod's.
    pub fn of(pod: &Pod, container: &str) -> Self {
        let spec = pod.spec.as_ref();
        let psc = spec.and_then(|s| s.security_context.as_ref());
        let csc = spec
            .and_then(|s| s.containers.iter().find(|c| c.name == container))
            .and_then(|c| c.security_context.as_ref());
        Self {
            uid: csc
                .and_then(|c| c.run_as_user)
                .or(psc.and_then(|p| p.run_as_user)),
            gid: csc
                .and_then(|c| c.run_as_group)
                .or(psc.and_then(|p| p.run_as_group)),
        }
    }
}

/// The ephemeral container for one scan.
pub fn debug_container(
    name: &str,
    image: &str,
    target_container: &str,
    target: TargetUser,
    lifetime: Duration,
    nonce: &str,
) -> EphemeralContainer {
    let known_non_root = matches!(target.uid, Some(uid) if uid != 0);
    let (run_as_user, run_as_group, add) = if known_non_root {
        (target.uid, target.gid.or(target.uid), None)
    } else {
        (
            Some(0),
            Some(0),
            Some(vec!["SYS_PTRACE".to_owned(), "DAC_READ_SEARCH".to_owned()]),
        )
    };
    EphemeralContainer {
        name: name.to_owned(),
        image: Some(image.to_owned()),
        target_container_name: Some(target_container.to_owned()),
        command: Some(vec![
            "sleep".to_owned(),
            format!("{}.{nonce}", lifetime.as_secs().max(1)),
        ]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            privileged: Some(false),
            run_as_non_root: Some(known_non_root),
            run_as_user,
            run_as_group,
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..Default::default()
            }),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A line prepended to the scan script: on exit, end this debug container's
/// `sleep`, found by its unique argument *inside the script's own mount
/// namespace*, so no process of the target can ever match.
pub fn end_on_exit_preamble(lifetime: Duration, nonce: &str) -> String {
    let arg = format!("{}.{nonce}", lifetime.as_secs().max(1));
    format!(
        "scanfleet_end() {{ m=$(readlink /proc/self/ns/mnt); for d in /proc/[0-9]*; do \
         [ \"$(readlink \"$d/ns/mnt\" 2>&-)\" = \"$m\" ] || continue; \
         [ \"$(tr '\\000' ' ' < \"$d/cmdline\" 2>&-)\" = \"sleep {arg} \" ] && kill \"${{d##*/}}\" 2>&-; \
         done; }}\ntrap scanfleet_end EXIT\n"
    )
}

/// Why the debug container could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DebugError {
    /// The API refused or failed the patch or the watch.
    #[error("{step}: {source}")]
    Api {
        /// Which step.
        step: &'static str,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// The container did not reach Running.
    #[error("debug container {name} did not start: {reason}")]
    NotStarted {
        /// Its name.
        name: String,
        /// Waiting/terminated reason and message.
        reason: String,
    },
    /// The bounded watch ended first.
    #[error("debug container {name} was not running within {after:?}")]
    Timeout {
        /// Its name.
        name: String,
        /// The bound.
        after: Duration,
    },
}

/// Adds the container (as the per-scan identity) and waits, with a watch
/// bounded by `wait`, until it runs.
///
/// # Errors
/// [`DebugError`].
pub async fn start(
    scan_client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: EphemeralContainer,
    wait: Duration,
) -> Result<(), DebugError> {
    let pods: Api<Pod> = Api::namespaced(scan_client.clone(), namespace);
    let name = container.name.clone();
    let patch = json!({"spec": {"ephemeralContainers": [container]}});
    pods.patch_ephemeral_containers(pod, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map_err(|source| DebugError::Api {
            step: "add the debug container",
            source,
        })?;
    let secs = wait.as_secs().clamp(1, 290) as u32;
    let params = WatchParams::default()
        .fields(&format!("metadata.name={pod}"))
        .timeout(secs);
    let watched = async {
        let mut events = pods
            .watch(&params, "0")
            .await
            .map_err(|source| DebugError::Api {
                step: "watch the pod for the debug container",
                source,
            })?
            .boxed();
        while let Some(event) = events.try_next().await.map_err(|source| DebugError::Api {
            step: "watch the pod for the debug container",
            source,
        })? {
            let pod = match event {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => p,
                WatchEvent::Deleted(_) => {
                    return Err(DebugError::NotStarted {
                        name: name.clone(),
                        reason: "the pod was deleted".into(),
                    });
                }
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(e) => {
                    return Err(DebugError::NotStarted {
                        name: name.clone(),
                        reason: e.message,
                    });
                }
            };
            if let Some(state) = ephemeral_state(&pod, &name) {
                return state;
            }
        }
        Err(DebugError::Timeout {
            name: name.clone(),
            after: wait,
        })
    };
    match tokio::time::timeout(wait, watched).await {
        Ok(r) => r,
        Err(_) => Err(DebugError::Timeout { name, after: wait }),
    }
}

/// `Some(Ok)` once running, `Some(Err)` when it failed, `None` while waiting.
fn ephemeral_state(pod: &Pod, name: &str) -> Option<Result<(), DebugError>> {
    let status = pod
        .status
        .as_ref()?
        .ephemeral_container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == name)?;
    let state = status.state.as_ref()?;
    if state.running.is_some() {
        return Some(Ok(()));
    }
    if let Some(t) = &state.terminated {
        return Some(Err(DebugError::NotStarted {
            name: name.to_owned(),
            reason: format!(
                "terminated ({}): {}",
                t.reason.clone().unwrap_or_default(),
                t.message.clone().unwrap_or_default()
            ),
        }));
    }
    if let Some(w) = &state.waiting {
        let reason = w.reason.clone().unwrap_or_default();
        if reason != "ContainerCreating" && !reason.is_empty() {
            return Some(Err(DebugError::NotStarted {
                name: name.to_owned(),
                reason: format!("{reason}: {}", w.message.clone().unwrap_or_default()),
            }));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_non_root_target_gets_its_own_uid_and_no_capability() {
        let c = debug_container(
            "d",
            "img",
            "app",
            TargetUser {
                uid: Some(65532),
                gid: Some(65532),
            },
            Duration::from_secs(600),
            "n",
        );
        let sc = c.security_context.unwrap();
        assert_eq!(sc.run_as_user, Some(65532));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.capabilities.unwrap().add, None);
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    }

    #[test]
    fn a_root_or_unknown_target_gets_only_ptrace_and_read_search() {
        for uid in [None, Some(0)] {
            let c = debug_container(
                "d",
                "img",
                "app",
                TargetUser { uid, gid: None },
                Duration::from_secs(600),
                "n",
            );
            let caps = c.security_context.unwrap().capabilities.unwrap();
            assert_eq!(caps.drop, Some(vec!["ALL".to_owned()]));
            assert_eq!(
                caps.add,
                Some(vec!["SYS_PTRACE".to_owned(), "DAC_READ_SEARCH".to_owned()])
            );
        }
    }
}
