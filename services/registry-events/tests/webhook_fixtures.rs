//! Every committed fixture through a configured endpoint, asserting the
//! exact normalised events, ignored events, or the exact error and status.
//! The cases live in `webhook_cases/`, one module per registry.

use std::path::PathBuf;

use scanfleet_registry_events::{
    Endpoint, IgnoreReason, Limits, RegistryKind, SharedSecretAuth, WebhookError, WebhookOutcome,
    WebhookRequest, WebhookSecret,
};

mod webhook_cases;

use webhook_cases::{
    D_WEB, DIST_TOKEN, DOCKER_MANIFEST, Expect, GHCR_SECRET, HARBOR_AUTH, Headers, blob, cases,
    dist, not_push,
};

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
