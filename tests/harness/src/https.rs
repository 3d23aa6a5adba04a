//! A tiny HTTPS/1.1 client for tests of the services' HTTP edges (health,
//! metrics, webhooks, the collector's JSON API): one request per
//! connection, TLS with the test CA, an optional bearer token.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::pki::ClientTls;

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A TLS connection to `addr` (verified as `localhost`), offering `alpn`.
///
/// # Errors
/// When the connection or the handshake fails (e.g. a refused client
/// certificate).
pub async fn tls_connect(
    addr: SocketAddr,
    tls: &ClientTls,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(tls.rustls(alpn));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a DNS name");
    connector.connect(name, tcp).await
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = raw.get(start + size + 2..).unwrap_or_default();
    }
    out
}

/// Parses a whole HTTP/1.1 response.
///
/// # Errors
/// When the bytes are not an HTTP response.
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP response: {:?}", String::from_utf8_lossy(raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let body = &raw[split + 4..];
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    Ok(HttpResponse {
        status,
        headers,
        body: if chunked {
            dechunk(body)
        } else {
            body.to_vec()
        },
    })
}

/// One request on a fresh TLS connection (`Connection: close`), with a
/// bearer token when given and any other headers.
///
/// # Errors
/// When the connection, handshake or read fails, or no answer comes
/// within 30 s.
pub async fn https_request(
    addr: SocketAddr,
    tls: &ClientTls,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let attempt = async {
        let mut stream = tls_connect(addr, tls, &[b"http/1.1"])
            .await
            .map_err(|e| format!("TLS connection to {addr}: {e}"))?;
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n")
                .into_bytes();
        if let Some(token) = token {
            request.extend_from_slice(format!("Authorization: Bearer {token}\r\n").as_bytes());
        }
        for (n, v) in headers {
            request.extend_from_slice(n.as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(v);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(body);
        stream
            .write_all(&request)
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        // A peer that closes without close_notify still sent its answer.
        let _ = stream.read_to_end(&mut raw).await;
        parse_response(&raw)
    };
    tokio::time::timeout(Duration::from_secs(30), attempt)
        .await
        .map_err(|_| "no answer within 30 s".to_owned())?
}

/// `GET path` with an optional bearer token.
///
/// # Panics
/// When no HTTP answer comes.
pub async fn https_get(
    addr: SocketAddr,
    tls: &ClientTls,
    path: &str,
    token: Option<&str>,
) -> HttpResponse {
    https_request(addr, tls, "GET", path, token, &[], b"")
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}
