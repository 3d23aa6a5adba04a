//! The seam between the intent loop and the thing that scans.
//!
//! The loop owns the bus mechanics (leases, acks, retries, dead letters); the
//! scanner owns reaching a container and evaluating a profile. Secure scan
//! sessions (per-scan ServiceAccount, exec/debug/sidecar) implement it for
//! Kubernetes; the loop does not change when they do.

use std::future::Future;
use std::time::Duration;

use scanfleet_scan_intents::Intent;
use scanfleet_trust::ScanStatement;

/// A finished scan: the statement to sign and the HDF report it binds.
#[derive(Debug, Clone)]
pub struct ScanOutput {
    /// The claim about the image.
    pub statement: ScanStatement,
    /// The HDF report bytes (`statement.predicate.report` binds them).
    pub report: Option<Vec<u8>>,
}

/// Why a scan did not produce a result.
#[derive(Debug, Clone)]
pub enum ScanFailure {
    /// Retrying cannot help (pod gone, container missing, distroless target
    /// with debug disabled). The loop publishes `failed_result` when given,
    /// so subscribers learn why, then terminates the intent into the
    /// dead-letter stream.
    Permanent {
        /// Human-readable reason; also the TERM reason.
        reason: String,
        /// A signed-to-be statement with `outcome: failed`, when the scanner
        /// knows enough about the target to make one.
        failed_result: Option<Box<ScanStatement>>,
    },
    /// Worth retrying (API throttled, network blip). The loop NAKs with this
    /// delay, or its own backoff when none is given.
    Transient {
        /// Human-readable reason.
        reason: String,
        /// How long to wait, e.g. from a 429's `Retry-After`.
        retry_after: Option<Duration>,
    },
}

/// Scans one intent. Implementations must be cancel-safe: when a worker
/// drains, an unfinished scan's future is dropped and its intent NAKed.
///
/// The intent arrives as the domain type, already decoded and re-validated
/// by the loop (`scanfleet_scan_intents::intent_wire`): a scanner never sees
/// the wire struct, so names, pins and threshold names it uses have passed
/// the same rules intake applies.
pub trait Scanner: Send + Sync + 'static {
    /// Runs the scan.
    fn scan(&self, intent: &Intent)
    -> impl Future<Output = Result<ScanOutput, ScanFailure>> + Send;
}
