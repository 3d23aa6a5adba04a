//! The collector end to end: the real binary, a real nats-server, SQLite and
//! PostgreSQL.

mod support;

use async_nats::HeaderMap;
use async_nats::jetstream;
use scanfleet_bus::topology::{QUARANTINE_STREAM, REPORTS_BUCKET};
use scanfleet_contracts::v1::{
    GetResultRequest, ListResultsRequest, ResultFilter, WatchResultsRequest,
    results_client::ResultsClient,
};
use scanfleet_edge_access::Authenticated;
use scanfleet_test_harness::postgres::Postgres;
use scanfleet_trust::{AgeIdentities, SigningKey, TrustedKeys};
use support::*;

#[tokio::test]
async fn every_result_is_stored_exactly_once_and_still_verifies() {
    let (_sim, creds) = credentials().await;
    let bus = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let pub_path = write_public_key(dir.path(), &key);
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let collector = CollectorProcess::start(base_args(&bus, &store, &pub_path), dir.path(), &creds);
    let js = bus.js(BusIdentity::Worker).await;

    let published =
        twenty_results_and_five_redeliveries_are_stored_once(&js, &key, &collector).await;
    let mut client = collector.results().await;
    every_stored_envelope_verifies_through_grpc(&mut client, &key).await;
    grpc_filters_and_names_missing_and_bad_requests(&mut client).await;
    http_serves_the_exact_report_and_envelope(&collector, &published[0]).await;
}

/// Even results in "shop", odd ones in "infra".
fn namespace_of(i: usize) -> &'static str {
    if i.is_multiple_of(2) { "shop" } else { "infra" }
}

/// Twenty results, each on its own namespace's subject as a worker
/// publishes it, then five redeliveries: twenty stored, five duplicates.
async fn twenty_results_and_five_redeliveries_are_stored_once(
    js: &jetstream::Context,
    key: &SigningKey,
    collector: &CollectorProcess,
) -> Vec<Published> {
    let published: Vec<Published> = (0..20)
        .map(|i| result(key, &format!("01SCAN{i:04}"), namespace_of(i)))
        .collect();
    // Each on its own namespace's subject, as a worker publishes it.
    for (i, p) in published.iter().enumerate() {
        publish(
            js,
            namespace_of(i),
            &p.scan_id,
            HeaderMap::new(),
            inline_event(p),
        )
        .await;
    }
    // Five redeliveries after the dedupe window (new msg-ids, same scans).
    for (i, p) in published[..5].iter().enumerate() {
        publish(
            js,
            namespace_of(i),
            &format!("{}-again", p.scan_id),
            HeaderMap::new(),
            inline_event(p),
        )
        .await;
    }
    eventually("20 stored and 5 duplicates seen", || async {
        collector
            .metric("scanfleet_collector_results_stored_total")
            .await
            == 20
            && collector
                .metric("scanfleet_collector_results_duplicate_total")
                .await
                == 5
    })
    .await;
    assert_eq!(stored_count(collector).await, 20);
    published
}

