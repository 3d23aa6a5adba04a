//! The one conversion between [`Intent`] and the wire's
//! `scanfleet.v1.ScanIntent`.
//!
//! Encoding is total. Decoding re-checks every field with the same rules
//! intake applied ([`ContainerRef`] names, [`ProfileName`], pins, threshold
//! names, digests), and reports every broken rule by proto field path at
//! once: an intent is untrusted when it comes off the bus, and a worker
//! must never act on a field it would not have accepted from a caller.
//!
//! This is the only module of the crate that knows the wire types; the rest
//! of the domain stays free of them.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use scanfleet_contracts::v1;

use crate::image_digest::ImageDigest;
use crate::image_target::{ImageTarget, ImageTargetError};
use crate::intent::{Approach, ImageSpec, Intent, IntentTarget, ThresholdRef, Trigger};
use crate::k8s_names::{ClusterName, ContainerName, NamespaceName, PodName};
use crate::priority::Priority;
use crate::profile::{ProfileName, ProfilePin, ProfileRef};
use crate::scan_id::ScanId;
use crate::submission::{FieldViolation, InvalidArgument};
use crate::target::ContainerRef;

/// The longest encoded intent a worker decodes; intake's own limits keep
/// real intents far below it.
pub const MAX_INTENT_BYTES: usize = 256 * 1024;

/// The wire form of an intent.
pub fn to_wire(intent: &Intent) -> v1::ScanIntent {
    let (namespace, pod, container, registry_image) = match &intent.target {
        IntentTarget::Container(c) => (
            c.namespace.as_str().into(),
            c.pod.as_str().into(),
            c.container.as_str().into(),
            None,
        ),
        IntentTarget::Image(i) => (
            String::new(),
            String::new(),
            String::new(),
            Some(v1::RegistryImage {
                registry: i.registry().into(),
                repository: i.repository().into(),
                digest: i.digest().as_str().into(),
            }),
        ),
    };
    v1::ScanIntent {
        id: intent.id.to_string(),
        target: Some(v1::ScanTarget {
            cluster: intent.cluster.as_str().into(),
            namespace,
            pod,
            container,
            registry_image,
            image: Some(v1::ImageRef {
                reference: intent.image.reference.clone(),
                digest: intent
                    .image
                    .digest
                    .as_ref()
                    .map(|d| d.as_str().to_owned())
                    .unwrap_or_default(),
            }),
        }),
        profile: Some(profile_to_wire(&intent.profile)),
        approach: approach_to_wire(intent.approach) as i32,
        threshold: intent.threshold.as_ref().map(|t| match t {
            ThresholdRef::Named(n) => v1::ThresholdRef {
                name: n.as_str().into(),
                digest: String::new(),
            },
            ThresholdRef::Digest(d) => v1::ThresholdRef {
                name: String::new(),
                digest: d.as_str().into(),
            },
        }),
        priority: match intent.priority() {
            Priority::High => v1::Priority::High,
            Priority::Low => v1::Priority::Low,
        } as i32,
        trigger: Some(v1::Trigger {
            source: Some(trigger_to_wire(&intent.trigger)),
        }),
        requested_at: Some(timestamp(intent.requested_at)),
        deadline: intent.deadline.map(timestamp),
        profile_inputs: intent.inputs.clone().into_iter().collect(),
    }
}

/// The intent's bytes on the bus.
pub fn encode(intent: &Intent) -> Vec<u8> {
    to_wire(intent).encode_to_vec()
}

/// Decodes and validates an intent from the bus.
///
/// # Errors
/// [`InvalidArgument`] listing every broken rule by proto field path.
pub fn decode(bytes: &[u8]) -> Result<Intent, InvalidArgument> {
    if bytes.len() > MAX_INTENT_BYTES {
        return Err(one(
            "",
            format!(
                "intent is {} bytes, over the limit of {MAX_INTENT_BYTES}",
                bytes.len()
            ),
        ));
    }
    let wire = v1::ScanIntent::decode(bytes)
        .map_err(|e| one("", format!("not a scanfleet.v1.ScanIntent: {e}")))?;
    from_wire(&wire)
}

