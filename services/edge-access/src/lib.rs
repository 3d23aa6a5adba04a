//! `scanfleet-edge-access`: who is calling scanfleet's APIs, and what they
//! may do there, decided the Kubernetes way.
//!
//! - [`caller`]: the credentials a request presents (a bearer token, a
//!   verified client certificate) and the [`Caller`] they prove; nothing
//!   a caller says about itself counts;
//! - [`reviews`]: TokenReview and SubjectAccessReview against the cluster
//!   ([`KubeReviews`]), on the virtual resources `scans` and `results` of
//!   `scanfleet.dev`, so admins grant rights with ordinary Roles;
//! - [`gatekeeper`]: the entry point services call ([`Gatekeeper::admit`],
//!   [`Gatekeeper::authorize`], [`Gatekeeper::scope`]) and the axum
//!   extractor [`Admitted`];
//! - [`decision_cache`], [`caller_limits`]: answers reused briefly, and a
//!   rate limit per caller (and per peer before a token is reviewed);
//! - [`access_error`]: the refusals and their gRPC and HTTP forms;
//! - [`settings`]: flags, variables and YAML keys;
//! - [`client`]: the caller's side, a bearer-token interceptor and
//!   [`EdgeClient`] (CA bundle, client certificate, token).
//!
//! What it is not: the transport (TLS and client-certificate verification
//! are the listener's, in `scanfleet-process-lifecycle`) or the place that
//! knows which verb an API method needs (each service's edge says so).

pub mod access_error;
pub mod caller;
pub mod caller_limits;
pub mod client;
pub mod decision_cache;
pub mod gatekeeper;
pub mod reviews;
pub mod settings;

use std::path::Path;
use std::sync::Arc;

pub use access_error::AccessError;
pub use caller::{Caller, Credentials, Proof};
pub use client::{Authenticated, BearerAuth, EdgeClient, EdgeConnectError};
pub use gatekeeper::{Admitted, Gatekeeper, Scope};
pub use reviews::{Access, KubeReviews, Resource, Reviewer, Verb};
pub use settings::{AccessArgs, AccessFile, AccessSettings};

/// A gatekeeper that asks the cluster with the service's own identity,
/// every review through one throttle (default 20 calls/s, burst 40) and,
/// when given, the cluster's fleet-wide API budget (`fleet`):
/// `--access-kubeconfig`, else the service's other kubeconfig (`fallback`),
/// else the pod's ServiceAccount. That identity needs the
/// `system:auth-delegator` ClusterRole.
///
/// # Errors
/// When the kubeconfig cannot be used or the process is not in a cluster.
pub async fn cluster_gatekeeper(
    settings: &AccessSettings,
    fallback: Option<&Path>,
    fleet: Option<Arc<dyn scanfleet_kube_access::FleetPermits>>,
) -> anyhow::Result<Gatekeeper> {
    let reach = scanfleet_kube_access::ClusterReach::kubeconfig_or_in_cluster(
        settings.kubeconfig.as_deref().or(fallback),
    );
    // Reviews are driven by callers: however many arrive (each peer has its
    // own limit, but peers are many), the API server sees at most this
    // throttle's rate from the edge, and under `fleet` the cluster's
    // fleet-wide budget holds for them too.
    let throttle = match fleet {
        Some(fleet) => {
            scanfleet_kube_access::ApiThrottle::under_fleet_budget(Default::default(), fleet)?
        }
        None => scanfleet_kube_access::ApiThrottle::new(Default::default())?,
    };
    let client = reach.connect(throttle).await?.client;
    Ok(Gatekeeper::new(
        Arc::new(KubeReviews::new(client)),
        settings,
    ))
}