/// gRPC: every stored envelope verifies with the trust layer again.
async fn every_stored_envelope_verifies_through_grpc(
    client: &mut ResultsClient<Authenticated>,
    key: &SigningKey,
) {
    let trusted: TrustedKeys = [key.public_key().clone()].into_iter().collect();
    let mut token = String::new();
    let mut seen = 0;
    loop {
        let page = client
            .list(ListResultsRequest {
                filter: None,
                page_size: 7,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        for r in &page.results {
            let verified = trusted.verify_json(&r.envelope, 1 << 20, None).unwrap();
            assert_eq!(verified.key_id.as_str(), r.signer_key_id);
            seen += 1;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, 20);
}

/// gRPC: a namespace filter, NotFound for an unknown scan, InvalidArgument
/// for a bad page token.
async fn grpc_filters_and_names_missing_and_bad_requests(
    client: &mut ResultsClient<Authenticated>,
) {
    let shop = client
        .list(ListResultsRequest {
            filter: Some(ResultFilter {
                namespace: "shop".into(),
                ..Default::default()
            }),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shop.results.len(), 10);
    let missing = client
        .get(GetResultRequest {
            scan_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let bad = client
        .list(ListResultsRequest {
            filter: None,
            page_size: 1,
            page_token: "not-a-token".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}

/// HTTP: the exact report and envelope of `first` (scan 01SCAN0000), and
/// clear 4xx for bad queries.
async fn http_serves_the_exact_report_and_envelope(
    collector: &CollectorProcess,
    first: &Published,
) {
    let r = collector.get("/v1/results/01SCAN0000/report").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, first.report);
    let r = collector.get("/v1/results/01SCAN0000/envelope").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), first.envelope);
    let r = collector.get("/v1/results?outcome=bogus").await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("outcome"), "{}", r.text());
    let r = collector.get("/v1/results?colour=red").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(collector.get("/v1/results/nope").await.status, 404);
    assert_eq!(collector.get("/readyz").await.status, 200);
}

#[tokio::test]
async fn tampered_foreign_and_garbage_events_are_quarantined_not_stored() {
    let (_sim, creds) = credentials().await;
    let bus = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let stranger = SigningKey::generate();
    let pub_path = write_public_key(dir.path(), &key);
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let collector = CollectorProcess::start(base_args(&bus, &store, &pub_path), dir.path(), &creds);
    let js = bus.js(BusIdentity::Worker).await;

    // Tampered: one byte of the signed payload changed.
    let good = result(&key, "01TAMPER", "shop");
    let mut wire: serde_json::Value = serde_json::from_str(&good.envelope).unwrap();
    let mut payload = base64_decode(wire["payload"].as_str().unwrap());
    let i = payload.iter().position(|b| *b == b'8').unwrap(); // "passed":8
    payload[i] = b'9';
    wire["payload"] = base64_encode(&payload).into();
    let tampered = Published {
        envelope: wire.to_string(),
        ..good
    };
    publish(&js, "shop", "t1", HeaderMap::new(), inline_event(&tampered)).await;
    // Signed by a key the collector does not trust.
    publish(
        &js,
        "shop",
        "t2",
        HeaderMap::new(),
        inline_event(&result(&stranger, "01FOREIGN", "shop")),
    )
    .await;
    // Not a ResultEvent at all.
    publish(
        &js,
        "shop",
        "t3",
        HeaderMap::new(),
        b"\xff\xff garbage".to_vec(),
    )
    .await;
    // Encrypted, but this collector has no identity.
    let mut headers = HeaderMap::new();
    headers.insert("Scanfleet-Encoding", "age");
    let sealed = encrypt_to(
        &inline_event(&result(&key, "01SEALED", "shop")),
        &AgeIdentities::generate().recipients(),
    );
    publish(&js, "shop", "t4", headers, sealed).await;
    // And one good result, to show the consumer kept going.
    publish(
        &js,
        "shop",
        "t5",
        HeaderMap::new(),
        inline_event(&result(&key, "01GOOD", "shop")),
    )
    .await;

    eventually("the good result", || async {
        collector
            .metric("scanfleet_collector_results_stored_total")
            .await
            == 1
    })
    .await;
    let quarantine = bus
        .admin()
        .await
        .get_stream(QUARANTINE_STREAM)
        .await
        .unwrap();
    eventually("four quarantined events", || {
        let mut q = quarantine.clone();
        async move { q.info().await.unwrap().state.messages == 4 }
    })
    .await;
    let mut reasons = Vec::new();
    for seq in 1..=4 {
        let m = quarantine.get_raw_message(seq).await.unwrap();
        reasons.push(
            m.headers
                .get("Scanfleet-Quarantine-Reason")
                .unwrap()
                .as_str()
                .to_owned(),
        );
    }
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "bad_signature",
            "malformed_event",
            "undecryptable",
            "unknown_key"
        ]
    );
    for label in [
        "bad_signature",
        "malformed_event",
        "undecryptable",
        "unknown_key",
    ] {
        assert_eq!(
            collector
                .metric(&format!(
                    "scanfleet_collector_results_quarantined_total{{reason=\"{label}\"}}"
                ))
                .await,
            1
        );
    }
    assert_eq!(
        stored_count(&collector).await,
        1,
        "nothing unverified was stored"
    );
}

#[tokio::test]
async fn encrypted_results_with_reports_in_the_object_store_are_stored() {
    let (_sim, creds) = credentials().await;
    let bus = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let pub_path = write_public_key(dir.path(), &key);
    let identity = AgeIdentities::generate();
    let id_path = dir.path().join("collector.agekey");
    std::fs::write(&id_path, identity.to_file_text().as_bytes()).unwrap();
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let mut args = base_args(&bus, &store, &pub_path);
    args.extend(["--age-identity".into(), id_path.display().to_string()]);
    let collector = CollectorProcess::start(args, dir.path(), &creds);
    let js = bus.js(BusIdentity::Worker).await;

    let p = result(&key, "01BIG", "shop");
    let name = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&p.report));
    let bucket = js.get_object_store(REPORTS_BUCKET).await.unwrap();
    let sealed_report = encrypt_to(&p.report, &identity.recipients());
    bucket
        .put(name.as_str(), &mut sealed_report.as_slice())
        .await
        .unwrap();
    let event = prost::Message::encode_to_vec(&scanfleet_contracts::v1::ResultEvent {
        envelope: p.envelope.clone().into_bytes(),
        report: Some(scanfleet_contracts::v1::result_event::Report::ReportObject(
            name,
        )),
    });
    let mut headers = HeaderMap::new();
    headers.insert("Scanfleet-Encoding", "age");
    publish(
        &js,
        "shop",
        "big",
        headers,
        encrypt_to(&event, &identity.recipients()),
    )
    .await;

    // Watch by scan id ends once the result arrives.
    let mut client = collector.results().await;
    let mut watch = client
        .watch(WatchResultsRequest {
            filter: None,
            scan_ids: vec!["01BIG".into()],
            include_existing: true,
        })
        .await
        .unwrap()
        .into_inner();
    let got = tokio::time::timeout(std::time::Duration::from_secs(30), watch.message())
        .await
        .expect("watch delivers")
        .unwrap()
        .unwrap();
    assert_eq!(got.scan_id, "01BIG");
    assert!(watch.message().await.unwrap().is_none(), "stream ends");
    let r = collector.get("/v1/results/01BIG/report").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, p.report, "the decrypted plaintext report");
}

