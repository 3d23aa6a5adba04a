//! kubesim: a Kubernetes API stand-in that the official kubectl and kube-rs
//! accept unchanged, whose containers are real processes in Linux namespaces.
//!
//! What it is: an HTTPS (rustls, HTTP/1.1) server with upstream's wire
//! behaviour for Namespaces, Pods (with exec over WebSocket and ephemeral
//! containers), ServiceAccounts and TokenRequest, RBAC with escalation
//! prevention, the access reviews, ValidatingAdmissionPolicy, watch, audit
//! logging and fault injection. Pods run as processes rooted in busybox-based images built from
//! a fixture.
//!
//! What it is not: a scheduler, a kubelet with restarts and probes, a network,
//! or a general API server (no CRDs, no admission webhooks, no SPDY).
//!
//! Main types: [`Kubesim`] (a running server; start it with a [`Config`]),
//! [`fixture::Fixture`] (what to load), [`state::State`] (shared state).
//!
//! Layers, each depending only on those below it (a test keeps the module
//! graph acyclic):
//! - [`server`] (TLS accept loop, filter chain: faults, [`authn`], RBAC,
//!   audit) → [`router`];
//! - handlers: [`collection`] (verbs on a collection), [`pod_subresources`],
//!   [`exec`], [`watch`], [`access_review`], [`token_review`],
//!   [`tokenrequest`], [`discovery`];
//! - object semantics: [`api`] with [`validation`], [`defaults`],
//!   [`escalation`], [`ephemeral`], and [`admission`]
//!   (ValidatingAdmissionPolicy with CEL, on every write);
//! - [`state`] (store, clock, signer, [`runtime`], sinks) and [`http`]
//!   (bodies, Status responses);
//! - leaves: [`store`], [`rbac`], [`resources`], [`status`], [`tokens`],
//!   [`clock`], [`patch`], [`protobuf`], [`table`], [`image`], [`tls`].

pub mod access_review;
pub mod admission;
pub mod api;
pub mod audit;
pub mod authn;
pub mod clock;
pub mod collection;
pub mod defaults;
pub mod discovery;
pub mod ephemeral;
pub mod escalation;
pub mod exec;
pub mod faults;
pub mod fixture;
pub mod http;
pub mod image;
pub mod kubeconfig;
pub mod patch;
pub mod pod_subresources;
pub mod protobuf;
pub mod rbac;
pub mod resources;
pub mod router;
pub mod runtime;
pub mod server;
pub mod state;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod token_review;
pub mod tokenrequest;
pub mod tokens;
pub mod validation;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch as signal;

use crate::rbac::User;
use crate::state::State;

/// Everything [`Kubesim::start`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// What to load.
    pub fixture: fixture::Fixture,
    /// Audit log file.
    pub audit_log: Option<PathBuf>,
    /// Watch events kept for resuming; older resourceVersions get 410.
    pub watch_history: usize,
    /// Interval between watch bookmarks.
    pub bookmark_interval: Duration,
    /// Initial fault rules.
    pub faults: Vec<faults::FaultRule>,
}

impl Config {
    /// Defaults with the demo fixture on a random loopback port.
    pub fn demo() -> Result<Self, fixture::FixtureError> {
        Ok(Self::with_fixture(fixture::Fixture::parse(
            "demo",
            fixture::DEMO,
        )?))
    }

    /// The demo fixture, writing its audit log to `path` (for tests and
    /// benchmarks that check the rate the API server saw).
    pub fn demo_audited(path: &std::path::Path) -> Result<Self, fixture::FixtureError> {
        Ok(Self {
            audit_log: Some(path.to_owned()),
            ..Self::demo()?
        })
    }

    /// Defaults with `fixture` on a random loopback port.
    pub fn with_fixture(fixture: fixture::Fixture) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fixture,
            audit_log: None,
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(10),
            faults: Vec::new(),
        }
    }
}

/// Why kubesim could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Not running as root.
    #[error(
        "kubesim must run as root: containers need PID/mount namespaces and mounts (euid is {0})"
    )]
    NotRoot(u32),
    /// TLS material.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// IO (listen, temp dirs, audit log).
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Image build.
    #[error(transparent)]
    Image(#[from] image::ImageError),
    /// Fixture objects rejected by the API.
    #[error("fixture object {what} rejected: {error}")]
    Object {
        /// Which object.
        what: String,
        /// The API error.
        error: status::ApiError,
    },
    /// Key generation.
    #[error("cannot generate the token signing key")]
    Key,
    /// Fixture pods still not running (or terminated) when the wait ended.
    #[error("pods did not start within {timeout:?}: {pending:?}")]
    PodsNotSettled {
        /// `namespace/name` of each.
        pending: Vec<String>,
        /// How long it waited.
        timeout: Duration,
    },
}

