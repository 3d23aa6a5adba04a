//! What the kubelet reports: container states, pod phase and conditions,
//! written into the pod's status in the store.

use serde_json::{Value, json};

use super::{Runtime, pod_key};

fn container_id(pod_uid: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "containerd://{}",
        hex::encode(Sha256::digest(format!("{pod_uid}/{name}")))
    )
}

impl Runtime {
    pub(super) fn patch_status(&self, pod: &Value, f: impl FnOnce(&mut Value)) {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
        let name = pod["metadata"]["name"].as_str().unwrap_or("");
        let uid = pod_key(pod);
        let _ = self.inner.store.update("pods", ns, name, |cur| {
            if cur["metadata"]["uid"].as_str() != Some(uid.as_str()) {
                return Err(());
            }
            let mut new = cur.clone();
            f(&mut new["status"]);
            Ok(new)
        });
    }

    /// Records a container state and recomputes phase and conditions.
    pub(super) fn set_state(
        &self,
        pod: &Value,
        name: &str,
        ephemeral: bool,
        state: Value,
        ready: bool,
    ) {
        let uid = pod_key(pod);
        let image_name = pod["spec"][if ephemeral {
            "ephemeralContainers"
        } else {
            "containers"
        }]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .and_then(|c| c["image"].as_str())
        .unwrap_or("")
        .to_string();
        let img = self.inner.image(&image_name);
        let now = self.inner.clock.timestamp();
        let started = state.get("running").is_some() || state.get("terminated").is_some();
        let mut entry = json!({
            "name": name, "image": image_name,
            "imageID": img.map(|i| i.image_id()).unwrap_or_default(),
            "ready": ready, "restartCount": 0, "started": state.get("running").is_some(),
            "state": state,
        });
        if started {
            entry["containerID"] = json!(container_id(&uid, name));
        }
        let field = if ephemeral {
            "ephemeralContainerStatuses"
        } else {
            "containerStatuses"
        };
        self.patch_status(pod, |st| {
            let mut list = st[field].as_array().cloned().unwrap_or_default();
            match list.iter_mut().find(|s| s["name"] == name) {
                Some(s) => {
                    if let Some(prev) = s.get("containerID").cloned()
                        && entry.get("containerID").is_none()
                    {
                        entry["containerID"] = prev;
                    }
                    *s = entry;
                }
                None => list.push(entry),
            }
            st[field] = json!(list);
            if ephemeral {
                return;
            }
            let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
            let statuses = st["containerStatuses"].as_array().cloned().unwrap_or_default();
            let running = statuses.iter().filter(|s| s["state"].get("running").is_some()).count();
            let terminated: Vec<&Value> = statuses.iter().filter(|s| s["state"].get("terminated").is_some()).collect();
            let all_ready = statuses.len() == total && statuses.iter().all(|s| s["ready"] == true);
            st["phase"] = json!(if running > 0 || (terminated.len() < total && statuses.len() == total && statuses.iter().all(|s| s["state"].get("waiting").is_none())) {
                "Running"
            } else if total > 0 && terminated.len() == total {
                if terminated.iter().all(|s| s["state"]["terminated"]["exitCode"] == 0) { "Succeeded" } else { "Failed" }
            } else {
                "Pending"
            });
            let cond = |t: &str, ok: bool| json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
            st["conditions"] = json!([
                cond("PodReadyToStartContainers", true),
                cond("Initialized", true),
                cond("Ready", all_ready),
                cond("ContainersReady", all_ready),
                cond("PodScheduled", true),
            ]);
        });
    }
}
