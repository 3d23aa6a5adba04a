//! A container's identity: uid/gid, supplementary groups, capability
//! bounding set and no_new_privs, resolved from the securityContext, and the
//! `setpriv ... chroot` argv that enters it.

use std::path::Path;

use serde_json::Value;

use super::StartError;
use crate::image::Image;

/// containerd's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "chown",
    "dac_override",
    "fsetid",
    "fowner",
    "mknod",
    "net_raw",
    "setgid",
    "setuid",
    "setfcap",
    "setpcap",
    "net_bind_service",
    "sys_chroot",
    "kill",
    "audit_write",
];

/// Every capability name `setpriv` knows (util-linux 2.38).
const ALL_CAPS: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// How a container runs: identity and privileges, resolved from the pod.
#[derive(Debug, Clone)]
pub struct Identity {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Capabilities kept in the bounding set.
    pub caps: Vec<String>,
    /// `allowPrivilegeEscalation: false`.
    pub no_new_privs: bool,
}

impl Identity {
    /// Resolves uid/gid, supplementary groups and the capability bounding
    /// set from the pod and container securityContext and the image USER.
    pub(super) fn resolve(pod: &Value, c: &Value, img: &Image) -> Result<Self, StartError> {
        let psc = &pod["spec"]["securityContext"];
        let csc = &c["securityContext"];
        let (iu, ig) = img.default_user();
        let uid = csc["runAsUser"]
            .as_u64()
            .or(psc["runAsUser"].as_u64())
            .map_or(iu, |u| u as u32);
        let gid = csc["runAsGroup"]
            .as_u64()
            .or(psc["runAsGroup"].as_u64())
            .map_or(ig, |g| g as u32);
        let non_root = csc["runAsNonRoot"]
            .as_bool()
            .or(psc["runAsNonRoot"].as_bool())
            == Some(true);
        if non_root && uid == 0 {
            return Err((
                "CreateContainerConfigError".into(),
                "container has runAsNonRoot and image will run as root".into(),
            ));
        }
        let mut groups = vec![gid];
        for g in psc["supplementalGroups"].as_array().into_iter().flatten() {
            if let Some(g) = g.as_u64() {
                groups.push(g as u32);
            }
        }
        if let Some(fs) = psc["fsGroup"].as_u64() {
            groups.push(fs as u32);
        }
        groups.dedup();
        let norm = |v: &Value| {
            v.as_str()
                .unwrap_or("")
                .to_ascii_lowercase()
                .trim_start_matches("cap_")
                .to_string()
        };
        let mut caps: Vec<String> = if csc["privileged"] == true {
            ALL_CAPS.iter().map(|s| s.to_string()).collect()
        } else {
            DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
        };
        let drops: Vec<String> = csc["capabilities"]["drop"]
            .as_array()
            .into_iter()
            .flatten()
            .map(norm)
            .collect();
        if drops.iter().any(|d| d == "all") {
            caps.clear();
        }
        caps.retain(|c| !drops.contains(c));
        for a in csc["capabilities"]["add"]
            .as_array()
            .into_iter()
            .flatten()
            .map(norm)
        {
            if a == "all" {
                caps = ALL_CAPS.iter().map(|s| s.to_string()).collect();
            } else if ALL_CAPS.contains(&a.as_str()) && !caps.contains(&a) {
                caps.push(a);
            }
        }
        Ok(Self {
            uid,
            gid,
            groups,
            caps,
            no_new_privs: csc["allowPrivilegeEscalation"] == false,
        })
    }

    /// The `setpriv ... chroot ...` tail that enters the container's identity.
    pub(super) fn enter_argv(&self, merged: &Path, argv: &[String]) -> Vec<String> {
        let mut v = vec!["setpriv".to_string()];
        if self.no_new_privs {
            v.push("--no-new-privs".into());
        }
        // chroot runs after the bounding set shrinks, so it keeps
        // CAP_SYS_CHROOT, and CAP_SETUID/SETGID when it must switch identity
        // (a documented deviation: a real runtime drops them before exec).
        let switch = self.uid != 0 || self.gid != 0 || self.groups != [0];
        let keep = |c: &str| {
            c == "sys_chroot"
                || (switch && (c == "setuid" || c == "setgid"))
                || self.caps.iter().any(|k| k == c)
        };
        let drop: Vec<String> = ALL_CAPS
            .iter()
            .filter(|c| !keep(c))
            .map(|c| format!("-{c}"))
            .collect();
        if !drop.is_empty() {
            v.push("--bounding-set".into());
            v.push(drop.join(","));
        }
        v.push("--".into());
        v.push("chroot".into());
        if switch {
            v.push(format!("--userspec={}:{}", self.uid, self.gid));
            v.push(format!(
                "--groups={}",
                self.groups
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        v.push(merged.display().to_string());
        v.extend(argv.iter().cloned());
        v
    }
}
