//! A slow-client flood against a real service process (issue #12, finding
//! 3): thousands of connections that start a request and never finish it,
//! held open while a well-behaved client tries to be served. On the TLS
//! ports every service now has, the unfinished request is a ClientHello
//! ([`PARTIAL_CLIENT_HELLO`]).
//!
//! The service runs under a low `RLIMIT_NOFILE` (set by `sh -c 'ulimit
//! -n'` before `exec`, so the test needs no unsafe code) so that the flood
//! reaches the process's descriptor limit in seconds.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pki::ClientTls;

/// The child's descriptor limit (soft and hard) in the flood tests.
pub const FD_LIMIT: u32 = 512;
/// Connections the flood opens per listener.
pub const FLOOD: usize = 3000;
/// How long a well-behaved client waits to be served.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// The slow-loris of a TLS port: a record header announcing a 512-byte
/// ClientHello, and the first 4 bytes of it, never the rest.
pub const PARTIAL_CLIENT_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];

/// A service binary running under [`FD_LIMIT`]; killed on drop.
pub struct LimitedProcess {
    child: Child,
    /// The "listening" line it printed.
    pub listening: String,
}

impl LimitedProcess {
    /// Starts `program args…` with at most `fd_limit` open files; waits for
    /// its "listening" line. Its stderr goes to `log`.
    pub fn start(program: &Path, args: &[String], fd_limit: u32, log: &Path) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {fd_limit} && exec \"$0\" \"$@\""))
            .arg(program)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("spawn the service under sh");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let listening = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not start: {}",
                    program.display(),
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            });
        Self { child, listening }
    }

    /// The address after `key` (e.g. `grpc=`) in the listening line.
    pub fn addr(&self, key: &str) -> SocketAddr {
        self.listening
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.listening))
            .parse()
            .expect("an address")
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for LimitedProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens up to `count` connections to `addr`, each sending `prefix` (the
/// start of a request, never finished), and keeps them open. Connections
/// that the kernel does not complete within a second are given up.
pub async fn hold_half_open(
    addr: SocketAddr,
    count: usize,
    prefix: &'static [u8],
) -> Vec<TcpStream> {
    use futures::StreamExt as _;
    futures::stream::iter(0..count)
        .map(|_| async move {
            let mut s = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr))
                .await
                .ok()?
                .ok()?;
            s.write_all(prefix).await.ok()?;
            Some(s)
        })
        .buffer_unordered(256)
        .filter_map(|s| async move { s })
        .collect()
        .await
}

/// How many of `held` the server has closed (EOF or reset) by now.
pub async fn closed_by_server(held: &mut [TcpStream]) -> usize {
    let mut closed = 0;
    let mut buf = [0u8; 64];
    for s in held.iter_mut() {
        match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            _ => {}
        }
    }
    closed
}

/// `GET path` on a fresh TLS connection: the status line and how long it
/// took (handshake included), or why it failed within [`PATIENCE`].
pub async fn http_get(
    addr: SocketAddr,
    tls: &ClientTls,
    path: &str,
) -> Result<(String, Duration), String> {
    let started = Instant::now();
    let attempt = async {
        let mut s = crate::https::tls_connect(addr, tls, &[b"http/1.1"])
            .await
            .map_err(|e| e.to_string())?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: scanfleet\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        // A peer that closes without close_notify still sent its answer.
        let _ = s.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out).into_owned();
        Ok::<_, String>(text.lines().next().unwrap_or_default().to_owned())
    };
    match tokio::time::timeout(PATIENCE, attempt).await {
        Ok(Ok(status)) => Ok((status, started.elapsed())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("not served within {PATIENCE:?}")),
    }
}

/// What one flood did, for the test's output and the figures.
#[derive(Debug)]
pub struct FloodFigures {
    /// Which listener.
    pub listener: &'static str,
    /// Half-open connections the flood got established.
    pub held: usize,
    /// Of those, closed by the server by the time the good client was done.
    pub closed_by_server: usize,
    /// The good client's answer, or why it got none.
    pub served: Result<String, String>,
    /// How long the good client waited.
    pub time_to_serve: Duration,
}
