//! Issue #12, finding 3, through the real binary: thousands of connections
//! that never finish a request, on intake's webhook HTTP and gRPC
//! listeners (TLS: each one a ClientHello that never finishes), with the
//! process held to 512 file descriptors, and still a well-behaved client
//! is served (`/healthz`, `Intake/GetScan` with the operator's token).

use std::time::{Duration, Instant};

use scanfleet_bus::BusIdentity;
use scanfleet_contracts::v1::GetScanRequest;
use scanfleet_contracts::v1::intake_client::IntakeClient;
use scanfleet_edge_access::BearerAuth;
use scanfleet_test_harness::callers::access_cluster;
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_test_harness::slow_clients::{
    FD_LIMIT, FLOOD, FloodFigures, LimitedProcess, PARTIAL_CLIENT_HELLO, PATIENCE,
    closed_by_server, hold_half_open, http_get,
};

/// A `GetScan` for an unknown scan: any gRPC answer means "served".
async fn grpc_get_scan(
    addr: std::net::SocketAddr,
    creds: &TestCredentials,
) -> Result<(String, Duration), String> {
    let started = Instant::now();
    let call = async {
        let channel = creds.try_channel(addr).await?;
        let mut client =
            IntakeClient::with_interceptor(channel, BearerAuth::new(creds.operator()).unwrap());
        let answer = client
            .get_scan(GetScanRequest {
                scan_id: "01J0000000000000000000000Z".into(),
            })
            .await;
        Ok::<_, String>(match answer {
            Ok(_) => "found".to_owned(),
            Err(s) => format!("{:?}", s.code()),
        })
    };
    match tokio::time::timeout(PATIENCE, call).await {
        Ok(Ok(answer)) => Ok((answer, started.elapsed())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("not served within {PATIENCE:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_flood_does_not_stop_a_good_client() {
    let nats = SecureBus::start().await;
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = nats.args(BusIdentity::Intake);
    args.extend(
        [
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ]
        .map(String::from),
    );
    args.extend(creds.service_flags());
    let log = dir.path().join("intake.log");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_scanfleet-intake"));
    let mut intake = LimitedProcess::start(exe, &args, FD_LIMIT, &log);
    let (http, grpc) = (intake.addr("http="), intake.addr("grpc="));

    let mut figures = Vec::new();
    let mut held = hold_half_open(http, FLOOD, PARTIAL_CLIENT_HELLO).await;
    let served = http_get(http, &creds.tls(), "/healthz").await;
    figures.push(FloodFigures {
        listener: "intake http",
        held: held.len(),
        closed_by_server: closed_by_server(&mut held).await,
        time_to_serve: served.as_ref().map_or(PATIENCE, |(_, t)| *t),
        served: served.map(|(status, _)| status),
    });
    let mut held_grpc = hold_half_open(grpc, FLOOD, PARTIAL_CLIENT_HELLO).await;
    let served = grpc_get_scan(grpc, &creds).await;
    figures.push(FloodFigures {
        listener: "intake grpc",
        held: held_grpc.len(),
        closed_by_server: closed_by_server(&mut held_grpc).await,
        time_to_serve: served.as_ref().map_or(PATIENCE, |(_, t)| *t),
        served: served.map(|(answer, _)| answer),
    });
    for f in &figures {
        eprintln!("{f:?}");
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(intake.running(), "intake died:\n{log_text}");
    assert_eq!(
        figures[0].served.as_deref(),
        Ok("HTTP/1.1 200 OK"),
        "{figures:?}\n{log_text}"
    );
    assert_eq!(
        figures[1].served.as_deref(),
        Ok("NotFound"),
        "{figures:?}\n{log_text}"
    );
    assert!(
        held.len() > FD_LIMIT as usize,
        "the flood went past the descriptor limit: {figures:?}"
    );
    assert!(!log_text.contains("panicked"), "{log_text}");
}
