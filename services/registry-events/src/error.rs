//! Why a delivery was refused, and what the HTTP edge answers.

/// A refused delivery. Each variant says what was wrong and where; none of
/// them echoes a secret or a received signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The body is larger than the endpoint accepts; checked before anything
    /// else so an oversized body costs neither an HMAC nor a parse.
    #[error("body is {actual} bytes, over the limit of {limit} bytes")]
    BodyTooLarge {
        /// Configured limit in bytes.
        limit: usize,
        /// Received size in bytes.
        actual: usize,
    },
    /// The body lists more events than one delivery may carry.
    #[error("{path}: {actual} entries, over the limit of {limit} per delivery")]
    TooManyEvents {
        /// The array that is too long, e.g. `events`.
        path: String,
        /// Configured limit.
        limit: usize,
        /// Entries received.
        actual: usize,
    },
    /// The authentication header is absent.
    #[error("missing authentication: no {header} header")]
    MissingAuth {
        /// The header that was expected.
        header: String,
    },
    /// The authentication header is present but wrong or unusable.
    #[error("authentication failed: {header} {problem}")]
    BadAuth {
        /// The header that was checked.
        header: String,
        /// What was wrong, without echoing the value.
        problem: &'static str,
    },
    /// A required non-auth header is absent or unusable.
    #[error("header {header}: {problem}")]
    BadHeader {
        /// The header name.
        header: String,
        /// What was wrong.
        problem: String,
    },
    /// The body is not JSON at all (or not UTF-8).
    #[error("body is not valid JSON: {detail}")]
    NotJson {
        /// The parser's message, with line and column.
        detail: String,
    },
    /// The body is JSON but a field is missing, mistyped or invalid.
    #[error("{}: {problem}", if path.is_empty() { "(body)" } else { path.as_str() })]
    Invalid {
        /// JSON path of the offending value, e.g. `events[2].target.digest`.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl WebhookError {
    /// The HTTP status the edge should answer with: 401 for anything about
    /// authentication, 413 for size limits, 400 for a body or header that is
    /// not parseable, 422 for parseable JSON with invalid content.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::MissingAuth { .. } | Self::BadAuth { .. } => 401,
            Self::BodyTooLarge { .. } | Self::TooManyEvents { .. } => 413,
            Self::NotJson { .. } | Self::BadHeader { .. } => 400,
            Self::Invalid { .. } => 422,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
