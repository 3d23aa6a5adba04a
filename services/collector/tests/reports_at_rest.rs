//! Results at rest, through the real collector binary: with
//! `--require-encryption`, a plaintext result event is quarantined
//! (`unencrypted`), an encrypted one is stored with its report encrypted,
//! an authorized reader gets the plaintext report back, and neither the
//! SQLite files nor PostgreSQL's data directory (tables and WAL) hold a
//! byte of the report in the clear. The control: the same store, written
//! by a collector without the setting, does show its report's bytes, so
//! the search would have found them. A drift report quoting the sealed
//! report is kept sealed as well.

mod support;

use std::path::{Path, PathBuf};

use async_nats::HeaderMap;
use scanfleet_test_harness::postgres::Postgres;
use scanfleet_trust::{AgeIdentities, Envelope, IN_TOTO_PAYLOAD_TYPE, SigningKey};
use support::*;

/// A result whose report carries `marker`, bytes found nowhere else.
fn marked(key: &SigningKey, scan_id: &str, marker: &str) -> Published {
    let report = serde_json::json!({"profiles": [{"controls": [{"id": "C-1",
        "results": [{"status": "failed", "code_desc": marker}]}]}]})
    .to_string()
    .into_bytes();
    let statement = SampleStatement::new(scan_id)
        .namespace("apps")
        .report(&report)
        .build();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), key).to_json();
    Published {
        scan_id: scan_id.into(),
        report,
        envelope,
    }
}

fn unique_marker(what: &str) -> String {
    use rand_core::RngCore as _;
    let mut nonce = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut nonce);
    format!("{what}-{}", hex::encode(nonce))
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if std::fs::read(&path)
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
            {
                found.push(path);
            }
        }
    }
    found
}

/// One store, written twice: sealed (`--require-encryption`), then plain.
async fn exercise(store_url: &str, files: &Path) {
    let (_sim, creds) = credentials().await;
    let bus = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let public = write_public_key(dir.path(), &key);
    let identity = AgeIdentities::generate();
    let identity_file = dir.path().join("collector.age");
    std::fs::write(&identity_file, identity.to_file_text().as_bytes()).unwrap();
    let js = bus.js(BusIdentity::Worker).await;
    let mut args = base_args(&bus, store_url, &public);
    args.extend(["--age-identity".into(), identity_file.display().to_string()]);

    let mut sealed_args = args.clone();
    sealed_args.push("--require-encryption".into());
    let mut collector = CollectorProcess::start(sealed_args, dir.path(), &creds);
    let secret = unique_marker("SEALED-FINDING");
    let sealed = marked(&key, "01SEALED", &secret);
    let mut headers = HeaderMap::new();
    headers.insert("Scanfleet-Encoding", "age");
    let event = encrypt_to(&inline_event(&sealed), &identity.recipients());
    publish(&js, "apps", "sealed", headers, event).await;
    let leaked = marked(&key, "01PLAIN", &unique_marker("PLAIN-EVENT"));
    publish(
        &js,
        "apps",
        "plain",
        HeaderMap::new(),
        inline_event(&leaked),
    )
    .await;
    eventually("one stored, one quarantined", || async {
        collector
            .metric("scanfleet_collector_results_stored_total")
            .await
            == 1
            && collector
                .metric("scanfleet_collector_results_quarantined_total{reason=\"unencrypted\"}")
                .await
                == 1
    })
    .await;
    assert_eq!(collector.get("/v1/results/01PLAIN").await.status, 404);
    let report = collector.get("/v1/results/01SEALED/report").await;
    assert_eq!(report.status, 200, "{}", report.text());
    assert_eq!(
        report.body, sealed.report,
        "the authorized reader gets plaintext"
    );
    let over_grpc = collector
        .results()
        .await
        .get_report(scanfleet_contracts::v1::GetResultRequest {
            scan_id: "01SEALED".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(over_grpc.body, sealed.report);
    a_drift_report_is_sealed_like_its_reports(&js, &key, &identity, &collector, &secret).await;
    assert!(collector.stop().success());
    assert_eq!(
        files_containing(files, secret.as_bytes()),
        Vec::<PathBuf>::new(),
        "no stored file may hold the sealed report's bytes"
    );

    // The control: without the setting, a report's bytes are on disk.
    let mut collector = CollectorProcess::start(args, dir.path(), &creds);
    let visible = unique_marker("PLAIN-FINDING");
    let plain = marked(&key, "01VISIBLE", &visible);
    publish(
        &js,
        "apps",
        "visible",
        HeaderMap::new(),
        inline_event(&plain),
    )
    .await;
    eventually("the plain result", || async {
        collector.get("/v1/results/01VISIBLE").await.status == 200
    })
    .await;
    assert!(collector.stop().success());
    assert!(
        !files_containing(files, visible.as_bytes()).is_empty(),
        "the search finds a report stored in the clear"
    );
    assert!(files_containing(files, secret.as_bytes()).is_empty());
}

/// An image scan of 01SEALED's digest where its control passed: the drift
/// report quotes the sealed finding, so it is kept sealed too (the file
/// search after this covers it), and an authorized reader gets it back.
async fn a_drift_report_is_sealed_like_its_reports(
    js: &async_nats::jetstream::Context,
    key: &SigningKey,
    identity: &AgeIdentities,
    collector: &CollectorProcess,
    secret: &str,
) {
    let report = serde_json::json!({"profiles": [{"controls": [{"id": "C-1",
        "results": [{"status": "passed", "code_desc": "fine"}]}]}]})
    .to_string()
    .into_bytes();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"01SEALED"));
    let statement = SampleStatement::new("01SEALIMG")
        .target("kubesim", "", "", "")
        .digest_hex(&digest)
        .report(&report)
        .with(|p| p.target.kind = scanfleet_trust::statement::TargetKind::Image)
        .build();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), key).to_json();
    let event = inline_event(&Published {
        scan_id: "01SEALIMG".into(),
        report,
        envelope,
    });
    let mut headers = HeaderMap::new();
    headers.insert("Scanfleet-Encoding", "age");
    let event = encrypt_to(&event, &identity.recipients());
    publish_image(js, "01SEALIMG", headers, event).await;
    eventually("the drift recorded", || async {
        collector.get("/v1/results/01SEALED/drift").await.status == 200
    })
    .await;
    let drift = collector.get("/v1/results/01SEALED/drift").await.json();
    assert_eq!(drift["imageScanId"], "01SEALIMG");
    assert_eq!(drift["controls"][0]["container"]["message"], secret);
}

// Multi-threaded: stopping the collector blocks this thread in `wait`
// while the gRPC client's connection task must still answer the
// server's graceful-shutdown ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_hold_no_plaintext_report_with_require_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("results.db").display());
    exercise(&store, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_files_hold_no_plaintext_report_with_require_encryption() {
    let pg = Postgres::start();
    exercise(&pg.url(), &pg.data_dir()).await;
}

#[test]
fn require_encryption_needs_an_identity() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanfleet-collector"))
        .args([
            "--nats-url",
            "nats://127.0.0.1:1",
            "--trusted-key",
            "/nonexistent.pem",
            "--require-encryption",
            "--insecure-plaintext",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("require_encryption: needs --age-identity"),
        "{err}"
    );
}
