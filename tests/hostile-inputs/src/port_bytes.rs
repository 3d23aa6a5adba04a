//! What reaches a TLS port before any protocol: random bytes, bytes that
//! start like a TLS record and go wrong, plaintext HTTP/1.1 and HTTP/2 on
//! a TLS port, and a handshake with a client certificate from another CA.
//! Each must end in the handshake: an alert, a reset or EOF, never an
//! application answer.

use std::net::SocketAddr;

use scanfleet_test_harness::https::tls_connect;
use scanfleet_test_harness::pki::ClientTls;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::seeded::Seeded;
use crate::verdicts::{Answer, Hostile};

/// Bytes for one connection.
#[derive(Debug, Clone)]
pub struct PortBytes {
    kind: &'static str,
    /// Exactly what is written before the write side is closed.
    pub bytes: Vec<u8>,
}

impl Hostile for PortBytes {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn describe(&self) -> String {
        format!(
            "{} bytes: {}",
            self.bytes.len(),
            hex::encode(&self.bytes[..self.bytes.len().min(128)])
        )
    }
}

/// Input `index` of a port's barrage.
pub fn port_bytes(rng: &mut Seeded, index: usize) -> PortBytes {
    let (kind, bytes) = match index % 5 {
        0 | 1 => {
            let n = rng.between(1, 4096);
            ("random-bytes", rng.bytes(n))
        }
        2 => {
            // A handshake record header with a garbage body; the announced
            // length may be longer than what follows (then EOF ends it).
            let n = rng.between(1, 600);
            let mut b = vec![0x16, 0x03, *rng.pick(&[0x00, 0x01, 0x03, 0x04])];
            b.extend_from_slice(&(rng.below(1 << 14) as u16).to_be_bytes());
            b.push(*rng.pick(&[0x01, 0x02, 0x0b, 0xff]));
            b.extend(rng.bytes(n));
            ("broken-tls-record", b)
        }
        3 => {
            let path = rng.printable_between(1, 40);
            let request = format!("GET /{path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
            ("plaintext-http", request.into_bytes())
        }
        _ => {
            let mut b = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
            let n = rng.below(200);
            b.extend(rng.bytes(n));
            ("plaintext-http2", b)
        }
    };
    PortBytes { kind, bytes }
}

/// Writes the bytes, closes the write side, and reads what comes back
/// until the server closes: refused when nothing or only TLS alert
/// records came back.
pub async fn send_bytes(addr: SocketAddr, input: &PortBytes) -> Answer {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return Answer::Other(format!("connect: {e}")),
    };
    // The server may close (and reset) before it read everything.
    let _ = s.write_all(&input.bytes).await;
    let _ = s.shutdown().await;
    let mut back = Vec::new();
    let how = match s.read_to_end(&mut back).await {
        Ok(_) => "EOF".to_owned(),
        Err(e) => format!("{:?}", e.kind()),
    };
    if back.is_empty() || back[0] == 0x15 {
        Answer::HandshakeRefused(format!("{how} after {} bytes of alert", back.len()))
    } else {
        Answer::Other(format!(
            "the server answered {} bytes: {:?}",
            back.len(),
            String::from_utf8_lossy(&back[..back.len().min(80)])
        ))
    }
}

/// A handshake presenting a client certificate that `tls`'s identity (from
/// another CA) carries, then a request in `alpn`'s protocol: refused when
/// the handshake or the first read fails.
#[derive(Debug, Clone)]
pub struct ForeignCertificate {
    /// ALPN to offer: `h2` for gRPC ports, `http/1.1` for HTTPS ones.
    pub alpn: &'static [u8],
}

impl Hostile for ForeignCertificate {
    fn kind(&self) -> &'static str {
        "foreign-ca-client-certificate"
    }

    fn describe(&self) -> String {
        format!(
            "client certificate of another CA, ALPN {}",
            String::from_utf8_lossy(self.alpn)
        )
    }
}

/// See [`ForeignCertificate`].
pub async fn present_certificate(addr: SocketAddr, tls: &ClientTls, alpn: &[u8]) -> Answer {
    let mut stream = match tls_connect(addr, tls, &[alpn]).await {
        Ok(s) => s,
        Err(e) => return Answer::HandshakeRefused(format!("handshake: {e}")),
    };
    let request: &[u8] = if alpn == b"h2" {
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    } else {
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    };
    if let Err(e) = async {
        stream.write_all(request).await?;
        stream.flush().await
    }
    .await
    {
        return Answer::HandshakeRefused(format!("write: {e}"));
    }
    let mut buf = [0u8; 256];
    match stream.read(&mut buf).await {
        Ok(0) => Answer::HandshakeRefused("EOF before any answer".into()),
        Err(e) => Answer::HandshakeRefused(format!("read: {e}")),
        Ok(n) => Answer::Other(format!(
            "served (the certificate was accepted): {:?}",
            String::from_utf8_lossy(&buf[..n])
        )),
    }
}