/// Validates a wire intent.
///
/// # Errors
/// [`InvalidArgument`] listing every broken rule by proto field path.
pub fn from_wire(wire: &v1::ScanIntent) -> Result<Intent, InvalidArgument> {
    let mut v = Violations::default();
    let id = v.check("id", ScanId::parse(&wire.id));
    let (cluster, target, image) = match &wire.target {
        None => {
            v.add("target", "is required");
            (None, None, None)
        }
        Some(t) => target_from_wire(t, &mut v),
    };
    let profile = match &wire.profile {
        None => {
            v.add("profile", "is required");
            None
        }
        Some(p) => profile_from_wire(p, &mut v),
    };
    let approach = approach_from_wire(wire.approach, &mut v);
    let threshold = wire
        .threshold
        .as_ref()
        .and_then(|t| threshold_from_wire(t, &mut v));
    let trigger = trigger_from_wire(wire.trigger.as_ref(), &mut v);
    let requested_at = v.time("requested_at", wire.requested_at.as_ref());
    let deadline = match wire.deadline.as_ref() {
        None => Some(None),
        Some(t) => v.time("deadline", Some(t)).map(Some),
    };
    if !v.0.is_empty() {
        return Err(InvalidArgument { violations: v.0 });
    }
    // Every `None` above added a violation, so all are `Some` here.
    match (
        id,
        cluster,
        target,
        image,
        profile,
        approach,
        trigger,
        requested_at,
        deadline,
    ) {
        (
            Some(id),
            Some(cluster),
            Some(target),
            Some(image),
            Some(profile),
            Some(approach),
            Some(trigger),
            Some(requested_at),
            Some(deadline),
        ) => Ok(Intent {
            id,
            cluster,
            target,
            image,
            profile,
            inputs: wire
                .profile_inputs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            approach,
            threshold: threshold.flatten(),
            trigger,
            requested_at,
            deadline,
        }),
        _ => Err(one("", "incomplete intent")),
    }
}

/// The wire form of a profile reference (also used by clients).
pub fn profile_to_wire(profile: &ProfileRef) -> v1::ProfileRef {
    v1::ProfileRef {
        name: profile.name.as_str().into(),
        pin: Some(match &profile.pin {
            ProfilePin::Version(v) => v1::profile_ref::Pin::Version(v.clone()),
            ProfilePin::Digest(d) => v1::profile_ref::Pin::Digest(d.as_str().into()),
        }),
    }
}

/// The wire value of an approach.
pub fn approach_to_wire(approach: Approach) -> v1::Approach {
    match approach {
        Approach::Auto => v1::Approach::Auto,
        Approach::Exec => v1::Approach::Exec,
        Approach::Debug => v1::Approach::Debug,
        Approach::Sidecar => v1::Approach::Sidecar,
    }
}

/// The approach a wire value names; unspecified means auto. `None` for a
/// value no version of the proto defines.
pub fn approach_from_wire_value(value: i32) -> Option<Approach> {
    Some(match v1::Approach::try_from(value).ok()? {
        v1::Approach::Unspecified | v1::Approach::Auto => Approach::Auto,
        v1::Approach::Exec => Approach::Exec,
        v1::Approach::Debug => Approach::Debug,
        v1::Approach::Sidecar => Approach::Sidecar,
    })
}

fn trigger_to_wire(trigger: &Trigger) -> v1::trigger::Source {
    match trigger {
        Trigger::Api { principal } => v1::trigger::Source::Api(v1::ApiTrigger {
            principal: principal.clone(),
        }),
        Trigger::RegistryPush {
            registry,
            repository,
            digest,
            tag,
        } => v1::trigger::Source::RegistryPush(v1::RegistryPushTrigger {
            registry: registry.clone(),
            repository: repository.clone(),
            digest: digest.clone(),
            tag: tag.clone(),
        }),
        Trigger::Schedule { name } => v1::trigger::Source::Schedule(v1::ScheduleTrigger {
            schedule_name: name.clone(),
        }),
    }
}

type TargetParts = (Option<ClusterName>, Option<IntentTarget>, Option<ImageSpec>);

fn target_from_wire(t: &v1::ScanTarget, v: &mut Violations) -> TargetParts {
    let cluster = v.check("target.cluster", ClusterName::new(&t.cluster));
    if let Some(image) = &t.registry_image {
        let (target, spec) = image_target_from_wire(t, image, v);
        return (cluster, target, spec);
    }
    let namespace = v.check("target.namespace", NamespaceName::new(&t.namespace));
    let pod = v.check("target.pod", PodName::new(&t.pod));
    let container = v.check("target.container", ContainerName::new(&t.container));
    let image = match &t.image {
        None => Some(ImageSpec::default()),
        Some(i) if i.digest.is_empty() => Some(ImageSpec {
            reference: i.reference.clone(),
            digest: None,
        }),
        Some(i) => v
            .check("target.image.digest", ImageDigest::parse(&i.digest))
            .map(|d| ImageSpec {
                reference: i.reference.clone(),
                digest: Some(d),
            }),
    };
    let target = match (namespace, pod, container) {
        (Some(namespace), Some(pod), Some(container)) => {
            Some(IntentTarget::Container(ContainerRef {
                namespace,
                pod,
                container,
            }))
        }
        _ => None,
    };
    (cluster, target, image)
}

