//! Distribution's fixtures are what the real server sends. A CNCF
//! Distribution registry (`docker-registry`, loopback, TLS, htpasswd)
//! notifies a recording endpoint while an image built by umoci is pushed,
//! read back and deleted with skopeo. Every real delivery goes through the
//! parser as it arrived; then the bodies, grouped as [`FIXTURES`] says,
//! with what differs from run to run replaced by fixed values, must equal
//! the committed fixtures that `webhook_fixtures` asserts exactly.
//!
//! The hand-written Distribution fixtures (what a capture does not make:
//! multi-arch indexes, mounts, artifacts, repeated ids, invalid values)
//! are compared with the capture too: their events may use only the fields
//! the real server sends, plus the two named in [`NOT_CAPTURED`].
//!
//! Rerun with `SCANFLEET_REGENERATE_FIXTURES=1` to write the fixtures anew
//! (then review the diff: a change is a change in what Distribution sends).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use scanfleet_registry_events::{
    Endpoint, Limits, SharedSecretAuth, WebhookRequest, WebhookSecret,
};
use scanfleet_test_harness::registry::{Notifications, TestRegistry, build_layout};
use scanfleet_test_harness::webhook_sink::{Delivery, WebhookSink};
use serde_json::{Value, json};
use sha2::Digest as _;

/// The header the fixtures are authenticated with (`webhook_cases::DIST_TOKEN`).
const TOKEN: &str = "Bearer dist-token-7f3a9c";
const REPO: &str = "shop/web";
const TAG: &str = "1.4.2";
/// The registry's `host:port` in the fixtures.
const HOST: &str = "registry.local:5000";
const REGENERATE: &str = "SCANFLEET_REGENERATE_FIXTURES";

/// Each committed fixture and the captured events it holds. Distribution
/// sends one event per delivery, so the manifest push is one delivery as
/// sent; the others gather the deliveries of one kind into one body (the
/// envelope Distribution's batches use).
const FIXTURES: [(&str, &str, Option<bool>); 4] = [
    // (file, action, only blobs' events or only the others', or all)
    ("distribution_single_push.json", "push", Some(false)),
    ("distribution_blob_only.json", "push", Some(true)),
    ("distribution_real_pull.json", "pull", None),
    ("distribution_real_delete.json", "delete", None),
];

/// Fields of hand-written events this capture cannot produce: Distribution
/// sets them for a cross-repository blob mount and an OCI artifact push.
const NOT_CAPTURED: [&str; 2] = ["target.fromRepository", "target.artifactType"];

/// The dotted paths of every scalar in `v`.
fn field_paths(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                field_paths(v, &p, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

/// Every field of a hand-written Distribution fixture's events is one the
/// real server sent (or is [`NOT_CAPTURED`]).
fn hand_written_fields_are_real(captured: &[Delivery]) {
    let mut real = std::collections::BTreeSet::new();
    captured
        .iter()
        .flat_map(events)
        .for_each(|e| field_paths(&e, "", &mut real));
    real.extend(NOT_CAPTURED.map(str::to_owned));
    let dir = fixture_path("");
    let mut compared = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("distribution_") || FIXTURES.iter().any(|f| f.0 == name) {
            continue;
        }
        let body: Value = serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // distribution_events_not_array.json has no events to compare.
        let Some(events) = body["events"].as_array() else {
            continue;
        };
        for (i, e) in events.iter().enumerate() {
            let mut fields = std::collections::BTreeSet::new();
            field_paths(e, "", &mut fields);
            let invented: Vec<_> = fields.difference(&real).collect();
            assert!(
                invented.is_empty(),
                "{name} events[{i}]: fields the real registry does not send: {invented:?}"
            );
        }
        compared += 1;
    }
    assert!(
        compared >= 5,
        "only {compared} hand-written fixtures compared"
    );
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Whether a captured event is a blob's (its URL names a blob).
fn is_blob(e: &Value) -> bool {
    e["target"]["url"]
        .as_str()
        .is_some_and(|u| u.contains("/blobs/"))
}

/// `v` with every object's keys in sorted order, whichever map serde_json
/// was built with, so a fixture's text does not depend on cargo features.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let ordered: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The fixed stand-in for a digest that changes with every build: the
/// SHA-256 of its role, e.g. "captured manifest".
fn stand_in(role: &str) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(role)))
}

/// The image's blobs by role, read from the layout skopeo pushed.
fn roles(layout: &Path, manifest: &str) -> BTreeMap<String, String> {
    let blob = |digest: &str| -> Value {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("a blob");
        serde_json::from_slice(&bytes).expect("a JSON blob")
    };
    let m = blob(manifest);
    let mut roles = BTreeMap::from([
        (manifest.to_owned(), stand_in("captured manifest")),
        (
            m["config"]["digest"].as_str().unwrap().to_owned(),
            stand_in("captured config"),
        ),
    ]);
    for (i, layer) in m["layers"].as_array().unwrap().iter().enumerate() {
        roles.insert(
            layer["digest"].as_str().unwrap().to_owned(),
            stand_in(&format!("captured layer {i}")),
        );
    }
    roles
}

fn events(d: &Delivery) -> Vec<Value> {
    let body: Value = serde_json::from_slice(&d.body).expect("a JSON delivery");
    body["events"].as_array().expect("an events array").clone()
}

fn has(deliveries: &[Delivery], action: &str, digest: &str) -> bool {
    deliveries
        .iter()
        .flat_map(events)
        .any(|e| e["action"] == action && e["target"]["digest"] == digest)
}

