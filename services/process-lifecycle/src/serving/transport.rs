//! The byte stream under a [`Connection`](super::Connection): plain TCP, or
//! TLS whose handshake runs inside the connection's first reads.
//!
//! Why inside the reads and not in the accept loop: a client that opens a
//! connection and never finishes its ClientHello would otherwise hold the
//! accept loop for everyone. Here the handshake is just the first bytes a
//! connection reads, so the connection's header-read deadline bounds it,
//! a full listener evicts it like any idle connection, and the protocol
//! sniffing above sees decrypted bytes (an HTTP/2 preface over TLS is still
//! recognised, so gRPC keeps its idle timeout).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::listener_metrics::{CloseReason, ListenerMetrics};

/// The client certificate a TLS peer presented and the CA verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The leaf's subject, RFC 4514 style (`CN=ci,O=example`).
    pub subject: String,
}

/// What the TLS handshake established about the peer, once it finished.
#[derive(Debug, Clone, Default)]
pub struct PeerTls(Arc<OnceLock<Option<PeerCertificate>>>);

impl PeerTls {
    /// The verified client certificate, if the peer presented one; `None`
    /// also for a plaintext connection or one still shaking hands.
    pub fn client_certificate(&self) -> Option<&PeerCertificate> {
        self.0.get().and_then(Option::as_ref)
    }

    /// Whether the connection is TLS with a finished handshake.
    pub fn established(&self) -> bool {
        self.0.get().is_some()
    }
}

/// The subject of a DER certificate, when it parses.
pub fn certificate_subject(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.subject().to_string())
}

enum Tls {
    Handshaking(Box<tokio_rustls::Accept<TcpStream>>),
    Ready(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Failed,
}

/// A connection's byte stream.
pub struct Transport {
    kind: Kind,
}

enum Kind {
    Plain(TcpStream),
    Tls {
        state: Tls,
        peer: PeerTls,
        metrics: ListenerMetrics,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.kind {
            Kind::Plain(_) => "plain",
            Kind::Tls { state, .. } => match state {
                Tls::Handshaking(_) => "tls (handshaking)",
                Tls::Ready(_) => "tls",
                Tls::Failed => "tls (failed)",
            },
        };
        f.write_str(what)
    }
}

impl Transport {
    /// Plain TCP.
    pub(crate) fn plain(tcp: TcpStream) -> Self {
        Self {
            kind: Kind::Plain(tcp),
        }
    }

    /// TLS; the handshake runs on the first reads and writes.
    pub(crate) fn tls(
        handshake: tokio_rustls::Accept<TcpStream>,
        peer: PeerTls,
        metrics: ListenerMetrics,
    ) -> Self {
        Self {
            kind: Kind::Tls {
                state: Tls::Handshaking(Box::new(handshake)),
                peer,
                metrics,
            },
        }
    }

    /// Drives the handshake; `Ready(Ok)` once the TLS stream exists.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Kind::Tls {
            state,
            peer,
            metrics,
        } = &mut self.kind
        else {
            return Poll::Ready(Ok(()));
        };
        let Tls::Handshaking(accept) = state else {
            return Poll::Ready(match state {
                Tls::Failed => Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "TLS handshake failed",
                )),
                _ => Ok(()),
            });
        };
        match Pin::new(accept.as_mut()).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(stream)) => {
                let certificate = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| certificate_subject(leaf))
                    .map(|subject| PeerCertificate { subject });
                let _ = peer.0.set(certificate);
                *state = Tls::Ready(Box::new(stream));
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                // Hostile or broken clients end here by the thousand; the
                // counter tells operators, a debug line says why.
                metrics.closed(CloseReason::TlsHandshake);
                tracing::debug!(error = %e, "TLS handshake failed");
                *state = Tls::Failed;
                Poll::Ready(Err(e))
            }
        }
    }

    /// Runs `f` on the established stream.
    fn with_stream<R>(
        &mut self,
        f: impl FnOnce(Pin<&mut dyn AsyncReadWrite>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match &mut self.kind {
            Kind::Plain(tcp) => f(Pin::new(tcp)),
            Kind::Tls {
                state: Tls::Ready(stream),
                ..
            } => f(Pin::new(stream.as_mut())),
            Kind::Tls { .. } => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

use std::future::Future as _;

trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> AsyncReadWrite for T {}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.poll_handshake(cx) {
            Poll::Ready(Ok(())) => this.with_stream(|s| s.poll_read(cx, buf)),
            other => other,
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.poll_handshake(cx) {
            Poll::Ready(Ok(())) => this.with_stream(|s| s.poll_write(cx, buf)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.poll_handshake(cx) {
            Poll::Ready(Ok(())) => this.with_stream(|s| s.poll_write_vectored(cx, bufs)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.kind {
            Kind::Plain(tcp) => tcp.is_write_vectored(),
            Kind::Tls { .. } => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &this.kind {
            // Nothing of ours is buffered before the handshake finished.
            Kind::Tls {
                state: Tls::Handshaking(_) | Tls::Failed,
                ..
            } => Poll::Ready(Ok(())),
            _ => this.with_stream(|s| s.poll_flush(cx)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &this.kind {
            // Dropping the handshake closes the socket.
            Kind::Tls {
                state: Tls::Handshaking(_) | Tls::Failed,
                ..
            } => Poll::Ready(Ok(())),
            _ => this.with_stream(|s| s.poll_shutdown(cx)),
        }
    }
}