/// A running kubesim.
pub struct Kubesim {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// PEM of the throwaway CA.
    pub ca_pem: String,
    /// The cluster-admin bearer token.
    pub admin_token: String,
    state: Arc<State>,
    shutdown: signal::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    _work: tempfile::TempDir,
}

fn random_token() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{b}")
}

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.to_string();
    move |source| StartError::Io { what, source }
}

/// The bootstrap ClusterRoles and bindings every cluster has.
fn bootstrap_rbac() -> Vec<Value> {
    let cr = |name: &str, rules: Value| json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}, "rules": rules});
    let crb = |name: &str, role: &str, group: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]})
    };
    vec![
        cr(
            "cluster-admin",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        ),
        cr(
            "system:discovery",
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
        ),
        cr(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
        ),
        cr(
            "system:basic-user",
            json!([{"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                   {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]),
        ),
        // What a delegating service (kube-rbac-proxy, scanfleet's edges) is
        // bound to: it may ask who a token is and what that user may do.
        cr(
            "system:auth-delegator",
            json!([{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                   {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}]),
        ),
        cr(
            "view",
            json!([{"apiGroups": [""], "resources": ["pods", "pods/log", "pods/status", "serviceaccounts", "namespaces"], "verbs": ["get", "list", "watch"]}]),
        ),
        crb("cluster-admin", "cluster-admin", "system:masters"),
        crb(
            "system:discovery",
            "system:discovery",
            "system:authenticated",
        ),
        crb(
            "system:public-info-viewer",
            "system:public-info-viewer",
            "system:authenticated",
        ),
        crb(
            "system:basic-user",
            "system:basic-user",
            "system:authenticated",
        ),
    ]
}

impl Kubesim {
    /// Builds images, loads the fixture, and starts serving.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let euid = nix::unistd::geteuid().as_raw();
        if euid != 0 {
            return Err(StartError::NotRoot(euid));
        }
        let tls = tls::generate()?;
        let work = tempfile::Builder::new()
            .prefix("kubesim-")
            .tempdir()
            .map_err(io_err("cannot create the work directory"))?;
        let applets = image::applets().map_err(io_err("cannot list busybox applets"))?;
        let mut images = Vec::new();
        for (i, spec) in config.fixture.images.iter().enumerate() {
            images.push(image::build(
                spec,
                &work.path().join(format!("images/{i}")),
                &applets,
            )?);
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(io_err("cannot listen"))?;
        let addr = listener
            .local_addr()
            .map_err(io_err("cannot read the listen address"))?;
        let store = Arc::new(store::Store::new(config.watch_history));
        let clock = Arc::new(clock::Clock::default());
        let admin_token = random_token();
        let (shutdown, shutdown_rx) = signal::channel(false);
        let audit = match &config.audit_log {
            Some(p) => Some(audit::AuditLog::open(p).map_err(io_err("cannot open the audit log"))?),
            None => None,
        };
        let signer = Arc::new(tokens::TokenSigner::generate().map_err(|_| StartError::Key)?);
        let runtime = runtime::Runtime::new(
            store.clone(),
            clock.clone(),
            signer.clone(),
            tls.ca_pem.clone(),
            images,
            work.path().join("containers"),
        )
        .map_err(io_err("cannot start the container watchdog"))?;
        let faults = faults::Faults::default();
        let state = Arc::new(State {
            store,
            clock,
            signer,
            static_tokens: vec![(
                admin_token.clone(),
                User {
                    name: "kubesim-admin".into(),
                    groups: vec!["system:masters".into(), "system:authenticated".into()],
                    ..User::default()
                },
            )],
            runtime,
            audit,
            faults,
            bookmark_interval: config.bookmark_interval,
            shutdown: shutdown_rx.clone(),
            address: addr.to_string(),
            issued_tokens: std::sync::Mutex::default(),
            virtual_resources: config.fixture.virtual_resources.clone(),
        });
        let admin = state.static_tokens[0].1.clone();
        let create = |kind: &str, ns: &str, obj: Value| -> Result<Value, StartError> {
            let t = resources::by_kind(kind).ok_or_else(|| StartError::Object {
                what: kind.to_string(),
                error: status::ApiError::bad_request("unsupported kind"),
            })?;
            api::create(&state, &admin, t, ns, obj).map_err(|error| StartError::Object {
                what: format!("{kind} {ns}/{}", error.message),
                error,
            })
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            create("Namespace", "", json!({"metadata": {"name": ns}}))?;
        }
        for o in bootstrap_rbac() {
            let kind = o["kind"].as_str().unwrap_or("").to_string();
            create(&kind, "", o)?;
        }
        for ns in &config.fixture.namespaces {
            create(
                "Namespace",
                "",
                json!({"metadata": {"name": ns.name, "labels": ns.labels}}),
            )?;
        }
        for o in config
            .fixture
            .objects
            .iter()
            .chain(config.fixture.pods.iter())
        {
            let kind = o["kind"].as_str().unwrap_or("").to_string();
            let ns = o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            create(&kind, &ns, o.clone())?;
        }
        state.faults.set(config.faults.clone());
        let server = tokio::spawn(server::serve(
            listener,
            tls.server_config,
            state.clone(),
            shutdown_rx,
        ));
        Ok(Self {
            url: format!("https://{addr}"),
            ca_pem: tls.ca_pem,
            admin_token,
            state,
            shutdown,
            server,
            _work: work,
        })
    }

    /// Shared state (store, clock, runtime) for tests and tools.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Kubeconfig for the cluster-admin user.
    pub fn admin_kubeconfig(&self) -> String {
        kubeconfig::render(
            &self.url,
            &self.ca_pem,
            "kubesim-admin",
            &self.admin_token,
            "",
        )
    }

    /// Kubeconfig for any bearer token.
    pub fn kubeconfig_for_token(&self, user: &str, token: &str, namespace: &str) -> String {
        kubeconfig::render(&self.url, &self.ca_pem, user, token, namespace)
    }

    /// Every token issued by a TokenRequest so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state
            .issued_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Moves the server clock forward (token expiry without sleeping).
    pub fn advance_clock(&self, secs: i64) {
        self.state.clock.advance(secs);
    }

    /// Replaces the fault rules.
    pub fn set_faults(&self, rules: Vec<faults::FaultRule>) {
        self.state.faults.set(rules);
    }

    /// Host pid of a container's main process.
    pub fn container_pid(&self, ns: &str, pod: &str, container: &str) -> Option<u32> {
        let p = self.state.store.get("pods", ns, pod)?;
        let uid = p["metadata"]["uid"].as_str()?;
        self.state
            .runtime
            .container(uid, container)
            .filter(|c| c.running)
            .map(|c| c.pid)
    }

    /// Starts and waits (bounded) until every fixture pod is Running or
    /// terminal: nearly every test needs the fixture's containers up
    /// before it can scan them.
    pub async fn start_settled(config: Config, timeout: Duration) -> Result<Self, StartError> {
        let sim = Self::start(config).await?;
        let pending = sim.wait_pods_settled(timeout).await;
        if pending.is_empty() {
            Ok(sim)
        } else {
            Err(StartError::PodsNotSettled { pending, timeout })
        }
    }

    /// Waits (bounded) until every pod is Running or terminal; returns the
    /// names of pods still pending at the deadline.
    pub async fn wait_pods_settled(&self, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (pods, _) = self.state.store.list("pods", None);
            let pending: Vec<String> = pods
                .iter()
                .filter(|p| {
                    let statuses = p["status"]["containerStatuses"]
                        .as_array()
                        .map_or(0, Vec::len);
                    let total = p["spec"]["containers"].as_array().map_or(0, Vec::len);
                    statuses < total
                        || p["status"]["containerStatuses"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|s| s["state"]["waiting"]["reason"] == "ContainerCreating")
                })
                .map(|p| {
                    format!(
                        "{}/{}",
                        p["metadata"]["namespace"].as_str().unwrap_or(""),
                        p["metadata"]["name"].as_str().unwrap_or("")
                    )
                })
                .collect();
            if pending.is_empty() || tokio::time::Instant::now() > deadline {
                return pending;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops serving, kills every container and waits for them to be gone.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        self.state.runtime.shutdown().await;
    }
}
