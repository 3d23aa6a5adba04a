//! CNCF Distribution notifications (`Authorization` shared secret): what
//! a delivery yields, what it ignores, and every way one is refused.

use scanfleet_registry_events::{IgnoreReason, Limits, RegistryKind};

use super::{
    Case, D_AMD64, D_API, D_ARM64, D_CAPTURED, D_INDEX, D_WEB, DIST_TOKEN, DOCKER_MANIFEST, Expect,
    Headers, OCI_INDEX, OCI_MANIFEST, blob, case, dist, ev, not_push,
};

/// Image pushes, single and multi-arch, normalised to one event per manifest.
pub(crate) fn pushes() -> Vec<Case> {
    use RegistryKind::Distribution;
    vec![
        // Captured from a real Distribution registry (real_distribution.rs).
        case(
            "distribution_single_push.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Outcome(
                vec![dist(
                    "shop/web",
                    D_CAPTURED,
                    Some("1.4.2"),
                    OCI_MANIFEST,
                    "00000000-0000-4000-8000-000000000101",
                )],
                vec![],
            ),
        ),
        case(
            "distribution_multi_arch.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Outcome(
                vec![
                    dist(
                        "shop/web",
                        D_AMD64,
                        None,
                        OCI_MANIFEST,
                        "0f8e6c2a-1111-4c3b-9a1d-000000000003",
                    ),
                    dist(
                        "shop/web",
                        D_ARM64,
                        None,
                        OCI_MANIFEST,
                        "0f8e6c2a-1111-4c3b-9a1d-000000000004",
                    ),
                    dist(
                        "shop/web",
                        D_INDEX,
                        Some("2.0.0"),
                        OCI_INDEX,
                        "0f8e6c2a-1111-4c3b-9a1d-000000000005",
                    ),
                ],
                vec![
                    (
                        "events[0]",
                        blob("application/vnd.oci.image.layer.v1.tar+gzip"),
                    ),
                    (
                        "events[1]",
                        blob("application/vnd.oci.image.config.v1+json"),
                    ),
                ],
            ),
        ),
    ]
}

/// Deliveries whose entries are partly or wholly ignored, each with its reason.
pub(crate) fn ignored_entries() -> Vec<Case> {
    use RegistryKind::Distribution;
    vec![
        // Captured: the layer and config uploads of a real push (Distribution
        // names no media type for a blob), a real client's pull of the
        // manifest and config, and a real delete of the manifest and its tag.
        case(
            "distribution_blob_only.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Outcome(
                vec![],
                vec![
                    ("events[0]", blob("application/octet-stream")),
                    ("events[1]", blob("application/octet-stream")),
                ],
            ),
        ),
        case(
            "distribution_real_pull.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Outcome(
                vec![],
                vec![
                    ("events[0]", not_push("pull")),
                    ("events[1]", not_push("pull")),
                ],
            ),
        ),
        case(
            "distribution_real_delete.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Outcome(
                vec![],
                vec![
                    ("events[0]", not_push("delete")),
                    ("events[1]", not_push("delete")),
                ],
            ),
        ),
        case(
            "distribution_mixed_actions.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Outcome(
                vec![
                    dist(
                        "shop/api",
                        D_API,
                        Some("3.1.0"),
                        DOCKER_MANIFEST,
                        "b0b0b0b0-3333-4000-8000-000000000006",
                    ),
                    ev(
                        Distribution,
                        "mirror.example.com",
                        "shop/web",
                        D_WEB,
                        None,
                        Some(OCI_MANIFEST),
                        "b0b0b0b0-3333-4000-8000-000000000007",
                    ),
                ],
                vec![
                    ("events[0]", not_push("pull")),
                    ("events[1]", not_push("delete")),
                    ("events[2]", not_push("mount")),
                    (
                        "events[3]",
                        IgnoreReason::Artifact {
                            artifact_type: "application/vnd.dev.cosign.artifact.sig.v1+json".into(),
                        },
                    ),
                    (
                        "events[4]",
                        IgnoreReason::NotAnImageManifest {
                            media_type: "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
                                .into(),
                        },
                    ),
                    (
                        "events[6]",
                        IgnoreReason::DuplicateEventId {
                            event_id: "b0b0b0b0-3333-4000-8000-000000000006".into(),
                        },
                    ),
                ],
            ),
        ),
    ]
}

/// Bodies refused: invalid fields, malformed JSON, over the limits, and
/// failed authentication, with the order of those checks.
pub(crate) fn rejections() -> Vec<Case> {
    use RegistryKind::Distribution;
    vec![
        case(
            "distribution_bad_digest.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Error(
                422,
                "events[2].target.digest: sha256 digest has 4 hex characters, expected 64",
            ),
        ),
        case(
            "distribution_bad_repository.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Error(
                422,
                "events[0].target.repository: repository component 1 (\"Shop\"): must start and end \
                 with a lowercase letter or digit",
            ),
        ),
        case(
            "distribution_events_not_array.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Error(422, "events: expected an array, found an object"),
        ),
        case(
            "malformed_truncated.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::ErrorPrefix(400, "body is not valid JSON: EOF while parsing"),
        ),
        case(
            "malformed_not_object.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Error(422, "(body): expected an object, found an array"),
        ),
        Case {
            fixture: "distribution_oversized.json",
            kind: Distribution,
            limits: Limits {
                max_body_bytes: 16 * 1024,
                max_events: 256,
            },
            headers: Headers::Auth(DIST_TOKEN),
            expect: Expect::Error(413, "body is 40501 bytes, over the limit of 16384 bytes"),
        },
        Case {
            fixture: "distribution_oversized.json",
            kind: Distribution,
            limits: Limits {
                max_body_bytes: 1024 * 1024,
                max_events: 32,
            },
            headers: Headers::Auth(DIST_TOKEN),
            expect: Expect::Error(413, "events: 40 entries, over the limit of 32 per delivery"),
        },
        // The size check comes before authentication.
        Case {
            fixture: "distribution_oversized.json",
            kind: Distribution,
            limits: Limits {
                max_body_bytes: 16 * 1024,
                max_events: 256,
            },
            headers: Headers::Nothing,
            expect: Expect::Error(413, "body is 40501 bytes, over the limit of 16384 bytes"),
        },
        case(
            "distribution_single_push.json",
            Distribution,
            Headers::Auth("Bearer dist-token-7f3a9d"),
            Expect::Error(401, "authentication failed: Authorization does not match"),
        ),
        case(
            "distribution_single_push.json",
            Distribution,
            Headers::Nothing,
            Expect::Error(401, "missing authentication: no Authorization header"),
        ),
        // Authentication comes before parsing: garbage from a stranger is 401.
        case(
            "malformed_truncated.json",
            Distribution,
            Headers::Nothing,
            Expect::Error(401, "missing authentication: no Authorization header"),
        ),
    ]
}
