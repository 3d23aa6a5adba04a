//! One accepted connection and the clock that closes it when it idles.
//!
//! The deadlines live in the byte stream itself, below any protocol
//! server, so that axum (HTTP/1 and HTTP/2) and tonic (HTTP/2) are held to
//! the same rules without either of them knowing: a read that comes after
//! the deadline fails with `TimedOut`, and the protocol server closes the
//! connection as it would for any broken socket.
//!
//! The rules, with no request in flight:
//! - until a request is complete (and again after each response on an
//!   HTTP/1 connection), the next request's headers must arrive within
//!   `header_read_timeout` of the connection going idle; bytes trickling in
//!   do not extend it (slow-loris);
//! - an HTTP/2 connection (its 24-byte preface arrived in time) may idle
//!   between requests for `idle_timeout`, since gRPC clients keep one
//!   connection open and call now and then;
//! - a connection the listener evicts (it needs the slot for a newcomer)
//!   fails on its next read;
//! - a write that cannot make progress is held to the same deadline (a
//!   TLS handshake, or an HTTP/2 server's first SETTINGS, is written
//!   before anything is read).
//!
//! With a request in flight (from the moment its headers are complete
//! until its response body is dropped), there is no deadline: a long
//! `Watch` stream or a slow scan answer is work, not an attack.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use super::limits::ServingLimits;
use super::listener_metrics::{CloseReason, ListenerMetrics};
use super::transport::{PeerTls, Transport};

/// The first bytes every HTTP/2 client sends (RFC 9113, section 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the listener and the request tracker share about one connection.
#[derive(Debug)]
pub(crate) struct Activity {
    /// When it was accepted; other times are stored relative to it.
    born: Instant,
    /// Requests whose response body has not been dropped yet.
    in_flight: AtomicUsize,
    /// Milliseconds after `born` when `in_flight` last dropped to zero.
    idle_since_ms: AtomicU64,
    /// Set by the listener to take the slot back.
    evicted: AtomicBool,
    /// The reader to wake when a deadline changes (idle again, evicted).
    reader: AtomicWaker,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            reader: AtomicWaker::new(),
        })
    }

    /// Marks a request as started; it ends when the guard drops.
    pub(crate) fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(self.clone())
    }

    /// Idle connections are the ones a newcomer may take the slot of.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && !self.evicted.load(Ordering::Acquire)
    }

    /// Asks the connection to close on its next read.
    pub(crate) fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.reader.wake();
    }

    fn idle_since(&self) -> Instant {
        self.born + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }
}

/// Holds a request "in flight" until dropped (with the response body).
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        let since = activity.born.elapsed().as_millis() as u64;
        activity.idle_since_ms.store(since, Ordering::Release);
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.reader.wake();
        }
    }
}

/// What the protocol is, as far as the first bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Fewer bytes than the HTTP/2 preface so far, all matching it.
    Unknown { matched: usize },
    /// Anything else: HTTP/1.x.
    Http1,
    /// The full HTTP/2 preface arrived.
    Http2,
}

/// Per-connection facts handed to services as a request extension (by
/// tonic, and by [`serve_http`](super::serve_http) for axum), so the
/// request tracker can find the connection a request arrived on and the
/// edge can see the client certificate it was made with.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The peer.
    pub remote: SocketAddr,
    /// What the TLS handshake established (nothing on plaintext).
    pub tls: PeerTls,
    pub(crate) activity: Arc<Activity>,
}

/// An accepted connection: the byte stream (plain or TLS, see
/// [`Transport`]), its slot in the listener and its deadlines.
#[derive(Debug)]
pub struct Connection<IO = Transport> {
    io: IO,
    info: ConnectionInfo,
    limits: ServingLimits,
    protocol: Protocol,
    timer: Pin<Box<Sleep>>,
    metrics: ListenerMetrics,
    /// Already closed by a deadline (counted once).
    closed: bool,
    _slot: OwnedSemaphorePermit,
}

impl<IO> Connection<IO> {
    pub(crate) fn new(
        io: IO,
        remote: SocketAddr,
        tls: PeerTls,
        activity: Arc<Activity>,
        limits: ServingLimits,
        metrics: ListenerMetrics,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        metrics.opened();
        Self {
            io,
            info: ConnectionInfo {
                remote,
                tls,
                activity,
            },
            limits,
            protocol: Protocol::Unknown { matched: 0 },
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            metrics,
            closed: false,
            _slot: slot,
        }
    }

    /// Who is on the other end, and the request tracker's handle.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// When the connection must close unless a request starts, if ever.
    fn deadline(&self) -> Option<(Instant, CloseReason)> {
        let activity = &self.info.activity;
        if activity.evicted.load(Ordering::Acquire) {
            return Some((activity.born, CloseReason::Evicted));
        }
        if activity.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = activity.idle_since();
        Some(match self.protocol {
            Protocol::Http2 => (since + self.limits.idle_timeout, CloseReason::Idle),
            _ => (
                since + self.limits.header_read_timeout,
                CloseReason::HeaderTimeout,
            ),
        })
    }

    fn sniff(&mut self, new: &[u8]) {
        if let Protocol::Unknown { matched } = self.protocol {
            let want = &H2_PREFACE[matched..];
            let n = want.len().min(new.len());
            self.protocol = if new[..n] != want[..n] {
                Protocol::Http1
            } else if matched + n == H2_PREFACE.len() {
                Protocol::Http2
            } else {
                Protocol::Unknown {
                    matched: matched + n,
                }
            };
        }
    }

    fn expired(&mut self, reason: CloseReason) -> io::Error {
        if !self.closed {
            self.closed = true;
            self.metrics.closed(reason);
            tracing::debug!(peer = %self.info.remote, reason = reason.label(), "closing connection");
        }
        io::Error::new(io::ErrorKind::TimedOut, reason.label())
    }

    /// After a write that cannot make progress: the same deadline as a
    /// read. Why writes too: a TLS handshake (and an HTTP/2 server's first
    /// SETTINGS) is written before anything is read, so a client that
    /// never answers would otherwise stall the connection in a write that
    /// no read deadline sees.
    fn stalled_write<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        self.info.activity.reader.register(cx.waker());
        if let Some((at, reason)) = self.deadline() {
            if Instant::now() >= at {
                return Poll::Ready(Err(self.expired(reason)));
            }
            self.timer.as_mut().reset(at);
            if self.timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(self.expired(reason)));
            }
        }
        Poll::Pending
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Connection<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.info.activity.reader.register(cx.waker());
        let deadline = this.deadline();
        if let Some((at, reason)) = deadline
            && Instant::now() >= at
        {
            return Poll::Ready(Err(this.expired(reason)));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.sniff(&buf.filled()[before..]);
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        if let Some((at, reason)) = deadline {
            this.timer.as_mut().reset(at);
            if this.timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(this.expired(reason)));
            }
        }
        Poll::Pending
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Connection<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => this.stalled_write(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.stalled_write(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.stalled_write(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO> Drop for Connection<IO> {
    fn drop(&mut self) {
        self.metrics.dropped();
    }
}

impl<IO> tonic::transport::server::Connected for Connection<IO> {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        self.info.clone()
    }
}
