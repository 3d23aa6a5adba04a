//! GitHub Container Registry package webhooks, signed with
//! `X-Hub-Signature-256` over the body; headers come from `.headers` files.

use scanfleet_registry_events::{IgnoreReason, RegistryKind};

use super::{Case, D_GHCR, D_INDEX, Expect, Headers, OCI_INDEX, case, ev, not_push};

/// Package events: published container versions yield events, the rest are
/// ignored with their reason.
pub(crate) fn deliveries() -> Vec<Case> {
    use RegistryKind::Ghcr;
    vec![
        case(
            "ghcr_registry_package_published.json",
            Ghcr,
            Headers::File("ghcr_registry_package_published.headers"),
            Expect::Outcome(
                vec![ev(
                    Ghcr,
                    "ghcr.io",
                    "shop-org/web",
                    D_GHCR,
                    Some("v1.5.0"),
                    Some(OCI_INDEX),
                    "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                )],
                vec![],
            ),
        ),
        case(
            "ghcr_package_published.json",
            Ghcr,
            Headers::File("ghcr_package_published.headers"),
            Expect::Outcome(
                vec![ev(
                    Ghcr,
                    "ghcr.io",
                    "shop-org/web",
                    D_INDEX,
                    None,
                    Some(OCI_INDEX),
                    "9a0b1c2d-cc78-11e3-81ab-4c9367dc0958",
                )],
                vec![],
            ),
        ),
        case(
            "ghcr_package_updated.json",
            Ghcr,
            Headers::File("ghcr_package_updated.headers"),
            Expect::Outcome(vec![], vec![("", not_push("package updated"))]),
        ),
        case(
            "ghcr_npm_package.json",
            Ghcr,
            Headers::File("ghcr_npm_package.headers"),
            Expect::Outcome(
                vec![],
                vec![(
                    "registry_package",
                    IgnoreReason::NotAContainerPackage {
                        package_type: "npm".into(),
                    },
                )],
            ),
        ),
        case(
            "ghcr_ping.json",
            Ghcr,
            Headers::File("ghcr_ping.headers"),
            Expect::Outcome(vec![], vec![("", not_push("GitHub event ping"))]),
        ),
    ]
}

/// Deliveries refused: bad or missing signatures, missing delivery id, an
/// invalid digest.
pub(crate) fn rejections() -> Vec<Case> {
    use RegistryKind::Ghcr;
    vec![
        case(
            "ghcr_wrong_secret.json",
            Ghcr,
            Headers::File("ghcr_wrong_secret.headers"),
            Expect::Error(
                401,
                "authentication failed: X-Hub-Signature-256 does not match the body",
            ),
        ),
        case(
            "ghcr_tampered.json",
            Ghcr,
            Headers::File("ghcr_tampered.headers"),
            Expect::Error(
                401,
                "authentication failed: X-Hub-Signature-256 does not match the body",
            ),
        ),
        case(
            "ghcr_registry_package_published.json",
            Ghcr,
            Headers::FileWith(
                "ghcr_registry_package_published.headers",
                "X-Hub-Signature-256",
                None,
            ),
            Expect::Error(401, "missing authentication: no X-Hub-Signature-256 header"),
        ),
        case(
            "ghcr_registry_package_published.json",
            Ghcr,
            Headers::FileWith(
                "ghcr_registry_package_published.headers",
                "X-Hub-Signature-256",
                Some("sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
            ),
            Expect::Error(
                401,
                "authentication failed: X-Hub-Signature-256 does not start with \"sha256=\"",
            ),
        ),
        case(
            "ghcr_registry_package_published.json",
            Ghcr,
            Headers::FileWith(
                "ghcr_registry_package_published.headers",
                "X-Hub-Signature-256",
                Some("sha256=zz"),
            ),
            Expect::Error(
                401,
                "authentication failed: X-Hub-Signature-256 is not 64 hex characters after \"sha256=\"",
            ),
        ),
        case(
            "ghcr_registry_package_published.json",
            Ghcr,
            Headers::FileWith(
                "ghcr_registry_package_published.headers",
                "X-GitHub-Delivery",
                None,
            ),
            Expect::Error(400, "header X-GitHub-Delivery: is missing"),
        ),
        case(
            "ghcr_bad_digest.json",
            Ghcr,
            Headers::File("ghcr_bad_digest.headers"),
            Expect::Error(
                422,
                "registry_package.package_version.container_metadata.manifest.digest: sha256 digest \
                 has 3 hex characters, expected 64",
            ),
        ),
    ]
}
