//! Who may read which results: the one place both read APIs (gRPC
//! `Results` and the HTTP JSON API) ask, so they cannot disagree.
//!
//! Reading needs `get`, `list` or `watch` on `results.scanfleet.dev` in the
//! result's namespace (a ClusterRole bound cluster-wide covers all). A
//! listing that names no namespace spans the namespaces that hold results
//! and returns only those the caller may list, or is refused naming them
//! when there are none; a watch hands out only results the caller may
//! watch, checked (through the short-lived decision cache) as each one
//! arrives, so a revoked permission also ends an open stream's deliveries.
//! Reports are decrypted ([`ReportsAtRest`]) only after that check. A
//! container scan's drift report is readable by whoever may `get` that
//! scan, as its report is.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use scanfleet_edge_access::{Access, AccessError, Caller, Gatekeeper, Resource, Scope, Verb};
use scanfleet_result_store::{Report, ResultFilter, ResultStore, StoreError, StoredResult};

use crate::drift_recording::{self, DriftReadError, DriftReport};
use crate::reports_at_rest::{ReportsAtRest, SealError};

/// Most namespaces a listing is authorized over one by one; beyond it, a
/// cluster-wide grant or a namespace filter is needed.
pub const MAX_SPANNED_NAMESPACES: u32 = 1000;

/// Why a read is refused.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not authenticated, not permitted, or too fast.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// Nothing by that id.
    #[error("{0}")]
    NotFound(String),
    /// A request that cannot be answered as asked.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored report cannot be handed out.
    #[error(transparent)]
    Report(#[from] SealError),
    /// The stored drift report cannot be handed out.
    #[error(transparent)]
    Drift(#[from] DriftReadError),
}

impl ReadError {
    /// The gRPC status.
    pub fn to_status(&self) -> tonic::Status {
        match self {
            ReadError::Access(e) => e.to_status(),
            ReadError::NotFound(m) => tonic::Status::not_found(m.clone()),
            ReadError::Invalid(m) => tonic::Status::invalid_argument(m.clone()),
            ReadError::Store(e) => crate::result_wire::status(e),
            ReadError::Report(e) => tonic::Status::internal(e.to_string()),
            ReadError::Drift(e) => tonic::Status::internal(e.to_string()),
        }
    }
}

impl From<ReadError> for tonic::Status {
    fn from(e: ReadError) -> Self {
        e.to_status()
    }
}

/// `{"error": "…"}` with the matching HTTP code.
impl IntoResponse for ReadError {
    fn into_response(self) -> Response {
        let code = match &self {
            ReadError::Access(e) => return e.clone().into_response(),
            ReadError::NotFound(_) => StatusCode::NOT_FOUND,
            ReadError::Invalid(_) | ReadError::Store(StoreError::InvalidPageToken(_)) => {
                StatusCode::BAD_REQUEST
            }
            ReadError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ReadError::Store(_) | ReadError::Report(_) | ReadError::Drift(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (
            code,
            axum::Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

/// The store as a caller may read it.
pub struct ResultReader {
    /// The store.
    pub store: Arc<ResultStore>,
    /// Who is calling and what they may do.
    pub gate: Arc<Gatekeeper>,
    /// How reports are kept.
    pub at_rest: ReportsAtRest,
}

impl ResultReader {
    /// One result, if `caller` may `verb` results in its namespace.
    ///
    /// # Errors
    /// [`ReadError`]: not found, forbidden (naming the namespace), store.
    pub async fn one(
        &self,
        caller: &Caller,
        scan_id: &str,
        verb: Verb,
    ) -> Result<StoredResult, ReadError> {
        if scan_id.is_empty() {
            return Err(ReadError::Invalid("scan_id is required".into()));
        }
        let Some(row) = self.store.get(scan_id).await? else {
            return Err(ReadError::NotFound(format!("no result for scan {scan_id}")));
        };
        self.gate
            .authorize(
                caller,
                Access::new(verb, Resource::Results, row.namespace.clone()),
            )
            .await?;
        Ok(row)
    }

    /// A result's report, decrypted and checked, for a caller who may
    /// `get` the result.
    ///
    /// # Errors
    /// As [`ResultReader::one`], and when no report is stored.
    pub async fn report(&self, caller: &Caller, scan_id: &str) -> Result<Report, ReadError> {
        self.one(caller, scan_id, Verb::Get).await?;
        let Some(report) = self.store.report(scan_id).await? else {
            return Err(ReadError::NotFound(format!(
                "no report stored for scan {scan_id}"
            )));
        };
        Ok(self.at_rest.open(report)?)
    }

    /// A container scan's drift report, opened, for a caller who may `get`
    /// the container scan (its namespace decides, as for its report).
    ///
    /// # Errors
    /// As [`ResultReader::one`], and not found when the scan is an image
    /// scan or no drift report is recorded for it.
    pub async fn drift(&self, caller: &Caller, scan_id: &str) -> Result<DriftReport, ReadError> {
        let row = self.one(caller, scan_id, Verb::Get).await?;
        if row.is_image_scan() {
            return Err(ReadError::NotFound(format!(
                "scan {scan_id} is an image scan; drift is reported on the scans of containers \
                 running its digest"
            )));
        }
        let Some(record) = self.store.drift(scan_id).await? else {
            return Err(ReadError::NotFound(format!(
                "no drift report for scan {scan_id}: no completed image scan of {} with {}@{} \
                 is stored",
                row.image_digest, row.profile_name, row.profile_version
            )));
        };
        Ok(drift_recording::open(&self.at_rest, record)?)
    }

    /// Narrows `filter` to what `caller` may `verb` (see the module doc).
    ///
    /// # Errors
    /// Forbidden naming the namespace(s), or too many namespaces to check.
    pub async fn narrow(
        &self,
        caller: &Caller,
        verb: Verb,
        filter: &mut ResultFilter,
    ) -> Result<(), ReadError> {
        if let Some(namespace) = &filter.namespace {
            self.gate
                .authorize(
                    caller,
                    Access::new(verb, Resource::Results, namespace.clone()),
                )
                .await?;
            return Ok(());
        }
        let spanned = self
            .store
            .namespaces(filter.cluster.as_deref(), MAX_SPANNED_NAMESPACES + 1)
            .await?;
        if spanned.is_empty() {
            return Ok(());
        }
        if spanned.len() > MAX_SPANNED_NAMESPACES as usize {
            let everywhere = Access::new(verb, Resource::Results, "");
            return match self.gate.may(caller, &everywhere).await? {
                true => Ok(()),
                false => Err(ReadError::Invalid(format!(
                    "results span more than {MAX_SPANNED_NAMESPACES} namespaces; filter by \
                     namespace (only a cluster-wide grant covers them all)"
                ))),
            };
        }
        if let Scope::Only(allowed) = self
            .gate
            .scope(caller, verb, Resource::Results, spanned)
            .await?
        {
            filter.namespaces = Some(allowed);
        }
        Ok(())
    }

    /// Whether `caller` may `verb` results in `namespace` now (cached).
    ///
    /// # Errors
    /// When the cluster cannot be asked.
    pub async fn may_see(
        &self,
        caller: &Caller,
        verb: Verb,
        namespace: &str,
    ) -> Result<bool, AccessError> {
        let here = Access::new(verb, Resource::Results, namespace);
        let everywhere = Access::new(verb, Resource::Results, "");
        Ok(self.gate.may(caller, &here).await? || self.gate.may(caller, &everywhere).await?)
    }
}
