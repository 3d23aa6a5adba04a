//! The normalised result of a delivery.

use std::fmt;

use crate::ManifestDigest;

/// Which registry family sent the delivery. The HTTP layer knows this from
/// the route it received the request on; it decides the payload shape and
/// the authentication scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistryKind {
    /// CNCF Distribution (docker registry) notifications, also ACR.
    Distribution,
    /// Harbor, default or CloudEvents payload format.
    Harbor,
    /// GitHub Packages / GHCR `package` and `registry_package` events.
    Ghcr,
}

impl fmt::Display for RegistryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Distribution => "distribution",
            Self::Harbor => "harbor",
            Self::Ghcr => "ghcr",
        })
    }
}

/// One pushed image manifest (or index) that is worth scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    /// Registry host as clients address it, e.g. `ghcr.io` or
    /// `registry.local:5000`; this is what pod image references start with.
    pub registry: String,
    /// Repository path inside the registry, e.g. `shop/web`.
    pub repository: String,
    /// The pushed manifest's digest; pods are matched on this.
    pub digest: ManifestDigest,
    /// The tag pushed with it, when the registry names one. Never the digest
    /// (Harbor reports the digest as the "tag" of untagged pushes).
    pub tag: Option<String>,
    /// The manifest media type, when the payload carries it (Harbor's does
    /// not).
    pub media_type: Option<String>,
    /// The registry family that sent it.
    pub source: RegistryKind,
    /// A stable id for this event across redeliveries of the same
    /// notification, for `Nats-Msg-Id` dedupe: the registry's own event id
    /// where it has one, else a hash of the fields that identify the push.
    pub event_id: String,
}

impl PushEvent {
    /// `registry/repository@digest`, the pinned reference a pod spec or a
    /// puller would use.
    pub fn pinned_reference(&self) -> String {
        format!("{}/{}@{}", self.registry, self.repository, self.digest)
    }
}

/// Why an event in a delivery was skipped. Registries send all of these
/// legitimately, so they are answered with 2xx, counted, and not retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// A layer or config blob upload (Distribution reports these as pushes).
    BlobPush {
        /// The blob's media type.
        media_type: String,
    },
    /// A pushed manifest type that does not describe a runnable image.
    NotAnImageManifest {
        /// The reported media type.
        media_type: String,
    },
    /// An OCI artifact (signature, SBOM, attestation...) stored as a manifest.
    Artifact {
        /// The reported `artifactType`.
        artifact_type: String,
    },
    /// Not a push: pull, delete, mount, scan results, quota...
    NotAPush {
        /// The action or event type as the registry spelled it.
        action: String,
    },
    /// A GitHub package that is not a container image (npm, maven...).
    NotAContainerPackage {
        /// The reported `package_type`.
        package_type: String,
    },
    /// The same event id appeared earlier in the same body.
    DuplicateEventId {
        /// The repeated id.
        event_id: String,
    },
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BlobPush { media_type } => write!(f, "blob push ({media_type})"),
            Self::NotAnImageManifest { media_type } => {
                write!(
                    f,
                    "media type {media_type} is not an image manifest or index"
                )
            }
            Self::Artifact { artifact_type } => {
                write!(f, "artifact manifest of type {artifact_type}, not an image")
            }
            Self::NotAPush { action } => write!(f, "{action} is not a push"),
            Self::NotAContainerPackage { package_type } => {
                write!(f, "package type {package_type} is not a container image")
            }
            Self::DuplicateEventId { event_id } => {
                write!(
                    f,
                    "event id {event_id} repeats an earlier event in this body"
                )
            }
        }
    }
}

/// An event that was recognised and deliberately skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredEvent {
    /// Where in the body, e.g. `events[1]`; empty for the whole body.
    pub path: String,
    /// Why it was skipped.
    pub reason: IgnoreReason,
}

/// Everything one delivery said: pushes to act on and what was skipped.
/// Both empty is possible (e.g. a GitHub `ping`), and still a success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookOutcome {
    /// Manifest pushes, in body order.
    pub events: Vec<PushEvent>,
    /// Skipped events, in body order.
    pub ignored: Vec<IgnoredEvent>,
}

impl WebhookOutcome {
    pub(crate) fn ignore(&mut self, path: impl Into<String>, reason: IgnoreReason) {
        self.ignored.push(IgnoredEvent {
            path: path.into(),
            reason,
        });
    }
}
