//! Results a hostile publisher can put on the bus, against the real
//! collector binary: oversized report objects and results published under
//! another place's subject (red-team findings 2 and 5 of issue #12).

mod support;

use async_nats::HeaderMap;
use async_nats::jetstream;
use prost::Message as _;
use scanfleet_bus::topology::{QUARANTINE_STREAM, REPORTS_BUCKET};
use scanfleet_contracts::v1::{ResultEvent, result_event};
use scanfleet_trust::{Envelope, IN_TOTO_PAYLOAD_TYPE, SigningKey};
use sha2::{Digest, Sha256};
use support::*;

async fn quarantined(js: &jetstream::Context) -> Vec<String> {
    let stream = js.get_stream(QUARANTINE_STREAM).await.unwrap();
    let count = stream.clone().info().await.unwrap().state.messages;
    let mut reasons = Vec::new();
    for seq in 1..=count {
        let m = stream.get_raw_message(seq).await.unwrap();
        reasons.push(
            m.headers
                .get("Scanfleet-Quarantine-Reason")
                .unwrap()
                .as_str()
                .to_owned(),
        );
    }
    reasons
}

/// Finding 2: `read_object` used to read a report object whole, whatever
/// its size; three replays of an envelope pointing at a 200 MiB object took
/// the collector from 64 MB to 296 MB. Now the stored size is checked
/// first and the read is bounded by `--max-event-bytes`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_report_object_is_quarantined_without_being_read() {
    let (_sim, creds) = credentials().await;
    let bus = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let pub_path = write_public_key(dir.path(), &key);
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let mut args = base_args(&bus, &store, &pub_path);
    args.extend(["--max-event-bytes".into(), (1024 * 1024).to_string()]);
    let collector = CollectorProcess::start(args, dir.path(), &creds);
    let js = bus.js(BusIdentity::Worker).await;
    let admin = bus.admin().await;

    // A 96 MiB "report", bound by a validly signed statement.
    let body: Vec<u8> = (0..96 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let name = hex::encode(Sha256::digest(&body));
    js.get_object_store(REPORTS_BUCKET)
        .await
        .unwrap()
        .put(name.as_str(), &mut body.as_slice())
        .await
        .unwrap();
    let statement = SampleStatement::new("01HUGE").report(&body).build();
    drop(body);
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), &key).to_json();
    let event = ResultEvent {
        envelope: envelope.into_bytes(),
        report: Some(result_event::Report::ReportObject(name)),
    }
    .encode_to_vec();
    let before_kib = collector.peak_rss_kib();
    for replay in 0..3 {
        publish(
            &js,
            "shop",
            &format!("01HUGE-{replay}"),
            HeaderMap::new(),
            event.clone(),
        )
        .await;
    }
    eventually("three quarantined replays", || async {
        quarantined(&admin).await.len() == 3
    })
    .await;
    assert_eq!(quarantined(&admin).await, ["report_too_large"; 3]);
    assert_eq!(
        collector
            .metric("scanfleet_collector_results_quarantined_total{reason=\"report_too_large\"}")
            .await,
        3
    );
    assert_eq!(stored_count(&collector).await, 0);
    let grown_kib = collector.peak_rss_kib().saturating_sub(before_kib);
    assert!(
        grown_kib < 32 * 1024,
        "peak memory grew by {grown_kib} KiB reading a 96 MiB object it must refuse"
    );
    assert!(
        collector.log().contains("over the limit of 1048576"),
        "the reason names the limit:\n{}",
        collector.log()
    );
}

/// Finding 5: a real envelope about a `kube-system` container re-published
/// on `scan.results.kubesim.apps` used to be stored (a duplicate of
/// itself). Subscribers filter by subject, so the collector now refuses a
/// subject that disagrees with the signed statement.
#[tokio::test]
async fn a_result_under_another_places_subject_is_quarantined() {
    let (_sim, creds) = credentials().await;
    let bus = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let pub_path = write_public_key(dir.path(), &key);
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let collector = CollectorProcess::start(base_args(&bus, &store, &pub_path), dir.path(), &creds);
    let js = bus.js(BusIdentity::Worker).await;
    let admin = bus.admin().await;

    let about_kube_system = result(&key, "01SYSTEM", "kube-system");
    publish(
        &js,
        "apps",
        "moved",
        HeaderMap::new(),
        inline_event(&about_kube_system),
    )
    .await;
    eventually("the moved result quarantined", || async {
        quarantined(&admin).await == ["wrong_subject"]
    })
    .await;
    assert_eq!(stored_count(&collector).await, 0, "not stored under apps");
    // The same envelope on its own subject is a good result.
    publish(
        &js,
        "kube-system",
        "original",
        HeaderMap::new(),
        inline_event(&about_kube_system),
    )
    .await;
    eventually("the original stored", || async {
        stored_count(&collector).await == 1
    })
    .await;
    assert!(
        collector
            .log()
            .contains("the signed statement is about kubesim/kube-system"),
        "{}",
        collector.log()
    );
}
