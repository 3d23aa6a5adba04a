//! Every committed fixture through a configured endpoint, asserting the
//! exact normalised events, ignored events, or the exact error and status.

use std::path::PathBuf;

use scanfleet_registry_events::{
    Endpoint, IgnoreReason, Limits, ManifestDigest, PushEvent, RegistryKind, SharedSecretAuth,
    WebhookError, WebhookOutcome, WebhookRequest, WebhookSecret,
};

const DIST_TOKEN: &str = "Bearer dist-token-7f3a9c";
const HARBOR_AUTH: &str = "Basic cm9ib3QkY2k6czNjcmV0";
const GHCR_SECRET: &str = "It's a Secret to Everybody";

const D_INDEX: &str = "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6";
const D_AMD64: &str = "sha256:5861314d7fccb39c2192173240eab44fa35ca66426201ca2acd0630a6258dd51";
const D_ARM64: &str = "sha256:f69162950f235e3cdbbad33f1f912d1a504be90d8a37d002c735d6f3e3882265";
const D_WEB: &str = "sha256:4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2";
const D_API: &str = "sha256:14c2529eb4498c5d1ffd6915d05bf58a91bdda796af59f41d480d11c099d0479";
const D_HARBOR1: &str = "sha256:21aa66f9707f1ac88e177e04940b5e8675c9f51fca05d84440820cf3d84df5ab";
const D_HARBOR2: &str = "sha256:878235d38b1cb83447931b5849d84d48931b393019fdfc855a2f8d33c9763b3c";
const D_GHCR: &str = "sha256:10bc4eece5c5911685770f3c29aac28a7dcc13018f47d7d9715839720966454a";

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Parses a `.headers` fixture into (name, value) pairs.
fn header_file(name: &str) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8(fixture(name)).expect("headers fixture is UTF-8");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("bad header line {l:?}"));
            (n.to_owned(), v.as_bytes().to_vec())
        })
        .collect()
}

fn endpoint(kind: RegistryKind, limits: Limits) -> Endpoint {
    let secret = |s: &str| WebhookSecret::new(s).expect("non-empty");
    match kind {
        RegistryKind::Distribution => {
            Endpoint::distribution(SharedSecretAuth::authorization(secret(DIST_TOKEN)), limits)
        }
        RegistryKind::Harbor => {
            Endpoint::harbor(SharedSecretAuth::authorization(secret(HARBOR_AUTH)), limits)
        }
        RegistryKind::Ghcr => Endpoint::ghcr(secret(GHCR_SECRET), limits),
    }
}

