//! The dashboard's queries, alike on SQLite and a real PostgreSQL 15:
//! each workload shown as its newest result, severity and staleness
//! filters, namespace scopes, the per-namespace summary, the trend, which
//! workloads fail a control, retention keeping the indexes true, and pages
//! that stay fast over 10,000 stored results.

use std::time::Instant;

use scanfleet_result_store::{PostureFilter, ResultStore, StoredResult};
use scanfleet_scan_engine::profile::Severity;
use scanfleet_test_harness::fleet::SampleStatement;
use scanfleet_test_harness::postgres::Postgres;
use scanfleet_trust::{Envelope, IN_TOTO_PAYLOAD_TYPE, ScanStatement, SigningKey, TrustedKeys};

/// 2026-11-23T10:00:00Z.
const BASE_MS: i64 = 1_795_428_000_000;

/// An HDF report whose controls have these (id, impact, status).
fn hdf(controls: &[(&str, f64, &str)]) -> Vec<u8> {
    let controls: Vec<_> = controls
        .iter()
        .map(|(id, impact, status)| {
            serde_json::json!({"id": id, "impact": impact, "tags": {},
                               "results": [{"status": status}]})
        })
        .collect();
    serde_json::json!({"profiles": [{"controls": controls}]})
        .to_string()
        .into_bytes()
}

struct Scan<'a> {
    id: &'a str,
    namespace: &'a str,
    pod: &'a str,
    minute: i64,
    controls: &'a [(&'a str, f64, &'a str)],
}

/// A signed, verified row with its report, as the collector stores it.
fn row(key: &SigningKey, s: &Scan) -> (StoredResult, scanfleet_result_store::Report) {
    let report = hdf(s.controls);
    let failed: Vec<_> = s.controls.iter().filter(|c| c.2 == "failed").collect();
    let at = |m: i64| {
        time::OffsetDateTime::from_unix_timestamp((BASE_MS / 1000) + m * 60)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let statement = SampleStatement::new(s.id)
        .target("kubesim", s.namespace, s.pod, "app")
        .report(&report)
        .times(&at(s.minute), &at(s.minute))
        .with(|p| {
            let summary = p.summary.as_mut().unwrap();
            summary.failed = failed.len() as u32;
            summary.passed = (s.controls.len() - failed.len()) as u32;
            summary.compliance_percent =
                100.0 * f64::from(summary.passed) / (s.controls.len().max(1) as f64);
            summary.failed_by_severity = failed
                .iter()
                .map(|c| (Severity::from_impact(c.1).as_str().to_owned(), 1))
                .collect();
        })
        .build();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), key).to_json();
    let trusted: TrustedKeys = [key.public_key().clone()].into_iter().collect();
    let verified = trusted
        .verify_json(envelope.as_bytes(), 1 << 20, Some(IN_TOTO_PAYLOAD_TYPE))
        .unwrap();
    let parsed = ScanStatement::from_payload(&verified.payload).unwrap();
    let (row, report) =
        StoredResult::from_verified(envelope.as_bytes(), &verified, &parsed, Some(&report), 42)
            .unwrap();
    (row, report.unwrap())
}

