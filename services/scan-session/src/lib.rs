//! Secure scan sessions: how a worker reaches exactly one container with a
//! credential that lives only as long as the scan.
//!
//! - [`preflight`]: the target exists, runs, and which digest it runs.
//! - [`scan_identity`]: per-scan ServiceAccount, pod-scoped Role, short-lived
//!   token, in-memory kubeconfig, release, sweeper.
//! - [`approach`]: exec, debug or sidecar, decided before the identity so its
//!   Role grants only what that approach needs.
//! - [`kube_exec`], [`debug_container`], [`sidecar`]: the three ways in.
//! - [`scan_session`]: [`run_scan`], which ties them together under one
//!   deadline and removes the identity on every exit path.
//!
//! Not here: the bus, signing, profiles on disk. Every Kubernetes call goes
//! through the cluster's [`scanfleet_kube_access::ApiThrottle`].

pub mod approach;
pub mod attestation;
pub mod debug_container;
pub mod kube_exec;
pub mod preflight;
pub mod scan_identity;
pub mod scan_session;
pub mod sidecar;

pub use approach::{Approach, ApproachPolicy};
pub use preflight::{Preflight, PreflightError, preflight};
pub use scan_identity::{Access, IdentityError, ScanIdentity, release_scan, sweep_expired};
pub use scan_session::{
    ScanRequest, SessionConfig, SessionError, SessionFailure, SessionOutcome, run_scan,
    run_scan_detailed,
};
