//! Why no client was built: one error type for every way in (kubeconfig
//! file or text, in-cluster volume, per-scan token), each naming its source.

/// Why no client was built.
#[derive(Debug, thiserror::Error)]
pub enum KubeAccessError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The kubeconfig path.
        path: String,
        /// The IO error.
        reason: String,
    },
    /// Not a kubeconfig.
    #[error("{source_name}: not a valid kubeconfig: {reason}")]
    Parse {
        /// Where it came from.
        source_name: String,
        /// The parser's explanation.
        reason: String,
    },
    /// A setting scanfleet refuses.
    #[error("{source_name}: refused: {what}: {reason}")]
    Refused {
        /// Where it came from.
        source_name: String,
        /// Which cluster or user.
        what: String,
        /// Why.
        reason: &'static str,
    },
    /// The client could not be configured (missing context, bad CA…).
    #[error("{source_name}: {reason}")]
    Config {
        /// Where it came from.
        source_name: String,
        /// The explanation.
        reason: String,
    },
}
