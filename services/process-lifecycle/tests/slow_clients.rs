//! The listener rules against real sockets, in plaintext (TLS has its own
//! file, `tls_listeners.rs`): silent and slow-loris
//! connections are closed after the header-read timeout, an HTTP/2
//! connection may idle until the idle timeout, a busy connection is never
//! closed, and a full listener makes room for a newcomer by closing its
//! oldest idle connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use scanfleet_process_lifecycle::serving::{CloseReason, ConnectionMetrics, ListenerMetrics};
use scanfleet_process_lifecycle::{Listener, ListenerSecurity, ServingLimits, serve_http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

struct Server {
    addr: SocketAddr,
    metrics: ListenerMetrics,
    _stop: watch::Sender<bool>,
}

async fn serve(limits: ServingLimits) -> Server {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = ConnectionMetrics::register(&mut registry).listener("http");
    let listener = Listener::bind(
        "http",
        "127.0.0.1:0".parse().unwrap(),
        limits,
        &ListenerSecurity::InsecurePlaintext,
        metrics.clone(),
    )
    .await
    .unwrap();
    let addr = listener.local_addr();
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(2500)).await;
                "done"
            }),
        );
    let (stop, rx) = watch::channel(false);
    tokio::spawn(serve_http(listener, router, rx));
    Server {
        addr,
        metrics,
        _stop: stop,
    }
}

fn limits(max_connections: usize) -> ServingLimits {
    ServingLimits {
        max_connections,
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(3),
    }
}

/// One request on a fresh connection; the status line, or the failure.
async fn get_path(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .map_err(|_| "no answer within 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok(out.lines().next().unwrap_or_default().to_owned())
}

/// How long until the server closes `s` (reads EOF or an error).
async fn closed_after(mut s: TcpStream, limit: Duration) -> Option<Duration> {
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

#[tokio::test]
async fn silent_and_slow_loris_connections_are_closed_after_the_header_timeout() {
    let server = serve(limits(64)).await;
    let silent = TcpStream::connect(server.addr).await.unwrap();
    let mut loris = TcpStream::connect(server.addr).await.unwrap();
    loris.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let trickle = tokio::spawn(async move {
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if loris
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        loris
    });
    let silent_closed = closed_after(silent, Duration::from_secs(5)).await;
    let silent_closed = silent_closed.expect("a silent connection is closed");
    assert!(silent_closed < Duration::from_secs(3), "{silent_closed:?}");
    let loris = trickle.await.unwrap();
    let loris_closed = closed_after(loris, Duration::from_secs(1)).await;
    assert!(
        loris_closed.is_some(),
        "a trickling header is closed, not kept"
    );
    assert_eq!(server.metrics.closed_count(CloseReason::HeaderTimeout), 2);
    assert_eq!(
        get_path(server.addr, "/healthz").await.unwrap(),
        "HTTP/1.1 200 OK"
    );
}

#[tokio::test]
async fn a_busy_connection_outlives_the_header_timeout() {
    let server = serve(limits(64)).await;
    let started = Instant::now();
    assert_eq!(
        get_path(server.addr, "/slow").await.unwrap(),
        "HTTP/1.1 200 OK"
    );
    assert!(started.elapsed() > Duration::from_secs(2));
    assert_eq!(server.metrics.closed_count(CloseReason::HeaderTimeout), 0);
}

#[tokio::test]
async fn an_http2_connection_may_idle_until_the_idle_timeout() {
    let server = serve(limits(64)).await;
    let mut h2 = TcpStream::connect(server.addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    h2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let closed = closed_after(h2, Duration::from_secs(8))
        .await
        .expect("closed when idle");
    assert!(
        closed > Duration::from_millis(2500) && closed < Duration::from_secs(5),
        "closed after {closed:?}, expected the 3 s idle timeout, not the 1 s header timeout"
    );
    assert_eq!(server.metrics.closed_count(CloseReason::Idle), 1);
}

#[tokio::test]
async fn a_full_listener_closes_its_oldest_idle_connection_for_a_newcomer() {
    let server = serve(ServingLimits {
        header_read_timeout: Duration::from_secs(60),
        ..limits(8)
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.metrics.open() < 8 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.metrics.open(), 8, "all eight accepted");
    let started = Instant::now();
    assert_eq!(
        get_path(server.addr, "/healthz").await.unwrap(),
        "HTTP/1.1 200 OK"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(server.metrics.closed_count(CloseReason::Evicted) >= 1);
    let oldest = held.remove(0);
    assert!(
        closed_after(oldest, Duration::from_secs(2)).await.is_some(),
        "the oldest went"
    );
}
