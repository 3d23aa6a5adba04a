//! Hostile HTTPS requests for the collector's JSON API: query strings that
//! break `/v1/results`' parameters, paths that name nothing or try to
//! escape, methods the API does not serve, and well-formed reads from
//! callers who are not who they say or may not read.

use std::net::SocketAddr;

use scanfleet_test_harness::https::{parse_response, tls_connect};
use scanfleet_test_harness::pki::ClientTls;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bad_tokens::{BadCredential, RealTokens, bad_credential};
use crate::seeded::Seeded;
use crate::verdicts::{Answer, Hostile, bounded};

/// One hostile HTTP request (a fresh TLS connection each).
#[derive(Debug, Clone)]
pub struct HttpInput {
    /// The generator that made it.
    pub kind: &'static str,
    /// The request method.
    pub method: String,
    /// The request target, exactly as sent.
    pub path: String,
    /// Extra headers, exactly as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Hostile for HttpInput {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn describe(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", bounded(&String::from_utf8_lossy(v), 100)))
            .collect();
        format!(
            "{} {} [{}] body {} bytes: {}",
            self.method,
            bounded(&self.path, 300),
            headers.join("; "),
            self.body.len(),
            bounded(&String::from_utf8_lossy(&self.body), 200)
        )
    }
}

impl HttpInput {
    /// A request with no extra headers or body.
    pub fn new(kind: &'static str, method: &str, path: String) -> Self {
        Self {
            kind,
            method: method.into(),
            path,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// With `Authorization: <value>`.
    pub fn authorization(mut self, value: &str) -> Self {
        self.headers
            .push(("Authorization".into(), value.as_bytes().to_vec()));
        self
    }

    /// The request's bytes (`Connection: close`, `Content-Length`).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
            self.method, self.path
        )
        .into_bytes();
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// Sends it to `addr` on a fresh TLS connection and reads the answer.
    /// A server may answer (413, 431) and close before the whole request
    /// was written; its answer still counts.
    pub async fn send(&self, addr: SocketAddr, tls: &ClientTls) -> Answer {
        let patience = std::time::Duration::from_secs(12);
        let started = std::time::Instant::now();
        let mut stream =
            match tokio::time::timeout(patience, tls_connect(addr, tls, &[b"http/1.1"])).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Answer::Other(format!("TLS connection: {e}")),
                Err(_) => return Answer::Other("the TLS handshake hung".into()),
            };
        let handshake = started.elapsed();
        // TLS buffers what the socket did not take yet; only a flush sends it.
        let written = tokio::time::timeout(patience, async {
            stream.write_all(&self.bytes()).await?;
            stream.flush().await
        })
        .await;
        let wrote = started.elapsed();
        let mut raw = Vec::new();
        // A peer that closes without close_notify still sent its answer.
        let read = tokio::time::timeout(patience, stream.read_to_end(&mut raw)).await;
        match parse_response(&raw) {
            Ok(r) => Answer::Http(r.status, bounded(&r.text(), 300)),
            Err(e) => Answer::Other(format!(
                "{e} (handshake {handshake:?}, writing {written:?} by {wrote:?}, reading {read:?} by {:?})",
                started.elapsed()
            )),
        }
    }
}

/// Percent-encodes every byte outside unreserved characters.
pub fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A `/v1/results` query string no correct server accepts.
fn broken_query(rng: &mut Seeded) -> (String, &'static str) {
    let typed = ["threshold_passed", "since_ms", "until_ms", "page_size"];
    let junk_value = |rng: &mut Seeded| match rng.below(5) {
        0 => "maybe".to_owned(),
        1 => "99999999999999999999999".to_owned(),
        2 => "-1e308".to_owned(),
        3 => percent(&rng.unicode_between(1, 20)),
        _ => rng.text_between(1, 12, b"abcxyz!*"),
    };
    match rng.below(7) {
        0 => {
            let key = rng.text_between(1, 20, b"abcdefghijklmnopqrstuvwxyz_");
            let key = if key == "cluster" || key == "pod" {
                "clusterx".into()
            } else {
                key + "_x"
            };
            (
                format!("{key}={}", percent(&rng.printable(8))),
                "unknown-parameter",
            )
        }
        1 => {
            let key = rng.pick(&typed);
            let value = if *key == "page_size" && rng.chance(50) {
                "-1".into()
            } else {
                junk_value(rng)
            };
            (format!("{key}={value}"), "mistyped-parameter")
        }
        2 => (
            format!("outcome={}", percent(&rng.printable_between(1, 12))),
            "bad-outcome",
        ),
        3 => {
            let token = match rng.below(2) {
                0 => rng.printable_between(1, 60) + "!",
                _ => hex::encode(format!("v9:{}", rng.printable(8))),
            };
            (format!("page_token={}", percent(&token)), "bad-page-token")
        }
        4 => (
            format!("namespace=%{}&page_size=x", rng.text(1, b"zZg%")),
            "bad-percent-encoding",
        ),
        5 => ("page_size=1&page_size=2".into(), "duplicate-parameter"),
        _ => {
            let n = rng.between(200, 2000);
            let pairs: Vec<String> = (0..n).map(|i| format!("k{i}={}", rng.below(10))).collect();
            (pairs.join("&"), "many-parameters")
        }
    }
}

