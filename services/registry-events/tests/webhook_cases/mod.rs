//! The table of webhook fixture cases, one module per registry: each case
//! names a committed fixture, the endpoint kind and limits it is delivered
//! to, its headers, and the exact outcome or error expected.

use scanfleet_registry_events::{IgnoreReason, Limits, ManifestDigest, PushEvent, RegistryKind};

mod distribution;
mod ghcr;
mod harbor;

pub(crate) const DIST_TOKEN: &str = "Bearer dist-token-7f3a9c";
pub(crate) const HARBOR_AUTH: &str = "Basic cm9ib3QkY2k6czNjcmV0";
pub(crate) const GHCR_SECRET: &str = "It's a Secret to Everybody";

pub(crate) const D_INDEX: &str =
    "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6";
pub(crate) const D_AMD64: &str =
    "sha256:5861314d7fccb39c2192173240eab44fa35ca66426201ca2acd0630a6258dd51";
pub(crate) const D_ARM64: &str =
    "sha256:f69162950f235e3cdbbad33f1f912d1a504be90d8a37d002c735d6f3e3882265";
/// The captured manifest's stand-in digest: SHA-256 of "captured manifest"
/// (real_distribution.rs).
pub(crate) const D_CAPTURED: &str =
    "sha256:fe147c947ee7eb9ddc22b1367a06ae79dbdce08ec2d9113550c21bd68c7405ed";
pub(crate) const D_WEB: &str =
    "sha256:4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2";
pub(crate) const D_API: &str =
    "sha256:14c2529eb4498c5d1ffd6915d05bf58a91bdda796af59f41d480d11c099d0479";
pub(crate) const D_HARBOR1: &str =
    "sha256:21aa66f9707f1ac88e177e04940b5e8675c9f51fca05d84440820cf3d84df5ab";
pub(crate) const D_HARBOR2: &str =
    "sha256:878235d38b1cb83447931b5849d84d48931b393019fdfc855a2f8d33c9763b3c";
pub(crate) const D_GHCR: &str =
    "sha256:10bc4eece5c5911685770f3c29aac28a7dcc13018f47d7d9715839720966454a";

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub(crate) enum Headers {
    /// `Authorization: <value>`.
    Auth(&'static str),
    /// No headers at all.
    Nothing,
    /// The fixture's `.headers` file.
    File(&'static str),
    /// The fixture's `.headers` file with one header replaced (or removed
    /// when the value is `None`).
    FileWith(&'static str, &'static str, Option<&'static str>),
}

pub(crate) enum Expect {
    Outcome(Vec<PushEvent>, Vec<(&'static str, IgnoreReason)>),
    Error(u16, &'static str),
    /// Status plus a message prefix, for messages that embed parser detail.
    ErrorPrefix(u16, &'static str),
}

pub(crate) struct Case {
    pub(crate) fixture: &'static str,
    pub(crate) kind: RegistryKind,
    pub(crate) limits: Limits,
    pub(crate) headers: Headers,
    pub(crate) expect: Expect,
}

pub(crate) fn ev(
    source: RegistryKind,
    registry: &str,
    repository: &str,
    digest: &str,
    tag: Option<&str>,
    media_type: Option<&str>,
    event_id: &str,
) -> PushEvent {
    PushEvent {
        registry: registry.into(),
        repository: repository.into(),
        digest: ManifestDigest::parse(digest).expect("test digest"),
        tag: tag.map(Into::into),
        media_type: media_type.map(Into::into),
        source,
        event_id: event_id.into(),
    }
}

pub(crate) fn dist(repo: &str, digest: &str, tag: Option<&str>, mt: &str, id: &str) -> PushEvent {
    ev(
        RegistryKind::Distribution,
        "registry.local:5000",
        repo,
        digest,
        tag,
        Some(mt),
        id,
    )
}

pub(crate) fn blob(media_type: &str) -> IgnoreReason {
    IgnoreReason::BlobPush {
        media_type: media_type.into(),
    }
}

pub(crate) fn not_push(action: &str) -> IgnoreReason {
    IgnoreReason::NotAPush {
        action: action.into(),
    }
}

/// A case with the default limits.
fn case(fixture: &'static str, kind: RegistryKind, headers: Headers, expect: Expect) -> Case {
    Case {
        fixture,
        kind,
        limits: Limits::default(),
        headers,
        expect,
    }
}

/// Every case, in the order the test numbers them.
pub(crate) fn cases() -> Vec<Case> {
    [
        distribution::pushes(),
        distribution::ignored_entries(),
        distribution::rejections(),
        harbor::default_format(),
        harbor::cloudevents(),
        ghcr::deliveries(),
        ghcr::rejections(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
