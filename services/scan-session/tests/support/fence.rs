//! The worker's fence as deployed: `kubectl kustomize` renders deploy/base
//! (through an overlay that sets only the scanner image, as deploy/README.md
//! shows), `kubectl apply` installs it on kubesim, and the worker gets a
//! token for its own ServiceAccount. Also the attacks a stolen worker token
//! would try, each with the refusal the fence gives it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{AttachParams, DeleteParams, Patch, PatchParams, PostParams};
use scanfleet_kube_access::ClusterAccess;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::Sim;

/// The policy's and its binding's name.
pub const FENCE: &str = "scanfleet-worker-fence";
/// The worker's identity as the API server names it.
pub const WORKER: &str = "system:serviceaccount:scanfleet:scanfleet-worker";

/// kubectl from `.tools`, with a private HOME and the admin kubeconfig.
pub struct Kubectl {
    bin: PathBuf,
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(admin_kubeconfig: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let kubeconfig = home.path().join("admin.kubeconfig");
        kubesim::kubeconfig::write(&kubeconfig, admin_kubeconfig).unwrap();
        Self {
            bin: scanfleet_test_harness::installed_tool("venv/bin/kubectl"),
            home,
            kubeconfig,
        }
    }

    /// Runs kubectl off the async runtime (kubesim serves on it).
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("KUBECONFIG")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let input = stdin.unwrap_or("").to_owned();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = cmd.spawn().expect("kubectl starts");
            let mut si = child.stdin.take().unwrap();
            si.write_all(input.as_bytes()).unwrap();
            drop(si);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }

    /// Runs kubectl and fails the test unless it succeeds; returns stdout.
    pub async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin).await;
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `path` relative to `from` (Kustomize refuses absolute resource paths).
fn relative(path: &Path, from: &Path) -> PathBuf {
    let mut rel = PathBuf::new();
    for _ in from.components().skip(1) {
        rel.push("..");
    }
    rel.join(path.strip_prefix("/").unwrap())
}

/// deploy/base as `kubectl kustomize` renders it, and the same through the
/// documented overlay that sets the scanner image. The two differ in that
/// one line only, so what is applied is exactly the base.
pub async fn render(kubectl: &Kubectl, scanner: &str) -> (String, String) {
    let base = scanfleet_test_harness::repo_root().join("deploy/base");
    let base_text = kubectl
        .ok(&["kustomize", base.to_str().unwrap()], None)
        .await;
    let overlay = tempfile::tempdir().unwrap();
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\n\
         patches:\n  - target: {{group: admissionregistration.k8s.io, kind: ValidatingAdmissionPolicy, name: {FENCE}}}\n\
         \x20   patch: |-\n      - op: test\n        path: /spec/variables/0/name\n        value: scannerImage\n\
         \x20     - op: replace\n        path: /spec/variables/0/expression\n        value: \"'{scanner}'\"\n",
        relative(&base, overlay.path()).display()
    );
    std::fs::write(overlay.path().join("kustomization.yaml"), kustomization).unwrap();
    let configured = kubectl
        .ok(&["kustomize", overlay.path().to_str().unwrap()], None)
        .await;
    let differing: Vec<(&str, &str)> = base_text
        .lines()
        .zip(configured.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(differing.len(), 1, "{differing:#?}");
    assert!(
        differing[0]
            .0
            .contains("registry.invalid/scanfleet/debug-scanner@sha256:")
    );
    assert!(differing[0].1.contains(scanner));
    assert_eq!(base_text.lines().count(), configured.lines().count());
    (base_text, configured)
}

