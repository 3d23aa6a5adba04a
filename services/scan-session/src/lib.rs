//! Secure scan sessions: how a worker reaches exactly one container with a
//! credential that lives only as long as the scan.
//!
//! Today: [`preflight`] (the target exists, runs, and which digest) and
//! [`scan_identity`] (per-scan ServiceAccount, pod-scoped Role,
//! short-lived token, in-memory kubeconfig, release, sweeper). Next: the
//! exec/debug/sidecar approaches running the scan engine's
//! one-round-trip script, the governor throttle, and deadlines.

pub mod preflight;
pub mod scan_identity;

pub use preflight::{Preflight, PreflightError, preflight};
pub use scan_identity::{Access, IdentityError, ScanIdentity, sweep_expired};
