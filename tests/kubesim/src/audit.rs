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

/// Arrival instants (`receivedUnixMs`) of the records `keep` selects,
/// sorted: what [`busiest_second`] reads.
pub fn arrivals(records: &[AuditRecord], keep: impl Fn(&AuditRecord) -> bool) -> Vec<f64> {
    let mut t: Vec<f64> = records
        .iter()
        .filter(|r| keep(r))
        .map(|r| r.received_unix_ms)
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

/// The most arrivals within any window `[t, t + 1000 ms)` over sorted
/// `times`, and where that window starts. Only windows that start at an
/// arrival need checking: sliding a window's start forward to its first
/// arrival loses none of its calls. The one rule every test and benchmark
/// uses to say what rate the API server saw.
pub fn busiest_second(times: &[f64]) -> (usize, f64) {
    let mut best = (0, 0.0);
    let mut end = 0;
    for (start, &t) in times.iter().enumerate() {
        while end < times.len() && times[end] < t + 1000.0 {
            end += 1;
        }
        if end - start > best.0 {
            best = (end - start, t);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::busiest_second;

    #[test]
    fn busiest_second_counts_a_half_open_window() {
        assert_eq!(busiest_second(&[]).0, 0);
        assert_eq!(busiest_second(&[5.0]), (1, 5.0));
        // 1000.0 is outside [0, 1000): three, not four.
        assert_eq!(busiest_second(&[0.0, 500.0, 999.0, 1000.0]).0, 3);
        assert_eq!(
            busiest_second(&[0.0, 1500.0, 1600.0, 2400.0, 2499.0, 2500.0]),
            (4, 1500.0)
        );
    }
}