#[tokio::test]
async fn a_postgres_outage_delays_results_and_loses_none() {
    let (_sim, creds) = credentials().await;
    let bus = SecureBus::start().await;
    let mut pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let pub_path = write_public_key(dir.path(), &key);
    let collector =
        CollectorProcess::start(base_args(&bus, &pg.url(), &pub_path), dir.path(), &creds);
    let js = bus.js(BusIdentity::Worker).await;

    for i in 0..5 {
        let p = result(&key, &format!("01PRE{i}"), "shop");
        publish(&js, "shop", &p.scan_id, HeaderMap::new(), inline_event(&p)).await;
    }
    eventually("the first five", || async {
        collector
            .metric("scanfleet_collector_results_stored_total")
            .await
            == 5
    })
    .await;

    pg.stop();
    for i in 0..10 {
        let p = result(&key, &format!("01DURING{i}"), "shop");
        publish(&js, "shop", &p.scan_id, HeaderMap::new(), inline_event(&p)).await;
    }
    eventually("the collector to notice the outage", || async {
        collector
            .metric("scanfleet_collector_store_unavailable_total")
            .await
            > 0
    })
    .await;
    assert_eq!(
        collector
            .metric("scanfleet_collector_results_stored_total")
            .await,
        5
    );

    pg.start_again();
    eventually("the backlog to be persisted", || async {
        collector
            .metric("scanfleet_collector_results_stored_total")
            .await
            == 15
    })
    .await;
    assert_eq!(stored_count(&collector).await, 15);
}

#[tokio::test]
async fn a_stopped_collector_catches_up_when_it_returns() {
    let (_sim, creds) = credentials().await;
    let bus = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let pub_path = write_public_key(dir.path(), &key);
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let args = base_args(&bus, &store, &pub_path);
    let mut collector = CollectorProcess::start(args.clone(), dir.path(), &creds);
    let js = bus.js(BusIdentity::Worker).await;
    assert!(
        collector.stop().success(),
        "clean exit on SIGTERM:\n{}",
        collector.log()
    );

    for i in 0..10 {
        let p = result(&key, &format!("01AWAY{i}"), "shop");
        publish(&js, "shop", &p.scan_id, HeaderMap::new(), inline_event(&p)).await;
    }
    let collector = CollectorProcess::start(args, dir.path(), &creds);
    eventually("the backlog", || async {
        stored_count(&collector).await == 10
    })
    .await;
}

#[test]
fn invalid_configuration_lists_every_problem_and_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanfleet-collector"))
        .args([
            "--nats-url",
            "http://x",
            "--store-url",
            "mysql://x",
            "--trusted-key",
            "/nonexistent.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "--nats-url",
        "--store-url",
        "--trusted-key: /nonexistent.pem",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
