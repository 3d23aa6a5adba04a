//! Fault injection for reliability tests: per path pattern, with a rate,
//! add latency, answer 429 with Retry-After, answer 500, or drop the
//! connection.

use std::sync::RwLock;
use std::time::Duration;

use serde::Deserialize;

use crate::status::ApiError;

/// What a matching rule does.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum Fault {
    /// Delay the request.
    Latency {
        /// Milliseconds added.
        millis: u64,
    },
    /// 429 TooManyRequests.
    TooManyRequests {
        /// Retry-After seconds.
        retry_after_seconds: u64,
    },
    /// 500 InternalError.
    InternalError,
    /// Close the connection without a response.
    DropConnection,
}

/// One rule: a `*` glob over the URL path, a rate in 0..=1, and the fault.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Glob over the path (`*` matches any run of characters).
    pub path: String,
    /// Probability of applying.
    pub rate: f64,
    /// The fault.
    pub fault: Fault,
}

/// The decision for one request.
#[derive(Debug)]
pub enum FaultAction {
    /// Serve normally.
    None,
    /// Sleep, then serve.
    Delay(Duration),
    /// Answer with this error.
    Respond(ApiError),
    /// Drop the connection.
    Drop,
}

/// The active rules (replaceable at run time).
#[derive(Debug, Default)]
pub struct Faults {
    rules: RwLock<Vec<FaultRule>>,
}

/// `*`-glob match.
pub fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else if let Some(pos) = rest.find(p) {
            rest = &rest[pos + p.len()..];
        } else {
            return false;
        }
    }
    true
}

impl Faults {
    /// Replaces the rules.
    pub fn set(&self, rules: Vec<FaultRule>) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = rules;
    }

    /// Chooses the fault for a path (first matching rule that fires).
    pub fn decide(&self, path: &str) -> FaultAction {
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner());
        for r in rules.iter().filter(|r| glob(&r.path, path)) {
            let roll = f64::from(uuid::Uuid::new_v4().as_u128() as u32) / f64::from(u32::MAX);
            if roll >= r.rate {
                continue;
            }
            return match &r.fault {
                Fault::Latency { millis } => FaultAction::Delay(Duration::from_millis(*millis)),
                Fault::TooManyRequests {
                    retry_after_seconds,
                } => FaultAction::Respond(ApiError::too_many_requests(*retry_after_seconds)),
                Fault::InternalError => FaultAction::Respond(ApiError::internal("injected fault")),
                Fault::DropConnection => FaultAction::Drop,
            };
        }
        FaultAction::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob(
            "/api/v1/namespaces/*/pods*",
            "/api/v1/namespaces/a/pods/x"
        ));
        assert!(!glob(
            "/api/v1/namespaces/*/pods",
            "/api/v1/namespaces/a/sa"
        ));
        assert!(glob("*", "/x"));
    }

    #[test]
    fn rate_one_always_fires_rate_zero_never() {
        let f = Faults::default();
        f.set(vec![FaultRule {
            path: "/version".into(),
            rate: 1.0,
            fault: Fault::TooManyRequests {
                retry_after_seconds: 3,
            },
        }]);
        assert!(matches!(f.decide("/version"), FaultAction::Respond(e) if e.code == 429));
        assert!(matches!(f.decide("/api"), FaultAction::None));
        f.set(vec![FaultRule {
            path: "*".into(),
            rate: 0.0,
            fault: Fault::InternalError,
        }]);
        assert!(matches!(f.decide("/version"), FaultAction::None));
    }
}
