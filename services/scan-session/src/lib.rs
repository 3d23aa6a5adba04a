//! Secure scan sessions: how a worker reaches exactly one container with a
//! credential that lives only as long as the scan.
//!
//! Today: [`scan_identity`] (per-scan ServiceAccount, pod-scoped Role,
//! pod-bound token, in-memory kubeconfig, release, sweeper). Next: the
//! pre-flight, the exec/debug/sidecar approaches running the scan engine's
//! one-round-trip script, the governor throttle, and deadlines.

pub mod scan_identity;

pub use scan_identity::{Access, IdentityError, ScanIdentity, sweep_expired};
