//! NATS subjects for scan intents and their results.
//!
//! Layout: `scan.intents.<class>.<cluster>.<namespace>.<tail>`, matching
//! the stream topology in the `bus` crate (`INTENTS_SUBJECT_PREFIX`).
//! - `<class>` first after the root, so each priority class gets its own
//!   durable consumer with a non-overlapping filter (`scan.intents.high.>`,
//!   `scan.intents.low.>`), as JetStream requires on a WorkQueue stream.
//! - `<cluster>.<namespace>` let operators and tests filter by place.
//! - The tail is the dedupe key for intents that coalesce (schedules), so
//!   `max_msgs_per_subject: 1` with `discard_new_per_subject` allows at
//!   most one queued intent per key (see [`crate::dedupe`]); it is the scan
//!   id for interactive intents, which never coalesce
//!   ([`crate::priority::TriggerKind::coalesces`]).
//!
//! Subject tokens may not be empty or contain `.`, `*`, `>` or whitespace.
//! Every token here is either a fixed word, a validated RFC 1123 label,
//! or hex, so none needs escaping; [`SubjectToken::escape`] still guards
//! the boundary for any other string.

use std::fmt;

use crate::dedupe::DedupeKey;
use crate::k8s_names::{ClusterName, NamespaceName};
use crate::priority::Priority;
use crate::scan_id::ScanId;

/// The root every intent subject starts with.
pub const INTENT_SUBJECT_ROOT: &str = "scan.intents";

/// The last subject token: what one message per subject is counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectTail<'a> {
    /// Coalescing intents: one queued per key.
    DedupeKey(&'a DedupeKey),
    /// Interactive intents: one subject per scan.
    ScanId(&'a ScanId),
}

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

/// The subject one intent is published on. Both tail kinds are safe
/// tokens by construction (lowercase hex, or Crockford base32).
pub fn intent_subject(
    priority: Priority,
    cluster: &ClusterName,
    namespace: &NamespaceName,
    tail: SubjectTail<'_>,
) -> String {
    let tail = match tail {
        SubjectTail::DedupeKey(k) => k.to_string(),
        SubjectTail::ScanId(id) => id.to_string(),
    };
    format!(
        "{INTENT_SUBJECT_ROOT}.{}.{}.{}.{tail}",
        priority.token(),
        SubjectToken::escape(cluster.as_str()),
        SubjectToken::escape(namespace.as_str()),
    )
}

/// The place token of image scans' intent subjects, where a container
/// scan has its namespace: `_` can begin no namespace name, so the two
/// never collide.
pub const IMAGE_PLACE_TOKEN: &str = "_image";

/// The subject one image-scan intent is published on:
/// `scan.intents.<class>.<cluster>._image.<tail>`.
pub fn image_intent_subject(
    priority: Priority,
    cluster: &ClusterName,
    tail: SubjectTail<'_>,
) -> String {
    let tail = match tail {
        SubjectTail::DedupeKey(k) => k.to_string(),
        SubjectTail::ScanId(id) => id.to_string(),
    };
    format!(
        "{INTENT_SUBJECT_ROOT}.{}.{}.{IMAGE_PLACE_TOKEN}.{tail}",
        priority.token(),
        SubjectToken::escape(cluster.as_str()),
    )
}

/// The root every result subject starts with.
pub const RESULT_SUBJECT_ROOT: &str = "scan.results";

/// What a result subject says a result is about, below its cluster: the
/// namespace of a scanned container, or the cluster's image scans (by
/// digest, no namespace). The signed statement must say the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultPlace {
    /// A container running in this namespace.
    Namespace(NamespaceName),
    /// An image scanned by digest: token [`IMAGE_PLACE_TOKEN`], which no
    /// namespace name can be.
    Image,
}

impl fmt::Display for ResultPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Namespace(ns) => f.write_str(ns.as_str()),
            Self::Image => f.write_str(IMAGE_PLACE_TOKEN),
        }
    }
}

/// The subject a result about `place` in `cluster` is published on:
/// `scan.results.<cluster>.<namespace>` for a container,
/// `scan.results.<cluster>._image` for an image, so a subscriber can
/// filter by place. The collector checks that the signed statement names
/// the same place ([`result_place`]); a subject is only trustworthy because
/// of that check.
pub fn result_subject(cluster: &ClusterName, place: &ResultPlace) -> String {
    let place = match place {
        ResultPlace::Namespace(ns) => SubjectToken::escape(ns.as_str()).to_string(),
        ResultPlace::Image => IMAGE_PLACE_TOKEN.to_owned(),
    };
    format!(
        "{RESULT_SUBJECT_ROOT}.{}.{place}",
        SubjectToken::escape(cluster.as_str()),
    )
}

