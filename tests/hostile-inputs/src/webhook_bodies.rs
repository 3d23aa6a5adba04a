//! Hostile deliveries to intake's registry webhooks, for every route
//! (Distribution, Harbor in both formats, GHCR): bodies that are not JSON,
//! JSON of the wrong shape or with a broken field (each sent with the
//! right credential, so it reaches the parser), good bodies with a
//! missing or wrong shared secret or HMAC, bodies past the size limit,
//! and routes or methods that do not exist.
//!
//! The templates are the registry-events fixtures of real pushes; a
//! mutation always breaks a required field (a field that is only
//! ignored, such as a pull's action, would be accepted).

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::http_requests::HttpInput;
use crate::seeded::Seeded;

/// The routes' credentials, as configured in intake.
#[derive(Debug, Clone)]
pub struct WebhookSecrets {
    /// Distribution's `Authorization` value.
    pub distribution: String,
    /// Harbor's `Authorization` value.
    pub harbor: String,
    /// GHCR's HMAC secret.
    pub ghcr: String,
}

/// The configured body limit (intake's `webhooks.max_body_bytes`).
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// A fixture of `services/registry-events/tests/fixtures`.
///
/// # Panics
/// When it is missing.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = scanfleet_test_harness::repo_root()
        .join("services/registry-events/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Distribution,
    Harbor,
    HarborCloudEvents,
    Ghcr,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Route::Distribution => "/v1/webhooks/distribution",
            Route::Harbor | Route::HarborCloudEvents => "/v1/webhooks/harbor",
            Route::Ghcr => "/v1/webhooks/ghcr",
        }
    }

    fn template(self) -> Value {
        let name = match self {
            Route::Distribution => "distribution_single_push.json",
            Route::Harbor => "harbor_default_push.json",
            Route::HarborCloudEvents => "harbor_cloudevents_push.json",
            Route::Ghcr => "ghcr_package_published.json",
        };
        serde_json::from_slice(&fixture(name)).expect("fixtures are JSON")
    }

    /// Required fields: (JSON pointer, bad string values allowed).
    fn required(self) -> &'static [(&'static str, &'static [&'static str])] {
        const DIGEST: &[&str] = &["sha256:abc", "md5:0123", "sha256:ZZZZ", "latest", ""];
        const REPO: &[&str] = &["Shop/Web", "a//b", "../etc", "", "shop/web "];
        const HOST: &[&str] = &["", "bad host", "a..b", "-x.example"];
        match self {
            Route::Distribution => &[
                ("/events", &[]),
                ("/events/0/id", &[]),
                ("/events/0/action", &[]),
                ("/events/0/target", &[]),
                ("/events/0/target/mediaType", &[]),
                ("/events/0/target/digest", DIGEST),
                ("/events/0/target/repository", REPO),
                ("/events/0/request/host", HOST),
            ],
            Route::Harbor => &[
                ("/type", &[]),
                ("/occur_at", &[]),
                ("/event_data", &[]),
                ("/event_data/repository/repo_full_name", REPO),
                ("/event_data/resources", &[]),
                ("/event_data/resources/0/digest", DIGEST),
                ("/event_data/resources/0/resource_url", HOST),
            ],
            Route::HarborCloudEvents => &[
                ("/specversion", &["0.3", "2.0", ""]),
                ("/type", &[]),
                ("/id", &[]),
                ("/data", &[]),
                ("/data/resources", &[]),
                ("/data/resources/0/digest", DIGEST),
                ("/data/repository/repo_full_name", REPO),
            ],
            Route::Ghcr => &[
                ("/action", &[]),
                ("/package", &[]),
                ("/package/package_type", &[]),
                ("/package/package_version", &[]),
                ("/package/package_version/package_url", HOST),
            ],
        }
    }
}

/// Replaces (or, with `None`, removes) the value at `pointer`.
fn set(root: &mut Value, pointer: &str, new: Option<Value>) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    let Some(parent) = root.pointer_mut(parent) else {
        return;
    };
    match (parent, new) {
        (Value::Object(m), Some(v)) => {
            m.insert(key.to_owned(), v);
        }
        (Value::Object(m), None) => {
            m.remove(key);
        }
        (Value::Array(a), new) => {
            if let Ok(i) = key.parse::<usize>()
                && i < a.len()
            {
                match new {
                    Some(v) => a[i] = v,
                    None => {
                        a.remove(i);
                    }
                }
            }
        }
        _ => {}
    }
}

