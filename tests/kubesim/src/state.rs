//! The shared server state every handler works on: the object store, the
//! clock, the token signer, the container runtime and the sinks.
//!
//! It sits below the handlers and the server in the module graph: handlers
//! take a `&State`, the server owns the `Arc<State>`, and nothing here knows
//! about HTTP.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::faults::Faults;
use crate::fixture::VirtualResource;
use crate::rbac::{RbacSource, User};
use crate::runtime::Runtime;
use crate::store::Store;
use crate::tokens::TokenSigner;

/// The node every pod is scheduled to.
pub const NODE_NAME: &str = "kubesim-node";

/// Shared server state.
pub struct State {
    /// Objects.
    pub store: Arc<Store>,
    /// Time source (tests advance it).
    pub clock: Arc<Clock>,
    /// ServiceAccount token signer.
    pub signer: Arc<TokenSigner>,
    /// Static bearer tokens and their users.
    pub static_tokens: Vec<(String, User)>,
    /// Container processes.
    pub runtime: Runtime,
    /// Audit sink.
    pub audit: Option<AuditLog>,
    /// Injected faults.
    pub faults: Faults,
    /// Interval between watch bookmarks.
    pub bookmark_interval: std::time::Duration,
    /// Shutdown signal for long-running streams.
    pub shutdown: watch::Receiver<bool>,
    /// `host:port` served.
    pub address: String,
    /// Every token a TokenRequest issued, so leak tests know what to look
    /// for in logs and on disk (a real API server keeps none).
    pub issued_tokens: std::sync::Mutex<Vec<String>>,
    /// Discovery-only resources from the fixture.
    pub virtual_resources: Vec<VirtualResource>,
}

impl RbacSource for State {
    fn cluster_role_bindings(&self) -> Vec<Value> {
        self.store
            .list("clusterrolebindings.rbac.authorization.k8s.io", None)
            .0
    }
    fn role_bindings(&self, ns: &str) -> Vec<Value> {
        self.store
            .list("rolebindings.rbac.authorization.k8s.io", Some(ns))
            .0
    }
    fn cluster_role(&self, name: &str) -> Option<Value> {
        self.store
            .get("clusterroles.rbac.authorization.k8s.io", "", name)
    }
    fn role(&self, ns: &str, name: &str) -> Option<Value> {
        self.store.get("roles.rbac.authorization.k8s.io", ns, name)
    }
}

impl State {
    /// Starts a new pod's containers.
    pub fn pod_created(self: &State, pod: &Value) {
        self.runtime.pod_created(pod);
    }
    /// Stops a deleted pod's processes.
    pub fn pod_deleted(&self, pod: &Value) {
        self.runtime.pod_deleted(pod);
    }
    /// Starts newly added ephemeral containers.
    pub fn pod_ephemeral_changed(&self, pod: &Value) {
        self.runtime.ephemeral_changed(pod);
    }
}
