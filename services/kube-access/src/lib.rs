//! Kubernetes clients for scanfleet's own identities (intake's pod
//! directory, the worker's admin identity), built only from an explicit
//! kubeconfig or the in-cluster ServiceAccount.
//!
//! A kubeconfig is untrusted input. This crate refuses, with the cluster or
//! user it found at fault:
//! - `insecure-skip-tls-verify: true` (the scan credentials would travel to
//!   whoever answers);
//! - servers that are not `https://`;
//! - `exec` and `auth-provider` users (they run arbitrary commands);
//! - `tokenFile` users (the file's content would be sent to the server the
//!   kubeconfig names, an exfiltration path).
//!
//! TLS is rustls with the ring provider, which speaks only TLS 1.2 and 1.3,
//! so nothing older can be negotiated. `Config::infer` is never used: its
//! environment-driven fallbacks are exactly what an operator cannot audit.
//!
//! Layout, one concept per module:
//! - `kubeconfig`: the untrusted kubeconfig (bounded read, parse, the
//!   settings refused above);
//! - `client`: a kube client from checked kubeconfig text, TLS enforced and
//!   kube's retries handed to the throttle;
//! - `cluster_access`: [`ClusterAccess`], the identity's client plus the
//!   server and CA a per-scan kubeconfig needs;
//! - `in_cluster`: the pod's own ServiceAccount volume;
//! - [`api_throttle`]: the cluster's one rate limit and retry policy;
//! - `error`: [`KubeAccessError`].

pub mod api_throttle;
mod client;
mod cluster_access;
pub mod cluster_reach;
mod error;
pub mod fleet_budget;
mod in_cluster;
mod kubeconfig;

pub use api_throttle::{
    ApiThrottle, FleetFuture, FleetPermits, ThrottleConfig, ThrottleConfigError, ThrottleStats,
};
pub use client::{client_from_kubeconfig, client_from_kubeconfig_file};
pub use cluster_access::ClusterAccess;
pub use cluster_reach::ClusterReach;
pub use error::KubeAccessError;
pub use in_cluster::SERVICE_ACCOUNT_DIR;
pub use kubeconfig::{MAX_KUBECONFIG_BYTES, check_kubeconfig};
