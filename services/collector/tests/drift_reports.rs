//! Drift through the real collector binary: signed image and container
//! results of one digest arrive in either order over the bus, and each
//! container scan's drift report (the controls whose status differs from
//! the image scan, with both messages) is served by gRPC `GetDrift` and
//! `/v1/results/{id}/drift` to whoever may get that scan, counted on
//! `/metrics`; a different profile version is never compared.

mod support;

use async_nats::HeaderMap;
use scanfleet_contracts::v1::GetResultRequest;
use scanfleet_test_harness::callers::Callers;
use scanfleet_trust::statement::TargetKind;
use scanfleet_trust::{Envelope, IN_TOTO_PAYLOAD_TYPE, SigningKey};
use support::*;
use tonic::Code;

const DIGEST_HEX: &str = "5e";

/// An HDF report of container-baseline `version` with (id, status, message).
fn hdf(version: &str, controls: &[(&str, &str, &str)]) -> Vec<u8> {
    let controls: Vec<_> = controls
        .iter()
        .map(|(id, status, message)| {
            serde_json::json!({"id": id, "title": format!("title {id}"), "impact": 0.5,
                "tags": {}, "results": [{"status": status, "code_desc": id, "message": message}]})
        })
        .collect();
    serde_json::json!({"profiles": [{"name": "container-baseline", "version": version,
                                     "controls": controls}]})
    .to_string()
    .into_bytes()
}

/// The image's scan: a, b and c pass.
fn image_report() -> Vec<u8> {
    hdf(
        "1.0.0",
        &[
            ("a", "passed", ""),
            ("b", "passed", ""),
            ("c", "passed", ""),
        ],
    )
}

struct Bench {
    _nats: SecureBus,
    sim: kubesim::Kubesim,
    creds: TestCredentials,
    collector: CollectorProcess,
    js: async_nats::jetstream::Context,
    key: SigningKey,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn start() -> Self {
        let (sim, creds) = credentials().await;
        let nats = SecureBus::start().await;
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate();
        let public = write_public_key(dir.path(), &key);
        let store = format!("sqlite://{}", dir.path().join("r.db").display());
        let collector =
            CollectorProcess::start(base_args(&nats, &store, &public), dir.path(), &creds);
        let js = nats.js(BusIdentity::Worker).await;
        Self {
            _nats: nats,
            sim,
            creds,
            collector,
            js,
            key,
            _dir: dir,
        }
    }

    /// Publishes a signed result (an image scan when `namespace` is empty)
    /// with `report`, and waits until it is stored.
    async fn store(&self, scan_id: &str, namespace: &str, version: &str, report: Vec<u8>) {
        let image = namespace.is_empty();
        let pod = if image {
            String::new()
        } else {
            format!("pod-{scan_id}")
        };
        let statement = SampleStatement::new(scan_id)
            .target("kubesim", namespace, &pod, if image { "" } else { "app" })
            .digest_hex(&DIGEST_HEX.repeat(32))
            .report(&report)
            .with(|p| {
                p.profile.version = version.into();
                if image {
                    p.target.kind = TargetKind::Image;
                }
            })
            .build();
        let envelope =
            Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), &self.key).to_json();
        let event = inline_event(&Published {
            scan_id: scan_id.into(),
            report,
            envelope,
        });
        if image {
            publish_image(&self.js, scan_id, HeaderMap::new(), event).await;
        } else {
            publish(&self.js, namespace, scan_id, HeaderMap::new(), event).await;
        }
        let path = format!("/v1/results/{scan_id}");
        eventually("the result stored", || async {
            self.collector.get(&path).await.status == 200
        })
        .await;
    }

    /// The drifted control ids of `scan_id`, as the operator reads them.
    async fn drifted(&self, scan_id: &str) -> Result<Vec<String>, tonic::Status> {
        let drift = self
            .collector
            .results()
            .await
            .get_drift(GetResultRequest {
                scan_id: scan_id.into(),
            })
            .await?
            .into_inner();
        Ok(drift.controls.into_iter().map(|c| c.id).collect())
    }

    /// [`Bench::drifted`] once the drift report exists: it is recorded
    /// after the result's commit, so the result can be readable (what
    /// [`Bench::store`] waits for) a moment before its drift report.
    async fn drifted_once_recorded(&self, scan_id: &str) -> Vec<String> {
        eventually("the drift report recorded", || async {
            self.drifted(scan_id).await.is_ok()
        })
        .await;
        self.drifted(scan_id).await.unwrap()
    }
}

