//! Registry webhooks end to end: kubesim's demo pods, a real nats-server,
//! intake's HTTP edge. The registry-events fixtures are replayed with their
//! manifest digests swapped for digests kubesim's pods really run (GHCR
//! bodies re-signed), and every delivery must yield exactly the expected
//! intents on the stream.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use hmac::{Hmac, Mac};
use scanfleet_bus::TopologyConfig;
use scanfleet_contracts::v1::{Priority, trigger::Source};
use sha2::Sha256;
use support::{BusIdentity, Queued, SecureBus, http, last_sequence, queued_after, start_intake};

const DIST_TOKEN: &str = "Bearer dist-token-7f3a9c";
const HARBOR_AUTH: &str = "Basic cm9ib3QkY2k6czNjcmV0";
const GHCR_SECRET: &str = "It's a Secret to Everybody";

// Digests the fixtures use (see services/registry-events/tests/fixtures).
const D_INDEX: &str = "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6";
const D_WEB: &str = "sha256:4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2";
/// The manifest of the deliveries captured from a real Distribution registry.
const D_CAPTURED: &str = "sha256:fe147c947ee7eb9ddc22b1367a06ae79dbdce08ec2d9113550c21bd68c7405ed";
const D_API: &str = "sha256:14c2529eb4498c5d1ffd6915d05bf58a91bdda796af59f41d480d11c099d0479";
const D_HARBOR1: &str = "sha256:21aa66f9707f1ac88e177e04940b5e8675c9f51fca05d84440820cf3d84df5ab";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../registry-events/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_headers(name: &str) -> Vec<(String, Vec<u8>)> {
    String::from_utf8(fixture(name))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
        .collect()
}

/// The fixture with its digests replaced by `swap`.
fn swapped(name: &str, swap: &BTreeMap<&str, String>) -> Vec<u8> {
    let mut text = String::from_utf8(fixture(name)).unwrap();
    for (from, to) in swap {
        text = text.replace(from, to);
    }
    text.into_bytes()
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(GHCR_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// GitHub's headers for `name` with the signature recomputed over `body`.
fn ghcr_headers(name: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    fixture_headers(name)
        .into_iter()
        .map(|(n, v)| {
            if n.eq_ignore_ascii_case("X-Hub-Signature-256") {
                (n, sign(body).into_bytes())
            } else {
                (n, v)
            }
        })
        .collect()
}

fn auth(value: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        ("Content-Type".into(), b"application/json".to_vec()),
        ("Authorization".into(), value.as_bytes().to_vec()),
    ]
}

fn config_yaml(dir: &std::path::Path) -> String {
    let dist = support::write_private(dir, "dist.secret", format!("{DIST_TOKEN}\n").as_bytes());
    let harbor = support::write_private(dir, "harbor.secret", HARBOR_AUTH.as_bytes());
    let ghcr = support::write_private(dir, "ghcr.secret", GHCR_SECRET.as_bytes());
    format!(
        "webhooks:\n  profile: {{name: container-baseline, version: 1.0.0}}\n  max_body_bytes: 32768\n  retry_after_secs: 7\n  endpoints:\n    distribution: {{secret_file: {dist:?}}}\n    harbor: {{secret_file: {harbor:?}}}\n    ghcr: {{secret_file: {ghcr:?}}}\n"
    )
}

/// What one intent must say, besides its target.
struct Expect<'a> {
    registry: &'a str,
    repository: &'a str,
    tag: &'a str,
    digest: &'a str,
}

fn check(q: &Queued, e: &Expect<'_>) {
    let i = &q.intent;
    assert_eq!(i.priority, Priority::High as i32, "{q:?}");
    assert!(
        q.subject.starts_with("scan.intents.high.kubesim.apps."),
        "{}",
        q.subject
    );
    assert!(q.subject.ends_with(&i.id), "push intents never coalesce");
    assert_eq!(q.msg_id.len(), 81, "dedupe msg-id: {}", q.msg_id);
    let t = i.target.as_ref().unwrap();
    assert_eq!(t.cluster, "kubesim");
    assert_eq!(t.image.as_ref().unwrap().digest, e.digest);
    let p = i.profile.as_ref().unwrap();
    assert_eq!(p.name, "container-baseline");
    let Some(Source::RegistryPush(push)) = i.trigger.as_ref().and_then(|t| t.source.clone()) else {
        panic!("not a push trigger: {q:?}");
    };
    assert_eq!(
        (
            push.registry.as_str(),
            push.repository.as_str(),
            push.tag.as_str(),
            push.digest.as_str()
        ),
        (e.registry, e.repository, e.tag, e.digest)
    );
}

