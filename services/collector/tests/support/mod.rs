//! A collector process for the collector's end-to-end tests, serving TLS
//! and reviewing its readers on a kubesim; publishing helpers come from the
//! harness.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use scanfleet_bus::BusIdentity;
use scanfleet_contracts::v1::results_client::ResultsClient;
use scanfleet_edge_access::{Authenticated, BearerAuth};
pub use scanfleet_test_harness::callers::access_cluster;
pub use scanfleet_test_harness::credentials::TestCredentials;
pub use scanfleet_test_harness::fleet::*;
use scanfleet_test_harness::https::{HttpResponse, https_get};
use scanfleet_test_harness::pki::ClientTls;
pub use scanfleet_test_harness::secure_bus::SecureBus;

/// A kubesim for reviews and the credentials of one test.
pub async fn credentials() -> (kubesim::Kubesim, TestCredentials) {
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    (sim, creds)
}

/// A running `scanfleet-collector` binary; killed on drop.
pub struct CollectorProcess {
    child: Option<Child>,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub args: Vec<String>,
    pub tls: ClientTls,
    token: String,
    stderr_log: PathBuf,
}

impl CollectorProcess {
    /// Starts the binary with `args` plus TLS and the reviewer identity of
    /// `creds`; its clients call as `creds`' operator.
    pub fn start(args: Vec<String>, log_dir: &Path, creds: &TestCredentials) -> Self {
        let mut args = args;
        if !args
            .iter()
            .any(|a| a == "--tls-cert-file" || a == "--insecure-plaintext")
        {
            args.extend(creds.service_flags());
        }
        let stderr_log = log_dir.join(format!(
            "collector-{}.log",
            Instant::now().elapsed().as_nanos()
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_scanfleet-collector"))
            .args(&args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("spawn collector");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "collector did not start: {}",
                    std::fs::read_to_string(&stderr_log).unwrap_or_default()
                )
            });
        let addr = |key: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
                .parse()
                .unwrap()
        };
        Self {
            grpc: addr("grpc="),
            http: addr("http="),
            child: Some(child),
            args,
            tls: creds.tls(),
            token: creds.operator().to_owned(),
            stderr_log,
        }
    }

    /// `GET path` over HTTPS as the operator.
    pub async fn get(&self, path: &str) -> HttpResponse {
        https_get(self.http, &self.tls, path, Some(&self.token)).await
    }

    /// A `Results` client as the operator.
    pub async fn results(&self) -> ResultsClient<Authenticated> {
        let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", self.grpc))
            .unwrap()
            .tls_config(self.tls.tonic())
            .unwrap()
            .connect()
            .await
            .unwrap();
        ResultsClient::with_interceptor(channel, BearerAuth::new(&self.token).unwrap())
    }

    /// The process id (for reading its memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().unwrap()
    }

    pub async fn metric(&self, name: &str) -> u64 {
        let r = self.get("/metrics").await;
        assert_eq!(r.status, 200);
        r.text()
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The collector's flags on the fleet's bus: TLS and its own identity.
pub fn base_args(bus: &SecureBus, store_url: &str, key: &Path) -> Vec<String> {
    collector_args(bus.args(BusIdentity::Collector), store_url, key)
}

/// The collector's flags with the NATS flags given.
pub fn collector_args(nats: Vec<String>, store_url: &str, key: &Path) -> Vec<String> {
    let mut args = nats;
    args.extend(
        [
            "--store-url",
            store_url,
            "--trusted-key",
            &key.display().to_string(),
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ]
        .map(String::from),
    );
    args
}

pub async fn stored_count(c: &CollectorProcess) -> usize {
    let r = c.get("/v1/results?page_size=500").await;
    if r.status != 200 {
        return 0;
    }
    r.json()["results"].as_array().map_or(0, Vec::len)
}
