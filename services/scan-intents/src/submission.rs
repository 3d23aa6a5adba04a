//! Validation of Intake submissions, before anything reaches the bus.
//!
//! The input types mirror the `SubmitRequest` proto field for field (plain
//! strings, unset as empty), so the gRPC edge converts without judgement;
//! every rule lives here. All violations are collected, not just the first,
//! each with the proto field path (`requests[3].target.uri`), so the edge
//! answers `INVALID_ARGUMENT` with a `google.rpc.BadRequest` listing them
//! and a client fixes everything in one round trip.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::image_digest::ImageDigest;
use crate::intent::{Approach, ThresholdRef};
use crate::intent_wire::approach_from_wire_value;
use crate::k8s_names::{ClusterName, ContainerName, NamespaceName};
use crate::label_selector::{LabelSelector, SelectorLimits};
use crate::profile::{ProfileName, ProfilePin, ProfileRef};
use crate::target::{ContainerRef, Target};

/// Size and batch bounds for submissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeLimits {
    /// Most submissions in one `SubmitBatch`.
    pub max_batch: usize,
    /// Bounds on selector strings.
    pub selector: SelectorLimits,
    /// Most `profile_inputs` entries.
    pub max_profile_inputs: usize,
    /// Longest `profile_inputs` key.
    pub max_profile_input_key_len: usize,
    /// Longest `profile_inputs` value.
    pub max_profile_input_value_len: usize,
    /// Longest `idempotency_key`.
    pub max_idempotency_key_len: usize,
    /// Longest `timeout` a caller may ask for.
    pub max_timeout: Duration,
}

impl Default for IntakeLimits {
    /// A batch of 100 keeps one request under a few hundred KiB and one
    /// validation pass cheap; the rest are generous for real profiles.
    fn default() -> Self {
        Self {
            max_batch: 100,
            selector: SelectorLimits::default(),
            max_profile_inputs: 64,
            max_profile_input_key_len: 128,
            max_profile_input_value_len: 4096,
            max_idempotency_key_len: 128,
            max_timeout: Duration::from_secs(3600),
        }
    }
}

/// `TargetSelector.selector`, unvalidated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TargetInput {
    /// Neither oneof member was set.
    #[default]
    Unset,
    /// `uri`.
    Uri(String),
    /// `label_selector`.
    LabelSelector {
        /// `namespace`.
        namespace: String,
        /// `selector` (empty selects every pod).
        selector: String,
        /// `container` (empty means every container).
        container: String,
    },
}

/// `ProfileRef.pin`, unvalidated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PinInput {
    /// Neither oneof member was set.
    #[default]
    Unset,
    /// `version`.
    Version(String),
    /// `digest`.
    Digest(String),
}

/// One `SubmitRequest`, unvalidated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Submission {
    /// `target.cluster`; empty means the fleet's default cluster.
    pub cluster: String,
    /// `target.selector`.
    pub target: TargetInput,
    /// `profile.name`.
    pub profile_name: String,
    /// `profile.pin`.
    pub profile_pin: PinInput,
    /// `profile_inputs`.
    pub profile_inputs: BTreeMap<String, String>,
    /// `idempotency_key`; empty means none.
    pub idempotency_key: String,
    /// `approach`, the raw enum value (0 means auto).
    pub approach: i32,
    /// `threshold.name` and `threshold.digest`; `None` when unset.
    pub threshold: Option<(String, String)>,
    /// `timeout` as (seconds, nanos); `None` or zero means the default.
    pub timeout: Option<(i64, i32)>,
}

/// A submission that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSubmission {
    /// `None` means the fleet's default cluster, which the wiring knows.
    pub cluster: Option<ClusterName>,
    /// What to scan.
    pub target: Target,
    /// With which profile.
    pub profile: ProfileRef,
    /// Profile input overrides.
    pub profile_inputs: BTreeMap<String, String>,
    /// The client's idempotency key, if any.
    pub idempotency_key: Option<String>,
    /// How to reach the container.
    pub approach: Approach,
    /// The threshold that gates the result.
    pub threshold: Option<ThresholdRef>,
    /// The caller's deadline for the scan; `None` means the fleet default.
    pub timeout: Option<Duration>,
}

