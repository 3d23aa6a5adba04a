//! The same behaviour on SQLite and on a real PostgreSQL 15 cluster.

use std::collections::BTreeMap;

use scanfleet_result_store::{
    PageToken, ResultFilter, ResultStore, StoreError, StoredResult, Upsert,
};
use scanfleet_test_harness::fleet::SampleStatement;
use scanfleet_test_harness::postgres::Postgres;
use scanfleet_trust::statement::HDF_MEDIA_TYPE;
use scanfleet_trust::{Envelope, IN_TOTO_PAYLOAD_TYPE, ScanStatement, SigningKey, TrustedKeys};

struct Sample {
    namespace: &'static str,
    digest_byte: u8,
    completed: bool,
    threshold_passed: Option<bool>,
    second: u32,
}

/// Signs and verifies a statement the way the collector will receive it.
fn verified_row(key: &SigningKey, scan_id: &str, s: &Sample) -> (StoredResult, Vec<u8>) {
    let report = format!("{{\"hdf\":\"{scan_id}\"}}").into_bytes();
    let mut sample = SampleStatement::new(scan_id)
        .target("kubesim", s.namespace, &format!("pod-{scan_id}"), "app")
        .digest_hex(&format!("{:02x}", s.digest_byte).repeat(32))
        .report(&report)
        .times(
            &format!("2026-11-23T10:00:{:02}Z", s.second),
            &format!("2026-11-23T10:00:{:02}.500Z", s.second),
        )
        .with(|p| {
            if let Some(summary) = p.summary.as_mut() {
                summary.passed = 9;
                summary.failed = 1;
                summary.compliance_percent = 90.0;
                summary.failed_by_severity = BTreeMap::from([("high".into(), 1)]);
            }
        });
    if !s.completed {
        sample = sample.failed("pod gone");
    }
    if let Some(passed) = s.threshold_passed {
        sample = sample.threshold(passed);
    }
    let statement = sample.build();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), key).to_json();
    let trusted: TrustedKeys = [key.public_key().clone()].into_iter().collect();
    let verified = trusted
        .verify_json(envelope.as_bytes(), 1 << 20, Some(IN_TOTO_PAYLOAD_TYPE))
        .unwrap();
    let parsed = ScanStatement::from_payload(&verified.payload).unwrap();
    let (row, _) =
        StoredResult::from_verified(envelope.as_bytes(), &verified, &parsed, None, 42).unwrap();
    (row, report)
}

/// Everything both backends must do alike, step by step on one store.
async fn exercise(store: &ResultStore) {
    let key = SigningKey::generate();
    upserts_are_idempotent_and_still_verify(store, &key).await;
    store_six_more(store, &key).await;
    pages_are_newest_first_without_overlap_or_gap(store).await;
    filters_select_by_namespace_digest_outcome_verdict_and_time(store).await;
    namespaces_are_listed_and_sets_of_them_filter(store).await;
    retention_by_age_removes_results_and_their_reports(store).await;
}

/// Idempotent upsert; the stored envelope still verifies independently.
async fn upserts_are_idempotent_and_still_verify(store: &ResultStore, key: &SigningKey) {
    let (row, report_body) = verified_row(
        key,
        "01A",
        &Sample {
            namespace: "shop",
            digest_byte: 1,
            completed: true,
            threshold_passed: Some(true),
            second: 1,
        },
    );
    let report = scanfleet_result_store::Report {
        media_type: HDF_MEDIA_TYPE.into(),
        sha256: row.report_sha256.clone().unwrap(),
        body: report_body,
        encoding: scanfleet_result_store::BodyEncoding::Plain,
    };

    // Idempotent upsert.
    assert_eq!(
        store.upsert(&row, Some(&report)).await.unwrap(),
        Upsert::Inserted
    );
    assert_eq!(
        store.upsert(&row, Some(&report)).await.unwrap(),
        Upsert::AlreadyStored
    );
    assert_eq!(store.count().await.unwrap(), 1);
    assert_eq!(store.get("01A").await.unwrap().unwrap(), row);
    assert_eq!(store.report("01A").await.unwrap().unwrap(), report);
    assert_eq!(store.get("nope").await.unwrap(), None);

    // The stored envelope still verifies independently.
    let stored = store.get("01A").await.unwrap().unwrap();
    let trusted: TrustedKeys = [key.public_key().clone()].into_iter().collect();
    assert!(trusted.verify_json(&stored.envelope, 1 << 20, None).is_ok());
}