/// The documents of a multi-document YAML text.
pub fn documents(text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

/// The kinds of the rendered base that make up the worker's identity and
/// its fence, all of which kubesim serves.
const IDENTITY_KINDS: [&str; 6] = [
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];

/// The documents of `rendered` (as `kubectl kustomize` printed them,
/// text unchanged) whose kind is among the identity kinds: the base also
/// holds Deployments, Services, ConfigMaps, NetworkPolicies and
/// PodDisruptionBudgets, which kubesim does not serve and the fence does
/// not depend on. Fails the test if no fence is among them.
pub fn identity_documents(rendered: &str) -> String {
    let kept: Vec<&str> = rendered
        .split("\n---\n")
        .filter(|doc| {
            let kind = documents(doc)[0]["kind"].as_str().unwrap_or("").to_owned();
            IDENTITY_KINDS.contains(&kind.as_str())
        })
        .collect();
    let kept = kept.join("\n---\n");
    assert!(
        kept.contains("kind: ValidatingAdmissionPolicy\n"),
        "{rendered}"
    );
    kept
}

/// The scanner image the kubesim sidecar runs, by digest.
pub async fn scanner_image(sim: &Sim) -> String {
    let pod = Api::<Pod>::namespaced(sim.admin.client.clone(), "apps")
        .get("app-with-scanner")
        .await
        .unwrap();
    let id = pod
        .status
        .and_then(|s| s.container_statuses)
        .into_iter()
        .flatten()
        .find(|s| s.name == "scanner")
        .map(|s| s.image_id)
        .unwrap();
    assert!(id.starts_with("kubesim.local/scanner@sha256:"), "{id}");
    id
}

/// A client for the worker's ServiceAccount (a 1 h token).
pub async fn worker_access(sim: &Sim) -> ClusterAccess {
    let tr = serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}})).unwrap();
    let token = Api::<ServiceAccount>::namespaced(sim.admin.client.clone(), "scanfleet")
        .create_token_request("scanfleet-worker", &PostParams::default(), &tr)
        .await
        .unwrap()
        .status
        .and_then(|s| s.token)
        .unwrap();
    ClusterAccess::from_kubeconfig(
        &sim.sim
            .kubeconfig_for_token("scanfleet-worker", &token, "scanfleet"),
        "worker",
    )
    .await
    .unwrap()
}

/// What a stolen worker token would try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Mint a token for kube-system/default.
    ForeignToken,
    /// Delete a ServiceAccount scanfleet did not create.
    DeleteForeignAccount,
    /// A Role without resourceNames (every pod of the namespace).
    RoleWithoutResourceNames,
    /// Bind the worker's own ClusterRole to another ServiceAccount.
    BindWorkerClusterRole,
    /// Bind cluster-admin to another ServiceAccount.
    BindClusterAdmin,
    /// Add a privileged ephemeral container (root on the node).
    PrivilegedDebugContainer,
    /// Add an ephemeral container of another image.
    ForeignImageDebugContainer,
    /// The two-step route: a per-scan identity the fence admits (its
    /// ServiceAccount, a one-pod Role, binding and token), then a
    /// privileged ephemeral container added with that identity.
    PrivilegedViaScanIdentity,
    /// Exec into a pod with the worker's own identity.
    WorkerExec,
}

/// Every attack, in the order the test makes them.
pub const ATTACKS: [Attack; 9] = [
    Attack::ForeignToken,
    Attack::DeleteForeignAccount,
    Attack::RoleWithoutResourceNames,
    Attack::BindWorkerClusterRole,
    Attack::BindClusterAdmin,
    Attack::PrivilegedDebugContainer,
    Attack::ForeignImageDebugContainer,
    Attack::PrivilegedViaScanIdentity,
    Attack::WorkerExec,
];

fn debug_patch(name: &str, image: &str, security: Value) -> Value {
    json!({"spec": {"ephemeralContainers": [{"name": name, "image": image,
        "targetContainerName": "web", "command": ["sleep", "600"], "securityContext": security}]}})
}

