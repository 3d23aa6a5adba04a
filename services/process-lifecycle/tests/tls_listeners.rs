//! TLS on a listener, against real sockets and a throwaway CA: HTTPS is
//! served and plaintext is not; a handshake that never finishes is held to
//! the header-read deadline; HTTP/2 over TLS keeps its idle timeout; client
//! certificates are verified (another CA's is refused in the handshake) and
//! their subject reaches the handler; a certificate rotated on disk is
//! served from the next connection on, without a restart.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use scanfleet_process_lifecycle::serving::{
    CloseReason, ConnectionInfo, ConnectionMetrics, ListenerMetrics, RELOAD_CHECK, ServerTls,
    TlsFiles, certificate_subject,
};
use scanfleet_process_lifecycle::{
    Listener, ListenerSecurity, ServingLimits, serve_grpc, serve_http,
};
use scanfleet_test_harness::https::{https_get, tls_connect};
use scanfleet_test_harness::pki::{TestCa, TestPki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

struct Server {
    addr: SocketAddr,
    metrics: ListenerMetrics,
    _stop: watch::Sender<bool>,
}

async fn whoami(Extension(info): Extension<ConnectionInfo>) -> String {
    match info.tls.client_certificate() {
        Some(cert) => cert.subject.clone(),
        None => "anonymous".into(),
    }
}

fn limits() -> ServingLimits {
    ServingLimits {
        max_connections: 64,
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(3),
    }
}

async fn serve(pki: &TestPki, require_client_certificate: bool) -> Server {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = ConnectionMetrics::register(&mut registry).listener("https");
    let tls = ServerTls::load(TlsFiles {
        cert: pki.cert_file(),
        key: pki.key_file(),
        client_ca: Some(pki.ca_file()),
        require_client_certificate,
    })
    .unwrap();
    let listener = Listener::bind(
        "https",
        "127.0.0.1:0".parse().unwrap(),
        limits(),
        &ListenerSecurity::Tls(tls),
        metrics.clone(),
    )
    .await
    .unwrap();
    let addr = listener.local_addr();
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/whoami", get(whoami));
    let (stop, rx) = watch::channel(false);
    tokio::spawn(serve_http(listener, router, rx));
    Server {
        addr,
        metrics,
        _stop: stop,
    }
}

/// How long until the server closes `s` (EOF or an error), if within `limit`.
async fn closed_after<S: tokio::io::AsyncRead + Unpin>(
    mut s: S,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(limit, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// The common name of the certificate the server presents now.
async fn presented_subject(addr: SocketAddr, pki: &TestPki) -> String {
    let stream = tls_connect(addr, &pki.client(), &[b"http/1.1"])
        .await
        .expect("handshake");
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    certificate_subject(&leaf).unwrap()
}

#[tokio::test]
async fn https_is_served_and_plaintext_is_refused() {
    let pki = TestPki::new();
    let server = serve(&pki, false).await;
    let answer = https_get(server.addr, &pki.client(), "/healthz", None).await;
    assert_eq!((answer.status, answer.text().as_str()), (200, "ok"));

    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut out)).await;
    assert!(
        !String::from_utf8_lossy(&out).contains("200 OK"),
        "plaintext must not be served: {out:?}"
    );
    assert_eq!(server.metrics.closed_count(CloseReason::TlsHandshake), 1);
}

#[tokio::test]
async fn a_handshake_that_never_finishes_is_closed_after_the_header_timeout() {
    let pki = TestPki::new();
    let server = serve(&pki, false).await;
    let silent = TcpStream::connect(server.addr).await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    // A TLS record header announcing a 512-byte ClientHello, and 4 of them.
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
        .await
        .unwrap();
    for s in [silent, partial] {
        let closed = closed_after(s, Duration::from_secs(5))
            .await
            .expect("closed");
        assert!(closed < Duration::from_secs(3), "{closed:?}");
    }
    assert_eq!(server.metrics.closed_count(CloseReason::HeaderTimeout), 2);
    let answer = https_get(server.addr, &pki.client(), "/healthz", None).await;
    assert_eq!(answer.status, 200);
}

/// An HTTP/2-only (gRPC) server writes before it reads, so a handshake
/// that never finishes stalls a write: the deadline holds there too.
#[tokio::test]
async fn a_grpc_listener_closes_handshakes_that_never_finish() {
    let pki = TestPki::new();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = ConnectionMetrics::register(&mut registry).listener("grpc");
    let tls = ServerTls::load(TlsFiles {
        cert: pki.cert_file(),
        key: pki.key_file(),
        client_ca: None,
        require_client_certificate: false,
    })
    .unwrap();
    let listener = Listener::bind(
        "grpc",
        "127.0.0.1:0".parse().unwrap(),
        limits(),
        &ListenerSecurity::Tls(tls),
        metrics.clone(),
    )
    .await
    .unwrap();
    let addr = listener.local_addr();
    let (_stop, rx) = watch::channel(false);
    tokio::spawn(serve_grpc(listener, tonic::service::Routes::default(), rx));
    let silent = TcpStream::connect(addr).await.unwrap();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
        .await
        .unwrap();
    for s in [silent, partial] {
        let closed = closed_after(s, Duration::from_secs(5))
            .await
            .expect("closed");
        assert!(closed < Duration::from_secs(3), "{closed:?}");
    }
    assert_eq!(metrics.closed_count(CloseReason::HeaderTimeout), 2);
    let h2 = tls_connect(addr, &pki.client(), &[b"h2"]).await.unwrap();
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn http2_over_tls_may_idle_until_the_idle_timeout() {
    let pki = TestPki::new();
    let server = serve(&pki, false).await;
    let mut h2 = tls_connect(server.addr, &pki.client(), &[b"h2"])
        .await
        .unwrap();
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    h2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let closed = closed_after(h2, Duration::from_secs(8))
        .await
        .expect("closed when idle");
    assert!(
        closed > Duration::from_millis(2500) && closed < Duration::from_secs(5),
        "closed after {closed:?}: the HTTP/2 preface must be seen through TLS"
    );
    assert_eq!(server.metrics.closed_count(CloseReason::Idle), 1);
}

#[tokio::test]
async fn client_certificates_are_verified_and_reach_the_handler() {
    let pki = TestPki::new();
    let server = serve(&pki, false).await;
    let ours = pki
        .client()
        .with_identity(pki.ca.client("ci-pipeline", "example"));
    let answer = https_get(server.addr, &ours, "/whoami", None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "CN=ci-pipeline, O=example");
    let none = https_get(server.addr, &pki.client(), "/whoami", None).await;
    assert_eq!(none.text(), "anonymous", "a client may present none");

    let stranger = pki
        .client()
        .with_identity(TestCa::new("someone-else").client("ci-pipeline", "example"));
    let refused = scanfleet_test_harness::https::https_request(
        server.addr,
        &stranger,
        "GET",
        "/whoami",
        None,
        &[],
        b"",
    )
    .await;
    assert!(refused.is_err(), "another CA's certificate: {refused:?}");
    assert_eq!(server.metrics.closed_count(CloseReason::TlsHandshake), 1);
}

#[tokio::test]
async fn a_required_client_certificate_is_required() {
    let pki = TestPki::new();
    let server = serve(&pki, true).await;
    let without = scanfleet_test_harness::https::https_request(
        server.addr,
        &pki.client(),
        "GET",
        "/healthz",
        None,
        &[],
        b"",
    )
    .await;
    assert!(without.is_err(), "{without:?}");
    let with = pki.client().with_identity(pki.ca.client("ops", "example"));
    assert_eq!(
        https_get(server.addr, &with, "/healthz", None).await.status,
        200
    );
}

#[tokio::test]
async fn a_certificate_rotated_on_disk_is_served_without_a_restart() {
    let pki = TestPki::new();
    let server = serve(&pki, false).await;
    assert_eq!(
        presented_subject(server.addr, &pki).await,
        "CN=scanfleet-server-0"
    );
    let cn = pki.rotate_server_certificate();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if presented_subject(server.addr, &pki).await == format!("CN={cn}") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken replacement is refused: through two reload checks, every
    // connection still gets the last good certificate.
    std::fs::write(pki.cert_file(), "not a certificate").unwrap();
    let watched = Instant::now();
    while watched.elapsed() < RELOAD_CHECK * 2 {
        assert_eq!(
            presented_subject(server.addr, &pki).await,
            format!("CN={cn}")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = https_get(server.addr, &pki.client(), "/healthz", None).await;
    assert_eq!(answer.status, 200);
}
