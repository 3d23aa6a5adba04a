//! NATS subjects for scan intents.
//!
//! Layout: `scan.intent.<class>.<cluster>.<namespace>.<dedupe key>`.
//! - `<class>` first after the root, so each priority class gets its own
//!   durable consumer with a non-overlapping filter (`scan.intent.high.>`,
//!   `scan.intent.low.>`), as JetStream requires on a WorkQueue stream.
//! - `<cluster>.<namespace>` let operators and tests filter by place.
//! - The dedupe key last, so `max_msgs_per_subject: 1` with
//!   `discard_new_per_subject` allows at most one queued intent per key
//!   (see [`crate::dedupe`]).
//!
//! Subject tokens may not be empty or contain `.`, `*`, `>` or whitespace.
//! Every token here is either a fixed word, a validated RFC 1123 label,
//! or hex, so none needs escaping; [`SubjectToken::escape`] still guards
//! the boundary for any other string.

use std::fmt;

use crate::dedupe::DedupeKey;
use crate::k8s_names::{ClusterName, NamespaceName};
use crate::priority::Priority;

/// The root every intent subject starts with.
pub const INTENT_SUBJECT_ROOT: &str = "scan.intent";

/// One subject token, guaranteed safe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectToken(String);

/// A string that is not usable as a subject token as-is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectTokenError {
    /// Empty.
    #[error("a subject token must not be empty")]
    Empty,
    /// Holds a character NATS gives meaning to, or a non-printable one.
    #[error(
        "a subject token must not contain {0:?} (allowed: printable ASCII except '.', '*', '>')"
    )]
    Forbidden(char),
}

impl SubjectToken {
    /// Accepts `s` unchanged if it is safe; refuses it otherwise. Use for
    /// values that are supposed to be clean already (configuration).
    pub fn new(s: &str) -> Result<Self, SubjectTokenError> {
        if s.is_empty() {
            return Err(SubjectTokenError::Empty);
        }
        if let Some(c) = s
            .chars()
            .find(|&c| !c.is_ascii_graphic() || matches!(c, '.' | '*' | '>'))
        {
            return Err(SubjectTokenError::Forbidden(c));
        }
        Ok(Self(s.to_owned()))
    }

    /// Makes any string a token, injectively: bytes other than ASCII
    /// letters, digits and `-` become `_XX` (uppercase hex), and the empty
    /// string becomes `_`. RFC 1123 labels pass through unchanged.
    pub fn escape(s: &str) -> Self {
        if s.is_empty() {
            return Self("_".into());
        }
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' {
                out.push(b as char);
            } else {
                out.push_str(&format!("_{b:02X}"));
            }
        }
        Self(out)
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubjectToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The subject one intent is published on.
pub fn intent_subject(
    priority: Priority,
    cluster: &ClusterName,
    namespace: &NamespaceName,
    key: &DedupeKey,
) -> String {
    format!(
        "{INTENT_SUBJECT_ROOT}.{}.{}.{}.{key}",
        priority.token(),
        SubjectToken::escape(cluster.as_str()),
        SubjectToken::escape(namespace.as_str()),
    )
}

/// The consumer filter for one priority class.
pub fn class_filter(priority: Priority) -> String {
    format!("{INTENT_SUBJECT_ROOT}.{}.>", priority.token())
}

/// The `SCAN_INTENTS` stream's subjects.
pub fn stream_subjects() -> Vec<String> {
    vec![class_filter(Priority::High), class_filter(Priority::Low)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_tokens_table() {
        let cases = [
            ("prod-eu-1", Ok(())),
            ("a_b~c", Ok(())),
            ("", Err(SubjectTokenError::Empty)),
            ("a.b", Err(SubjectTokenError::Forbidden('.'))),
            ("a*", Err(SubjectTokenError::Forbidden('*'))),
            (">", Err(SubjectTokenError::Forbidden('>'))),
            ("a b", Err(SubjectTokenError::Forbidden(' '))),
            ("a\tb", Err(SubjectTokenError::Forbidden('\t'))),
            ("é", Err(SubjectTokenError::Forbidden('é'))),
        ];
        for (s, want) in cases {
            assert_eq!(SubjectToken::new(s).map(|_| ()), want, "{s:?}");
        }
    }

    #[test]
    fn escaping_table() {
        let cases = [
            ("shop", "shop"),
            ("prod-eu-1", "prod-eu-1"),
            ("a.b", "a_2Eb"),
            ("a*>", "a_2A_3E"),
            ("a b", "a_20b"),
            ("a_b", "a_5Fb"),
            ("", "_"),
            ("é", "_C3_A9"),
        ];
        for (raw, want) in cases {
            let t = SubjectToken::escape(raw);
            assert_eq!(t.as_str(), want, "{raw:?}");
            assert!(
                SubjectToken::new(t.as_str()).is_ok(),
                "{raw:?} escapes to a safe token"
            );
        }
    }

    #[test]
    fn escaping_is_injective_on_generated_strings() {
        let alphabet = ['a', '.', '_', '2', 'E', ' ', '*', '-'];
        let mut seen = std::collections::HashMap::new();
        // Every string of length 0..=4 over an alphabet chosen to collide
        // if the escape were ambiguous ("_2E" vs ".").
        let mut stack = vec![String::new()];
        while let Some(s) = stack.pop() {
            let escaped = SubjectToken::escape(&s).0;
            if let Some(prev) = seen.insert(escaped.clone(), s.clone()) {
                panic!("{prev:?} and {s:?} both escape to {escaped:?}");
            }
            if s.chars().count() < 4 {
                for c in alphabet {
                    stack.push(format!("{s}{c}"));
                }
            }
        }
        assert_eq!(seen.len(), (0..=4).map(|n| 8usize.pow(n)).sum::<usize>());
    }

    #[test]
    fn class_filters_do_not_overlap() {
        assert_eq!(
            stream_subjects(),
            vec!["scan.intent.high.>", "scan.intent.low.>"]
        );
    }
}
