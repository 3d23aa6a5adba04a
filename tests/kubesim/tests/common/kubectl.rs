//! The official kubectl (v1.37, installed by scripts/setup), run against
//! kubesim with its own HOME and no proxy.

use std::path::{Path, PathBuf};
use std::process::Command;

/// kubectl with a private HOME.
pub struct Kubectl {
    /// The kubectl binary.
    pub bin: PathBuf,
    /// Its HOME (discovery cache, no user config).
    pub home: tempfile::TempDir,
}

/// A kubectl run's result.
pub struct Out {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Kubectl {
    /// kubectl from `.tools`, with a fresh HOME.
    pub fn new() -> Self {
        Self {
            bin: scanfleet_test_harness::installed_tool("venv/bin/kubectl"),
            home: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Writes a kubeconfig file named `name`.
    pub fn kubeconfig(&self, name: &str, text: &str) -> PathBuf {
        let p = self.home.path().join(name);
        kubesim::kubeconfig::write(&p, text).expect("write kubeconfig");
        p
    }

    /// Runs kubectl off the async runtime (kubesim serves on it).
    pub async fn run(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .env("HOME", self.home.path())
            .env_remove("KUBECONFIG")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy");
        let input = stdin.map(str::to_string);
        let out = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("kubectl starts");
            let mut si = child.stdin.take().expect("stdin");
            if let Some(i) = input {
                si.write_all(i.as_bytes()).expect("write stdin");
            }
            drop(si);
            child.wait_with_output().expect("kubectl runs")
        })
        .await
        .expect("join");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
