//! A scan intent as the domain sees it: one container (or one image by
//! digest), one pinned profile, who asked and until when.
//!
//! Intake builds one (from an API call, a registry push or a schedule fire)
//! and the worker receives one; both sides hold this type, never the wire
//! struct, so a rule about what an intent may contain lives in exactly one
//! place. [`crate::intent_wire`] is the only code that converts it to and
//! from `scanfleet.v1.ScanIntent`, and it re-validates every field on the
//! way in: the bus is not trusted to carry only what intake sent.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use crate::image_digest::ImageDigest;
use crate::image_target::ImageTarget;
use crate::k8s_names::ClusterName;
use crate::priority::{Priority, TriggerKind};
use crate::profile::{ProfileName, ProfileRef};
use crate::scan_id::ScanId;
use crate::target::ContainerRef;

/// How the worker reaches the container (image scans ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Approach {
    /// Sidecar if there is one, else exec if the container has a shell,
    /// else an ephemeral debug container when policy allows.
    #[default]
    Auto,
    /// Exec the scan script with the container's own `/bin/sh`.
    Exec,
    /// An ephemeral debug container reads the target's `/proc/1/root`.
    Debug,
    /// The pod's scanner sidecar reads `/proc/<pid>/root`.
    Sidecar,
}

impl std::str::FromStr for Approach {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Approach::Auto),
            "exec" => Ok(Approach::Exec),
            "debug" => Ok(Approach::Debug),
            "sidecar" => Ok(Approach::Sidecar),
            other => Err(format!(
                "unknown approach {other:?} (expected auto, exec, debug or sidecar)"
            )),
        }
    }
}

impl Approach {
    /// The lowercase name used in intents, statements, HDF and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Approach::Auto => "auto",
            Approach::Exec => "exec",
            Approach::Debug => "debug",
            Approach::Sidecar => "sidecar",
        }
    }
}

impl fmt::Display for Approach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A threshold file name: the same plain-name rule as profile names,
/// because it becomes a file name (`<name>.yml`) in the worker's threshold
/// directory and must never be a path.
pub type ThresholdName = ProfileName;

/// Which SAF threshold gates the result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThresholdRef {
    /// A named threshold file the worker holds.
    Named(ThresholdName),
    /// A threshold by content digest (reserved: workers hold named files).
    Digest(ImageDigest),
}

/// The image the container runs, as far as intake knew it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ImageSpec {
    /// The reference from the pod spec or the push (may be empty).
    pub reference: String,
    /// The manifest digest, when known.
    pub digest: Option<ImageDigest>,
}

/// What one intent scans.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntentTarget {
    /// A running container in the intent's cluster, reached through a
    /// secure scan session.
    Container(ContainerRef),
    /// An image pulled from its registry by digest and scanned unpacked,
    /// before (or without) any pod running it.
    Image(ImageTarget),
}

impl IntentTarget {
    /// The container, for a container scan.
    pub fn container(&self) -> Option<&ContainerRef> {
        match self {
            IntentTarget::Container(c) => Some(c),
            IntentTarget::Image(_) => None,
        }
    }

    /// The image, for an image scan.
    pub fn image(&self) -> Option<&ImageTarget> {
        match self {
            IntentTarget::Container(_) => None,
            IntentTarget::Image(i) => Some(i),
        }
    }
}

impl fmt::Display for IntentTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntentTarget::Container(c) => c.fmt(f),
            IntentTarget::Image(i) => i.fmt(f),
        }
    }
}

impl From<ContainerRef> for IntentTarget {
    fn from(c: ContainerRef) -> Self {
        IntentTarget::Container(c)
    }
}

/// Why the scan was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// An authenticated API caller.
    Api {
        /// Who asked (empty when the caller was anonymous).
        principal: String,
    },
    /// A registry push.
    RegistryPush {
        /// Registry host.
        registry: String,
        /// Repository path.
        repository: String,
        /// The pushed manifest digest.
        digest: String,
        /// The pushed tag, if any.
        tag: String,
    },
    /// A periodic schedule fired.
    Schedule {
        /// The schedule's name.
        name: String,
    },
}

impl Trigger {
    /// The kind, for priority and coalescing.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Trigger::Api { .. } => TriggerKind::Api,
            Trigger::RegistryPush { .. } => TriggerKind::RegistryPush,
            Trigger::Schedule { .. } => TriggerKind::Schedule,
        }
    }
}

/// One unit of scan work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The scan's id, also its message id and status key.
    pub id: ScanId,
    /// The cluster the container runs in; for an image scan, the cluster
    /// whose workers take it.
    pub cluster: ClusterName,
    /// The container or image to scan.
    pub target: IntentTarget,
    /// The container's image, as far as known when queued; for an image
    /// scan, the image itself (reference and digest).
    pub image: ImageSpec,
    /// The pinned profile.
    pub profile: ProfileRef,
    /// Profile input overrides (validated by intake against the profile).
    pub inputs: BTreeMap<String, String>,
    /// How to reach the container.
    pub approach: Approach,
    /// The threshold that gates the result, if any.
    pub threshold: Option<ThresholdRef>,
    /// Why it was asked for.
    pub trigger: Trigger,
    /// When intake accepted it.
    pub requested_at: SystemTime,
    /// When the scan must be finished; a worker that picks it up later
    /// does not start it. `None` (an intent from a producer that set none)
    /// leaves the time budget to the worker's default.
    pub deadline: Option<SystemTime>,
}

impl Intent {
    /// The queue class, from the trigger.
    pub fn priority(&self) -> Priority {
        self.trigger.kind().priority()
    }

    /// The principal who asked, for API-triggered scans.
    pub fn principal(&self) -> Option<&str> {
        match &self.trigger {
            Trigger::Api { principal } if !principal.is_empty() => Some(principal),
            _ => None,
        }
    }
}