/// A value of another type than the field's (strings, objects, arrays
/// and numbers all appear in the templates).
fn other_type(rng: &mut Seeded, current: Option<&Value>) -> Value {
    let candidates = [
        json!(42),
        json!(true),
        json!([]),
        json!({}),
        json!("x"),
        json!(-0.5),
    ];
    loop {
        let v = rng.pick(&candidates).clone();
        let same = match (current, &v) {
            (Some(Value::String(_)), Value::String(_))
            | (Some(Value::Number(_)), Value::Number(_))
            | (Some(Value::Array(_)), Value::Array(_))
            | (Some(Value::Object(_)), Value::Object(_))
            | (Some(Value::Bool(_)), Value::Bool(_)) => true,
            // Harbor's `occur_at` is read as a number's text: keep it a non-number.
            (Some(Value::Number(_)), Value::String(_)) => true,
            _ => false,
        };
        if !same {
            return v;
        }
    }
}

/// One required field broken: removed, null, another type, or a bad value.
fn broken_shape(rng: &mut Seeded, route: Route) -> (String, Value) {
    let mut body = route.template();
    if rng.chance(4) {
        let root = rng
            .pick(&[json!([]), json!("push"), json!(7), json!(null)])
            .clone();
        return ("root-not-object".into(), root);
    }
    if route == Route::Distribution && rng.chance(4) {
        let events: Vec<Value> = (0..rng.between(257, 400))
            .map(|i| json!({"id": format!("ev-{i}"), "action": "pull"}))
            .collect();
        body["events"] = Value::Array(events);
        return ("too-many-events".into(), body);
    }
    if route == Route::Ghcr && rng.chance(15) {
        for p in [
            "/package/package_version/version",
            "/package/package_version/container_metadata/manifest/digest",
        ] {
            set(
                &mut body,
                p,
                Some(json!(format!(
                    "sha256:X{}",
                    rng.text_between(0, 70, b"0123456789abcdefXYZ")
                ))),
            );
        }
        return ("ghcr-digest".into(), body);
    }
    let (pointer, bad_strings) = *rng.pick(route.required());
    let current = body.pointer(pointer).cloned();
    // Where a missing field has a fallback (another host field, the
    // default Harbor format), only a bad value or type is an error.
    let has_fallback = [
        "/specversion",
        "/events/0/request/host",
        "/package/package_version/package_url",
    ]
    .contains(&pointer);
    let draw = if has_fallback {
        rng.between(2, 3)
    } else {
        rng.below(4)
    };
    let (how, new) = match draw {
        0 => ("removed", None),
        1 => ("null", Some(Value::Null)),
        2 if !bad_strings.is_empty() => ("bad-value", Some(json!(rng.pick(bad_strings)))),
        _ => ("other-type", Some(other_type(rng, current.as_ref()))),
    };
    set(&mut body, pointer, new);
    if route == Route::Harbor
        && pointer.ends_with("/resources")
        && how == "removed"
        && rng.chance(50)
    {
        set(&mut body, pointer, Some(json!([])));
    }
    (format!("{pointer} {how}"), body)
}

fn hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn delivery(route: Route, secrets: &WebhookSecrets, rng: &mut Seeded, body: Vec<u8>) -> HttpInput {
    let mut r = HttpInput::new("webhook", "POST", route.path().into());
    r.headers
        .push(("Content-Type".into(), b"application/json".to_vec()));
    match route {
        Route::Distribution => r = r.authorization(&secrets.distribution),
        Route::Harbor | Route::HarborCloudEvents => r = r.authorization(&secrets.harbor),
        Route::Ghcr => {
            r.headers
                .push(("X-GitHub-Event".into(), b"package".to_vec()));
            let id = hex::encode(rng.bytes(16));
            r.headers
                .push(("X-GitHub-Delivery".into(), id.into_bytes()));
            r.headers.push((
                "X-Hub-Signature-256".into(),
                hmac(&secrets.ghcr, &body).into_bytes(),
            ));
        }
    }
    r.body = body;
    r
}

