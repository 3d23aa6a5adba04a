//! The fleet's processes, how each is started, and the order they start and
//! stop in.
//!
//! Start: nats-server, kubesim, collector, intake, workers (each waits for
//! what it connects to). Stop: intake first, so no new work arrives; then
//! the workers, which finish their running scans (and remove those scans'
//! ServiceAccounts) while NATS and kubesim still serve them; then the
//! collector; then nats-server; kubesim last.
//!
//! Ports are chosen once per start and passed explicitly, so a restarted
//! child comes back where the printed commands point.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use scanfleet_bus::BusIdentity;

use crate::bus_credentials::BusCredentials;
use crate::child_spec::{ChildSpec, Readiness};
use crate::data_dir::DataDir;
use crate::fleet_credentials::{FleetIdentities, FleetPki};
use crate::options::Options;
use crate::programs::Programs;

/// The cluster name the fleet gives kubesim.
pub const CLUSTER: &str = "kubesim";
/// kubesim's child name, which the children that read what it issued are
/// restarted with.
pub const KUBESIM: &str = "kubesim";

const STOP_INTAKE: u8 = 0;
const STOP_WORKERS: u8 = 1;
const STOP_COLLECTOR: u8 = 2;
const STOP_NATS: u8 = 3;
const STOP_KUBESIM: u8 = 4;

/// Time a worker needs after its drain grace to publish and exit.
const DRAIN_MARGIN: Duration = Duration::from_secs(10);

/// Loopback ports, chosen once per start.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    nats: u16,
    kubesim: u16,
    collector_grpc: u16,
    collector_http: u16,
    intake: u16,
}

impl Ports {
    /// Five distinct free ports (all held at once while choosing).
    ///
    /// # Errors
    /// When no port can be bound.
    pub fn pick() -> Result<Self> {
        let held = (0..5)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()
            .context("choosing loopback ports")?;
        let port = |i: usize| held[i].local_addr().map(|a| a.port());
        Ok(Self {
            nats: port(0)?,
            kubesim: port(1)?,
            collector_grpc: port(2)?,
            collector_http: port(3)?,
            intake: port(4)?,
        })
    }

    /// NATS client URL (TLS only).
    pub fn nats_url(&self) -> String {
        format!("tls://127.0.0.1:{}", self.nats)
    }

    /// Intake's gRPC URL.
    pub fn intake_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.intake)
    }

    /// The collector's gRPC URL.
    pub fn collector_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.collector_grpc)
    }

    /// The collector's HTTP address.
    pub fn collector_http(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.collector_http).into()
    }
}

/// Everything the specs are made from.
pub struct FleetPlan<'a> {
    /// Where the programs are.
    pub programs: &'a Programs,
    /// Where state goes.
    pub data: &'a DataDir,
    /// The command line.
    pub options: &'a Options,
    /// The ports.
    pub ports: Ports,
    /// The TLS files every listener serves.
    pub pki: FleetPki,
}

fn path(p: impl Into<PathBuf>) -> String {
    p.into().display().to_string()
}