async fn add_debug(pods: &Api<Pod>, patch: Value) -> Result<(), kube::Error> {
    pods.patch_ephemeral_containers(
        "web-misconfigured",
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map(|_| ())
}

/// A per-scan identity the fence admits: ServiceAccount `name` in apps with
/// the managed-by label, a Role granting the ephemeral-containers patch on
/// web-misconfigured only, its binding, and a 600 s token; its client.
async fn scan_identity(
    worker: &kube::Client,
    sim: &kubesim::Kubesim,
    name: &str,
) -> Result<kube::Client, kube::Error> {
    let pp = PostParams::default();
    let meta = json!({"name": name, "labels": {"app.kubernetes.io/managed-by": "scanfleet"}});
    let accounts = Api::<ServiceAccount>::namespaced(worker.clone(), "apps");
    let account = serde_json::from_value(json!({"metadata": meta})).unwrap();
    accounts.create(&pp, &account).await?;
    let role: Role = serde_json::from_value(json!({"metadata": meta, "rules": [{"apiGroups": [""],
        "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"],
        "resourceNames": ["web-misconfigured"]}]}))
    .unwrap();
    Api::<Role>::namespaced(worker.clone(), "apps")
        .create(&pp, &role)
        .await?;
    let binding: RoleBinding = serde_json::from_value(json!({"metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "apps"}]}))
    .unwrap();
    Api::<RoleBinding>::namespaced(worker.clone(), "apps")
        .create(&pp, &binding)
        .await?;
    let tr = serde_json::from_value(json!({"spec": {"expirationSeconds": 600}})).unwrap();
    let token = accounts
        .create_token_request(name, &pp, &tr)
        .await?
        .status
        .and_then(|s| s.token)
        .unwrap();
    let kubeconfig = sim.kubeconfig_for_token(name, &token, "apps");
    Ok(ClusterAccess::from_kubeconfig(&kubeconfig, name)
        .await
        .unwrap()
        .client)
}

fn binding(name: &str, cluster_role: &str, victim: &str) -> RoleBinding {
    serde_json::from_value(json!({"metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
        "subjects": [{"kind": "ServiceAccount", "name": victim, "namespace": "apps"}]}))
    .unwrap()
}

impl Attack {
    /// Tries the attack with `worker`; round `n` names fresh objects.
    pub async fn attempt(
        self,
        worker: &kube::Client,
        sim: &kubesim::Kubesim,
        scanner: &str,
        n: u8,
    ) -> Result<(), kube::Error> {
        let pp = PostParams::default();
        let accounts = |ns| Api::<ServiceAccount>::namespaced(worker.clone(), ns);
        let pods = Api::<Pod>::namespaced(worker.clone(), "apps");
        let bindings = Api::<RoleBinding>::namespaced(worker.clone(), "apps");
        let strict = json!({"privileged": false, "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}});
        match self {
            Attack::ForeignToken => {
                let tr =
                    serde_json::from_value(json!({"spec": {"expirationSeconds": 600}})).unwrap();
                let issued = accounts("kube-system")
                    .create_token_request("default", &pp, &tr)
                    .await?;
                assert!(
                    issued
                        .status
                        .is_some_and(|s| s.token.is_some_and(|t| !t.is_empty()))
                );
                Ok(())
            }
            Attack::DeleteForeignAccount => accounts("apps")
                .delete(&format!("victim-{n}"), &DeleteParams::default())
                .await
                .map(|_| ()),
            Attack::RoleWithoutResourceNames => {
                let role: Role = serde_json::from_value(json!({"metadata": {
                    "name": format!("scanfleet-scan-wide-{n}"),
                    "labels": {"app.kubernetes.io/managed-by": "scanfleet"}},
                    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}))
                .unwrap();
                Api::<Role>::namespaced(worker.clone(), "apps")
                    .create(&pp, &role)
                    .await
                    .map(|_| ())
            }
            Attack::BindWorkerClusterRole => bindings
                .create(
                    &pp,
                    &binding(&format!("take-over-{n}"), "scanfleet-worker", "victim"),
                )
                .await
                .map(|_| ()),
            Attack::BindClusterAdmin => bindings
                .create(
                    &pp,
                    &binding(&format!("grab-admin-{n}"), "cluster-admin", "victim"),
                )
                .await
                .map(|_| ()),
            Attack::PrivilegedDebugContainer => {
                add_debug(
                    &pods,
                    debug_patch(
                        &format!("evil-root-{n}"),
                        scanner,
                        json!({"privileged": true}),
                    ),
                )
                .await
            }
            Attack::ForeignImageDebugContainer => {
                add_debug(
                    &pods,
                    debug_patch(
                        &format!("evil-image-{n}"),
                        "kubesim.local/shell-misconfigured:1.0",
                        strict,
                    ),
                )
                .await
            }
            Attack::PrivilegedViaScanIdentity => {
                let scan = scan_identity(worker, sim, &format!("scanfleet-scan-evil-{n}")).await?;
                let privileged = debug_patch(
                    &format!("evil-scan-{n}"),
                    scanner,
                    json!({"privileged": true}),
                );
                add_debug(&Api::namespaced(scan, "apps"), privileged).await
            }
            Attack::WorkerExec => {
                let mut p = pods
                    .exec(
                        "web-misconfigured",
                        ["cat", "/etc/shadow"],
                        &AttachParams::default().container("web"),
                    )
                    .await?;
                let mut shadow = String::new();
                p.stdout()
                    .unwrap()
                    .read_to_string(&mut shadow)
                    .await
                    .unwrap();
                p.join().await.unwrap();
                assert!(shadow.starts_with("root:"), "{shadow}");
                Ok(())
            }
        }
    }

    /// The full Status message the fence refuses round `n` of it with.
    pub fn refusal(self, scanner: &str, n: u8) -> String {
        let (resource, name, rule) = match self {
            Attack::ForeignToken => ("serviceaccounts", "default".to_owned(),
                "[tokens]: the worker may mint only tokens of per-scan ServiceAccounts (scanfleet-scan-*) lasting at most 1800 s, not for kube-system/default".to_owned()),
            Attack::DeleteForeignAccount => ("serviceaccounts", format!("victim-{n}"),
                format!("[serviceaccounts]: the worker may create and delete only ServiceAccounts named scanfleet-scan-* labelled app.kubernetes.io/managed-by=scanfleet, not apps/victim-{n}")),
            Attack::RoleWithoutResourceNames => ("roles.rbac.authorization.k8s.io", format!("scanfleet-scan-wide-{n}"),
                format!("[roles]: the worker may create only Roles named scanfleet-scan-* labelled app.kubernetes.io/managed-by=scanfleet whose every rule names the same one pod in resourceNames and grants only get/watch on pods, get/create on pods/exec and patch on pods/ephemeralcontainers, not Role apps/scanfleet-scan-wide-{n}")),
            Attack::BindWorkerClusterRole | Attack::BindClusterAdmin => {
                let (name, role) = if self == Attack::BindClusterAdmin {
                    (format!("grab-admin-{n}"), "cluster-admin")
                } else {
                    (format!("take-over-{n}"), "scanfleet-worker")
                };
                let rule = format!("[rolebindings]: the worker may bind only a per-scan Role (scanfleet-scan-*) to one per-scan ServiceAccount (scanfleet-scan-*) of the same namespace, in a RoleBinding named scanfleet-scan-* labelled app.kubernetes.io/managed-by=scanfleet, not ClusterRole {role} in RoleBinding apps/{name}");
                ("rolebindings.rbac.authorization.k8s.io", name, rule)
            }
            Attack::PrivilegedDebugContainer | Attack::PrivilegedViaScanIdentity => ("pods", "web-misconfigured".to_owned(),
                "[debug-security]: an ephemeral container must not be privileged and must set allowPrivilegeEscalation: false and readOnlyRootFilesystem: true (no Unconfined seccomp, no unmasked /proc)".to_owned()),
            Attack::ForeignImageDebugContainer => ("pods", "web-misconfigured".to_owned(),
                format!("[debug-image]: an ephemeral container must run the configured scanner image {scanner}, not kubesim.local/shell-misconfigured:1.0")),
            Attack::WorkerExec => ("pods", "web-misconfigured".to_owned(),
                "[operations]: the worker may only create and delete per-scan ServiceAccounts, mint their tokens, create their Roles and RoleBindings and add debug containers, not CONNECT /pods/exec".to_owned()),
        };
        format!(
            "{resource} \"{name}\" is forbidden: ValidatingAdmissionPolicy '{FENCE}' with binding '{FENCE}' denied request: scanfleet worker fence {rule}"
        )
    }
}