/// The place a result subject names, or `None` when `subject` is not one
/// [`result_subject`] could have produced.
pub fn result_place(subject: &str) -> Option<(ClusterName, ResultPlace)> {
    let rest = subject
        .strip_prefix(RESULT_SUBJECT_ROOT)?
        .strip_prefix('.')?;
    let (cluster, place) = rest.split_once('.')?;
    let cluster = ClusterName::new(cluster).ok()?;
    let place = if place == IMAGE_PLACE_TOKEN {
        ResultPlace::Image
    } else {
        ResultPlace::Namespace(NamespaceName::new(place).ok()?)
    };
    (result_subject(&cluster, &place) == subject).then_some((cluster, place))
}

/// The consumer filter for one priority class.
pub fn class_filter(priority: Priority) -> String {
    format!("{INTENT_SUBJECT_ROOT}.{}.>", priority.token())
}

/// The consumer filter for one priority class of one cluster: each
/// cluster's intents get their own consumers, so a worker claims only the
/// intents of clusters it can reach, and an intent for a cluster no running
/// worker serves waits in the stream instead of failing elsewhere.
pub fn cluster_filter(priority: Priority, cluster: &ClusterName) -> String {
    format!(
        "{INTENT_SUBJECT_ROOT}.{}.{}.>",
        priority.token(),
        SubjectToken::escape(cluster.as_str())
    )
}

/// The `SCAN_INTENTS` stream's subjects.
pub fn stream_subjects() -> Vec<String> {
    vec![class_filter(Priority::High), class_filter(Priority::Low)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_subjects_round_trip_and_nothing_else_parses() {
        let cluster = ClusterName::new("prod-eu").unwrap();
        let ns = NamespaceName::new("kube-system").unwrap();
        let place = ResultPlace::Namespace(ns);
        let subject = result_subject(&cluster, &place);
        assert_eq!(subject, "scan.results.prod-eu.kube-system");
        assert_eq!(result_place(&subject), Some((cluster.clone(), place)));
        let images = result_subject(&cluster, &ResultPlace::Image);
        assert_eq!(images, "scan.results.prod-eu._image");
        assert_eq!(result_place(&images), Some((cluster, ResultPlace::Image)));
        for bad in [
            "scan.results.prod-eu._image.x",
            "scan.results.prod-eu._Image",
            "scan.results.prod-eu",
            "scan.results.prod-eu.apps.extra",
            "scan.results.Prod.apps",
            "scan.resultsx.prod.apps",
            "scan.intents.high.prod.apps",
            "",
        ] {
            assert_eq!(result_place(bad), None, "{bad:?}");
        }
    }

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
            vec!["scan.intents.high.>", "scan.intents.low.>"]
        );
    }

    #[test]
    fn intent_subjects_have_six_safe_tokens() {
        use crate::image_digest::{ImageDigest, ImageIdentity};
        use crate::profile::{ProfileName, ProfilePin, ProfileRef};
        use crate::scan_id::SplitMix64;
        use crate::target::ContainerRef;

        let cluster = ClusterName::new("kubesim").unwrap();
        let c = ContainerRef::parse_uri("k8s://shop/web-0.canary/app").unwrap();
        let digest = ImageDigest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        let image = ImageIdentity::Digest(digest);
        let profile = ProfileRef {
            name: ProfileName::new("cis").unwrap(),
            pin: ProfilePin::version("1").unwrap(),
        };
        let key = DedupeKey::new(&cluster, &c, &image, &profile);
        let id = ScanId::generate(std::time::UNIX_EPOCH, &mut SplitMix64::new(1));
        let cases = [
            (
                Priority::Low,
                SubjectTail::DedupeKey(&key),
                format!("scan.intents.low.kubesim.shop.{key}"),
            ),
            (
                Priority::High,
                SubjectTail::ScanId(&id),
                format!("scan.intents.high.kubesim.shop.{id}"),
            ),
        ];
        for (priority, tail, want) in cases {
            let subject = intent_subject(priority, &cluster, &c.namespace, tail);
            assert_eq!(subject, want);
            let tokens: Vec<&str> = subject.split('.').collect();
            assert_eq!(tokens.len(), 6);
            assert!(
                tokens.iter().all(|t| SubjectToken::new(t).is_ok()),
                "{subject}"
            );
            let filter = class_filter(priority);
            assert!(
                subject.starts_with(filter.trim_end_matches('>')),
                "{subject} vs {filter}"
            );
        }
    }
}
