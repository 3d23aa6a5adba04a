//! The engine's ground-truth trees as kubesim pods: the weak and hardened
//! fixtures as images, a pod for each, and a weak pod with a scanner
//! sidecar (shared process namespace).

use std::process::Command;

use scanfleet_test_harness::{repo_root, system_tool};

/// Builds a fixture tree from its recipe in `services/scan-engine/fixtures`.
pub fn build(recipe: &str, dest: &std::path::Path) {
    let out = Command::new("/bin/sh")
        .arg(
            repo_root()
                .join("services/scan-engine/fixtures")
                .join(recipe),
        )
        .arg(dest)
        .env("BUSYBOX", system_tool("busybox"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{recipe}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The kubesim fixture (namespace `truth`) over the trees built in `dir`.
pub fn fixture(dir: &std::path::Path) -> String {
    let weak_cmd = r#"["/bin/sh", "-c", "exec env SECRET_TOKEN=s3cr3t APP_MODE=prod sleep 600"]"#;
    format!(
        r#"
namespaces:
  - name: truth
images:
  - {{name: "truth.local/weak:1", rootDir: "{weak}"}}
  - {{name: "truth.local/hardened:1", rootDir: "{hardened}"}}
  - name: kubesim.local/scanner:1.0
    base: busybox
    entrypoint: [sleep]
    cmd: [infinity]
pods:
  - apiVersion: v1
    kind: Pod
    metadata: {{name: weak, namespace: truth}}
    spec:
      containers:
        - {{name: app, image: "truth.local/weak:1", command: {weak_cmd}}}
  - apiVersion: v1
    kind: Pod
    metadata: {{name: hardened, namespace: truth}}
    spec:
      containers:
        - name: app
          image: "truth.local/hardened:1"
          command: ["/bin/su", "app", "-s", "/bin/sh", "-c", "exec sleep 600"]
  - apiVersion: v1
    kind: Pod
    metadata: {{name: weak-with-scanner, namespace: truth}}
    spec:
      shareProcessNamespace: true
      containers:
        - {{name: app, image: "truth.local/weak:1", command: {weak_cmd}}}
        - name: scanner
          image: kubesim.local/scanner:1.0
          securityContext: {{runAsUser: 0, capabilities: {{add: [SYS_PTRACE]}}}}
"#,
        weak = dir.join("weak").display(),
        hardened = dir.join("hardened").display(),
    )
}