impl FleetPlan<'_> {
    /// The bus's TLS files and identities.
    pub fn bus(&self) -> BusCredentials {
        BusCredentials::at(&self.data.bus())
    }

    /// `--nats-url` and the credentials of `identity`.
    fn nats_args(&self, identity: BusIdentity) -> Vec<String> {
        let mut args = vec!["--nats-url".into(), self.ports.nats_url()];
        args.extend(self.bus().args(identity));
        args
    }

    /// JetStream with file storage under the data dir, TLS and the
    /// services' identities from its configuration file.
    pub fn nats_server(&self) -> ChildSpec {
        ChildSpec {
            name: "nats-server".into(),
            program: self.programs.nats_server.clone(),
            args: [
                "-c",
                &path(self.bus().server_config()),
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.ports.nats.to_string(),
                "-sd",
                &path(self.data.nats_store()),
            ]
            .map(String::from)
            .to_vec(),
            ready: Readiness::Listening(self.ports.nats),
            ready_within: Duration::from_secs(20),
            stop_stage: STOP_NATS,
            stop_grace: Duration::from_secs(10),
            restarts_with: None,
        }
    }

    /// kubesim with the demo fixture, an audit log, and optional faults.
    pub fn kubesim(&self) -> ChildSpec {
        let mut args = vec![
            "--listen".into(),
            format!("127.0.0.1:{}", self.ports.kubesim),
            "--kubeconfig-out".into(),
            path(self.data.kubeconfig()),
            "--audit-log".into(),
            path(self.data.audit_log()),
        ];
        if let Some(faults) = &self.options.kubesim_faults {
            args.extend(["--faults".into(), path(faults)]);
        }
        ChildSpec {
            name: KUBESIM.into(),
            program: self.programs.kubesim.clone(),
            args,
            ready: Readiness::Announced("https://"),
            ready_within: Duration::from_secs(60),
            stop_stage: STOP_KUBESIM,
            stop_grace: Duration::from_secs(20),
            restarts_with: None,
        }
    }

    /// The collector, trusting every key in `trusted`, reviewing readers
    /// as `identities`' reviewer.
    pub fn collector(&self, trusted: &[PathBuf], identities: &FleetIdentities) -> ChildSpec {
        let mut args = self.nats_args(BusIdentity::Collector);
        args.extend([
            "--store-url".into(),
            format!("sqlite://{}", self.data.results_db().display()),
            "--grpc-listen".into(),
            format!("127.0.0.1:{}", self.ports.collector_grpc),
            "--http-listen".into(),
            self.ports.collector_http().to_string(),
        ]);
        for key in trusted {
            args.extend(["--trusted-key".into(), path(key)]);
        }
        args.extend(self.pki.server_flags());
        args.extend(identities.reviewer_flags());
        ChildSpec {
            name: "collector".into(),
            program: self.programs.collector.clone(),
            args,
            ready: Readiness::Listening(self.ports.collector_grpc),
            ready_within: Duration::from_secs(30),
            stop_stage: STOP_COLLECTOR,
            stop_grace: Duration::from_secs(15),
            // It reviews readers with the reviewer's token, which a
            // restarted kubesim no longer knows.
            restarts_with: Some(KUBESIM.into()),
        }
    }

    /// Intake, reading pods through kubesim's admin kubeconfig and
    /// reviewing callers as `identities`' reviewer.
    pub fn intake(&self, identities: &FleetIdentities) -> ChildSpec {
        let mut args = self.nats_args(BusIdentity::Intake);
        args.extend([
            "--cluster".into(),
            CLUSTER.into(),
            "--kubeconfig".into(),
            path(self.data.kubeconfig()),
            "--grpc-listen".into(),
            format!("127.0.0.1:{}", self.ports.intake),
        ]);
        args.extend(self.pki.server_flags());
        args.extend(identities.reviewer_flags());
        ChildSpec {
            name: "intake".into(),
            program: self.programs.intake.clone(),
            args,
            ready: Readiness::Listening(self.ports.intake),
            ready_within: Duration::from_secs(30),
            stop_stage: STOP_INTAKE,
            stop_grace: Duration::from_secs(10),
            restarts_with: Some(KUBESIM.into()),
        }
    }

    /// The workers' YAML settings (what has no flag). `kube.qps`/`burst` are
    /// the cluster's budget for the whole fleet, so every worker gets the
    /// same numbers.
    pub fn worker_config(&self) -> String {
        format!(
            "kube:\n  qps: {}\n  burst: {}\nprogress_interval_ms: 5000\nidle_poll_ms: 1000\ndrain_grace_secs: {}\n",
            self.options.kube_qps, self.options.kube_burst, self.options.drain_grace_secs
        )
    }

    /// Worker `index`, signing with `signing_key`.
    pub fn worker(&self, index: u16, signing_key: &std::path::Path) -> ChildSpec {
        let mut args = self.nats_args(BusIdentity::Worker);
        args.extend([
            "--cluster".into(),
            CLUSTER.into(),
            "--kubeconfig".into(),
            path(self.data.kubeconfig()),
            "--signing-key".into(),
            path(signing_key),
            "--profiles".into(),
            path(&self.programs.profiles),
            "--http-listen".into(),
            "127.0.0.1:0".into(),
            "--worker-id".into(),
            format!("dev-worker-{index}"),
            "--concurrency".into(),
            self.options.concurrency.to_string(),
            "--config".into(),
            path(self.data.worker_config()),
        ]);
        args.extend(self.pki.server_flags());
        ChildSpec {
            name: format!("worker-{index}"),
            program: self.programs.worker.clone(),
            args,
            ready: Readiness::Running,
            ready_within: Duration::from_secs(30),
            stop_stage: STOP_WORKERS,
            stop_grace: Duration::from_secs(self.options.drain_grace_secs) + DRAIN_MARGIN,
            restarts_with: Some(KUBESIM.into()),
        }
    }
}
