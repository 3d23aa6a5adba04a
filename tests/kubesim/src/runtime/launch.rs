//! Launching one container: resolve its argv, prepare its overlay dirs and
//! log, start `setpriv`/`unshare` (or `nsenter` into a shared PID
//! namespace), wait until it is chrooted, and record its exit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::process::{kill, wait_child};
use super::{Container, Identity, Runtime, StartError, pod_key};
use crate::image::{self, Image};

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

/// Resolves `cmd[0]` in the container's PATH like the runtime would.
pub fn find_binary(root: &Path, cmd: &str) -> bool {
    if cmd.contains('/') {
        return image::resolve(root, cmd).is_some_and(|p| p.is_file());
    }
    PATH.split(':')
        .any(|d| image::resolve(root, &format!("{d}/{cmd}")).is_some_and(|p| p.is_file()))
}

/// The argv a container runs: `command`+`args`, else the image's
/// ENTRYPOINT with `args` or CMD; its first word must exist in the image.
fn argv_for(c: &Value, img: &Image) -> Result<Vec<String>, StartError> {
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
    Ok(argv)
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

/// The namespace part of the launcher: fresh PID+mount+UTS namespaces, or
/// the PID namespace of `join` (sandbox or target) plus fresh mount+UTS.
fn namespace_args(join: Option<u32>) -> Vec<String> {
    let args: &[&str] = match join {
        None => &[
            "unshare",
            "--pid",
            "--mount",
            "--uts",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
        ],
        Some(_) => &[
            "nsenter",
            "--target",
            "",
            "--pid",
            "--",
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
        ],
    };
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if let Some(target) = join {
        v[2] = target.to_string();
    }
    v
}

/// The overlay directories of one container.
struct Layers {
    dir: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    merged: PathBuf,
}

impl Layers {
    fn create(dir: PathBuf) -> Result<Self, StartError> {
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d)
                .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        }
        Ok(Self {
            dir,
            upper,
            work,
            merged,
        })
    }
}

/// Waits (bounded) until `pid` has chrooted: exec can then enter the
/// right root.
async fn wait_chrooted(pid: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap_or_default();
        if root != Path::new("/") || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl Runtime {
    /// Resolves image, identity and argv, then launches one container and
    /// records its status transitions.
    pub(super) async fn launch(
        &self,
        pod: &Value,
        c: &Value,
        join: Option<u32>,
        ephemeral: bool,
    ) -> Result<(), StartError> {
        let pod_uid = pod_key(pod);
        let name = c["name"].as_str().unwrap_or("").to_string();
        let image_name = c["image"].as_str().unwrap_or("");
        let img = self.inner.image(image_name).ok_or_else(|| {
            (
                "ErrImagePull".to_string(),
                format!("rpc error: code = NotFound desc = failed to pull and unpack image \"{image_name}\": not found in the kubesim fixture"),
            )
        })?;
        let id = Identity::resolve(pod, c, &img)?;
        let argv = argv_for(c, &img)?;
        let layers = Layers::create(self.inner.work.join(&pod_uid).join(&name))?;
        let read_only = c["securityContext"]["readOnlyRootFilesystem"] == true;
        let log = std::fs::File::create(layers.dir.join("log"))
            .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        let mut cmd = tokio::process::Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--"]);
        cmd.args(namespace_args(join));
        cmd.args(["/bin/sh", "-c", SETUP_SCRIPT, "kubesim-setup"]);
        let sa_dir = self
            .service_account_files(pod, c, &layers.dir)
            .map_err(|e| ("CreateContainerError".to_string(), e))?;
        cmd.arg(&img.root)
            .arg(&layers.upper)
            .arg(&layers.work)
            .arg(&layers.merged);
        cmd.arg(pod["metadata"]["name"].as_str().unwrap_or("pod"));
        cmd.arg(if read_only { "ro" } else { "rw" });
        cmd.arg(sa_dir.unwrap_or_default());
        cmd.args(id.enter_argv(&layers.merged, &argv));
        let env = env_for(pod, c, &img);
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
        wait_chrooted(pid).await;
        let container = Container {
            pid,
            launcher,
            merged: layers.merged,
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
        self.record_exit(pod, name, ephemeral, child);
        Ok(())
    }

    /// Marks a started container Running, then Terminated (with its exit
    /// code) when its launcher exits.
    fn record_exit(
        &self,
        pod: &Value,
        name: String,
        ephemeral: bool,
        mut child: tokio::process::Child,
    ) {
        let started = self.inner.clock.timestamp();
        self.set_state(
            pod,
            &name,
            ephemeral,
            json!({"running": {"startedAt": started}}),
            !ephemeral,
        );
        let pod_uid = pod_key(pod);
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
    cmd.args(c.identity.enter_argv(&c.merged, argv));
    cmd.env_clear()
        .envs(c.env.iter().cloned())
        .env("PATH", format!("{PATH}:/usr/bin:/bin"));
    cmd
}