/// Replaces every value that differs between runs; keeps every field and
/// every value the parser reads (action, media type, repository, tag, the
/// host in `url` and `request.host`, digests by role).
fn normalise(v: &mut Value, host: &str, roles: &BTreeMap<String, String>) {
    match v {
        Value::String(s) => {
            let mut t = s.replace(host, HOST);
            for (real, fixed) in roles {
                t = t.replace(real.as_str(), fixed);
            }
            *s = t;
        }
        Value::Array(items) => items.iter_mut().for_each(|i| normalise(i, host, roles)),
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let fixed = match key.as_str() {
                    "timestamp" => Some(json!("2026-11-22T23:41:07.123456789Z")),
                    "size" | "length" => Some(json!(1234)),
                    "addr" => Some(json!("10.0.3.7:51234")),
                    "instanceID" => Some(json!("5d3f0b8e-8a51-4d0c-9b7d-2e52b1f0c3aa")),
                    "useragent" => Some(json!("skopeo")),
                    _ => None,
                };
                match fixed {
                    Some(f) if !value.is_object() && !value.is_array() => *value = f,
                    _ => normalise(value, host, roles),
                }
            }
        }
        _ => {}
    }
}

/// Each fixture's body: its events, normalised, repeats dropped (a client
/// may fetch a blob twice), in a fixed order, with fixed ids.
fn fixture_bodies(
    deliveries: &[Delivery],
    host: &str,
    roles: &BTreeMap<String, String>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (n, (file, action, blobs)) in FIXTURES.into_iter().enumerate() {
        let mut group: Vec<Value> = deliveries
            .iter()
            .flat_map(events)
            .filter(|e| e["action"] == action && blobs.is_none_or(|b| is_blob(e) == b))
            .map(|mut e| {
                normalise(&mut e, host, roles);
                e["id"] = json!("");
                e["request"]["id"] = json!("");
                sorted(e)
            })
            .collect();
        group.sort_by_key(|e| e.to_string());
        group.dedup();
        for (i, e) in group.iter_mut().enumerate() {
            let id = (n + 1) * 100 + i + 1;
            e["id"] = json!(format!("00000000-0000-4000-8000-{id:012}"));
            e["request"]["id"] = json!(format!("00000000-0000-4000-9000-{id:012}"));
        }
        let body = serde_json::to_string_pretty(&json!({ "events": group })).unwrap() + "\n";
        out.push((file, body));
    }
    out
}

#[test]
fn distribution_fixtures_are_what_the_real_registry_sends() {
    let sink = WebhookSink::start();
    let registry = TestRegistry::start(
        "ci",
        "push-pw",
        Some(Notifications {
            url: sink.url().to_owned(),
            header: ("Authorization".into(), TOKEN.into()),
            ca_file: None,
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    build_layout(&layout, TAG, &[("etc/app.conf", b"x=1\n", 0o644)]);
    let manifest = registry.push(&layout, TAG, REPO);
    let wait = Duration::from_secs(30);
    sink.wait_for("the manifest push", wait, |d| has(d, "push", &manifest));
    registry.inspect(REPO, &manifest);
    sink.wait_for("the manifest pull", wait, |d| has(d, "pull", &manifest));
    registry.delete(REPO, &manifest);
    // The registry delivers in order, so once the delete of the manifest and
    // of its tag arrived, everything before them has too.
    let deliveries = sink.wait_for("the deletes", wait, |d| {
        has(d, "delete", &manifest)
            && d.iter()
                .flat_map(events)
                .any(|e| e["action"] == "delete" && e["target"]["tag"] == TAG)
    });

    // As delivered: authenticated by the configured header, accepted, and
    // the one image push is the manifest skopeo reported.
    let endpoint = Endpoint::distribution(
        SharedSecretAuth::authorization(WebhookSecret::new(TOKEN).unwrap()),
        Limits::default(),
    );
    let mut pushes = Vec::new();
    for d in &deliveries {
        assert_eq!(events(d).len(), 1, "one event per delivery");
        let auth = d.headers.iter().find(|(n, _)| n == "authorization");
        assert_eq!(auth.map(|(_, v)| v.as_str()), Some(TOKEN));
        let headers = [("Authorization", TOKEN.as_bytes())];
        let outcome = endpoint
            .receive(&WebhookRequest::new(&headers, &d.body))
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&d.body)));
        pushes.extend(outcome.events);
    }
    let got: Vec<_> = pushes
        .iter()
        .map(|e| {
            (
                e.registry.as_str(),
                e.repository.as_str(),
                e.digest.as_str(),
                e.tag.as_deref(),
            )
        })
        .collect();
    let host = registry.host();
    assert_eq!(
        got,
        [(host.as_str(), REPO, manifest.as_str(), Some(TAG))],
        "one image push: the manifest; blob pushes, pulls and the delete are ignored"
    );

    hand_written_fields_are_real(&deliveries);
    let bodies = fixture_bodies(&deliveries, &host, &roles(&layout, &manifest));
    let regenerate = std::env::var_os(REGENERATE).is_some();
    for (file, body) in bodies {
        let path = fixture_path(file);
        if regenerate {
            std::fs::write(&path, &body).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == body,
            "{} differs from what the real registry sends; rerun with {REGENERATE}=1 \
             and review the diff. Captured:\n{body}",
            path.display()
        );
    }
}