/// Six more, across namespaces, digests, outcomes and verdicts, stored as
/// one batch that also repeats an already stored scan and one of its own:
/// each gets its own outcome, in order, and nothing is stored twice.
async fn store_six_more(store: &ResultStore, key: &SigningKey) {
    let samples = [
        ("01B", "shop", 2, true, Some(false), 2),
        ("01C", "shop", 2, false, None, 3),
        ("01D", "infra", 3, true, None, 4),
        ("01A", "shop", 1, true, Some(true), 1),
        ("01E", "infra", 1, true, Some(false), 5),
        ("01F", "shop", 4, true, Some(true), 6),
        ("01C", "shop", 2, false, None, 3),
        ("01G", "web", 5, true, None, 7),
    ];
    let rows: Vec<StoredResult> = samples
        .into_iter()
        .map(
            |(id, namespace, digest_byte, completed, threshold_passed, second)| {
                verified_row(
                    key,
                    id,
                    &Sample {
                        namespace,
                        digest_byte,
                        completed,
                        threshold_passed,
                        second,
                    },
                )
                .0
            },
        )
        .collect();
    let batch: Vec<_> = rows.iter().map(|row| (row, None)).collect();
    let outcomes = store.upsert_batch(&batch).await.unwrap();
    use Upsert::{AlreadyStored as Again, Inserted as New};
    assert_eq!(outcomes, [New, New, New, Again, New, New, Again, New]);
    assert_eq!(store.count().await.unwrap(), 7);
    assert!(
        store.report("01A").await.unwrap().is_some(),
        "a repeat without a report leaves the stored report alone"
    );
    assert_eq!(store.upsert_batch(&[]).await.unwrap(), []);
}

fn ids(page: &scanfleet_result_store::Page) -> Vec<String> {
    page.results.iter().map(|r| r.scan_id.clone()).collect()
}