/// An image target: the registry image's parts by the reference grammar,
/// no container names beside it, and an image spec that agrees with it
/// (filled from it when the producer left it empty).
fn image_target_from_wire(
    t: &v1::ScanTarget,
    image: &v1::RegistryImage,
    v: &mut Violations,
) -> (Option<IntentTarget>, Option<ImageSpec>) {
    for (field, value) in [
        ("target.namespace", &t.namespace),
        ("target.pod", &t.pod),
        ("target.container", &t.container),
    ] {
        if !value.is_empty() {
            v.add(
                field,
                "must be empty for an image scan (target.registry_image is set)",
            );
        }
    }
    let target = match ImageTarget::new(&image.registry, &image.repository, &image.digest) {
        Ok(target) => target,
        Err(e) => {
            let field = match e {
                ImageTargetError::Registry(_) => "target.registry_image.registry",
                ImageTargetError::Repository(_) => "target.registry_image.repository",
                _ => "target.registry_image.digest",
            };
            v.add(field, e.to_string());
            return (None, None);
        }
    };
    let spec = t.image.clone().unwrap_or_default();
    if !spec.digest.is_empty() && spec.digest != target.digest().as_str() {
        v.add(
            "target.image.digest",
            format!(
                "is {:?} but target.registry_image.digest is {:?}",
                spec.digest,
                target.digest().as_str()
            ),
        );
        return (None, None);
    }
    let spec = ImageSpec {
        reference: if spec.reference.is_empty() {
            target.reference()
        } else {
            spec.reference
        },
        digest: Some(target.digest().clone()),
    };
    (Some(IntentTarget::Image(target)), Some(spec))
}

fn profile_from_wire(p: &v1::ProfileRef, v: &mut Violations) -> Option<ProfileRef> {
    let name = v.check("profile.name", ProfileName::new(&p.name));
    let pin = match &p.pin {
        None => {
            v.add(
                "profile",
                "one of profile.version or profile.digest is required",
            );
            None
        }
        Some(v1::profile_ref::Pin::Version(s)) => {
            v.check("profile.version", ProfilePin::version(s))
        }
        Some(v1::profile_ref::Pin::Digest(d)) => v
            .check("profile.digest", ImageDigest::parse(d))
            .map(ProfilePin::Digest),
    };
    Some(ProfileRef {
        name: name?,
        pin: pin?,
    })
}

fn approach_from_wire(value: i32, v: &mut Violations) -> Option<Approach> {
    let approach = approach_from_wire_value(value);
    if approach.is_none() {
        v.add("approach", format!("unknown approach {value}"));
    }
    approach
}

/// `Some(None)`: no threshold; `None`: a violation was recorded.
fn threshold_from_wire(t: &v1::ThresholdRef, v: &mut Violations) -> Option<Option<ThresholdRef>> {
    match (t.name.is_empty(), t.digest.is_empty()) {
        (true, true) => Some(None),
        (false, true) => v
            .check("threshold.name", ProfileName::new(&t.name))
            .map(|n| Some(ThresholdRef::Named(n))),
        (true, false) => v
            .check("threshold.digest", ImageDigest::parse(&t.digest))
            .map(|d| Some(ThresholdRef::Digest(d))),
        (false, false) => {
            v.add("threshold", "set name or digest, not both");
            None
        }
    }
}

fn trigger_from_wire(t: Option<&v1::Trigger>, v: &mut Violations) -> Option<Trigger> {
    let Some(source) = t.and_then(|t| t.source.as_ref()) else {
        v.add("trigger", "is required");
        return None;
    };
    Some(match source {
        v1::trigger::Source::Api(a) => Trigger::Api {
            principal: a.principal.clone(),
        },
        v1::trigger::Source::RegistryPush(p) => Trigger::RegistryPush {
            registry: p.registry.clone(),
            repository: p.repository.clone(),
            digest: p.digest.clone(),
            tag: p.tag.clone(),
        },
        v1::trigger::Source::Schedule(s) => Trigger::Schedule {
            name: s.schedule_name.clone(),
        },
    })
}

/// A point in time as a protobuf timestamp.
pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn from_timestamp(t: &prost_types::Timestamp) -> Option<SystemTime> {
    let seconds = u64::try_from(t.seconds).ok()?;
    let nanos = u32::try_from(t.nanos).ok().filter(|n| *n < 1_000_000_000)?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

fn one(field: &str, description: impl Into<String>) -> InvalidArgument {
    InvalidArgument {
        violations: vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }],
    }
}

