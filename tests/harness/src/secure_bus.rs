//! The bus as the fleet runs it, for one test, in one line:
//! `let bus = SecureBus::start().await;`
//!
//! A real nats-server with TLS (a throwaway CA), the shipped authorization
//! block (`deploy/nats/scanfleet-authorization.conf`, one user nkey per
//! identity), and the topology created by the bootstrap step with the admin
//! identity, exactly as `scanfleet bus init` does. Services then get their
//! own restricted credentials from [`SecureBus::args`] (command-line flags)
//! or [`SecureBus::settings`]; tests inspect and arrange with
//! [`SecureBus::admin`].
//!
//! [`SecureBus::requiring_client_certificates`] is the same bus with
//! mutual TLS (`verify: true`, as `deploy/nats/nats-server.conf` offers
//! commented out): every client must also present a certificate the bus
//! CA signed, and each identity gets one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_nats::jetstream;
use scanfleet_bus::identity::{AUTHORIZATION_CONF, AUTHORIZATION_CONF_NAME};
use scanfleet_bus::{BusIdentity, NatsAuth, NatsSettings, TopologyConfig, UserNkey};

use crate::nats::{ClusterMember, NatsOptions, NatsServer, free_ports};
use crate::pki::{Identity, TestCa};

/// A secured nats-server (or cluster of them) with every identity's
/// credentials.
pub struct SecureBus {
    /// One server, or every member of a cluster.
    servers: Vec<NatsServer>,
    ca: PathBuf,
    issuer: TestCa,
    seeds: BTreeMap<BusIdentity, PathBuf>,
    client_certificates: BTreeMap<BusIdentity, (PathBuf, PathBuf)>,
    dir: tempfile::TempDir,
}

impl SecureBus {
    /// A secured server with the default topology (one replica) and
    /// consumers for [`TEST_CLUSTER`] too.
    ///
    /// # Panics
    /// When the server does not start or the bootstrap fails.
    pub async fn start() -> Self {
        Self::start_with(TopologyConfig::default()).await
    }

    /// A secured server with `topology` (e.g. short backoffs for a
    /// redelivery test).
    ///
    /// # Panics
    /// As [`SecureBus::start`].
    pub async fn start_with(topology: TopologyConfig) -> Self {
        let bus = Self::launch(false);
        with_test_cluster(topology)
            .ensure(&bus.admin().await)
            .await
            .expect("bootstrap the topology");
        bus
    }

    /// A secured server (default topology) that also requires every
    /// client to present a certificate the bus CA signed; every identity's
    /// settings and flags carry one.
    ///
    /// # Panics
    /// As [`SecureBus::start`].
    pub async fn requiring_client_certificates() -> Self {
        let bus = Self::launch(true);
        with_test_cluster(TopologyConfig::default())
            .ensure(&bus.admin().await)
            .await
            .expect("bootstrap the topology");
        bus
    }

    /// A secured server where nothing has been created yet (what a service
    /// meets before `scanfleet bus init`).
    ///
    /// # Panics
    /// When the server does not start.
    pub fn without_topology() -> Self {
        Self::launch(false)
    }

    fn launch(client_certificates: bool) -> Self {
        let (secured, options) = Secured::new(client_certificates);
        secured.into_bus(vec![NatsServer::start_with(options)])
    }

    /// `members` servers in one JetStream cluster, as production runs
    /// three, each secured like [`SecureBus::start`], with `topology`
    /// bootstrapped once the cluster has a quorum (give it
    /// `replicas: members`). Clients get every member's URL.
    ///
    /// # Panics
    /// When a member does not start, the cluster forms no quorum within
    /// 30 s, or the bootstrap fails.
    pub async fn cluster(members: usize, topology: TopologyConfig) -> Self {
        let (secured, options) = Secured::new(false);
        let routes = free_ports(members);
        let servers: Vec<NatsServer> = routes
            .iter()
            .enumerate()
            .map(|(i, port)| {
                NatsServer::start_with(NatsOptions {
                    cluster: Some(ClusterMember {
                        server_name: format!("nats-{i}"),
                        port: *port,
                        routes: routes.clone(),
                    }),
                    ..options.clone()
                })
            })
            .collect();
        for server in &servers {
            server.wait_healthy(std::time::Duration::from_secs(30));
        }
        let bus = secured.into_bus(servers);
        with_test_cluster(topology)
            .ensure(&bus.admin().await)
            .await
            .expect("bootstrap the topology on the cluster");
        bus
    }

