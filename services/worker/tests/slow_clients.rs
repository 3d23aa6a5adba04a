//! Issue #12, finding 3, through the real binary: thousands of connections
//! that never finish a request on the worker's health and metrics port,
//! (TLS: each one a ClientHello that never finishes), with the process
//! held to 512 file descriptors, and still a kubelet probe (`/healthz`)
//! is answered.

use std::path::Path;

use scanfleet_bus::BusIdentity;
use scanfleet_test_harness::pki::TestPki;
use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_test_harness::slow_clients::{
    FD_LIMIT, FLOOD, FloodFigures, LimitedProcess, PARTIAL_CLIENT_HELLO, PATIENCE,
    closed_by_server, hold_half_open, http_get,
};
use scanfleet_test_harness::{repo_root, write_private};
use scanfleet_trust::SigningKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_flood_does_not_stop_the_health_probe() {
    let nats = SecureBus::start().await;
    let sim = kubesim::Kubesim::start(kubesim::Config::with_fixture(
        kubesim::fixture::Fixture::default(),
    ))
    .await
    .expect("kubesim starts (tests run as root)");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("worker.kubeconfig");
    write_private(&kubeconfig, sim.admin_kubeconfig().as_bytes());
    let key = dir.path().join("signing.pem");
    write_private(&key, SigningKey::generate().to_pkcs8_pem().as_bytes());
    let pki = TestPki::new();
    let mut args = nats.args(BusIdentity::Worker);
    args.extend(
        [
            "--cluster",
            "kubesim",
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--signing-key",
            &key.display().to_string(),
            "--profiles",
            &repo_root().join("profiles").display().to_string(),
            "--http-listen",
            "127.0.0.1:0",
        ]
        .map(String::from),
    );
    args.extend(pki.server_flags());
    let log = dir.path().join("worker.log");
    let exe = Path::new(env!("CARGO_BIN_EXE_scanfleet-worker"));
    let mut worker = LimitedProcess::start(exe, &args, FD_LIMIT, &log);
    let http = worker.addr("http=");

    let mut held = hold_half_open(http, FLOOD, PARTIAL_CLIENT_HELLO).await;
    let served = http_get(http, &pki.client(), "/healthz").await;
    let figures = FloodFigures {
        listener: "worker http",
        held: held.len(),
        closed_by_server: closed_by_server(&mut held).await,
        time_to_serve: served.as_ref().map_or(PATIENCE, |(_, t)| *t),
        served: served.map(|(status, _)| status),
    };
    eprintln!("{figures:?}");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(worker.running(), "the worker died:\n{log_text}");
    assert_eq!(
        figures.served.as_deref(),
        Ok("HTTP/1.1 200 OK"),
        "{figures:?}\n{log_text}"
    );
    assert!(
        held.len() > FD_LIMIT as usize,
        "the flood went past the descriptor limit: {figures:?}"
    );
    assert!(!log_text.contains("panicked"), "{log_text}");
}