/// One broken rule, in `google.rpc.BadRequest.FieldViolation` terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Proto field path, e.g. `requests[3].target.uri`.
    pub field: String,
    /// What is wrong, for a human.
    pub description: String,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// The whole request is refused; the edge maps this to gRPC
/// `INVALID_ARGUMENT` carrying every violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid argument: {}", .violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidArgument {
    /// Every violation found, in field order.
    pub violations: Vec<FieldViolation>,
}

struct Collector<'p> {
    prefix: &'p str,
    violations: Vec<FieldViolation>,
}

impl Collector<'_> {
    fn add(&mut self, field: &str, description: impl fmt::Display) {
        let field = if self.prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.prefix)
        };
        self.violations.push(FieldViolation {
            field,
            description: description.to_string(),
        });
    }

    fn check<T, E: fmt::Display>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        r.map_err(|e| self.add(field, e)).ok()
    }
}

impl Submission {
    /// Validates one `Submit` request.
    pub fn validate(&self, limits: &IntakeLimits) -> Result<ValidSubmission, InvalidArgument> {
        let mut c = Collector {
            prefix: "",
            violations: Vec::new(),
        };
        match self.validate_into(&mut c, limits) {
            Some(v) if c.violations.is_empty() => Ok(v),
            _ => Err(InvalidArgument {
                violations: c.violations,
            }),
        }
    }

    fn validate_into(
        &self,
        c: &mut Collector<'_>,
        limits: &IntakeLimits,
    ) -> Option<ValidSubmission> {
        let cluster = if self.cluster.is_empty() {
            Some(None)
        } else {
            c.check("target.cluster", ClusterName::new(&self.cluster))
                .map(Some)
        };
        let target = match &self.target {
            TargetInput::Unset => {
                c.add(
                    "target",
                    "one of target.uri or target.label_selector is required",
                );
                None
            }
            TargetInput::Uri(uri) => c
                .check("target.uri", ContainerRef::parse_uri(uri))
                .map(Target::Container),
            TargetInput::LabelSelector {
                namespace,
                selector,
                container,
            } => {
                let ns = c.check(
                    "target.label_selector.namespace",
                    NamespaceName::new(namespace),
                );
                let sel = c.check(
                    "target.label_selector.selector",
                    LabelSelector::parse(selector, &limits.selector),
                );
                let container = if container.is_empty() {
                    Some(None)
                } else {
                    c.check(
                        "target.label_selector.container",
                        ContainerName::new(container),
                    )
                    .map(Some)
                };
                match (ns, sel, container) {
                    (Some(namespace), Some(selector), Some(container)) => Some(Target::Selector {
                        namespace,
                        selector,
                        container,
                    }),
                    _ => None,
                }
            }
        };
        let name = c.check("profile.name", ProfileName::new(&self.profile_name));
        let pin = match &self.profile_pin {
            PinInput::Unset => {
                c.add(
                    "profile",
                    "one of profile.version or profile.digest is required",
                );
                None
            }
            PinInput::Version(v) => c.check("profile.version", ProfilePin::version(v)),
            PinInput::Digest(d) => c
                .check("profile.digest", ImageDigest::parse(d))
                .map(ProfilePin::Digest),
        };
        self.check_inputs(c, limits);
        let approach = approach_from_wire_value(self.approach);
        if approach.is_none() {
            c.add("approach", format!("unknown approach {}", self.approach));
        }
        let threshold = self.check_threshold(c);
        let timeout = self.check_timeout(c, limits);
        let idempotency_key = if self.idempotency_key.is_empty() {
            None
        } else {
            let k = &self.idempotency_key;
            if k.len() > limits.max_idempotency_key_len || !k.bytes().all(|b| b.is_ascii_graphic())
            {
                c.add(
                    "idempotency_key",
                    format!(
                        "must be 1 to {} printable ASCII characters without spaces",
                        limits.max_idempotency_key_len
                    ),
                );
            }
            Some(k.clone())
        };
        Some(ValidSubmission {
            cluster: cluster?,
            target: target?,
            profile: ProfileRef {
                name: name?,
                pin: pin?,
            },
            profile_inputs: self.profile_inputs.clone(),
            idempotency_key,
            approach: approach?,
            threshold: threshold?,
            timeout: timeout?,
        })
    }