#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn add(&mut self, field: &str, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    fn check<T, E: std::fmt::Display>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        r.map_err(|e| self.add(field, e.to_string())).ok()
    }

    fn time(&mut self, field: &str, t: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
        match t.map(from_timestamp) {
            None => {
                self.add(field, "is required");
                None
            }
            Some(None) => {
                self.add(field, "is not a valid time after 1970");
                None
            }
            Some(t) => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Intent {
        Intent {
            id: ScanId::parse("01JDQ3W7T8ZK5V9X2M4N6P8R0S").unwrap(),
            cluster: ClusterName::new("kubesim").unwrap(),
            target: ContainerRef::parse_uri("k8s://apps/web-0/app")
                .unwrap()
                .into(),
            image: ImageSpec {
                reference: "shop/web:1".into(),
                digest: Some(ImageDigest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap()),
            },
            profile: ProfileRef {
                name: ProfileName::new("container-baseline").unwrap(),
                pin: ProfilePin::version("1.0.0").unwrap(),
            },
            inputs: [("max_uid".to_owned(), "1000".to_owned())].into(),
            approach: Approach::Exec,
            threshold: Some(ThresholdRef::Named(ProfileName::new("gate").unwrap())),
            trigger: Trigger::Api {
                principal: "system:serviceaccount:ci:deployer".into(),
            },
            requested_at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            deadline: Some(UNIX_EPOCH + Duration::from_secs(1_800_000_600)),
        }
    }

    #[test]
    fn an_intent_survives_the_wire_unchanged() {
        let intent = sample();
        assert_eq!(decode(&encode(&intent)).unwrap(), intent);
        let schedule = Intent {
            trigger: Trigger::Schedule {
                name: "nightly".into(),
            },
            threshold: None,
            approach: Approach::Auto,
            ..sample()
        };
        let wire = to_wire(&schedule);
        assert_eq!(wire.priority, v1::Priority::Low as i32);
        assert_eq!(from_wire(&wire).unwrap(), schedule);
    }

    #[test]
    fn every_broken_rule_is_named_by_field() {
        let mut wire = to_wire(&sample());
        wire.id = "not-a-ulid".into();
        wire.target.as_mut().unwrap().pod = "../etc".into();
        wire.profile.as_mut().unwrap().pin = Some(v1::profile_ref::Pin::Version("../../1".into()));
        wire.threshold = Some(v1::ThresholdRef {
            name: "../../etc/passwd".into(),
            digest: String::new(),
        });
        wire.approach = 99;
        wire.requested_at = None;
        let fields: Vec<String> = from_wire(&wire)
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "id",
                "target.pod",
                "profile.version",
                "approach",
                "threshold.name",
                "requested_at"
            ]
        );
    }

    fn image_sample() -> Intent {
        let target = ImageTarget::parse_uri(&format!(
            "oci://registry.local:5000/shop/web@sha256:{}",
            "cd".repeat(32)
        ))
        .unwrap();
        Intent {
            image: ImageSpec {
                reference: target.reference(),
                digest: Some(target.digest().clone()),
            },
            target: IntentTarget::Image(target),
            ..sample()
        }
    }

    #[test]
    fn an_image_intent_survives_the_wire_and_says_so() {
        let intent = image_sample();
        let wire = to_wire(&intent);
        let t = wire.target.as_ref().unwrap();
        assert!(t.namespace.is_empty() && t.pod.is_empty() && t.container.is_empty());
        assert_eq!(t.registry_image.as_ref().unwrap().repository, "shop/web");
        assert_eq!(decode(&encode(&intent)).unwrap(), intent);
        let mut bare = wire.clone();
        bare.target.as_mut().unwrap().image = None;
        assert_eq!(
            from_wire(&bare).unwrap().image,
            intent.image,
            "an image spec left out is the image itself"
        );
    }

    #[test]
    fn an_image_intent_with_container_names_or_bad_parts_is_refused_by_field() {
        let mut wire = to_wire(&image_sample());
        let t = wire.target.as_mut().unwrap();
        t.pod = "web-0".into();
        t.image.as_mut().unwrap().digest = format!("sha256:{}", "ef".repeat(32));
        let fields: Vec<String> = from_wire(&wire)
            .unwrap_err()
            .violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["target.pod", "target.image.digest"]);
        let mut wire = to_wire(&image_sample());
        wire.target
            .as_mut()
            .unwrap()
            .registry_image
            .as_mut()
            .unwrap()
            .repository = "../x".into();
        let err = from_wire(&wire).unwrap_err();
        assert_eq!(err.violations[0].field, "target.registry_image.repository");
    }

    #[test]
    fn a_container_intent_from_before_image_targets_still_decodes() {
        let mut wire = to_wire(&sample());
        wire.target.as_mut().unwrap().registry_image = None;
        let old = wire.encode_to_vec();
        assert_eq!(decode(&old).unwrap(), sample());
    }

    #[test]
    fn garbage_and_oversized_bytes_are_refused_not_decoded() {
        assert!(decode(b"\xff\xff\xff").is_err());
        let big = vec![0u8; MAX_INTENT_BYTES + 1];
        let err = decode(&big).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
        assert!(decode(&[]).is_err(), "an empty message is not an intent");
    }
}
