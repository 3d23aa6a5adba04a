//! `scanfleet results` and `scanfleet watch` against a collector running
//! in-process on a real nats-server and SQLite, serving TLS and reviewing
//! readers on a kubesim; the CLI reads as the operator.

mod support;

use std::net::SocketAddr;

use async_nats::HeaderMap;
use scanfleet_bus::BusIdentity;
use scanfleet_collector::config::Config;
use scanfleet_test_harness::callers::access_cluster;
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::fleet::{
    Published, SampleStatement, inline_event, publish, publish_image, result, write_public_key,
};
use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_trust::SigningKey;
use support::*;

struct Fleet {
    _nats: SecureBus,
    dir: tempfile::TempDir,
    key: SigningKey,
    public: std::path::PathBuf,
    grpc: SocketAddr,
    js: async_nats::jetstream::Context,
    collector: scanfleet_collector::EmbeddedCollector,
    operator: std::sync::Arc<CliIdentity>,
    _creds: TestCredentials,
    _sim: kubesim::Kubesim,
}

async fn fleet() -> Fleet {
    let nats = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let public = write_public_key(dir.path(), &key);
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    let config = Config::loopback(
        &nats.url(),
        &format!("sqlite://{}", dir.path().join("r.db").display()),
        &public,
        &[
            nats.auth_args(BusIdentity::Collector),
            creds.service_flags(),
        ]
        .concat(),
    )
    .unwrap();
    let collector = scanfleet_collector::EmbeddedCollector::start(config)
        .await
        .expect("collector starts");
    // Results arrive as a worker publishes them.
    let js = nats.js(BusIdentity::Worker).await;
    Fleet {
        _nats: nats,
        dir,
        key,
        public,
        grpc: collector.listening.grpc,
        js,
        collector,
        operator: std::sync::Arc::new(CliIdentity::operator(&creds)),
        _creds: creds,
        _sim: sim,
    }
}

impl Fleet {
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let out = self
            .operator
            .apply(&mut scanfleet())
            .args(args)
            .env("SCANFLEET_COLLECTOR", format!("https://{}", self.grpc))
            .output()
            .unwrap();
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{}",
            text(&out.stderr)
        );
        out
    }

    async fn cli_async(&self, args: Vec<String>) -> std::process::Output {
        let collector = format!("https://{}", self.grpc);
        let operator = self.operator.clone();
        tokio::task::spawn_blocking(move || {
            operator
                .apply(&mut scanfleet())
                .args(args)
                .env("SCANFLEET_COLLECTOR", collector)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    async fn publish_n(&self, ids: &[&str]) -> Vec<scanfleet_test_harness::fleet::Published> {
        let mut all = Vec::new();
        for id in ids {
            let p = result(&self.key, id, "shop");
            publish(&self.js, "shop", id, HeaderMap::new(), inline_event(&p)).await;
            all.push(p);
        }
        all
    }

    /// Publishes a signed result of one digest with an HDF report whose
    /// controls have these (id, status, message); an image scan when
    /// `namespace` is empty.
    async fn publish_hdf(&self, id: &str, namespace: &str, controls: &[(&str, &str, &str)]) {
        let controls: Vec<_> = controls
            .iter()
            .map(|(c, status, message)| {
                serde_json::json!({"id": c, "title": format!("title {c}"), "impact": 0.5,
                    "results": [{"status": status, "code_desc": c, "message": message}]})
            })
            .collect();
        let report = serde_json::json!({"profiles": [{"name": "container-baseline",
            "version": "1.0.0", "controls": controls}]})
        .to_string()
        .into_bytes();
        let image = namespace.is_empty();
        let pod = if image {
            String::new()
        } else {
            format!("pod-{id}")
        };
        let statement = SampleStatement::new(id)
            .target("kubesim", namespace, &pod, if image { "" } else { "app" })
            .digest_hex(&"7a".repeat(32))
            .report(&report)
            .with(|p| {
                if image {
                    p.target.kind = scanfleet_trust::statement::TargetKind::Image;
                }
            })
            .build();
        let envelope = scanfleet_trust::Envelope::sign(
            scanfleet_trust::IN_TOTO_PAYLOAD_TYPE,
            &statement.to_payload(),
            &self.key,
        )
        .to_json();
        let event = inline_event(&Published {
            scan_id: id.into(),
            report,
            envelope,
        });
        if image {
            publish_image(&self.js, id, HeaderMap::new(), event).await;
        } else {
            publish(&self.js, namespace, id, HeaderMap::new(), event).await;
        }
    }

    async fn shutdown(self) {
        self.collector.shutdown().await.unwrap();
    }
}

/// `watch -o json`: one object per line, as each result arrives.
async fn watch_prints_json_lines(fleet: &Fleet) {
    let out = fleet
        .cli_async(
            ["watch", "01R1", "01R2", "01R3", "-o", "json"]
                .map(String::from)
                .to_vec(),
        )
        .await;
    assert_success(&out);
    let mut watched: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["scanId"].as_str().unwrap().to_owned()
        })
        .collect();
    watched.sort();
    assert_eq!(watched, ["01R1", "01R2", "01R3"]);
}

