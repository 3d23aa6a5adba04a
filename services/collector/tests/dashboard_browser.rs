//! The posture dashboard in a real headless Chromium (Debian's chromium
//! and chromium-driver, over WebDriver) against the real collector binary
//! filled with signed results published on the fleet's secured bus: the
//! operator signs in with a token and sees every workload; filtering by
//! severity changes the table; a scan page shows its controls and
//! "verified"; a reader bound only in `apps` sees no other namespace's
//! workloads and is refused a `shop` scan; untrusted text is escaped;
//! axe-core finds no serious or critical violation on any page. Each page's
//! screenshot is written to `target/artefacts/dashboard/`.

mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use async_nats::HeaderMap;
use scanfleet_test_harness::callers::Callers;
use scanfleet_trust::{Envelope, IN_TOTO_PAYLOAD_TYPE, SigningKey};
use serde_json::json;
use support::*;
use webdriver::{Browser, ChromeDriver, spki_pin};

/// An HDF report with these (id, title, impact, status) controls.
fn hdf(controls: &[(&str, &str, f64, &str)]) -> Vec<u8> {
    let controls: Vec<_> = controls
        .iter()
        .map(|(id, title, impact, status)| json!({
            "id": id, "title": title, "impact": impact, "tags": {},
            "desc": format!("Checks {title}"),
            "results": [{"status": status, "code_desc": format!("{id} check"),
                         "message": if *status == "failed" { "found <b>bad</b> value" } else { "" }}]
        }))
        .collect();
    json!({"profiles": [{"name": "container-baseline", "controls": controls}]})
        .to_string()
        .into_bytes()
}

/// Signs a result for `namespace/pod` whose report has `controls`.
fn signed(
    key: &SigningKey,
    id: &str,
    namespace: &str,
    pod: &str,
    controls: &[(&str, &str, f64, &str)],
) -> Published {
    let report = hdf(controls);
    let failed: Vec<_> = controls.iter().filter(|c| c.3 == "failed").collect();
    let statement = SampleStatement::new(id)
        .target("kubesim", namespace, pod, "app")
        .report(&report)
        .threshold(failed.is_empty())
        .with(|p| {
            let s = p.summary.as_mut().unwrap();
            s.failed = failed.len() as u32;
            s.passed = (controls.len() - failed.len()) as u32;
            s.compliance_percent = 100.0 * f64::from(s.passed) / controls.len() as f64;
            s.failed_by_severity = failed
                .iter()
                .map(|c| {
                    (
                        scanfleet_scan_engine::profile::Severity::from_impact(c.2)
                            .as_str()
                            .to_owned(),
                        1,
                    )
                })
                .collect();
        })
        .build();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), key).to_json();
    Published {
        scan_id: id.into(),
        report,
        envelope,
    }
}

/// An image scan (no namespace, pod or container) of the digest the
/// container scan `of` ran, whose report has `controls`.
fn signed_image(
    key: &SigningKey,
    id: &str,
    of: &str,
    controls: &[(&str, &str, f64, &str)],
) -> Published {
    let report = hdf(controls);
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(of.as_bytes()));
    let statement = SampleStatement::new(id)
        .target("kubesim", "", "", "")
        .digest_hex(&digest)
        .report(&report)
        .with(|p| p.target.kind = scanfleet_trust::statement::TargetKind::Image)
        .build();
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), key).to_json();
    Published {
        scan_id: id.into(),
        report,
        envelope,
    }
}

const SCANS: [(&str, &str, &str); 3] = [
    ("01WEB", "apps", "web"),
    ("01DBS", "apps", "db"),
    ("01CRT", "shop", "cart"),
];

fn artefacts() -> std::path::PathBuf {
    let dir = scanfleet_test_harness::repo_root().join("target/artefacts/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Screenshot and axe-core: no serious or critical violation.
async fn check_page(browser: &Browser<'_>, name: &str, axe: &str) {
    let path = artefacts().join(format!("{name}.png"));
    std::fs::write(&path, browser.screenshot().await).unwrap();
    println!("screenshot: {}", path.display());
    browser.run(&format!("{axe}\nreturn true;")).await;
    let violations = browser
        .run_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
                .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))))
                .catch(e => done([{id: 'axe-error', impact: 'critical', nodes: String(e)}]));",
        )
        .await;
    let violations = violations.as_array().cloned().unwrap_or_default();
    println!(
        "axe {name}: {} violation(s) {violations:?}",
        violations.len()
    );
    let bad: Vec<_> = violations
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(
        bad.is_empty(),
        "{name}: serious or critical axe violations: {bad:?}"
    );
}