#[tokio::test]
async fn drift_is_recorded_in_either_order_and_read_like_the_scan() {
    let bench = Bench::start().await;
    // A container scan before any image scan: nothing to compare with.
    let changed_b = hdf(
        "1.0.0",
        &[
            ("a", "passed", ""),
            ("b", "failed", "/srv/x is world-writable"),
            ("c", "passed", ""),
        ],
    );
    bench.store("01APPS1", "apps", "1.0.0", changed_b).await;
    let none = bench.drifted("01APPS1").await.unwrap_err();
    assert_eq!(none.code(), Code::NotFound);
    assert!(
        none.message()
            .contains("no completed image scan of sha256:5e5e"),
        "{none:?}"
    );

    // The image scan arrives: the stored container scan is compared.
    bench.store("01IMAGE", "", "1.0.0", image_report()).await;
    assert_eq!(bench.drifted_once_recorded("01APPS1").await, ["b"]);
    let image_drift = bench.drifted("01IMAGE").await.unwrap_err();
    assert_eq!(image_drift.code(), Code::NotFound);
    assert!(image_drift.message().contains("is an image scan"));

    // Container scans after it are compared as they arrive.
    let changed_ac = hdf(
        "1.0.0",
        &[
            ("a", "failed", "toor has uid 0"),
            ("b", "passed", ""),
            ("c", "error", "cannot read /etc/shadow"),
        ],
    );
    bench.store("01APPS2", "apps", "1.0.0", changed_ac).await;
    bench
        .store("01SHOP1", "shop", "1.0.0", image_report())
        .await;
    let other = hdf("1.1.0", &[("a", "failed", "x")]);
    bench.store("01APPS3", "apps", "1.1.0", other).await;
    assert_eq!(bench.drifted_once_recorded("01APPS2").await, ["a", "c"]);
    assert_eq!(
        bench.drifted_once_recorded("01SHOP1").await,
        Vec::<String>::new(),
        "recorded, nothing drifted"
    );
    assert_eq!(
        bench.drifted("01APPS3").await.unwrap_err().code(),
        Code::NotFound,
        "another profile version is never compared"
    );

    read_by_a_reader_in_apps_and_over_http(&bench).await;
}

/// Both sides and messages, over gRPC for a reader in apps (refused in
/// shop) and over HTTP; the counters on `/metrics`.
async fn read_by_a_reader_in_apps_and_over_http(bench: &Bench) {
    let token = Callers::new(&bench.sim)
        .await
        .caller("apps", "reader", &["get"], "results", &["apps"])
        .await;
    let mut reader = bench.creds.results_as(bench.collector.grpc, &token).await;
    let drift = reader
        .get_drift(GetResultRequest {
            scan_id: "01APPS2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(drift.image_scan_id, "01IMAGE");
    assert_eq!(
        (drift.profile_name.as_str(), drift.profile_version.as_str()),
        ("container-baseline", "1.0.0")
    );
    let a = &drift.controls[0];
    assert_eq!(a.title, "title a");
    let (image, container) = (a.image.as_ref().unwrap(), a.container.as_ref().unwrap());
    assert_eq!(
        (image.status.as_str(), image.message.as_str()),
        ("passed", "")
    );
    assert_eq!(
        (container.status.as_str(), container.message.as_str()),
        ("failed", "toor has uid 0")
    );
    let refused = reader
        .get_drift(GetResultRequest {
            scan_id: "01SHOP1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("\"shop\""), "{refused:?}");

    let http = bench.collector.get("/v1/results/01APPS1/drift").await;
    assert_eq!(http.status, 200, "{}", http.text());
    let body = http.json();
    assert_eq!(body["imageScanId"], "01IMAGE");
    assert_eq!(body["controls"][0]["id"], "b");
    assert_eq!(body["controls"][0]["image"]["status"], "passed");
    assert_eq!(
        body["controls"][0]["container"]["message"],
        "/srv/x is world-writable"
    );
    assert_eq!(
        bench
            .collector
            .get("/v1/results/01APPS3/drift")
            .await
            .status,
        404
    );

    // 01APPS1 (on the image's arrival), 01APPS2 and 01SHOP1.
    assert_eq!(
        bench
            .collector
            .metric("scanfleet_collector_drift_reports_total")
            .await,
        3
    );
    assert_eq!(
        bench
            .collector
            .metric("scanfleet_collector_drifted_controls_total")
            .await,
        3
    );
}
