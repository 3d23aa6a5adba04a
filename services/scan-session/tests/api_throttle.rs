//! The per-cluster governor, measured where it matters: at the API server.
//! Every request a scan makes (admin and per-scan identity, exec included)
//! arrives no faster than the configured quota allows.

mod support;

use std::time::Duration;

use scanfleet_kube_access::ThrottleConfig;
use scanfleet_scan_session::{Approach, run_scan};
use support::{Sim, assert_no_scan_identities_left, request, session_config};

/// The most requests a token bucket of `burst` refilled at `qps` lets
/// through in a closed window of `window_ms`: the full bucket plus what
/// refills during the window.
///
/// Plus one, because the timestamps are taken where the requests *arrive*,
/// not where the limiter released them: a request released just before a
/// window opens can be delayed in the client's connection pool or TLS
/// stack and land inside it, next to one released on time. That jitter can
/// pull at most one extra request into a window's edge; anything beyond it
/// means the limiter let too many through.
fn allowed(burst: u32, qps: f64, window_ms: f64) -> usize {
    (f64::from(burst) + qps * window_ms / 1000.0).floor() as usize + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_server_never_sees_more_than_the_quota() {
    let (qps, burst) = (5.0, 2);
    let sim = Sim::start_with(
        Vec::new(),
        ThrottleConfig {
            qps,
            burst,
            ..ThrottleConfig::default()
        },
    )
    .await;
    let before = sim.audit().len();
    // Two scans at once, so both identities compete for one bucket.
    let config = session_config(true);
    let (a, b) = tokio::join!(
        run_scan(
            &sim.admin,
            &config,
            request(
                "web-misconfigured",
                "web",
                Approach::Exec,
                "container-baseline"
            ),
        ),
        run_scan(
            &sim.admin,
            &config,
            request(
                "nonroot-worker",
                "worker",
                Approach::Exec,
                "container-baseline"
            ),
        ),
    );
    a.expect("first scan");
    b.expect("second scan");
    let stats = sim.admin.throttle.stats();
    assert!(
        stats.waited > Duration::ZERO,
        "the limiter never held a call back: {stats:?}"
    );

    let mut arrivals: Vec<f64> = sim.audit()[before..]
        .iter()
        .map(|r| r.received_unix_ms)
        .collect();
    assert!(
        arrivals.iter().all(|t| *t > 0.0),
        "every audit record carries its arrival time"
    );
    arrivals.sort_by(f64::total_cmp);
    // Every request the server saw went through the limiter.
    assert!(
        arrivals.len() as u64 >= 10 && arrivals.len() as u64 == stats.attempts,
        "{} requests arrived, {} attempts sent",
        arrivals.len(),
        stats.attempts
    );
    // Every window that starts and ends on an arrival: the densest windows
    // of any length are among these.
    for i in 0..arrivals.len() {
        for j in i..arrivals.len() {
            let window = arrivals[j] - arrivals[i];
            let count = j - i + 1;
            let limit = allowed(burst, qps, window);
            assert!(
                count <= limit,
                "{count} requests within {window:.1} ms, quota allows {limit} \
                 (burst {burst}, {qps} qps); arrivals: {arrivals:?}"
            );
        }
    }
    assert_no_scan_identities_left(&sim).await;
    sim.shutdown().await;
}
