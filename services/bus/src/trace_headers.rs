//! The headers every scanfleet message carries, so one scan can be followed
//! across intake, workers, the collector and any downstream subscriber
//! without decoding payloads.
//!
//! `Scanfleet-Scan-Id` names the scan; `traceparent` is a W3C Trace Context
//! value minted when the scan is requested and forwarded unchanged (the
//! trace id) onto its result event, so tracing backends and log searches can
//! join the services' spans.

use rand_core::{OsRng, RngCore};

pub use crate::headers::{HEADER_SCAN_ID, HEADER_TRACEPARENT};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh `traceparent` (version 00, sampled).
pub fn new_traceparent() -> String {
    let mut trace = [0u8; 16];
    let mut span = [0u8; 8];
    OsRng.fill_bytes(&mut trace);
    OsRng.fill_bytes(&mut span);
    format!("00-{}-{}-01", hex(&trace), hex(&span))
}

/// A child `traceparent`: same trace id, new span id. `None` when `parent`
/// is not a valid version-00 value (it is untrusted input).
pub fn child_traceparent(parent: &str) -> Option<String> {
    let trace = trace_id(parent)?;
    let mut span = [0u8; 8];
    OsRng.fill_bytes(&mut span);
    Some(format!("00-{trace}-{}-01", hex(&span)))
}

/// The trace id of a valid `traceparent`.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (parts.next().is_none()
        && version == "00"
        && lower_hex(trace, 32)
        && trace != "0".repeat(32)
        && lower_hex(span, 16)
        && lower_hex(flags, 2))
    .then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_round_trip_and_bad_ones_are_refused() {
        let t = new_traceparent();
        let id = trace_id(&t).expect("valid").to_owned();
        let child = child_traceparent(&t).unwrap();
        assert_eq!(trace_id(&child), Some(id.as_str()));
        assert_ne!(child, t);
        for bad in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
        ] {
            assert_eq!(trace_id(bad), None, "{bad:?}");
        }
    }
}