    /// `Some(None)` when no threshold is asked for; `None` after a violation.
    fn check_threshold(&self, c: &mut Collector<'_>) -> Option<Option<ThresholdRef>> {
        let Some((name, digest)) = &self.threshold else {
            return Some(None);
        };
        match (name.is_empty(), digest.is_empty()) {
            (true, true) => {
                c.add(
                    "threshold",
                    "set name or digest, or leave the threshold out",
                );
                None
            }
            (false, true) => c
                .check("threshold.name", ProfileName::new(name))
                .map(|n| Some(ThresholdRef::Named(n))),
            (true, false) => c
                .check("threshold.digest", ImageDigest::parse(digest))
                .map(|d| Some(ThresholdRef::Digest(d))),
            (false, false) => {
                c.add("threshold", "set name or digest, not both");
                None
            }
        }
    }

    /// `Some(None)` for the default; `None` after a violation.
    fn check_timeout(
        &self,
        c: &mut Collector<'_>,
        limits: &IntakeLimits,
    ) -> Option<Option<Duration>> {
        let Some((seconds, nanos)) = self.timeout else {
            return Some(None);
        };
        if seconds < 0 || nanos < 0 {
            c.add("timeout", "must not be negative");
            return None;
        }
        if nanos >= 1_000_000_000 {
            c.add("timeout", "nanos must be below 1,000,000,000");
            return None;
        }
        let t = Duration::new(seconds.unsigned_abs(), nanos.unsigned_abs());
        if t.is_zero() {
            return Some(None);
        }
        if t > limits.max_timeout {
            c.add(
                "timeout",
                format!(
                    "{} s is over the limit of {} s",
                    t.as_secs(),
                    limits.max_timeout.as_secs()
                ),
            );
            return None;
        }
        Some(Some(t))
    }

    fn check_inputs(&self, c: &mut Collector<'_>, limits: &IntakeLimits) {
        if self.profile_inputs.len() > limits.max_profile_inputs {
            c.add(
                "profile_inputs",
                format!(
                    "{} entries, over the limit of {}",
                    self.profile_inputs.len(),
                    limits.max_profile_inputs
                ),
            );
            return;
        }
        for (k, v) in &self.profile_inputs {
            let key_ok = !k.is_empty()
                && k.len() <= limits.max_profile_input_key_len
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !key_ok {
                c.add(
                    "profile_inputs",
                    format!(
                        "key {k:?} must be 1 to {} letters, digits, '_', '-' or '.'",
                        limits.max_profile_input_key_len
                    ),
                );
            }
            if v.len() > limits.max_profile_input_value_len {
                c.add(
                    &format!("profile_inputs[{k:?}]"),
                    format!(
                        "value is {} bytes, over the limit of {}",
                        v.len(),
                        limits.max_profile_input_value_len
                    ),
                );
            }
        }
    }
}

