//! Property-style checks: whatever bytes arrive, the endpoints answer with
//! an outcome or a 4xx error, never a panic, and successful outcomes only
//! hold validated values. Inputs come from a seeded generator so failures
//! reproduce; no extra dependencies.

use std::path::PathBuf;

use hmac::{Hmac, Mac};
use scanfleet_registry_events::image_name::{check_host, check_repository, check_tag};
use scanfleet_registry_events::{
    Endpoint, Limits, SharedSecretAuth, WebhookOutcome, WebhookRequest, WebhookSecret,
};
use sha2::Sha256;

const TOKEN: &str = "Bearer t";
const SECRET: &str = "s";

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn endpoints() -> Vec<Endpoint> {
    let limits = Limits {
        max_body_bytes: 64 * 1024,
        max_events: 64,
    };
    let auth = || SharedSecretAuth::authorization(WebhookSecret::new(TOKEN).unwrap());
    vec![
        Endpoint::distribution(auth(), limits),
        Endpoint::harbor(auth(), limits),
        Endpoint::ghcr(WebhookSecret::new(SECRET).unwrap(), limits),
    ]
}

/// Sends `body` with valid credentials for every endpoint, so mutated
/// bodies reach the parsers instead of stopping at authentication.
fn send_everywhere(body: &[u8]) {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    for event in ["registry_package", "package"] {
        let headers: Vec<(&str, &[u8])> = vec![
            ("Authorization", TOKEN.as_bytes()),
            ("X-Hub-Signature-256", sig.as_bytes()),
            ("X-GitHub-Event", event.as_bytes()),
            ("X-GitHub-Delivery", b"d-1"),
        ];
        for ep in endpoints() {
            match ep.receive(&WebhookRequest::new(&headers, body)) {
                Ok(outcome) => check_outcome(&outcome),
                Err(e) => {
                    let status = e.http_status();
                    assert!(
                        [400, 413, 422].contains(&status),
                        "unexpected {status} for {e}"
                    );
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}

fn check_outcome(outcome: &WebhookOutcome) {
    for e in &outcome.events {
        check_host(&e.registry).expect("registry host validated");
        check_repository(&e.repository).expect("repository validated");
        if let Some(tag) = &e.tag {
            check_tag(tag).expect("tag validated");
        }
        assert!(!e.event_id.is_empty());
    }
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    out.sort();
    out
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..300 {
        let len = rng.below(512);
        let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        send_everywhere(&body);
    }
}

#[test]
fn byte_mutations_of_fixtures_never_panic() {
    let mut rng = Rng(0x5eed_0002);
    let fixtures = fixtures();
    for _ in 0..400 {
        let mut body = fixtures[rng.below(fixtures.len())].clone();
        for _ in 0..=rng.below(4) {
            match rng.below(3) {
                0 if !body.is_empty() => {
                    let i = rng.below(body.len());
                    body[i] = rng.next() as u8;
                }
                1 if !body.is_empty() => body.truncate(rng.below(body.len())),
                _ => {
                    let i = rng.below(body.len() + 1);
                    body.insert(i, b"{}[]\",:0-e.\\"[rng.below(12)]);
                }
            }
        }
        send_everywhere(&body);
    }
}

/// Replaces one random JSON node of a fixture with a value of another type,
/// which is what a buggy or hostile registry would send; byte flips rarely
/// produce valid JSON, this always does.
#[test]
fn structural_mutations_of_fixtures_never_panic() {
    let mut rng = Rng(0x5eed_0003);
    let fixtures = fixtures();
    let replacements = || -> Vec<serde_json::Value> {
        vec![
            serde_json::Value::Null,
            serde_json::json!(0),
            serde_json::json!(-1.5e300),
            serde_json::json!(""),
            serde_json::json!("sha256:"),
            serde_json::json!("x".repeat(300)),
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!(true),
            serde_json::json!("ghcr.io/a/b:c"),
        ]
    };
    for _ in 0..400 {
        let raw = &fixtures[rng.below(fixtures.len())];
        let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(raw) else {
            continue;
        };
        let mut nodes = 0;
        count(&value, &mut nodes);
        let target = rng.below(nodes.max(1));
        let repl = replacements()[rng.below(10)].clone();
        replace_nth(&mut value, target, &mut 0, repl);
        send_everywhere(&serde_json::to_vec(&value).unwrap());
    }
}

fn count(v: &serde_json::Value, n: &mut usize) {
    *n += 1;
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| count(x, n)),
        serde_json::Value::Object(o) => o.values().for_each(|x| count(x, n)),
        _ => {}
    }
}

fn replace_nth(v: &mut serde_json::Value, target: usize, i: &mut usize, repl: serde_json::Value) {
    if *i == target {
        *v = repl;
        *i += 1;
        return;
    }
    *i += 1;
    match v {
        serde_json::Value::Array(a) => {
            for x in a {
                replace_nth(x, target, i, repl.clone());
            }
        }
        serde_json::Value::Object(o) => {
            for x in o.values_mut() {
                replace_nth(x, target, i, repl.clone());
            }
        }
        _ => {}
    }
}

#[test]
fn deeply_nested_json_is_refused_not_overflowed() {
    let body = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let headers: Vec<(&str, &[u8])> = vec![("Authorization", TOKEN.as_bytes())];
    let ep = Endpoint::distribution(
        SharedSecretAuth::authorization(WebhookSecret::new(TOKEN).unwrap()),
        Limits {
            max_body_bytes: 1024 * 1024,
            max_events: 64,
        },
    );
    let err = ep
        .receive(&WebhookRequest::new(&headers, body.as_bytes()))
        .unwrap_err();
    assert_eq!(err.http_status(), 400, "{err}");
    assert!(err.to_string().contains("recursion limit"), "{err}");
}