enum Headers {
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

enum Expect {
    Outcome(Vec<PushEvent>, Vec<(&'static str, IgnoreReason)>),
    Error(u16, &'static str),
    /// Status plus a message prefix, for messages that embed parser detail.
    ErrorPrefix(u16, &'static str),
}

struct Case {
    fixture: &'static str,
    kind: RegistryKind,
    limits: Limits,
    headers: Headers,
    expect: Expect,
}

fn ev(
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

fn dist(repo: &str, digest: &str, tag: Option<&str>, mt: &str, id: &str) -> PushEvent {
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

fn blob(media_type: &str) -> IgnoreReason {
    IgnoreReason::BlobPush {
        media_type: media_type.into(),
    }
}

fn not_push(action: &str) -> IgnoreReason {
    IgnoreReason::NotAPush {
        action: action.into(),
    }
}

fn cases() -> Vec<Case> {
    use RegistryKind::{Distribution, Ghcr, Harbor};
    let def = Limits::default();
    let case = |fixture, kind, headers, expect| Case {
        fixture,
        kind,
        limits: def,
        headers,
        expect,
    };
    vec![
        // --- CNCF Distribution ---
        case(
            "distribution_single_push.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Outcome(
                vec![dist(
                    "shop/web",
                    D_WEB,
                    Some("1.4.2"),
                    DOCKER_MANIFEST,
                    "1c1a0d7e-6e1b-4a8e-8f5c-2d9a3c4b5e61",
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
        case(
            "distribution_blob_only.json",
            Distribution,
            Headers::Auth(DIST_TOKEN),
            Expect::Outcome(
                vec![],
                vec![
                    (
                        "events[0]",
                        blob("application/vnd.docker.image.rootfs.diff.tar.gzip"),
                    ),
                    ("events[1]", blob("application/octet-stream")),
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
        // --- Harbor, default format ---
        case(
            "harbor_default_push.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(
                vec![ev(
                    Harbor,
                    "harbor.example.com",
                    "shop/web",
                    D_HARBOR1,
                    Some("1.4.2"),
                    None,
                    // sha256("PUSH_ARTIFACT\n1732318867\n<digest>")[..32], computed with Python.
                    "harbor-46f3337a2053fd56ebe9a657d4257b32",
                )],
                vec![],
            ),
        ),
        case(
            "harbor_default_untagged.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(
                vec![ev(
                    Harbor,
                    "harbor.example.com",
                    "shop/web",
                    D_HARBOR2,
                    None,
                    None,
                    "harbor-d902d6aa1f373e42bd4c0a81ee0f945e",
                )],
                vec![],
            ),
        ),
        case(
            "harbor_default_pull.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(vec![], vec![("", not_push("PULL_ARTIFACT"))]),
        ),
        case(
            "harbor_default_bad_resource_url.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Error(
                422,
                "event_data.resources[1].resource_url: registry host \"harbor example.com\" is not a \
                 valid host name",
            ),
        ),
        case(
            "harbor_default_push.json",
            Harbor,
            Headers::Auth(DIST_TOKEN),
            Expect::Error(401, "authentication failed: Authorization does not match"),
        ),
        // --- Harbor, CloudEvents format ---
        case(
            "harbor_cloudevents_push.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(
                vec![ev(
                    Harbor,
                    "harbor.example.com:8443",
                    "shop/api",
                    D_API,
                    Some("3.1.0"),
                    None,
                    "6e1f6a9e-5c2b-4b7e-a1c9-1f2e3d4c5b6a",
                )],
                vec![],
            ),
        ),
        case(
            "harbor_cloudevents_multi.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(
                vec![
                    ev(
                        Harbor,
                        "harbor.example.com",
                        "shop/api",
                        D_AMD64,
                        None,
                        None,
                        "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d#0",
                    ),
                    ev(
                        Harbor,
                        "harbor.example.com",
                        "shop/api",
                        D_INDEX,
                        Some("3.2.0"),
                        None,
                        "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d#1",
                    ),
                ],
                vec![],
            ),
        ),
        case(
            "harbor_cloudevents_scan_completed.json",
            Harbor,
            Headers::Auth(HARBOR_AUTH),
            Expect::Outcome(vec![], vec![("", not_push("harbor.scan.completed"))]),
        ),
        // --- GHCR ---
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

fn headers_for(h: &Headers) -> Vec<(String, Vec<u8>)> {
    match h {
        Headers::Auth(v) => vec![("Authorization".into(), v.as_bytes().to_vec())],
        Headers::Nothing => vec![],
        Headers::File(f) => header_file(f),
        Headers::FileWith(f, name, value) => {
            let mut hs: Vec<_> = header_file(f)
                .into_iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
                .collect();
            if let Some(v) = value {
                hs.push(((*name).into(), v.as_bytes().to_vec()));
            }
            hs
        }
    }
}

#[test]
fn every_fixture_yields_exactly_the_expected_result() {
    let cases = cases();
    for (i, case) in cases.iter().enumerate() {
        let label = format!("case {i} ({})", case.fixture);
        let body = fixture(case.fixture);
        let owned = headers_for(&case.headers);
        let headers: Vec<(&str, &[u8])> = owned
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let got = endpoint(case.kind, case.limits).receive(&WebhookRequest::new(&headers, &body));
        match (&case.expect, got) {
            (Expect::Outcome(events, ignored), Ok(outcome)) => {
                let want = WebhookOutcome {
                    events: events.clone(),
                    ignored: ignored
                        .iter()
                        .map(|(path, reason)| scanfleet_registry_events::IgnoredEvent {
                            path: (*path).into(),
                            reason: reason.clone(),
                        })
                        .collect(),
                };
                assert_eq!(outcome, want, "{label}");
            }
            (Expect::Error(status, msg), Err(e)) => {
                assert_eq!(
                    (e.http_status(), e.to_string().as_str()),
                    (*status, *msg),
                    "{label}"
                );
            }
            (Expect::ErrorPrefix(status, prefix), Err(e)) => {
                assert_eq!(e.http_status(), *status, "{label}: {e}");
                assert!(e.to_string().starts_with(prefix), "{label}: {e}");
            }
            (_, got) => panic!("{label}: unexpected result {got:?}"),
        }
    }
}

#[test]
fn every_fixture_file_is_used_by_a_case() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cases = cases();
    let used: Vec<String> = cases
        .iter()
        .flat_map(|c| {
            let mut v = vec![c.fixture.to_owned()];
            if let Headers::File(f) | Headers::FileWith(f, _, _) = c.headers {
                v.push(f.to_owned());
            }
            v
        })
        .collect();
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        if name == "README.md" {
            continue;
        }
        assert!(
            used.contains(&name),
            "fixture {name} is not exercised by any case"
        );
    }
}

#[test]
fn ignored_reasons_read_well() {
    let cases = [
        (
            blob("application/octet-stream"),
            "blob push (application/octet-stream)",
        ),
        (not_push("pull"), "pull is not a push"),
        (
            IgnoreReason::NotAnImageManifest {
                media_type: "x/y".into(),
            },
            "media type x/y is not an image manifest or index",
        ),
        (
            IgnoreReason::Artifact {
                artifact_type: "a/b".into(),
            },
            "artifact manifest of type a/b, not an image",
        ),
        (
            IgnoreReason::NotAContainerPackage {
                package_type: "npm".into(),
            },
            "package type npm is not a container image",
        ),
        (
            IgnoreReason::DuplicateEventId {
                event_id: "e1".into(),
            },
            "event id e1 repeats an earlier event in this body",
        ),
    ];
    for (reason, text) in cases {
        assert_eq!(reason.to_string(), text);
    }
}

#[test]
fn error_statuses_cover_every_variant() {
    let cases = [
        (
            WebhookError::BodyTooLarge {
                limit: 1,
                actual: 2,
            },
            413,
        ),
        (
            WebhookError::TooManyEvents {
                path: "events".into(),
                limit: 1,
                actual: 2,
            },
            413,
        ),
        (
            WebhookError::MissingAuth {
                header: "Authorization".into(),
            },
            401,
        ),
        (
            WebhookError::BadAuth {
                header: "Authorization".into(),
                problem: "does not match",
            },
            401,
        ),
        (
            WebhookError::BadHeader {
                header: "X".into(),
                problem: "is missing".into(),
            },
            400,
        ),
        (WebhookError::NotJson { detail: "x".into() }, 400),
        (
            WebhookError::Invalid {
                path: "a".into(),
                problem: "b".into(),
            },
            422,
        ),
    ];
    for (e, status) in cases {
        assert_eq!(e.http_status(), status, "{e}");
    }
}

#[test]
fn pinned_reference_joins_registry_repository_and_digest() {
    let e = dist("shop/web", D_WEB, Some("1.4.2"), DOCKER_MANIFEST, "id");
    assert_eq!(
        e.pinned_reference(),
        format!("registry.local:5000/shop/web@{D_WEB}")
    );
}