fn hostile_path(rng: &mut Seeded) -> String {
    let segment = |rng: &mut Seeded| match rng.below(6) {
        0 => "..".to_owned(),
        1 => "%2e%2e".to_owned(),
        2 => percent(&rng.unicode_between(1, 10)),
        3 => "%00".to_owned(),
        4 => "x".repeat(rng.between(1, 3000)),
        _ => rng.text_between(1, 12, b"abcdefghijklmnopqrstuvwxyz0123456789-_.~"),
    };
    let prefix = *rng.pick(&["", "/v1", "/v1/results", "/v2/results", "/v1/results/"]);
    let n = rng.between(1, 5);
    let mut path = prefix.to_owned();
    for _ in 0..n {
        path.push('/');
        path.push_str(&segment(rng));
    }
    // The probes answer anyone; only they may; everything else is refused.
    for probe in ["/healthz", "/readyz", "/metrics"] {
        if path.starts_with(probe) {
            path.insert_str(0, "/x");
        }
    }
    if let Some(id) = path.strip_prefix("/v1/results/")
        && !id.contains('/')
        && rng.chance(30)
    {
        path = format!(
            "/v1/results/{id}/{}",
            rng.pick(&["report", "envelope", "reports", ""])
        );
    }
    path
}

fn with_credential(req: HttpInput, bad: &BadCredential) -> HttpInput {
    match bad {
        BadCredential::Token(_, t) => req.authorization(&format!("Bearer {t}")),
        BadCredential::Header(_, Some(h)) => req.authorization(h),
        BadCredential::Header(_, None) => req,
    }
}

/// Input `index` of the collector HTTP barrage; `operator` may read
/// everything, `stranger` nothing.
pub fn collector_http_input(
    rng: &mut Seeded,
    index: usize,
    operator: &str,
    stranger: &str,
    real: &RealTokens,
) -> HttpInput {
    let as_operator = format!("Bearer {operator}");
    match index % 10 {
        0..=2 => {
            let (query, kind) = broken_query(rng);
            HttpInput::new(kind, "GET", format!("/v1/results?{query}")).authorization(&as_operator)
        }
        3 | 4 => {
            HttpInput::new("hostile-path", "GET", hostile_path(rng)).authorization(&as_operator)
        }
        5 => {
            let method = *rng.pick(&["POST", "PUT", "DELETE", "PATCH", "FOO"]);
            let path = *rng.pick(&[
                "/v1/results",
                "/healthz",
                "/metrics",
                "/v1/results/01J0000000000000000000000Z",
            ]);
            let mut r =
                HttpInput::new("wrong-method", method, path.into()).authorization(&as_operator);
            r.body = rng.bytes_between(0, 512 - 1);
            r
        }
        6 | 7 => {
            let bad = bad_credential(rng, index / 10 + index % 10, real);
            let path = if rng.chance(70) {
                "/v1/results".into()
            } else {
                "/v1/results/01J0000000000000000000000Z/report".into()
            };
            with_credential(HttpInput::new(bad.kind(), "GET", path), &bad)
        }
        8 => {
            let path = *rng.pick(&[
                "/v1/results?namespace=apps",
                "/v1/results?namespace=kube-system&page_size=5",
            ]);
            HttpInput::new("no-rights", "GET", path.into())
                .authorization(&format!("Bearer {stranger}"))
        }
        _ => {
            let mut r = HttpInput::new("bad-headers", "GET", "/v1/results".into())
                .authorization(&as_operator);
            match rng.below(3) {
                0 => r.headers.push((
                    format!("{} {}", rng.text(4, b"abc{}<>"), rng.text(4, b"xyz")),
                    b"x".to_vec(),
                )),
                1 => r
                    .headers
                    .push(("X-Junk".into(), vec![0, 1, 2, b'\r', b'x'])),
                _ => {
                    for i in 0..rng.between(101, 300) {
                        r.headers.push((format!("x-h{i}"), b"1".to_vec()));
                    }
                }
            }
            r
        }
    }
}