/// Route, headers, body, expected status, expected error text.
type Refusal = (&'static str, Headers, Vec<u8>, u16, &'static str);
type Headers = Vec<(String, Vec<u8>)>;

struct Edge {
    http: support::HttpEdge,
    js: jetstream::Context,
}

impl Edge {
    /// Posts and returns the response plus the intents it added.
    async fn post(
        &self,
        route: &str,
        headers: &[(String, Vec<u8>)],
        body: &[u8],
    ) -> (support::HttpResponse, Vec<Queued>) {
        let before = last_sequence(&self.js).await;
        let r = http(
            &self.http,
            "POST",
            &format!("/v1/webhooks/{route}"),
            headers,
            body,
        )
        .await;
        (r, queued_after(&self.js, before).await)
    }
}

fn targets(q: &[Queued]) -> Vec<String> {
    let mut t: Vec<String> = q.iter().map(Queued::target).collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_registry_fixture_yields_exactly_the_expected_intents() {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
    let running = support::running_digests(&sim).await;
    let d = |k: &str| running[k].clone();
    let (mis, hard, dist, scanner) = (
        d("web-misconfigured/web"),
        d("web-hardened/web"),
        d("distroless-app/app"),
        d("app-with-scanner/scanner"),
    );
    assert_eq!(d("nonroot-worker/worker"), mis, "demo pods share the image");
    let swap: BTreeMap<&str, String> = [
        (D_WEB, hard.clone()),
        (D_CAPTURED, hard.clone()),
        (D_API, dist.clone()),
        (D_HARBOR1, scanner.clone()),
        (D_INDEX, mis.clone()),
    ]
    .into_iter()
    .collect();

    let nats = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let intake = start_intake(dir.path(), &nats, &sim, &config_yaml(dir.path())).await;
    let edge = Edge {
        http: intake.webhooks(),
        js: nats.js(BusIdentity::Admin).await,
    };

    let digests = Digests {
        mis,
        hard,
        dist,
        scanner,
    };
    distribution_pushes(&edge, &swap, &digests).await;
    harbor_pushes(&edge, &swap, &digests).await;
    ghcr_push(&edge, &swap, &digests).await;
    refusals_queue_nothing(&edge, &swap).await;

    intake.shutdown().await.unwrap();
    sim.shutdown().await;
}

/// The running digests the fixtures are rewritten to.
struct Digests {
    mis: String,
    hard: String,
    dist: String,
    scanner: String,
}

/// Distribution: a push by tag, its redelivery, a mixed delivery, blobs.
async fn distribution_pushes(edge: &Edge, swap: &BTreeMap<&str, String>, digests: &Digests) {
    // Distribution: one manifest push by tag.
    let body = swapped("distribution_single_push.json", swap);
    let (r, q) = edge.post("distribution", &auth(DIST_TOKEN), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["queued"], 1);
    assert_eq!(targets(&q), ["web-hardened/web"]);
    check(
        &q[0],
        &Expect {
            registry: "registry.local:5000",
            repository: "shop/web",
            tag: "1.4.2",
            digest: &digests.hard,
        },
    );
    // The registry redelivers: the msg-id absorbs it.
    let (r, q) = edge.post("distribution", &auth(DIST_TOKEN), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["queued"].clone(), r.json()["duplicate"].clone()),
        (0.into(), 1.into())
    );
    assert!(q.is_empty(), "a redelivery queues nothing: {q:?}");

    // Distribution: pull, delete, mount, signature, helm chart, a repeated
    // event id, then two manifest pushes.
    let (r, q) = edge
        .post(
            "distribution",
            &auth(DIST_TOKEN),
            &swapped("distribution_mixed_actions.json", swap),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let report = r.json();
    assert_eq!(report["events"], 2);
    assert_eq!(report["ignored"].as_array().unwrap().len(), 6, "{report}");
    assert_eq!(targets(&q), ["distroless-app/app", "web-hardened/web"]);
    for i in &q {
        match i.target().as_str() {
            "distroless-app/app" => check(
                i,
                &Expect {
                    registry: "registry.local:5000",
                    repository: "shop/api",
                    tag: "3.1.0",
                    digest: &digests.dist,
                },
            ),
            _ => check(
                i,
                &Expect {
                    registry: "mirror.example.com",
                    repository: "shop/web",
                    tag: "",
                    digest: &digests.hard,
                },
            ),
        }
    }

    // Blob uploads only: 2xx, nothing queued, both listed as ignored.
    let (r, q) = edge
        .post(
            "distribution",
            &auth(DIST_TOKEN),
            &fixture("distribution_blob_only.json"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ignored"][0]["path"], "events[0]");
    assert!(
        r.json()["ignored"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("blob push")
    );
    assert_eq!(
        (r.json()["events"].clone(), r.json()["queued"].clone()),
        (0.into(), 0.into())
    );
    assert!(q.is_empty());
}

/// Harbor: the default format and CloudEvents on the same route.
async fn harbor_pushes(edge: &Edge, swap: &BTreeMap<&str, String>, digests: &Digests) {
    // Harbor default format: the scanner sidecar's image.
    let (r, q) = edge
        .post(
            "harbor",
            &auth(HARBOR_AUTH),
            &swapped("harbor_default_push.json", swap),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(targets(&q), ["app-with-scanner/scanner"]);
    check(
        &q[0],
        &Expect {
            registry: "harbor.example.com",
            repository: "shop/web",
            tag: "1.4.2",
            digest: &digests.scanner,
        },
    );

    // Harbor CloudEvents format on the same route.
    let (r, q) = edge
        .post(
            "harbor",
            &auth(HARBOR_AUTH),
            &swapped("harbor_cloudevents_push.json", swap),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(targets(&q), ["distroless-app/app"]);
    check(
        &q[0],
        &Expect {
            registry: "harbor.example.com:8443",
            repository: "shop/api",
            tag: "3.1.0",
            digest: &digests.dist,
        },
    );
}

/// GHCR, signed: an index digest running in three containers.
async fn ghcr_push(edge: &Edge, swap: &BTreeMap<&str, String>, digests: &Digests) {
    // GHCR, signed: the index digest runs in three containers.
    let body = swapped("ghcr_package_published.json", swap);
    let (r, q) = edge
        .post(
            "ghcr",
            &ghcr_headers("ghcr_package_published.headers", &body),
            &body,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["queued"], 3);
    assert_eq!(
        targets(&q),
        [
            "app-with-scanner/app",
            "nonroot-worker/worker",
            "web-misconfigured/web"
        ]
    );
    let ghcr_repo = q[0]
        .intent
        .trigger
        .as_ref()
        .and_then(|t| match &t.source {
            Some(Source::RegistryPush(p)) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    for i in &q {
        check(
            i,
            &Expect {
                registry: "ghcr.io",
                repository: &ghcr_repo.repository,
                tag: &ghcr_repo.tag,
                digest: &digests.mis,
            },
        );
    }
    assert_eq!(
        q.iter()
            .map(|i| i.intent.id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "one scan id per container"
    );
}

/// Refusals: nothing queued for any of them, every one counted.
async fn refusals_queue_nothing(edge: &Edge, swap: &BTreeMap<&str, String>) {
    // Refusals: nothing queued for any of them.
    let refusals: Vec<Refusal> = vec![
        (
            "ghcr",
            fixture_headers("ghcr_wrong_secret.headers"),
            fixture("ghcr_wrong_secret.json"),
            401,
            "authentication failed: X-Hub-Signature-256",
        ),
        (
            "ghcr",
            fixture_headers("ghcr_tampered.headers"),
            fixture("ghcr_tampered.json"),
            401,
            "authentication failed: X-Hub-Signature-256",
        ),
        (
            "distribution",
            vec![],
            swapped("distribution_single_push.json", swap),
            401,
            "missing authentication",
        ),
        (
            "harbor",
            auth(DIST_TOKEN),
            swapped("harbor_default_push.json", swap),
            401,
            "authentication failed: Authorization",
        ),
        (
            "distribution",
            auth(DIST_TOKEN),
            fixture("malformed_truncated.json"),
            400,
            "body is not valid JSON",
        ),
        (
            "distribution",
            auth(DIST_TOKEN),
            fixture("malformed_not_object.json"),
            422,
            "(body): expected an object",
        ),
        (
            "distribution",
            auth(DIST_TOKEN),
            fixture("distribution_bad_digest.json"),
            422,
            "digest",
        ),
        (
            "distribution",
            auth(DIST_TOKEN),
            fixture("distribution_oversized.json"),
            413,
            "over the limit of 32768 bytes",
        ),
        (
            "quay",
            auth(DIST_TOKEN),
            b"{}".to_vec(),
            404,
            "no webhook endpoint",
        ),
    ];
    for (route, headers, body, status, text) in refusals {
        let (r, q) = edge.post(route, &headers, &body).await;
        assert_eq!(r.status, status, "{route}: {}", r.text());
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(text), "{route}: {error}");
        assert!(
            !error.contains("dist-token") && !error.contains("Secret to"),
            "{error}"
        );
        assert!(q.is_empty(), "{route}: a refused delivery queued {q:?}");
    }

    let metrics = http(&edge.http, "GET", "/metrics", &[], b"").await.text();
    assert!(
        metrics.contains("scanfleet_intake_webhook_deliveries_total{outcome=\"refused\"} 9"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_stream_answers_429_with_retry_after() {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
    let running = support::running_digests(&sim).await;
    let mis = running["web-misconfigured/web"].clone();
    // A two-message queue, bootstrapped before intake starts.
    let nats = SecureBus::start_with(TopologyConfig {
        intents_max_messages: 2,
        ..Default::default()
    })
    .await;
    let js = nats.js(BusIdentity::Admin).await;
    let dir = tempfile::tempdir().unwrap();
    let intake = start_intake(dir.path(), &nats, &sim, &config_yaml(dir.path())).await;
    let edge = Edge {
        http: intake.webhooks(),
        js,
    };
    let swap: BTreeMap<&str, String> = [(D_INDEX, mis)].into_iter().collect();
    let body = swapped("ghcr_package_published.json", &swap);
    let headers = ghcr_headers("ghcr_package_published.headers", &body);
    let (r, q) = edge.post("ghcr", &headers, &body).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("Retry-After"), Some("7"));
    let report = r.json();
    assert!(
        report["error"].as_str().unwrap().contains("full"),
        "{report}"
    );
    assert_eq!(report["accepted_before"]["queued"], 2, "{report}");
    assert_eq!(q.len(), 2, "what the response reports is what is queued");

    // The registry retries once there is room: the two already queued are
    // duplicates by msg-id, the third is queued.
    let stream = edge.js.get_stream("SCAN_INTENTS").await.unwrap();
    stream.purge().await.unwrap();
    let (r, q) = edge.post("ghcr", &headers, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["queued"].clone(), r.json()["duplicate"].clone()),
        (1.into(), 2.into())
    );
    assert_eq!(q.len(), 1);

    intake.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_outage_answers_503_and_the_registry_retry_is_queued_once() {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
    let running = support::running_digests(&sim).await;
    let mis = running["web-misconfigured/web"].clone();
    let mut nats = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let intake = start_intake(dir.path(), &nats, &sim, &config_yaml(dir.path())).await;
    let edge = intake.webhooks();
    let swap: BTreeMap<&str, String> = [(D_INDEX, mis)].into_iter().collect();
    let body = swapped("ghcr_package_published.json", &swap);
    let headers = ghcr_headers("ghcr_package_published.headers", &body);
    let post = || http(&edge, "POST", "/v1/webhooks/ghcr", &headers, &body);

    // The bus crashes: the delivery gets a retryable answer inside the
    // enqueue budget, well before a registry's own timeout.
    nats.server().kill();
    let started = std::time::Instant::now();
    let r = post().await;
    let answered_in = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("Retry-After"), Some("7"));
    let report = r.json();
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("bus unavailable"),
        "{report}"
    );
    assert!(
        answered_in < scanfleet_bus::intent_queue::DEFAULT_ENQUEUE_BUDGET + Duration::from_secs(3),
        "503 after {answered_in:?}"
    );

    // The bus returns on its file store; the registry retries (bounded) until
    // intake's client has reconnected and the delivery is accepted.
    nats.server().restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let accepted = loop {
        let r = post().await;
        if r.status == 200 {
            break r.json();
        }
        assert_eq!(r.status, 503, "only 503 while reconnecting: {}", r.text());
        assert!(
            std::time::Instant::now() < deadline,
            "intake never accepted again"
        );
    };
    // Three containers run that digest. A publish cut off by the outage may
    // still have reached the server; msg-id dedupe keeps each intent once.
    let handled = accepted["queued"].as_u64().unwrap() + accepted["duplicate"].as_u64().unwrap();
    assert_eq!(handled, 3, "{accepted}");
    let js = nats.js(BusIdentity::Admin).await;
    let queued = queued_after(&js, 0).await;
    assert_eq!(targets(&queued).len(), 3, "each container queued once");
    let mut unique = targets(&queued);
    unique.dedup();
    assert_eq!(unique.len(), 3);

    intake.shutdown().await.unwrap();
    sim.shutdown().await;
}
