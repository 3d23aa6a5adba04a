//! Drift reports alike on SQLite and a real PostgreSQL 15: a stored scan
//! finds its partner of the other kind (same digest and profile version),
//! a report is replaced only by one against an image scan no older, and
//! retention removes it with either scan.

use scanfleet_result_store::{BodyEncoding, DriftRecord, ResultStore, StoredResult};
use scanfleet_test_harness::fleet::SampleStatement;
use scanfleet_test_harness::postgres::Postgres;
use scanfleet_trust::statement::TargetKind;
use scanfleet_trust::{Envelope, IN_TOTO_PAYLOAD_TYPE, ScanStatement, SigningKey, TrustedKeys};

const DIGEST: &str = "ab";

/// A verified row: an image scan when `namespace` is empty.
fn row(key: &SigningKey, id: &str, namespace: &str, version: &str, second: u32) -> StoredResult {
    let report = format!("{{\"profiles\":[],\"id\":\"{id}\"}}").into_bytes();
    let image = namespace.is_empty();
    let pod = if image {
        String::new()
    } else {
        format!("pod-{id}")
    };
    let statement = SampleStatement::new(id)
        .target("kubesim", namespace, &pod, if image { "" } else { "app" })
        .digest_hex(&DIGEST.repeat(32))
        .report(&report)
        .times(
            &format!("2026-11-23T10:00:{second:02}Z"),
            &format!("2026-11-23T10:00:{second:02}Z"),
        )
        .with(|p| {
            p.profile.version = version.into();
            if image {
                p.target.kind = TargetKind::Image;
            }
        })
        .build();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), key).to_json();
    let trusted: TrustedKeys = [key.public_key().clone()].into_iter().collect();
    let verified = trusted
        .verify_json(envelope.as_bytes(), 1 << 20, Some(IN_TOTO_PAYLOAD_TYPE))
        .unwrap();
    let parsed = ScanStatement::from_payload(&verified.payload).unwrap();
    StoredResult::from_verified(envelope.as_bytes(), &verified, &parsed, Some(&report), 42)
        .unwrap()
        .0
}

fn drift(container: &str, image: &str, image_finished_at_ms: i64, drifted: i64) -> DriftRecord {
    DriftRecord {
        container_scan_id: container.into(),
        image_scan_id: image.into(),
        image_finished_at_ms,
        profile_name: "container-baseline".into(),
        profile_version: "1.0.0".into(),
        drifted,
        controls: b"[]".to_vec(),
        encoding: BodyEncoding::Plain,
        computed_at_ms: 7,
    }
}

async fn exercise(store: &ResultStore) {
    let key = SigningKey::generate();
    let rows = [
        row(&key, "img-old", "", "1.0.0", 1),
        row(&key, "img-new", "", "1.0.0", 2),
        row(&key, "img-other-version", "", "1.1.0", 3),
        row(&key, "c-1", "shop", "1.0.0", 4),
        row(&key, "c-2", "shop", "1.0.0", 5),
        row(&key, "c-other-version", "shop", "1.1.0", 6),
    ];
    assert!(rows[0].is_image_scan() && !rows[3].is_image_scan());
    let batch: Vec<_> = rows.iter().map(|r| (r, None)).collect();
    store.upsert_batch(&batch).await.unwrap();
    let digest = format!("sha256:{}", DIGEST.repeat(32));

    let image = store
        .latest_image_scan(&digest, "container-baseline", "1.0.0")
        .await
        .unwrap()
        .expect("an image scan of that digest and version");
    assert_eq!(image.scan_id, "img-new", "the newest of that version");
    assert!(
        store
            .latest_image_scan(&digest, "container-baseline", "2.0.0")
            .await
            .unwrap()
            .is_none()
    );
    // The batched lookup finds the same partner, one per profile version,
    // and nothing for a digest without image scans.
    let absent = format!("sha256:{}", "cd".repeat(32));
    let mut partners: Vec<(String, String)> = store
        .latest_image_scans(&[&digest, &absent])
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.profile_version, r.scan_id))
        .collect();
    partners.sort();
    assert_eq!(
        partners,
        [
            ("1.0.0".to_owned(), "img-new".to_owned()),
            ("1.1.0".to_owned(), "img-other-version".to_owned()),
        ]
    );
    assert!(store.latest_image_scans(&[]).await.unwrap().is_empty());
    let containers = store
        .latest_container_scans(&digest, "container-baseline", "1.0.0")
        .await
        .unwrap();
    let ids: Vec<_> = containers.iter().map(|r| r.scan_id.as_str()).collect();
    assert_eq!(
        ids,
        ["c-2", "c-1"],
        "each workload's newest, no image scans"
    );

    assert_eq!(store.drift("c-1").await.unwrap(), None);
    let newer = drift("c-1", "img-new", image.finished_at_ms, 2);
    store.put_drift(&newer).await.unwrap();
    assert_eq!(store.drift("c-1").await.unwrap(), Some(newer.clone()));
    // A redelivered older image scan does not replace the newer comparison;
    // the same one again (or a newer one) does.
    let older = drift("c-1", "img-old", image.finished_at_ms - 1000, 5);
    store.put_drift(&older).await.unwrap();
    assert_eq!(store.drift("c-1").await.unwrap(), Some(newer.clone()));
    let again = DriftRecord {
        drifted: 3,
        encoding: BodyEncoding::Age,
        ..newer.clone()
    };
    store.put_drift(&again).await.unwrap();
    assert_eq!(store.drift("c-1").await.unwrap(), Some(again));

    // Retention of the image scan removes the reports made against it.
    store
        .put_drift(&drift("c-2", "img-old", image.finished_at_ms - 1000, 1))
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_finished_before(image.finished_at_ms)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.drift("c-2").await.unwrap(), None);
    assert!(store.drift("c-1").await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_drift_reports() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("results.db").display());
    exercise(&ResultStore::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_drift_reports() {
    let pg = Postgres::start();
    exercise(&ResultStore::connect(&pg.url()).await.unwrap()).await;
}
