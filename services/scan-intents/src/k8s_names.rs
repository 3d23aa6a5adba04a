//! Kubernetes object names, validated exactly as the API server validates
//! them for the objects intake names: namespaces and container names are
//! RFC 1123 labels (at most 63 characters), pod names are RFC 1123
//! subdomains (at most 253 characters, dots allowed, no per-label length
//! limit: `IsDNS1123Subdomain` checks only the total).
//!
//! Validating here, before the bus, means a typo is an `INVALID_ARGUMENT`
//! with a precise message instead of a worker discovering a 404 minutes
//! later; it also guarantees these names are safe NATS subject tokens.

use std::fmt;

/// Longest RFC 1123 label.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest RFC 1123 subdomain.
pub const MAX_SUBDOMAIN_LEN: usize = 253;

/// Why a string is not a valid Kubernetes name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty string.
    #[error("must not be empty")]
    Empty,
    /// Longer than the rule allows.
    #[error("must be no more than {max} characters (got {len})")]
    TooLong {
        /// The rule's limit.
        max: usize,
        /// The actual length.
        len: usize,
    },
    /// Wrong characters or shape.
    #[error(
        "a lowercase RFC 1123 {kind} must consist of lowercase alphanumeric characters{dots} or \
         '-', and must start and end with an alphanumeric character"
    )]
    Syntax {
        /// "label" or "subdomain".
        kind: &'static str,
        /// ", '.'" for subdomains.
        dots: &'static str,
    },
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn label_syntax_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum(c) || c == b'-')
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn check_dns1123_label(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > MAX_LABEL_LEN {
        return Err(NameError::TooLong {
            max: MAX_LABEL_LEN,
            len: s.len(),
        });
    }
    if !label_syntax_ok(s) {
        return Err(NameError::Syntax {
            kind: "label",
            dots: "",
        });
    }
    Ok(())
}

/// Labels joined by `.`, at most 253 characters in total.
pub fn check_dns1123_subdomain(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > MAX_SUBDOMAIN_LEN {
        return Err(NameError::TooLong {
            max: MAX_SUBDOMAIN_LEN,
            len: s.len(),
        });
    }
    if !s.split('.').all(label_syntax_ok) {
        return Err(NameError::Syntax {
            kind: "subdomain",
            dots: ", '.'",
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $check:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `s`.
            pub fn new(s: &str) -> Result<Self, NameError> {
                $check(s)?;
                Ok(Self(s.to_owned()))
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A namespace name (RFC 1123 label).
    NamespaceName,
    check_dns1123_label
);
name_type!(
    /// A pod name (RFC 1123 subdomain).
    PodName,
    check_dns1123_subdomain
);
name_type!(
    /// A container name within a pod (RFC 1123 label).
    ContainerName,
    check_dns1123_label
);
name_type!(
    /// A cluster name from the fleet configuration. Held to the label rule
    /// because it becomes a NATS subject token and a metrics label.
    ClusterName,
    check_dns1123_label
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rule_table() {
        let long = "a".repeat(63);
        let too_long = "a".repeat(64);
        let cases: Vec<(&str, Result<(), NameError>)> = vec![
            ("default", Ok(())),
            ("kube-system", Ok(())),
            ("a", Ok(())),
            ("0", Ok(())),
            ("123-abc", Ok(())),
            (&long, Ok(())),
            (&too_long, Err(NameError::TooLong { max: 63, len: 64 })),
            ("", Err(NameError::Empty)),
            (
                "Default",
                Err(NameError::Syntax {
                    kind: "label",
                    dots: "",
                }),
            ),
            (
                "-a",
                Err(NameError::Syntax {
                    kind: "label",
                    dots: "",
                }),
            ),
            (
                "a-",
                Err(NameError::Syntax {
                    kind: "label",
                    dots: "",
                }),
            ),
            (
                "a.b",
                Err(NameError::Syntax {
                    kind: "label",
                    dots: "",
                }),
            ),
            (
                "a_b",
                Err(NameError::Syntax {
                    kind: "label",
                    dots: "",
                }),
            ),
            (
                "a b",
                Err(NameError::Syntax {
                    kind: "label",
                    dots: "",
                }),
            ),
            (
                "é",
                Err(NameError::Syntax {
                    kind: "label",
                    dots: "",
                }),
            ),
        ];
        for (s, want) in cases {
            assert_eq!(check_dns1123_label(s), want, "{s:?}");
        }
    }

    #[test]
    fn subdomain_rule_table() {
        let sub = NameError::Syntax {
            kind: "subdomain",
            dots: ", '.'",
        };
        // 253 characters of valid labels; each label longer than 63 is still
        // accepted, as IsDNS1123Subdomain does.
        let max = format!("{}.{}", "a".repeat(126), "b".repeat(126));
        let over = format!("{max}c");
        let cases: Vec<(&str, Result<(), NameError>)> = vec![
            ("web-7d4b9c8f6-x2m4q", Ok(())),
            ("web.v2", Ok(())),
            ("a.b.c", Ok(())),
            (&max, Ok(())),
            (&over, Err(NameError::TooLong { max: 253, len: 254 })),
            ("", Err(NameError::Empty)),
            ("a..b", Err(sub.clone())),
            (".a", Err(sub.clone())),
            ("a.", Err(sub.clone())),
            ("a.-b", Err(sub.clone())),
            ("Web", Err(sub.clone())),
            ("a/b", Err(sub)),
        ];
        for (s, want) in cases {
            assert_eq!(check_dns1123_subdomain(s), want, "{s:?}");
        }
    }

    #[test]
    fn name_types_apply_their_rule() {
        assert!(NamespaceName::new("shop").is_ok());
        assert!(NamespaceName::new("shop.prod").is_err());
        assert!(PodName::new("web-0.canary").is_ok());
        assert!(ContainerName::new("web.app").is_err());
        assert!(ClusterName::new("prod-eu-1").is_ok());
        assert_eq!(PodName::new("web-0").unwrap().to_string(), "web-0");
    }
}
