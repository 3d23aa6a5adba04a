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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::clock::Clock;
use crate::image::{self, Image};
use crate::store::Store;

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

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the kubelet mounts the projected ServiceAccount token.
pub const SA_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Mounts the container root, the ServiceAccount files and /proc in the
/// fresh mount namespace, then hands over to the final argv. Arguments:
/// lower upper work merged hostname (ro|rw) service-account-dir.
const SETUP_SCRIPT: &str = r#"set -e
mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4"
if [ -n "$7" ]; then
  mkdir -p "$4/var/run/secrets/kubernetes.io/serviceaccount"
  mount --bind "$7" "$4/var/run/secrets/kubernetes.io/serviceaccount"
  mount -o remount,bind,ro "$4/var/run/secrets/kubernetes.io/serviceaccount"
fi
if [ "$6" = ro ]; then mount -o remount,ro "$4"; fi
mount -t proc proc "$4/proc"
hostname "$5"
shift 7
exec "$@""#;

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

/// The container runtime.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

/// Why a container did not start: (waiting/terminated reason, message).
type StartError = (String, String);

fn kill(pid: u32) {
    if pid > 1 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn pod_key(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().unwrap_or("").to_string()
}

/// Resolves `cmd[0]` in the container's PATH like the runtime would.
pub fn find_binary(root: &Path, cmd: &str) -> bool {
    if cmd.contains('/') {
        return image::resolve(root, cmd).is_some_and(|p| p.is_file());
    }
    PATH.split(':')
        .any(|d| image::resolve(root, &format!("{d}/{cmd}")).is_some_and(|p| p.is_file()))
}

fn container_id(pod_uid: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "containerd://{}",
        hex::encode(Sha256::digest(format!("{pod_uid}/{name}")))
    )
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

    /// Writes the projected ServiceAccount volume (a pod-bound token, the CA,
    /// the namespace) for containers that mount it, as the kubelet does.
    fn service_account_files(
        &self,
        pod: &Value,
        c: &Value,
        dir: &Path,
    ) -> Result<Option<PathBuf>, String> {
        let mounted = c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["mountPath"] == SA_MOUNT);
        if !mounted {
            return Ok(None);
        }
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
        let sa_name = pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default");
        let sa = self
            .inner
            .store
            .get("serviceaccounts", ns, sa_name)
            .ok_or_else(|| format!("serviceaccount {ns}/{sa_name} not found"))?;
        let now = self.inner.clock.now();
        let claims = crate::tokens::Claims {
            aud: vec![crate::tokens::ISSUER.into()],
            exp: now + 3607,
            iat: now,
            iss: crate::tokens::ISSUER.into(),
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: crate::tokens::KubeClaims {
                namespace: ns.into(),
                pod: Some(crate::tokens::Ref {
                    name: pod["metadata"]["name"].as_str().unwrap_or("").into(),
                    uid: pod_key(pod),
                }),
                serviceaccount: crate::tokens::Ref {
                    name: sa_name.into(),
                    uid: sa["metadata"]["uid"].as_str().unwrap_or("").into(),
                },
            },
            nbf: now,
            sub: format!("system:serviceaccount:{ns}:{sa_name}"),
        };
        let token = self.inner.signer.sign(&claims).map_err(|e| e.to_string())?;
        let sa_dir = dir.join("serviceaccount");
        std::fs::create_dir_all(&sa_dir).map_err(|e| e.to_string())?;
        for (file, text) in [
            ("token", token.as_str()),
            ("ca.crt", self.inner.ca_pem.as_str()),
            ("namespace", ns),
        ] {
            std::fs::write(sa_dir.join(file), text).map_err(|e| e.to_string())?;
        }
        Ok(Some(sa_dir))
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

    fn identity(&self, pod: &Value, c: &Value, img: &Image) -> Result<Identity, StartError> {
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
        Ok(Identity {
            uid,
            gid,
            groups,
            caps,
            no_new_privs: csc["allowPrivilegeEscalation"] == false,
        })
    }

    /// The `setpriv ... chroot ...` tail that enters the container's identity.
    fn enter_argv(id: &Identity, merged: &Path, argv: &[String]) -> Vec<String> {
        let mut v = vec!["setpriv".to_string()];
        if id.no_new_privs {
            v.push("--no-new-privs".into());
        }
        // chroot runs after the bounding set shrinks, so it keeps
        // CAP_SYS_CHROOT, and CAP_SETUID/SETGID when it must switch identity
        // (a documented deviation: a real runtime drops them before exec).
        let switch = id.uid != 0 || id.gid != 0 || id.groups != [0];
        let keep = |c: &str| {
            c == "sys_chroot"
                || (switch && (c == "setuid" || c == "setgid"))
                || id.caps.iter().any(|k| k == c)
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
            v.push(format!("--userspec={}:{}", id.uid, id.gid));
            v.push(format!(
                "--groups={}",
                id.groups
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

    fn env_for(pod: &Value, c: &Value, img: &Image) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".to_string(), PATH.to_string()),
            (
                "HOSTNAME".to_string(),
                pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
            ),
        ];
        for (k, v) in &img.spec.env {
            env.push((k.clone(), v.clone()));
        }
        for e in c["env"].as_array().into_iter().flatten() {
            if let (Some(k), Some(v)) = (e["name"].as_str(), e["value"].as_str()) {
                env.push((k.to_string(), v.to_string()));
            }
        }
        env.push(("KUBERNETES_SERVICE_HOST".into(), "10.96.0.1".into()));
        env.push(("KUBERNETES_SERVICE_PORT".into(), "443".into()));
        env
    }

    async fn launch(
        &self,
        pod: &Value,
        c: &Value,
        join: Option<u32>,
        ephemeral: bool,
    ) -> Result<(), StartError> {
        let pod_uid = pod_key(pod);
        let name = c["name"].as_str().unwrap_or("").to_string();
        let image_name = c["image"].as_str().unwrap_or("");
        let img = self.inner.images.get(image_name).cloned().ok_or_else(|| {
            (
                "ErrImagePull".to_string(),
                format!("rpc error: code = NotFound desc = failed to pull and unpack image \"{image_name}\": not found in the kubesim fixture"),
            )
        })?;
        let id = self.identity(pod, c, &img)?;
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let (cmd, args) = (strings(&c["command"]), strings(&c["args"]));
        let argv: Vec<String> = match (cmd.is_empty(), args.is_empty()) {
            (false, _) => cmd.into_iter().chain(args).collect(),
            (true, false) => img.spec.entrypoint.iter().cloned().chain(args).collect(),
            (true, true) => img
                .spec
                .entrypoint
                .iter()
                .chain(img.spec.cmd.iter())
                .cloned()
                .collect(),
        };
        if argv.is_empty() {
            return Err(("CreateContainerError".into(), "no command specified".into()));
        }
        if !find_binary(&img.root, &argv[0]) {
            return Err((
                "StartError".into(),
                format!(
                    "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: exec: \"{}\": executable file not found in $PATH: unknown",
                    argv[0]
                ),
            ));
        }
        let dir = self.inner.work.join(&pod_uid).join(&name);
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d)
                .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        }
        let read_only = c["securityContext"]["readOnlyRootFilesystem"] == true;
        let log = std::fs::File::create(dir.join("log"))
            .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        let mut cmd = tokio::process::Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--"]);
        match join {
            None => {
                cmd.args([
                    "unshare",
                    "--pid",
                    "--mount",
                    "--uts",
                    "--fork",
                    "--kill-child",
                    "--propagation",
                    "private",
                    "--",
                ]);
            }
            Some(target) => {
                cmd.args([
                    "nsenter",
                    "--target",
                    &target.to_string(),
                    "--pid",
                    "--",
                    "unshare",
                    "--mount",
                    "--uts",
                    "--propagation",
                    "private",
                    "--",
                ]);
            }
        }
        cmd.args(["/bin/sh", "-c", SETUP_SCRIPT, "kubesim-setup"]);
        let sa_dir = self
            .service_account_files(pod, c, &dir)
            .map_err(|e| ("CreateContainerError".to_string(), e))?;
        cmd.arg(&img.root).arg(&upper).arg(&work).arg(&merged);
        cmd.arg(pod["metadata"]["name"].as_str().unwrap_or("pod"));
        cmd.arg(if read_only { "ro" } else { "rw" });
        cmd.arg(sa_dir.unwrap_or_default());
        cmd.args(Self::enter_argv(&id, &merged, &argv));
        let env = Self::env_for(pod, c, &img);
        cmd.env_clear()
            .envs(env.iter().cloned())
            .env("PATH", format!("{PATH}:/usr/bin:/bin"));
        cmd.stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(self.inner.pgid);
        let mut child = cmd.spawn().map_err(|e| {
            (
                "StartError".to_string(),
                format!("cannot start container: {e}"),
            )
        })?;
        let launcher = child.id().unwrap_or(0);
        let Some(pid) = wait_child(launcher).await else {
            let status = child
                .wait()
                .await
                .ok()
                .and_then(|s| s.code())
                .unwrap_or(128);
            return Err((
                "StartError".into(),
                format!("container setup failed (exit {status})"),
            ));
        };
        // Running once chroot happened: exec can then enter the right root.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap_or_default();
            if root != Path::new("/") || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let container = Container {
            pid,
            launcher,
            merged,
            image: img.clone(),
            identity: id,
            env,
            running: true,
        };
        {
            let mut pods = self.pods();
            let Some(p) = pods.get_mut(&pod_uid) else {
                // The pod was deleted while we started it.
                kill(launcher);
                kill(pid);
                return Ok(());
            };
            p.containers.insert(name.clone(), container);
        }
        let started = self.inner.clock.timestamp();
        self.set_state(
            pod,
            &name,
            ephemeral,
            json!({"running": {"startedAt": started}}),
            !ephemeral,
        );
        let rt = self.clone();
        let pod = pod.clone();
        let h = tokio::spawn(async move {
            let status = child.wait().await;
            let code = status.ok().and_then(|s| s.code()).unwrap_or(137);
            if let Some(c) = rt
                .pods()
                .get_mut(&pod_uid)
                .and_then(|p| p.containers.get_mut(&name))
            {
                c.running = false;
            }
            let now = rt.inner.clock.timestamp();
            let reason = if code == 0 { "Completed" } else { "Error" };
            rt.set_state(&pod, &name, ephemeral,
                json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now}}), false);
        });
        self.inner
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(h);
        Ok(())
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

    fn patch_status(&self, pod: &Value, f: impl FnOnce(&mut Value)) {
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
    fn set_state(&self, pod: &Value, name: &str, ephemeral: bool, state: Value, ready: bool) {
        let uid = pod_key(pod);
        let img = self.inner.images.get(
            pod["spec"][if ephemeral {
                "ephemeralContainers"
            } else {
                "containers"
            }]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .and_then(|c| c["image"].as_str())
            .unwrap_or(""),
        );
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

/// Waits (bounded) for `launcher` to fork its first child.
async fn wait_child(launcher: u32) -> Option<u32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(c) = children(launcher).first() {
            return Some(*c);
        }
        if tokio::time::Instant::now() > deadline
            || !Path::new(&format!("/proc/{launcher}")).exists()
        {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Builds the host command that runs `argv` inside a container (exec).
pub fn exec_command(c: &Container, argv: &[String], pgid: i32) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("nsenter");
    cmd.process_group(pgid);
    cmd.args([
        "--target",
        &c.pid.to_string(),
        "--pid",
        "--mount",
        "--uts",
        "--",
    ]);
    cmd.args(Runtime::enter_argv(&c.identity, &c.merged, argv));
    cmd.env_clear()
        .envs(c.env.iter().cloned())
        .env("PATH", format!("{PATH}:/usr/bin:/bin"));
    cmd
}
