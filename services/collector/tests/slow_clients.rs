//! Issue #12, finding 3, through the real binary: thousands of connections
//! that never finish a request, on each of the collector's listeners, with
//! the process held to 512 file descriptors, and still a well-behaved
//! client is served (`/healthz` over HTTP, `Results/List` over gRPC, both
//! TLS; the flood's unfinished request is a ClientHello).
//!
//! Before the guarded listeners, the flood filled the descriptor table,
//! `accept` failed with EMFILE for as long as the flood lasted, and the
//! good client waited in the backlog until it gave up.

use std::time::{Duration, Instant};

use scanfleet_bus::BusIdentity;
use scanfleet_contracts::v1::ListResultsRequest;
use scanfleet_contracts::v1::results_client::ResultsClient;
use scanfleet_edge_access::BearerAuth;
use scanfleet_test_harness::callers::access_cluster;
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::fleet::write_public_key;
use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_test_harness::slow_clients::{
    FD_LIMIT, FLOOD, FloodFigures, LimitedProcess, PARTIAL_CLIENT_HELLO, PATIENCE,
    closed_by_server, hold_half_open, http_get,
};
use scanfleet_trust::SigningKey;

async fn grpc_list(
    addr: std::net::SocketAddr,
    creds: &TestCredentials,
) -> Result<(String, Duration), String> {
    let started = Instant::now();
    let call = async {
        let channel = creds.try_channel(addr).await?;
        let mut client =
            ResultsClient::with_interceptor(channel, BearerAuth::new(creds.operator()).unwrap());
        client
            .list(ListResultsRequest::default())
            .await
            .map(|r| format!("{} results", r.into_inner().results.len()))
            .map_err(|s| format!("status {:?}: {}", s.code(), s.message()))
    };
    match tokio::time::timeout(PATIENCE, call).await {
        Ok(Ok(answer)) => Ok((answer, started.elapsed())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("not served within {PATIENCE:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_flood_does_not_stop_a_good_client() {
    let bus = SecureBus::start().await;
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_public_key(dir.path(), &SigningKey::generate());
    let mut args = bus.args(BusIdentity::Collector);
    args.extend(
        [
            "--store-url",
            &format!("sqlite://{}", dir.path().join("results.db").display()),
            "--trusted-key",
            &key.display().to_string(),
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ]
        .map(String::from),
    );
    args.extend(creds.service_flags());
    let log = dir.path().join("collector.log");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_scanfleet-collector"));
    let mut collector = LimitedProcess::start(exe, &args, FD_LIMIT, &log);
    let (http, grpc) = (collector.addr("http="), collector.addr("grpc="));

    let mut figures = Vec::new();
    let mut held = hold_half_open(http, FLOOD, PARTIAL_CLIENT_HELLO).await;
    let served = http_get(http, &creds.tls(), "/healthz").await;
    figures.push(FloodFigures {
        listener: "collector http",
        held: held.len(),
        closed_by_server: closed_by_server(&mut held).await,
        time_to_serve: served.as_ref().map_or(PATIENCE, |(_, t)| *t),
        served: served.map(|(status, _)| status),
    });
    let mut held_grpc = hold_half_open(grpc, FLOOD, PARTIAL_CLIENT_HELLO).await;
    let served = grpc_list(grpc, &creds).await;
    figures.push(FloodFigures {
        listener: "collector grpc",
        held: held_grpc.len(),
        closed_by_server: closed_by_server(&mut held_grpc).await,
        time_to_serve: served.as_ref().map_or(PATIENCE, |(_, t)| *t),
        served: served.map(|(answer, _)| answer),
    });
    for f in &figures {
        eprintln!("{f:?}");
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(collector.running(), "the collector died:\n{log_text}");
    assert_eq!(
        figures[0].served.as_deref(),
        Ok("HTTP/1.1 200 OK"),
        "{figures:?}\n{log_text}"
    );
    assert_eq!(
        figures[1].served.as_deref(),
        Ok("0 results"),
        "{figures:?}\n{log_text}"
    );
    assert!(
        held.len() > FD_LIMIT as usize,
        "the flood went past the descriptor limit: {figures:?}"
    );
    assert!(!log_text.contains("panicked"), "{log_text}");
}
