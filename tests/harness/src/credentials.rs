//! What a test's services and clients share to talk securely, in one
//! value: a throwaway PKI (every listener's certificate, the client CA),
//! the identity the services review callers with (`system:auth-delegator`
//! on the test's kubesim), and an operator token allowed everything on
//! `scanfleet.dev`, so that migrating a test to TLS and credentials is one
//! line for the service flags and one for each client.
//!
//! ```ignore
//! let creds = TestCredentials::new(&sim).await;
//! let config = Config::loopback(&nats, &store, &key, &creds.service_flags());
//! let mut results = creds.results(collector.listening.grpc).await;
//! let page = https_get(http, &creds.tls(), "/v1/results", Some(creds.operator())).await;
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use scanfleet_contracts::v1::intake_client::IntakeClient;
use scanfleet_contracts::v1::results_client::ResultsClient;
use scanfleet_edge_access::{Authenticated, BearerAuth};

use crate::callers::{AUDIENCE, Callers};
use crate::pki::{ClientTls, TestPki};

/// TLS material, a reviewer identity and an operator token for one test.
pub struct TestCredentials {
    /// The PKI every listener serves from.
    pub pki: TestPki,
    /// Kubeconfig of the services' reviewer identity (0600).
    pub reviewer_kubeconfig: PathBuf,
    operator: String,
    _dir: tempfile::TempDir,
}

impl TestCredentials {
    /// Sets up on `sim`: ServiceAccount `scanfleet-system/reviewer` bound to
    /// `system:auth-delegator`, and `scanfleet-system/operator` allowed
    /// every scanfleet.dev verb in every namespace.
    pub async fn new(sim: &kubesim::Kubesim) -> Self {
        let dir = tempfile::Builder::new().prefix("creds-").tempdir().unwrap();
        let callers = Callers::new(sim).await;
        let reviewer_kubeconfig = callers.reviewer_kubeconfig(dir.path(), "reviewer").await;
        callers
            .service_account("scanfleet-system", "operator")
            .await;
        callers
            .grant_cluster(
                "scanfleet-operator",
                serde_json::json!([
                    {"apiGroups": ["scanfleet.dev"], "resources": ["scans"], "verbs": ["create", "get"]},
                    {"apiGroups": ["scanfleet.dev"], "resources": ["results"], "verbs": ["get", "list", "watch"]}
                ]),
                serde_json::json!({"kind": "ServiceAccount", "name": "operator", "namespace": "scanfleet-system"}),
            )
            .await;
        let operator = callers
            .token("scanfleet-system", "operator", AUDIENCE, 86_400)
            .await;
        Self {
            pki: TestPki::new(),
            reviewer_kubeconfig,
            operator,
            _dir: dir,
        }
    }

    /// The flags that make a service serve TLS from the PKI (accepting its
    /// client certificates).
    pub fn tls_flags(&self) -> Vec<String> {
        self.pki.server_flags()
    }

    /// `--access-kubeconfig` of the reviewer identity.
    pub fn reviewer_flags(&self) -> Vec<String> {
        vec![
            "--access-kubeconfig".into(),
            self.reviewer_kubeconfig.display().to_string(),
        ]
    }

    /// [`TestCredentials::tls_flags`] and [`TestCredentials::reviewer_flags`].
    pub fn service_flags(&self) -> Vec<String> {
        let mut flags = self.tls_flags();
        flags.extend(self.reviewer_flags());
        flags
    }

    /// The operator's bearer token (every scanfleet.dev right).
    pub fn operator(&self) -> &str {
        &self.operator
    }

    /// Client-side TLS trusting the PKI.
    pub fn tls(&self) -> ClientTls {
        self.pki.client()
    }

    /// A TLS channel to a gRPC service at `addr`.
    ///
    /// # Errors
    /// When the service cannot be reached or the handshake fails.
    pub async fn try_channel(&self, addr: SocketAddr) -> Result<tonic::transport::Channel, String> {
        tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
            .map_err(|e| e.to_string())?
            .tls_config(self.tls().tonic())
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("TLS gRPC connection to {addr}: {e:?}"))
    }

    /// A TLS channel to a gRPC service at `addr`.
    ///
    /// # Panics
    /// When the service cannot be reached.
    pub async fn channel(&self, addr: SocketAddr) -> tonic::transport::Channel {
        self.try_channel(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// An `Intake` client at `addr` sending `token`.
    pub async fn intake_as(&self, addr: SocketAddr, token: &str) -> IntakeClient<Authenticated> {
        IntakeClient::with_interceptor(self.channel(addr).await, BearerAuth::new(token).unwrap())
    }

    /// An `Intake` client at `addr` as the operator.
    pub async fn intake(&self, addr: SocketAddr) -> IntakeClient<Authenticated> {
        self.intake_as(addr, self.operator()).await
    }

    /// A `Results` client at `addr` sending `token`.
    pub async fn results_as(&self, addr: SocketAddr, token: &str) -> ResultsClient<Authenticated> {
        ResultsClient::with_interceptor(self.channel(addr).await, BearerAuth::new(token).unwrap())
    }

    /// A `Results` client at `addr` as the operator.
    pub async fn results(&self, addr: SocketAddr) -> ResultsClient<Authenticated> {
        self.results_as(addr, self.operator()).await
    }
}