async fn table_text(browser: &Browser<'_>, css: &str) -> String {
    browser
        .run(&format!(
            "return document.querySelector({css:?}).innerText;"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn sign_in(browser: &Browser<'_>, base: &str, token: &str) {
    browser.go(&format!("{base}/ui")).await;
    assert!(
        browser.url().await.ends_with("/ui/login"),
        "unauthenticated goes to the login"
    );
    browser.type_into("#token", token).await;
    browser.click("form[action='/ui/login'] button").await;
    // The click returns once the form is submitted; the POST and its
    // redirect to the overview may still be under way.
    eventually("the sign-in to land on the overview", || async {
        browser.url().await.ends_with("/ui")
    })
    .await;
}

#[tokio::test]
async fn the_dashboard_in_a_real_browser() {
    let (sim, creds) = credentials().await;
    let nats = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let public = write_public_key(dir.path(), &key);
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let collector = CollectorProcess::start(base_args(&nats, &store, &public), dir.path(), &creds);
    let js = nats.js(BusIdentity::Worker).await;
    let controls: [&[(&str, &str, f64, &str)]; 3] = [
        &[
            ("C-1", "Root login is off", 0.5, "passed"),
            (
                "C-2",
                "<script>alert(1)</script> no world-writable files",
                0.7,
                "failed",
            ),
        ],
        &[
            ("C-1", "Root login is off", 0.5, "passed"),
            ("C-3", "No known-bad packages", 0.95, "failed"),
        ],
        &[("C-1", "Root login is off", 0.5, "passed")],
    ];
    for ((id, namespace, pod), controls) in SCANS.iter().zip(controls) {
        let p = signed(&key, id, namespace, pod, controls);
        publish(&js, namespace, id, HeaderMap::new(), inline_event(&p)).await;
    }
    for (id, _, _) in SCANS {
        let path = format!("/v1/results/{id}");
        eventually("the result stored", || async {
            collector.get(&path).await.status == 200
        })
        .await;
    }
    let axe = std::fs::read_to_string(scanfleet_test_harness::installed_tool(
        "node/node_modules/axe-core/axe.min.js",
    ))
    .unwrap();
    let base = format!("https://localhost:{}", collector.http.port());
    let driver = ChromeDriver::start().await;
    let pin = spki_pin(&creds.pki.key_file());

    let browser = driver.session(&pin).await;
    browser.go(&format!("{base}/ui")).await;
    check_page(&browser, "login", &axe).await;
    sign_in(&browser, &base, creds.operator()).await;
    let all = table_text(&browser, "#workload-table").await;
    for (_, namespace, pod) in SCANS {
        assert!(
            all.contains(&format!("kubesim/{namespace}/{pod}/app")),
            "{pod} missing: {all}"
        );
    }
    check_page(&browser, "overview", &axe).await;

    browser.go(&format!("{base}/ui?severity=critical")).await;
    let critical = table_text(&browser, "#workload-table").await;
    assert!(critical.contains("apps/db/app"), "{critical}");
    assert!(
        !critical.contains("apps/web/app") && !critical.contains("shop/cart"),
        "{critical}"
    );
    check_page(&browser, "overview-critical", &axe).await;

    // An image scan of web's digest where C-2 still passed: web drifted.
    let image = signed_image(
        &key,
        "01IMGWEB",
        "01WEB",
        &[
            ("C-1", "Root login is off", 0.5, "passed"),
            ("C-2", "no world-writable files", 0.7, "passed"),
        ],
    );
    publish_image(&js, "01IMGWEB", HeaderMap::new(), inline_event(&image)).await;
    eventually("the image scan stored", || async {
        collector.get("/v1/results/01WEB/drift").await.status == 200
    })
    .await;
    browser.go(&format!("{base}/ui/scans/01WEB")).await;
    let drift = table_text(&browser, "#drift-table").await;
    assert!(drift.contains("C-2") && !drift.contains("C-1"), "{drift}");
    let controls = table_text(&browser, "#control-table").await;
    assert!(
        controls.contains("C-1") && controls.contains("C-2"),
        "{controls}"
    );
    assert_eq!(table_text(&browser, "#signature").await, "verified");
    let source = browser.source().await;
    assert!(
        !source.contains("<script>alert(1)"),
        "untrusted titles are escaped"
    );
    assert!(
        controls.contains("<script>alert(1)</script>"),
        "and shown as text: {controls}"
    );
    check_page(&browser, "scan", &axe).await;
    browser
        .go(&format!("{base}/ui/scans/01WEB?status=failed"))
        .await;
    let failed = table_text(&browser, "#control-table").await;
    assert!(
        failed.contains("C-2") && !failed.contains("C-1"),
        "{failed}"
    );

    browser.go(&format!("{base}/ui/controls/C-3")).await;
    let failing = table_text(&browser, "#failing-workloads").await;
    assert!(
        failing.contains("apps/db/app") && !failing.contains("web"),
        "{failing}"
    );
    check_page(&browser, "control", &axe).await;
    browser.quit().await;
    a_reader_in_apps_sees_only_apps(&driver, &pin, &sim, &base, &axe).await;
    drop(collector);
}

/// A reader bound only in `apps`.
async fn a_reader_in_apps_sees_only_apps(
    driver: &ChromeDriver,
    pin: &str,
    sim: &kubesim::Kubesim,
    base: &str,
    axe: &str,
) {
    let reader = Callers::new(sim)
        .await
        .caller("apps", "reader", &["get", "list"], "results", &["apps"])
        .await;
    let browser = driver.session(pin).await;
    sign_in(&browser, base, &reader).await;
    let seen = table_text(&browser, "#workload-table").await;
    assert!(
        seen.contains("apps/web/app") && seen.contains("apps/db/app"),
        "{seen}"
    );
    assert!(!seen.contains("shop"), "a reader in apps sees shop: {seen}");
    assert!(!browser.source().await.contains("shop/cart"));
    check_page(&browser, "overview-apps-reader", axe).await;
    browser.go(&format!("{base}/ui/scans/01CRT")).await;
    assert!(
        browser.source().await.contains("Forbidden"),
        "a shop scan is refused"
    );
    browser.go(&format!("{base}/ui/controls/C-1")).await;
    let c1 = table_text(&browser, "#failing-workloads").await;
    assert!(!c1.contains("shop"), "{c1}");
    browser.quit().await;
}
