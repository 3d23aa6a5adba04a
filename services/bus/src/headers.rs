//! Every header scanfleet writes on the bus, and the one place their values
//! are made safe.
//!
//! Header values come from everywhere: scan ids, failure reasons written by
//! a scan of a hostile container, profile errors quoting untrusted YAML,
//! rejection details. async-nats panics when a value holds `\r` or `\n`,
//! and any control character would let a value forge a second header line
//! for a downstream reader. So no code builds a `HeaderMap` by hand: it
//! goes through [`Headers`], whose [`Headers::set`] replaces every control
//! character with a space and caps the length, whatever the source.

use async_nats::HeaderMap;

/// Header carrying the scan id (intents, results, dead letters).
pub const HEADER_SCAN_ID: &str = "Scanfleet-Scan-Id";
/// W3C Trace Context header.
pub const HEADER_TRACEPARENT: &str = "traceparent";
/// How a result payload is wrapped (`age`, or absent for plain protobuf).
pub const HEADER_ENCODING: &str = "Scanfleet-Encoding";
/// Dead letters: `max_deliveries` or `terminated`.
pub const HEADER_DEAD_LETTER_REASON: &str = "Scanfleet-Dead-Letter-Reason";
/// Dead letters: the worker's reason for a termination.
pub const HEADER_DEAD_LETTER_DETAIL: &str = "Scanfleet-Dead-Letter-Detail";
/// Dead letters: the original subject.
pub const HEADER_ORIGINAL_SUBJECT: &str = "Scanfleet-Original-Subject";
/// Dead letters: the original stream sequence.
pub const HEADER_ORIGINAL_SEQUENCE: &str = "Scanfleet-Original-Sequence";
/// Dead letters: deliveries made before giving up.
pub const HEADER_DELIVERIES: &str = "Scanfleet-Deliveries";
/// Dead letters: `true` when the original could no longer be read.
pub const HEADER_ORIGINAL_MISSING: &str = "Scanfleet-Original-Missing";
/// Quarantined results: the stable reason label.
pub const HEADER_QUARANTINE_REASON: &str = "Scanfleet-Quarantine-Reason";
/// Quarantined results: the human-readable detail.
pub const HEADER_QUARANTINE_DETAIL: &str = "Scanfleet-Quarantine-Detail";

/// Longest header value written, in bytes. Details are for humans reading
/// a dead letter; the full reason stays in logs and the status book.
pub const MAX_HEADER_VALUE_BYTES: usize = 1024;

/// A header value that cannot break the wire format: every control
/// character (CR, LF, NUL, tab, …) becomes a space, and the value is cut at
/// a character boundary to [`MAX_HEADER_VALUE_BYTES`].
pub fn safe_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_HEADER_VALUE_BYTES));
    for c in value.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > MAX_HEADER_VALUE_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

/// Headers under construction; see the module docs.
#[derive(Debug, Default, Clone)]
pub struct Headers(HeaderMap);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Headers received with a message, to extend (e.g. when quarantining
    /// it). Received values already passed the server's parser.
    pub fn received(map: Option<&HeaderMap>) -> Self {
        Self(map.cloned().unwrap_or_default())
    }

    /// Sets `name` to a safe form of `value`, replacing earlier values.
    pub fn set(&mut self, name: &'static str, value: &str) -> &mut Self {
        self.0.insert(name, safe_value(value).as_str());
        self
    }

    /// [`Self::set`], by value.
    #[must_use]
    pub fn with(mut self, name: &'static str, value: &str) -> Self {
        self.set(name, value);
        self
    }

    /// The map to publish.
    pub fn into_map(self) -> HeaderMap {
        self.0
    }
}

/// A received header's value, at most `max_chars` characters of it
/// (untrusted: for logs and routing, never for decisions that need a
/// signature).
pub fn received_value(map: Option<&HeaderMap>, name: &str, max_chars: usize) -> Option<String> {
    map.and_then(|h| h.get(name))
        .map(|v| v.as_str().chars().take(max_chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_control_character_survives_and_values_are_capped() {
        let hostile = "line one\r\nScanfleet-Scan-Id: forged\0\t\u{7f}\u{85}end";
        let safe = safe_value(hostile);
        assert!(!safe.chars().any(char::is_control), "{safe:?}");
        assert!(safe.starts_with("line one  Scanfleet-Scan-Id: forged"));
        let long = "é".repeat(2000);
        let capped = safe_value(&long);
        assert!(capped.len() <= MAX_HEADER_VALUE_BYTES);
        assert_eq!(capped.chars().count(), MAX_HEADER_VALUE_BYTES / 2);
    }

    #[test]
    fn setting_a_multi_line_value_does_not_panic() {
        // async-nats panics on '\r' or '\n' in a value given to it directly.
        let map = Headers::new()
            .with(
                HEADER_DEAD_LETTER_DETAIL,
                "profile: unknown input\n  at line 3",
            )
            .into_map();
        assert_eq!(
            map.get(HEADER_DEAD_LETTER_DETAIL).unwrap().as_str(),
            "profile: unknown input   at line 3"
        );
    }
}