/// Paging: newest first, no overlap, no gap.
async fn pages_are_newest_first_without_overlap_or_gap(store: &ResultStore) {
    let mut seen = Vec::new();
    let mut token: Option<PageToken> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list(&ResultFilter::default(), 3, token.as_ref())
            .await
            .unwrap();
        seen.extend(ids(&page));
        pages += 1;
        match page.next {
            Some(t) => token = Some(PageToken::decode(&t.encode()).unwrap()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["01G", "01F", "01E", "01D", "01C", "01B", "01A"]);
}

async fn filters_select_by_namespace_digest_outcome_verdict_and_time(store: &ResultStore) {
    let filtered =
        |filter: ResultFilter| async move { ids(&store.list(&filter, 0, None).await.unwrap()) };
    assert_eq!(
        filtered(ResultFilter {
            namespace: Some("shop".into()),
            ..Default::default()
        })
        .await,
        ["01F", "01C", "01B", "01A"]
    );
    assert_eq!(
        filtered(ResultFilter {
            image_digest: Some(format!("sha256:{}", "02".repeat(32))),
            ..Default::default()
        })
        .await,
        ["01C", "01B"]
    );
    assert_eq!(
        filtered(ResultFilter {
            completed: Some(false),
            ..Default::default()
        })
        .await,
        ["01C"]
    );
    assert_eq!(
        filtered(ResultFilter {
            threshold_passed: Some(false),
            ..Default::default()
        })
        .await,
        ["01E", "01B"]
    );
    let t = |s: u32| time_ms(s);
    assert_eq!(
        filtered(ResultFilter {
            since_ms: Some(t(3)),
            until_ms: Some(t(6)),
            ..Default::default()
        })
        .await,
        ["01E", "01D", "01C"]
    );
}

/// What a listing spans, and a listing narrowed to a set of namespaces
/// (what authorization hands the store).
async fn namespaces_are_listed_and_sets_of_them_filter(store: &ResultStore) {
    assert_eq!(
        store.namespaces(None, 100).await.unwrap(),
        ["infra", "shop", "web"]
    );
    assert_eq!(store.namespaces(None, 2).await.unwrap(), ["infra", "shop"]);
    assert_eq!(
        store.namespaces(Some("kubesim"), 100).await.unwrap().len(),
        3
    );
    assert!(
        store
            .namespaces(Some("elsewhere"), 100)
            .await
            .unwrap()
            .is_empty()
    );
    let only = |set: &[&str]| ResultFilter {
        namespaces: Some(set.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let page = store.list(&only(&["infra", "web"]), 0, None).await.unwrap();
    assert_eq!(ids(&page), ["01G", "01E", "01D"]);
    assert!(
        store
            .list(&only(&[]), 0, None)
            .await
            .unwrap()
            .results
            .is_empty()
    );
}

/// A report kept encrypted is stored and read back as such.
async fn a_sealed_report_keeps_its_encoding(store: &ResultStore, key: &SigningKey) {
    let (row, _) = verified_row(
        key,
        "01S",
        &Sample {
            namespace: "vault",
            digest_byte: 7,
            completed: true,
            threshold_passed: None,
            second: 9,
        },
    );
    let sealed = scanfleet_result_store::Report {
        media_type: HDF_MEDIA_TYPE.into(),
        sha256: row.report_sha256.clone().unwrap(),
        body: b"age-encryption.org/v1 ...".to_vec(),
        encoding: scanfleet_result_store::BodyEncoding::Age,
    };
    store.upsert(&row, Some(&sealed)).await.unwrap();
    assert_eq!(store.report("01S").await.unwrap().unwrap(), sealed);
}

/// Retention by age removes results and their reports.
async fn retention_by_age_removes_results_and_their_reports(store: &ResultStore) {
    assert_eq!(store.delete_finished_before(time_ms(3)).await.unwrap(), 2);
    assert_eq!(store.count().await.unwrap(), 5);
    assert_eq!(store.report("01A").await.unwrap(), None);
}

/// Unix ms of 2026-11-23T10:00:SS.000Z.
fn time_ms(second: u32) -> i64 {
    let base = time::OffsetDateTime::parse(
        "2026-11-23T10:00:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    (base.unix_timestamp() + i64::from(second)) * 1000
}

#[tokio::test]
async fn sqlite_store_behaves() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("results.db").display());
    let store = ResultStore::connect(&url).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    exercise(&store).await;
    a_sealed_report_keeps_its_encoding(&store, &SigningKey::generate()).await;
    // Data survives reopening, and migrations are idempotent.
    drop(store);
    let store = ResultStore::connect(&url).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 6);
}

#[tokio::test]
async fn postgres_store_behaves() {
    let pg = Postgres::start();
    let store = ResultStore::connect(&pg.url()).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    exercise(&store).await;
    a_sealed_report_keeps_its_encoding(&store, &SigningKey::generate()).await;
}

#[tokio::test]
async fn postgres_outage_is_reported_as_unavailable_and_recovers() {
    let mut pg = Postgres::start();
    let store = ResultStore::connect(&pg.url()).await.unwrap();
    let key = SigningKey::generate();
    let sample = |second| Sample {
        namespace: "shop",
        digest_byte: 9,
        completed: true,
        threshold_passed: None,
        second,
    };
    let (first, _) = verified_row(&key, "01X", &sample(1));
    store.upsert(&first, None).await.unwrap();

    pg.stop();
    let (second, _) = verified_row(&key, "01Y", &sample(2));
    let err = store.upsert(&second, None).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");

    pg.start_again();
    assert_eq!(store.upsert(&second, None).await.unwrap(), Upsert::Inserted);
    assert_eq!(store.count().await.unwrap(), 2);
}

#[tokio::test]
async fn a_report_that_is_not_the_signed_one_is_refused() {
    let key = SigningKey::generate();
    let (row, _) = verified_row(
        &key,
        "01Z",
        &Sample {
            namespace: "shop",
            digest_byte: 1,
            completed: true,
            threshold_passed: None,
            second: 1,
        },
    );
    let statement = ScanStatement::from_payload(row.statement.as_bytes()).unwrap();
    let trusted: TrustedKeys = [key.public_key().clone()].into_iter().collect();
    let verified = trusted.verify_json(&row.envelope, 1 << 20, None).unwrap();
    let err = StoredResult::from_verified(&row.envelope, &verified, &statement, Some(b"forged"), 1)
        .unwrap_err();
    assert!(matches!(err, StoreError::ReportMismatch { .. }), "{err}");
}

#[tokio::test]
async fn unsupported_urls_are_refused_by_name() {
    let err = ResultStore::connect("mysql://x").await.err().unwrap();
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err}");
}
