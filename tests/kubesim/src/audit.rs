//! The audit log: one JSON line per request, flushed as written so tests can
//! read it while the server runs. Tokens never appear in it.

use std::io::Write;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One audit line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// Username (empty when authentication failed).
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Verb.
    pub verb: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Object name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// URL path.
    pub path: String,
    /// Response code.
    pub code: u16,
    /// Time to the response head, milliseconds.
    pub latency_ms: f64,
    /// When the request arrived, Unix milliseconds (rate checks read it).
    #[serde(default)]
    pub received_unix_ms: f64,
}

/// Appends records to a file.
pub struct AuditLog {
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    /// Opens (creates, appends) the log.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Writes one line; failures are logged, never fatal to the request.
    pub fn write(&self, r: &AuditRecord) {
        let Ok(mut line) = serde_json::to_vec(r) else {
            return;
        };
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(&line) {
            tracing::warn!("audit write failed: {e}");
        }
    }
}