    /// The bus CA, to sign more client certificates.
    pub fn issuer(&self) -> &TestCa {
        &self.issuer
    }

    /// `identity`'s client certificate and key files, when the bus
    /// requires client certificates.
    pub fn client_certificate(&self, identity: BusIdentity) -> Option<&(PathBuf, PathBuf)> {
        self.client_certificates.get(&identity)
    }

    /// Writes a certificate and key (0600) as `<name>.pem` and
    /// `<name>-key.pem` next to the bus's own files.
    pub fn write_certificate(&self, name: &str, id: &Identity) -> (PathBuf, PathBuf) {
        write_identity(self.dir.path(), name, id)
    }

    /// `tls://127.0.0.1:<port>`; for a cluster, every member's, comma
    /// separated (as `--nats-url` takes them).
    pub fn url(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The CA that signed the server's certificate.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// The file holding `identity`'s nkey seed (0600).
    pub fn nkey_file(&self, identity: BusIdentity) -> &Path {
        &self.seeds[&identity]
    }

    /// The command-line flags a service connects as `identity` with.
    pub fn args(&self, identity: BusIdentity) -> Vec<String> {
        let mut args = vec!["--nats-url".into(), self.url()];
        args.extend(self.auth_args(identity));
        args
    }

    /// [`SecureBus::args`] without the URL: the CA and the identity's nkey.
    pub fn auth_args(&self, identity: BusIdentity) -> Vec<String> {
        let mut args = vec![
            "--nats-ca".into(),
            self.ca.display().to_string(),
            "--nats-nkey-file".into(),
            self.nkey_file(identity).display().to_string(),
        ];
        if let Some((cert, key)) = self.client_certificate(identity) {
            args.extend([
                "--nats-client-cert".into(),
                cert.display().to_string(),
                "--nats-client-key".into(),
                key.display().to_string(),
            ]);
        }
        args
    }

    /// Connection settings for `identity`.
    ///
    /// # Panics
    /// When the seed file cannot be read.
    pub fn settings(&self, identity: BusIdentity) -> NatsSettings {
        let seed = std::fs::read_to_string(self.nkey_file(identity)).expect("read the seed");
        NatsSettings {
            urls: self.servers.iter().map(NatsServer::url).collect(),
            auth: NatsAuth::NKey { seed },
            ca: Some(self.ca.clone()),
            client_cert: self.client_certificate(identity).cloned(),
            connect_attempts: 3,
        }
    }

    /// A client connected as `identity`.
    ///
    /// # Panics
    /// When the server refuses the connection.
    pub async fn connect(&self, identity: BusIdentity) -> async_nats::Client {
        scanfleet_bus::connect(&self.settings(identity), identity)
            .await
            .unwrap_or_else(|e| panic!("connect as {identity}: {e}"))
    }

    /// A JetStream context as `identity`.
    ///
    /// # Panics
    /// As [`SecureBus::connect`].
    pub async fn js(&self, identity: BusIdentity) -> jetstream::Context {
        jetstream::new(self.connect(identity).await)
    }

    /// A JetStream context with every right, for arranging and inspecting.
    ///
    /// # Panics
    /// As [`SecureBus::connect`].
    pub async fn admin(&self) -> jetstream::Context {
        self.js(BusIdentity::Admin).await
    }

    /// The server (a cluster's first member), to kill or restart it, or
    /// read its log.
    pub fn server(&mut self) -> &mut NatsServer {
        &mut self.servers[0]
    }

    /// The cluster member named `name` (`nats-0`, `nats-1`, …), as a
    /// stream's `cluster.leader` names it.
    ///
    /// # Panics
    /// When there is no such member.
    pub fn member(&mut self, name: &str) -> &mut NatsServer {
        let index: usize = name
            .strip_prefix("nats-")
            .and_then(|i| i.parse().ok())
            .filter(|i| *i < self.servers.len())
            .unwrap_or_else(|| panic!("no cluster member {name:?}"));
        &mut self.servers[index]
    }

    /// Every server's log so far.
    pub fn log(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::log)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Everything a secured bus is made of before its servers start: the PKI,
/// one nkey (and, when asked, one client certificate) per identity, and
/// the server options with TLS and the shipped authorization, in a fresh
/// private directory. One server or a cluster's members share it.
struct Secured {
    dir: tempfile::TempDir,
    issuer: TestCa,
    ca: PathBuf,
    seeds: BTreeMap<BusIdentity, PathBuf>,
    client_certificates: BTreeMap<BusIdentity, (PathBuf, PathBuf)>,
}

impl Secured {
    fn new(client_certificates: bool) -> (Self, NatsOptions) {
        let dir = tempfile::Builder::new()
            .prefix("scanfleet-bus-")
            .tempdir()
            .expect("temp dir");
        let issuer = TestCa::new("scanfleet test bus CA");
        let (ca, cert, key) = throwaway_pki(dir.path(), &issuer);
        let mut seeds = BTreeMap::new();
        let mut certificates = BTreeMap::new();
        let mut env = Vec::new();
        for identity in BusIdentity::ALL {
            let nkey = UserNkey::generate();
            let path = dir.path().join(format!("{}.nk", identity.name()));
            crate::write_private(&path, nkey.seed.as_bytes());
            seeds.insert(identity, path);
            env.push((identity.nkey_variable().to_owned(), nkey.public));
            if client_certificates {
                let id = issuer.client(identity.name(), "scanfleet");
                let files = write_identity(dir.path(), identity.name(), &id);
                certificates.insert(identity, files);
            }
        }
        let options = NatsOptions {
            tls: Some((cert, key)),
            client_ca: client_certificates.then(|| ca.clone()),
            includes: vec![(AUTHORIZATION_CONF_NAME.into(), AUTHORIZATION_CONF.into())],
            env,
            ..Default::default()
        };
        let secured = Self {
            dir,
            issuer,
            ca,
            seeds,
            client_certificates: certificates,
        };
        (secured, options)
    }

    fn into_bus(self, servers: Vec<NatsServer>) -> SecureBus {
        SecureBus {
            servers,
            ca: self.ca,
            issuer: self.issuer,
            seeds: self.seeds,
            client_certificates: self.client_certificates,
            dir: self.dir,
        }
    }
}

/// The CA file and a server certificate for 127.0.0.1 and localhost.
fn throwaway_pki(dir: &Path, issuer: &TestCa) -> (PathBuf, PathBuf, PathBuf) {
    let server = issuer.server("nats");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, issuer.pem()).expect("write the CA");
    let (cert, key) = write_identity(dir, "server", &server);
    (ca, cert, key)
}

fn write_identity(dir: &Path, name: &str, id: &Identity) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    std::fs::write(&cert, &id.cert_pem).expect("write a certificate");
    let key = dir.join(format!("{name}-key.pem"));
    crate::write_private(&key, id.key_pem.as_bytes());
    (cert, key)
}

/// The cluster name the tests' services use for kubesim.
pub const TEST_CLUSTER: &str = "kubesim";

/// `topology` with consumers for [`TEST_CLUSTER`] as well, since the
/// tests' workers serve that cluster whatever else a test configures.
pub fn with_test_cluster(mut topology: TopologyConfig) -> TopologyConfig {
    let test = scanfleet_scan_intents::ClusterName::new(TEST_CLUSTER).expect("a valid name");
    if !topology.clusters.contains(&test) {
        topology.clusters.push(test);
    }
    topology
}