/// Validates a `SubmitBatch`: the whole batch is refused if any entry is
/// invalid, and the error lists every violation of every entry.
pub fn validate_batch(
    requests: &[Submission],
    limits: &IntakeLimits,
) -> Result<Vec<ValidSubmission>, InvalidArgument> {
    if requests.is_empty() {
        return Err(InvalidArgument {
            violations: vec![FieldViolation {
                field: "requests".into(),
                description: "must hold at least one request".into(),
            }],
        });
    }
    if requests.len() > limits.max_batch {
        return Err(InvalidArgument {
            violations: vec![FieldViolation {
                field: "requests".into(),
                description: format!(
                    "{} requests, over the limit of {} per batch",
                    requests.len(),
                    limits.max_batch
                ),
            }],
        });
    }
    let mut violations = Vec::new();
    let mut valid = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let prefix = format!("requests[{i}]");
        let mut c = Collector {
            prefix: &prefix,
            violations: Vec::new(),
        };
        let v = r.validate_into(&mut c, limits);
        if c.violations.is_empty()
            && let Some(v) = v
        {
            valid.push(v);
        }
        violations.extend(c.violations);
    }
    if violations.is_empty() {
        Ok(valid)
    } else {
        Err(InvalidArgument { violations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Submission {
        Submission {
            cluster: String::new(),
            target: TargetInput::Uri("k8s://shop/web-0/app".into()),
            profile_name: "cis-k8s".into(),
            profile_pin: PinInput::Version("1.2.0".into()),
            profile_inputs: BTreeMap::new(),
            idempotency_key: String::new(),
            approach: 0,
            threshold: None,
            timeout: None,
        }
    }

    fn violations(r: Result<impl fmt::Debug, InvalidArgument>) -> Vec<(String, String)> {
        r.expect_err("should be invalid")
            .violations
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect()
    }

    #[test]
    fn a_good_submission_validates() {
        let v = good().validate(&IntakeLimits::default()).unwrap();
        assert_eq!(v.cluster, None);
        assert_eq!(
            v.target,
            Target::Container(ContainerRef::parse_uri("k8s://shop/web-0/app").unwrap())
        );
        assert_eq!(v.profile.to_string(), "cis-k8s@1.2.0");
        assert_eq!(v.idempotency_key, None);

        let sel = Submission {
            cluster: "prod-eu".into(),
            target: TargetInput::LabelSelector {
                namespace: "shop".into(),
                selector: "app=web".into(),
                container: String::new(),
            },
            idempotency_key: "req-42".into(),
            ..good()
        };
        let v = sel.validate(&IntakeLimits::default()).unwrap();
        assert_eq!(v.cluster.unwrap().as_str(), "prod-eu");
        assert_eq!(v.target.namespace().as_str(), "shop");
        assert_eq!(v.idempotency_key.as_deref(), Some("req-42"));
    }

    #[test]
    fn every_violation_is_reported_with_its_field_path() {
        let bad = Submission {
            cluster: "Prod".into(),
            target: TargetInput::LabelSelector {
                namespace: "shop.x".into(),
                selector: "app=web,".into(),
                container: "App".into(),
            },
            profile_name: String::new(),
            profile_pin: PinInput::Digest("sha256:xyz".into()),
            profile_inputs: [
                ("bad key".to_owned(), "v".to_owned()),
                ("ok".to_owned(), "x".repeat(5000)),
            ]
            .into_iter()
            .collect(),
            idempotency_key: "has space".into(),
            approach: 0,
            threshold: None,
            timeout: None,
        };
        let label = "a lowercase RFC 1123 label must consist of lowercase alphanumeric characters \
                     or '-', and must start and end with an alphanumeric character";
        let want: Vec<(String, String)> = [
            ("target.cluster", label),
            ("target.label_selector.namespace", label),
            ("target.label_selector.selector", "at character 8: trailing ',' with no requirement after it"),
            ("target.label_selector.container", label),
            ("profile.name", "must not be empty"),
            ("profile.digest", "not a sha256 digest (expected \"sha256:\" followed by 64 lowercase hex characters)"),
            ("profile_inputs", "key \"bad key\" must be 1 to 128 letters, digits, '_', '-' or '.'"),
            ("profile_inputs[\"ok\"]", "value is 5000 bytes, over the limit of 4096"),
            ("idempotency_key", "must be 1 to 128 printable ASCII characters without spaces"),
        ]
        .iter()
        .map(|(f, d)| ((*f).to_owned(), (*d).to_owned()))
        .collect();
        assert_eq!(violations(bad.validate(&IntakeLimits::default())), want);
    }

    #[test]
    fn unset_oneofs_are_violations() {
        let s = Submission {
            target: TargetInput::Unset,
            profile_pin: PinInput::Unset,
            ..good()
        };
        assert_eq!(
            violations(s.validate(&IntakeLimits::default())),
            vec![
                (
                    "target".to_owned(),
                    "one of target.uri or target.label_selector is required".to_owned()
                ),
                (
                    "profile".to_owned(),
                    "one of profile.version or profile.digest is required".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn batch_paths_are_indexed_and_limits_apply() {
        let limits = IntakeLimits {
            max_batch: 5,
            ..IntakeLimits::default()
        };
        let mut batch = vec![good(); 4];
        batch[3].target = TargetInput::Uri("k8s://shop/web-0".into());
        batch[1].profile_name = "-x".into();
        assert_eq!(
            violations(validate_batch(&batch, &limits)),
            vec![
                (
                    "requests[1].profile.name".to_owned(),
                    "must consist of letters, digits, '.', '_' or '-', starting with a letter or digit".to_owned()
                ),
                (
                    "requests[3].target.uri".to_owned(),
                    "must have the form k8s://NAMESPACE/POD/CONTAINER (found 2 segments)".to_owned()
                ),
            ]
        );
        assert_eq!(validate_batch(&vec![good(); 5], &limits).unwrap().len(), 5);
        assert_eq!(
            violations(validate_batch(&vec![good(); 6], &limits)),
            vec![(
                "requests".to_owned(),
                "6 requests, over the limit of 5 per batch".to_owned()
            )]
        );
        assert_eq!(
            violations(validate_batch(&[], &limits)),
            vec![(
                "requests".to_owned(),
                "must hold at least one request".to_owned()
            )]
        );
    }

    #[test]
    fn too_many_profile_inputs_is_one_violation() {
        let limits = IntakeLimits {
            max_profile_inputs: 2,
            ..IntakeLimits::default()
        };
        let s = Submission {
            profile_inputs: (0..3).map(|i| (format!("k{i}"), "v".into())).collect(),
            ..good()
        };
        let err = s.validate(&limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument: profile_inputs: 3 entries, over the limit of 2"
        );
    }

    #[test]
    fn hostile_thresholds_versions_and_timeouts_name_their_field() {
        let limits = IntakeLimits::default();
        let cases: [(Submission, &str, &str); 7] = [
            (
                Submission {
                    threshold: Some(("../../etc/passwd".into(), String::new())),
                    ..good()
                },
                "threshold.name",
                "must consist of letters",
            ),
            (
                Submission {
                    threshold: Some(("a".repeat(5000), String::new())),
                    ..good()
                },
                "threshold.name",
                "no more than 128",
            ),
            (
                Submission {
                    threshold: Some((String::new(), String::new())),
                    ..good()
                },
                "threshold",
                "set name or digest",
            ),
            (
                Submission {
                    profile_pin: PinInput::Version("../../1".into()),
                    ..good()
                },
                "profile.version",
                "without '..'",
            ),
            (
                Submission {
                    timeout: Some((-5, 0)),
                    ..good()
                },
                "timeout",
                "must not be negative",
            ),
            (
                Submission {
                    timeout: Some((3601, 0)),
                    ..good()
                },
                "timeout",
                "3601 s is over the limit of 3600 s",
            ),
            (
                Submission {
                    approach: 42,
                    ..good()
                },
                "approach",
                "unknown approach 42",
            ),
        ];
        for (submission, field, text) in cases {
            let got = violations(submission.validate(&limits));
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].0, field, "{got:?}");
            assert!(got[0].1.contains(text), "{got:?} should say {text:?}");
        }
        let v = Submission {
            threshold: Some(("gate".into(), String::new())),
            timeout: Some((0, 0)),
            approach: 3,
            ..good()
        }
        .validate(&limits)
        .unwrap();
        assert_eq!(v.timeout, None, "zero means the fleet default");
        assert_eq!(v.approach, Approach::Debug);
        assert_eq!(
            v.threshold,
            Some(ThresholdRef::Named(ProfileName::new("gate").unwrap()))
        );
    }
}
