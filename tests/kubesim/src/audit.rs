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

/// Why an audit log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("reading the audit log {path}: {source}")]
    Io {
        /// The log.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A complete line is not a record.
    #[error("{path} line {line}: not an audit record: {source}")]
    Line {
        /// The log.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Cause.
        source: serde_json::Error,
    },
}

/// Every complete record of the log at `path`, the one owner of how tests
/// and benchmarks read it while kubesim runs: a last line not yet ended by
/// its newline is still being written, and is left for the next read
/// rather than failing this one.
///
/// # Errors
/// [`ReadError`] naming the file, or the line that is not a record.
pub fn read(path: &std::path::Path) -> Result<Vec<AuditRecord>, ReadError> {
    let name = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: name(),
        source,
    })?;
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).map_err(|source| ReadError::Line {
                path: name(),
                line: n + 1,
                source,
            })
        })
        .collect()
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
    use super::{AuditLog, AuditRecord, ReadError, busiest_second, read};

    fn record(user: &str) -> AuditRecord {
        AuditRecord {
            user: user.into(),
            groups: vec![],
            verb: "get".into(),
            resource: "pods".into(),
            subresource: String::new(),
            name: String::new(),
            namespace: String::new(),
            path: "/api/v1/pods".into(),
            code: 200,
            latency_ms: 1.0,
            received_unix_ms: 1.0,
        }
    }

    #[test]
    fn a_line_still_being_written_is_left_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        log.write(&record("a"));
        log.write(&record("b"));
        let mut text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(read(&path).unwrap(), [record("a"), record("b")]);
        text.push_str(r#"{"user":"c","gro"#);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2, "the partial line waits");
        text.push('\n');
        std::fs::write(&path, &text).unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, ReadError::Line { line: 3, .. }), "{err}");
        assert!(matches!(
            read(&dir.path().join("none")),
            Err(ReadError::Io { .. })
        ));
    }

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