async fn store_scans(store: &ResultStore, key: &SigningKey, scans: &[Scan<'_>]) {
    let rows: Vec<_> = scans.iter().map(|s| row(key, s)).collect();
    let batch: Vec<_> = rows.iter().map(|(r, p)| (r, Some(p))).collect();
    store.upsert_batch(&batch).await.unwrap();
}

fn pods(results: &[StoredResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| format!("{}/{}:{}", r.namespace, r.pod, r.scan_id))
        .collect()
}

const PASS: (&str, f64, &str) = ("C-1", 0.5, "passed");
const FAIL_HIGH: (&str, f64, &str) = ("C-2", 0.7, "failed");
const FAIL_LOW: (&str, f64, &str) = ("C-3", 0.3, "failed");

async fn exercise(store: &ResultStore) {
    let key = SigningKey::generate();
    store_scans(
        store,
        &key,
        &[
            // web's newer scan fixed C-2; the newest result is what counts,
            // also when the older one arrives last.
            Scan {
                id: "02",
                namespace: "apps",
                pod: "web",
                minute: 60,
                controls: &[PASS, FAIL_LOW],
            },
            Scan {
                id: "01",
                namespace: "apps",
                pod: "web",
                minute: 0,
                controls: &[PASS, FAIL_HIGH],
            },
            Scan {
                id: "03",
                namespace: "apps",
                pod: "db",
                minute: 61,
                controls: &[FAIL_HIGH, FAIL_LOW],
            },
            Scan {
                id: "04",
                namespace: "shop",
                pod: "cart",
                minute: 2,
                controls: &[PASS],
            },
        ],
    )
    .await;
    let all = PostureFilter::default();
    let page = store.workloads(&all, 50, 0).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(
        pods(&page.results),
        ["apps/db:03", "apps/web:02", "shop/cart:04"]
    );
    // Paging.
    let second = store.workloads(&all, 2, 1).await.unwrap();
    assert_eq!(pods(&second.results), ["shop/cart:04"]);
    // Severity: only db's newest result still fails a high control.
    let high = PostureFilter {
        failing: Some(Severity::High),
        ..Default::default()
    };
    assert_eq!(
        pods(&store.workloads(&high, 50, 0).await.unwrap().results),
        ["apps/db:03"]
    );
    let low = PostureFilter {
        failing: Some(Severity::Low),
        ..Default::default()
    };
    assert_eq!(store.workloads(&low, 50, 0).await.unwrap().total, 2);
    // Staleness: cart was last scanned at minute 2.
    let stale = PostureFilter {
        stale_before_ms: Some(BASE_MS + 30 * 60_000),
        ..Default::default()
    };
    assert_eq!(
        pods(&store.workloads(&stale, 50, 0).await.unwrap().results),
        ["shop/cart:04"]
    );
    // Scopes: a set of namespaces, and an empty one.
    let apps = PostureFilter {
        namespaces: Some(["apps".to_owned()].into()),
        ..Default::default()
    };
    assert_eq!(store.workloads(&apps, 50, 0).await.unwrap().total, 2);
    let none = PostureFilter {
        namespaces: Some(Default::default()),
        ..Default::default()
    };
    assert_eq!(store.workloads(&none, 50, 0).await.unwrap().total, 0);

    let summary = store
        .namespace_posture(&all, BASE_MS + 30 * 60_000)
        .await
        .unwrap();
    assert_eq!(summary.len(), 2);
    let (a, s) = (&summary[0], &summary[1]);
    assert_eq!((a.namespace.as_str(), a.workloads, a.stale), ("apps", 2, 0));
    assert_eq!(a.failed_by_severity, [0, 1, 0, 2]);
    assert_eq!(a.compliance_percent, Some(25.0));
    assert_eq!((s.namespace.as_str(), s.workloads, s.stale), ("shop", 1, 1));

    // Trend in hours: minute 0 and 2 in the first, 60 and 61 in the second.
    let trend = store
        .compliance_trend(&all, BASE_MS, 3_600_000)
        .await
        .unwrap();
    let points: Vec<_> = trend
        .iter()
        .map(|p| (p.start_ms - BASE_MS, p.results))
        .collect();
    assert_eq!(points, [(0, 2), (3_600_000, 2)]);
    assert_eq!(trend[0].compliance_percent, 75.0);

    controls_and_retention(store).await;
}

/// Which workloads fail a control now, and retention keeping the indexes.
async fn controls_and_retention(store: &ResultStore) {
    let all = PostureFilter::default();
    let apps = PostureFilter {
        namespaces: Some(["apps".to_owned()].into()),
        ..Default::default()
    };
    let none = PostureFilter {
        namespaces: Some(Default::default()),
        ..Default::default()
    };
    // C-2 fails only where it still fails now; C-3 in both apps workloads.
    let (c2, n) = store.control_failures("C-2", &all, 50, 0).await.unwrap();
    assert_eq!((c2.len(), n, c2[0].severity.as_str()), (1, 1, "high"));
    assert_eq!(c2[0].result.scan_id, "03");
    let (_, n) = store.control_failures("C-3", &apps, 50, 0).await.unwrap();
    assert_eq!(n, 2);
    let (_, n) = store.control_failures("C-3", &none, 50, 0).await.unwrap();
    assert_eq!(n, 0);

    // Retention drops the old results; db and web keep their newest.
    store
        .delete_finished_before(BASE_MS + 30 * 60_000)
        .await
        .unwrap();
    let page = store.workloads(&all, 50, 0).await.unwrap();
    assert_eq!(pods(&page.results), ["apps/db:03", "apps/web:02"]);
}

/// 10,000 results of 2,000 workloads: the first, a deep and a filtered
/// page, the summary and a control's failures each answer well within a
/// page load.
async fn ten_thousand(store: &ResultStore) {
    // Two signed templates, copied field by field: signing 10,000 results
    // in a debug build would dominate the test without testing more.
    let key = SigningKey::generate();
    let template = |controls| {
        row(
            &key,
            &Scan {
                id: "T",
                namespace: "apps",
                pod: "p",
                minute: 0,
                controls,
            },
        )
    };
    let (passing, failing) = (template(&[PASS]), template(&[PASS, FAIL_HIGH]));
    for chunk in 0..20 {
        let rows: Vec<_> = (0..500)
            .map(|i| {
                let n: i64 = chunk * 500 + i;
                let (mut r, p) = if n % 3 == 0 {
                    failing.clone()
                } else {
                    passing.clone()
                };
                r.scan_id = format!("{n:06}");
                r.namespace = if n % 2 == 0 { "apps" } else { "shop" }.into();
                r.pod = format!("pod-{:04}", n % 2000);
                r.finished_at_ms = BASE_MS + n * 60_000;
                (r, p)
            })
            .collect();
        let batch: Vec<_> = rows.iter().map(|(r, p)| (r, Some(p))).collect();
        store.upsert_batch(&batch).await.unwrap();
    }
    let all = PostureFilter::default();
    let high = PostureFilter {
        failing: Some(Severity::High),
        ..Default::default()
    };
    let started = Instant::now();
    assert_eq!(store.workloads(&all, 50, 0).await.unwrap().total, 2000);
    assert_eq!(
        store.workloads(&all, 50, 39).await.unwrap().results.len(),
        50
    );
    let failing = store.workloads(&high, 50, 0).await.unwrap().total;
    assert!(failing > 0 && failing < 2000, "{failing}");
    assert_eq!(
        store.namespace_posture(&all, BASE_MS).await.unwrap().len(),
        2
    );
    assert_eq!(
        store.control_failures("C-2", &all, 50, 0).await.unwrap().1,
        failing
    );
    store
        .compliance_trend(&all, BASE_MS, 86_400_000)
        .await
        .unwrap();
    let took = started.elapsed();
    println!(
        "{}: six dashboard queries over 10,000 results in {took:?}",
        store.backend()
    );
    assert!(took.as_secs_f64() < 5.0, "dashboard queries took {took:?}");
}

#[tokio::test]
async fn sqlite_posture_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = ResultStore::connect(&format!("sqlite://{}", dir.path().join("r.db").display()))
        .await
        .unwrap();
    exercise(&store).await;
}

#[tokio::test]
async fn postgres_posture_queries() {
    let pg = Postgres::start();
    exercise(&ResultStore::connect(&pg.url()).await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_posture_pages_stay_fast_with_ten_thousand_results() {
    let dir = tempfile::tempdir().unwrap();
    let store = ResultStore::connect(&format!("sqlite://{}", dir.path().join("r.db").display()))
        .await
        .unwrap();
    ten_thousand(&store).await;
}

#[tokio::test]
async fn postgres_posture_pages_stay_fast_with_ten_thousand_results() {
    let pg = Postgres::start();
    ten_thousand(&ResultStore::connect(&pg.url()).await.unwrap()).await;
}