/// Breaks the credential of a good delivery.
fn bad_secret(
    route: Route,
    secrets: &WebhookSecrets,
    rng: &mut Seeded,
    r: &mut HttpInput,
) -> &'static str {
    let name = if route == Route::Ghcr {
        "X-Hub-Signature-256"
    } else {
        "Authorization"
    };
    let good = r
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    r.headers.retain(|(n, _)| n != name);
    let (kind, value) = match rng.below(6) {
        0 => ("missing-secret", None),
        1 => ("wrong-secret", Some(rng.printable_between(1, 80))),
        2 => ("secret-with-suffix", Some(format!("{good}x"))),
        3 if route == Route::Ghcr => (
            "hmac-wrong-key",
            Some(hmac(&format!("{}!", secrets.ghcr), &r.body)),
        ),
        3 => (
            "secret-case-changed",
            Some(
                good.to_uppercase()
                    .replace("BEARER", "bearer")
                    .replace("BASIC", "basic"),
            ),
        ),
        4 if route == Route::Ghcr => (
            "hmac-sha1-prefix",
            Some(good.replacen("sha256=", "sha1=", 1)),
        ),
        4 => ("secret-truncated", Some(good[..good.len() - 1].to_owned())),
        _ => {
            r.headers.push((name.into(), good.clone().into_bytes()));
            ("secret-repeated", Some(rng.printable(20)))
        }
    };
    if let Some(v) = value {
        r.headers.push((name.into(), v.into_bytes()));
    }
    kind
}

/// Input `index` of the webhook barrage.
pub fn webhook_input(rng: &mut Seeded, index: usize, secrets: &WebhookSecrets) -> HttpInput {
    let route = [
        Route::Distribution,
        Route::Harbor,
        Route::HarborCloudEvents,
        Route::Ghcr,
    ][(index / 8) % 4];
    let template = serde_json::to_vec(&route.template()).expect("JSON");
    let (kind, mut r): (&'static str, HttpInput) = match index % 8 {
        0 | 1 => {
            let mut body = template.clone();
            for _ in 0..100 {
                body = match rng.below(3) {
                    0 => template[..rng.below(template.len())].to_vec(),
                    1 => rng.bytes_between(1, 2000),
                    _ => {
                        let mut b = template.clone();
                        let at = rng.below(b.len());
                        let n = rng.between(1, 4);
                        let junk = rng.text(n, b"{}[],:\"\\\x00\xff");
                        b.splice(at..at, junk.into_bytes());
                        b
                    }
                };
                if serde_json::from_slice::<Value>(&body).is_err() {
                    break;
                }
            }
            ("malformed-json", delivery(route, secrets, rng, body))
        }
        2..=4 => {
            let (what, body) = broken_shape(rng, route);
            let mut r = delivery(
                route,
                secrets,
                rng,
                serde_json::to_vec(&body).expect("JSON"),
            );
            r.headers.push(("X-Mutation".into(), what.into_bytes()));
            ("wrong-shape", r)
        }
        5 => {
            let mut r = delivery(route, secrets, rng, template);
            let kind = bad_secret(route, secrets, rng, &mut r);
            (kind, r)
        }
        6 => {
            let mut body = route.template();
            body["padding"] = json!("p".repeat(rng.between(MAX_BODY_BYTES, 4 * MAX_BODY_BYTES)));
            (
                "oversized-body",
                delivery(
                    route,
                    secrets,
                    rng,
                    serde_json::to_vec(&body).expect("JSON"),
                ),
            )
        }
        _ => {
            let mut r = delivery(route, secrets, rng, template);
            if route == Route::Ghcr && rng.chance(50) {
                let header = *rng.pick(&["X-GitHub-Event", "X-GitHub-Delivery"]);
                let value = rng
                    .pick(&[None, Some("has space".to_owned()), Some("d".repeat(200))])
                    .clone();
                r.headers.retain(|(n, _)| n != header);
                if let Some(v) = value {
                    r.headers.push((header.into(), v.into_bytes()));
                }
                ("ghcr-bad-header", r)
            } else if rng.chance(50) {
                r.path = format!(
                    "/v1/webhooks/x-{}",
                    rng.text_between(1, 30, b"abcdefghijklmnopqrstuvwxyz-_%2E")
                );
                ("unknown-route", r)
            } else {
                r.method = rng.pick(&["GET", "PUT", "DELETE", "PATCH"]).to_string();
                ("wrong-method", r)
            }
        }
    };
    r.kind = kind;
    r
}
