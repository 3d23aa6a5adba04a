//! Verified scan results, persisted in SQLite (the embedded default, WAL) or
//! PostgreSQL (at scale), chosen by URL.
//!
//! Results are kept outside etcd on purpose: peers that store reports as
//! Kubernetes objects choke the API server at fleet scale. The upsert is keyed
//! by scan id, so replaying the result stream changes nothing; listings are
//! keyset-paged; retention deletes by age. Rows are built only from envelopes
//! the trust layer verified ([`StoredResult::from_verified`]).
//!
//! This is an adapter: it talks to a database and knows SQL. It does not
//! consume the bus or verify signatures; the collector wires those together.

pub mod control_outcomes;
pub mod drift_reports;
pub mod posture;
pub mod query;
pub mod record;
pub mod result_batches;
pub mod store;

pub use control_outcomes::ControlOutcome;
pub use drift_reports::{DriftRecord, MAX_DRIFT_PARTNERS};
pub use posture::{ControlFailure, NamespacePosture, PostureFilter, TrendPoint, WorkloadPage};
pub use query::{PageToken, ResultFilter};
pub use record::{BodyEncoding, Counts, Report, StoredResult};
pub use store::{Page, ResultStore, Upsert};

/// Why a store operation failed. `Unavailable` is the one the collector
/// answers by not acknowledging, so the event is retried.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (down, restarting, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The URL is not a supported database URL.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// A page token this store did not issue.
    #[error("invalid page token {0:?}")]
    InvalidPageToken(String),
    /// The statement cannot be stored as it is.
    #[error("result cannot be stored: {field}: {reason}")]
    InvalidResult {
        /// Where in the statement.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A report whose digest differs from the one the statement binds.
    #[error("report digest {found} does not match the signed digest {expected}")]
    ReportMismatch {
        /// The signed digest.
        expected: String,
        /// The supplied report's digest.
        found: String,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    fn from_sqlx(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(error.to_string()),
            other => Self::Database(other.to_string()),
        }
    }
}