/// `-o yaml` carries exactly the JSON records, timestamps in RFC 3339.
fn yaml_carries_the_json_records(fleet: &Fleet, listed: &serde_json::Value) {
    let out = fleet.cli(&["results", "list", "-o", "yaml"]);
    assert_success(&out);
    let yaml: serde_json::Value = yaml_serde::from_slice(&out.stdout).unwrap();
    assert_eq!(&yaml, listed);
    let finished = listed[0]["finishedAt"]
        .as_str()
        .expect("an RFC 3339 string");
    assert!(
        finished.parse::<jiff::Timestamp>().is_ok() && finished.ends_with('Z'),
        "{finished}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_and_verified_export() {
    let fleet = fleet().await;
    let published = fleet.publish_n(&["01R1", "01R2", "01R3"]).await;
    let out = fleet
        .cli_async(
            ["watch", "01R1", "01R2", "01R3", "--timeout", "30"]
                .map(String::from)
                .to_vec(),
        )
        .await;
    assert_success(&out);
    for id in ["01R1", "01R2", "01R3"] {
        assert!(text(&out.stdout).contains(id), "{}", text(&out.stdout));
    }
    watch_prints_json_lines(&fleet).await;

    let out = fleet.cli(&["results", "list", "--output", "json"]);
    assert_success(&out);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scanId"].as_str().unwrap())
        .collect();
    // Same finish time, so newest-first falls back to scan id order.
    assert_eq!(ids, ["01R3", "01R2", "01R1"]);
    let out = fleet.cli(&["results", "list"]);
    assert_success(&out);
    assert!(text(&out.stdout).starts_with("SCAN ID"));
    assert_eq!(text(&out.stdout).lines().count(), 4);
    assert!(
        !text(&out.stdout).contains('\u{1b}'),
        "no colour when piped"
    );
    yaml_carries_the_json_records(&fleet, &listed);

    let out = fleet.cli(&["results", "show", "01R2", "--output", "json"]);
    assert_success(&out);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["compliancePercent"], 80.0);

    let hdf = fleet.dir.path().join("r1.hdf.json");
    let env = fleet.dir.path().join("r1.dsse.json");
    let public = fleet.public.display().to_string();
    let out = fleet.cli(&[
        "results",
        "export",
        "01R1",
        "--hdf",
        hdf.to_str().unwrap(),
        "--envelope",
        env.to_str().unwrap(),
        "--key",
        &public,
    ]);
    assert_success(&out);
    assert!(text(&out.stderr).contains("verified"));
    assert_eq!(std::fs::read(&hdf).unwrap(), published[0].report);
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        published[0].envelope
    );

    // The exported envelope verifies offline too.
    let out = scanfleet()
        .args([
            "envelope",
            "verify",
            "--key",
            &public,
            env.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_success(&out);

    // A key the result was not signed with refuses the export.
    let (_, other, _) = generate_keys(fleet.dir.path(), "other");
    let out = fleet.cli(&[
        "results",
        "export",
        "01R1",
        "--hdf",
        fleet.dir.path().join("x.json").to_str().unwrap(),
        "--key",
        other.to_str().unwrap(),
    ]);
    assert_fails_with(&out, 1, "no signature is by a trusted key");
    assert!(!fleet.dir.path().join("x.json").exists(), "nothing written");

    let out = fleet.cli(&["results", "show", "01NOPE"]);
    assert_fails_with(&out, 2, "no result for scan 01NOPE (NotFound)");
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_waits_for_results_that_arrive_later_and_times_out_on_missing_ones() {
    let fleet = fleet().await;
    let waiting = {
        let collector = format!("https://{}", fleet.grpc);
        let operator = fleet.operator.clone();
        std::thread::spawn(move || {
            operator
                .apply(&mut scanfleet())
                .args(["watch", "01LATE1", "01LATE2", "--timeout", "60"])
                .env("SCANFLEET_COLLECTOR", collector)
                .output()
                .unwrap()
        })
    };
    // The watcher is subscribed once it is connected; results published
    // before that are still delivered (include_existing), so no race.
    fleet.publish_n(&["01LATE1", "01LATE2"]).await;
    let out = tokio::task::spawn_blocking(move || waiting.join().unwrap())
        .await
        .unwrap();
    assert_success(&out);
    assert!(text(&out.stdout).contains("01LATE2"));

    let out = fleet
        .cli_async(
            ["watch", "01LATE1", "01NEVER", "--timeout", "1"]
                .map(String::from)
                .to_vec(),
        )
        .await;
    assert_fails_with(&out, 1, "still waiting for: 01NEVER");
    fleet.shutdown().await;
}

/// Exit status 3: the collector did not answer (a retry may work), unlike
/// a refusal or bad input (2).
#[test]
fn an_unreachable_collector_is_a_clear_error_with_exit_status_3() {
    let out = scanfleet()
        .args(["results", "list", "--collector", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_fails_with(
        &out,
        3,
        "connecting to the collector: cannot reach http://127.0.0.1:1",
    );
}

/// `results drift`: a table of drifted controls (summary on stderr), the
/// whole report with `-o json|yaml`, and exit 2 naming why when there is
/// no report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_shown_as_a_table_json_and_yaml() {
    let fleet = fleet().await;
    fleet
        .publish_hdf("01IMG", "", &[("a", "passed", ""), ("b", "passed", "")])
        .await;
    fleet
        .publish_hdf(
            "01CTR",
            "shop",
            &[
                ("a", "passed", ""),
                ("b", "failed", "/srv/x is world-writable"),
            ],
        )
        .await;
    let out = fleet
        .cli_async(
            ["watch", "01IMG", "01CTR", "--timeout", "30"]
                .map(String::from)
                .to_vec(),
        )
        .await;
    assert_success(&out);

    let out = fleet.cli(&["results", "drift", "01CTR"]);
    assert_success(&out);
    let table = text(&out.stdout);
    assert!(table.starts_with("CONTROL"), "{table}");
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.contains("/srv/x is world-writable"), "{table}");
    assert!(
        text(&out.stderr).contains(
            "scan 01CTR against image scan 01IMG (container-baseline@1.0.0): 1 drifted control(s)"
        ),
        "{}",
        text(&out.stderr)
    );

    let out = fleet.cli(&["results", "drift", "01CTR", "-o", "json"]);
    assert_success(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["imageScanId"], "01IMG");
    assert_eq!(json["controls"][0]["id"], "b");
    assert_eq!(json["controls"][0]["image"]["status"], "passed");
    assert_eq!(json["controls"][0]["container"]["status"], "failed");
    let out = fleet.cli(&["results", "drift", "01CTR", "-o", "yaml"]);
    assert_success(&out);
    let yaml: serde_json::Value = yaml_serde::from_slice(&out.stdout).unwrap();
    assert_eq!(yaml, json);

    let out = fleet.cli(&["results", "drift", "01IMG"]);
    assert_fails_with(&out, 2, "scan 01IMG is an image scan");
    fleet.shutdown().await;
}
