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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_nats::jetstream;
use scanfleet_bus::identity::{AUTHORIZATION_CONF, AUTHORIZATION_CONF_NAME};
use scanfleet_bus::{BusIdentity, NatsAuth, NatsSettings, TopologyConfig, UserNkey};

use crate::nats::{NatsOptions, NatsServer};

/// A secured nats-server with every identity's credentials.
pub struct SecureBus {
    server: NatsServer,
    ca: PathBuf,
    seeds: BTreeMap<BusIdentity, PathBuf>,
    _dir: tempfile::TempDir,
}

impl SecureBus {
    /// A secured server with the default topology (one replica).
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
        let bus = Self::without_topology();
        topology
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
        let dir = tempfile::Builder::new()
            .prefix("scanfleet-bus-")
            .tempdir()
            .expect("temp dir");
        let (ca, cert, key) = throwaway_pki(dir.path());
        let mut seeds = BTreeMap::new();
        let mut env = Vec::new();
        for identity in BusIdentity::ALL {
            let nkey = UserNkey::generate();
            let path = dir.path().join(format!("{}.nk", identity.name()));
            crate::write_private(&path, nkey.seed.as_bytes());
            seeds.insert(identity, path);
            env.push((identity.nkey_variable().to_owned(), nkey.public));
        }
        let server = NatsServer::start_with(NatsOptions {
            tls: Some((cert, key)),
            includes: vec![(AUTHORIZATION_CONF_NAME.into(), AUTHORIZATION_CONF.into())],
            env,
            ..Default::default()
        });
        Self {
            server,
            ca,
            seeds,
            _dir: dir,
        }
    }

    /// `tls://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
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
        vec![
            "--nats-ca".into(),
            self.ca.display().to_string(),
            "--nats-nkey-file".into(),
            self.nkey_file(identity).display().to_string(),
        ]
    }

    /// Connection settings for `identity`.
    ///
    /// # Panics
    /// When the seed file cannot be read.
    pub fn settings(&self, identity: BusIdentity) -> NatsSettings {
        let seed = std::fs::read_to_string(self.nkey_file(identity)).expect("read the seed");
        NatsSettings {
            urls: vec![self.url()],
            auth: NatsAuth::NKey { seed },
            ca: Some(self.ca.clone()),
            client_cert: None,
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

    /// The server, to kill or restart it, or read its log.
    pub fn server(&mut self) -> &mut NatsServer {
        &mut self.server
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.server.log()
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost.
fn throwaway_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "scanfleet test bus CA");
    let ca =
        rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write PKI file");
        path
    };
    (
        write("ca.pem", ca.pem()),
        write("server.pem", cert.pem()),
        write("server.key", key.serialize_pem()),
    )
}
