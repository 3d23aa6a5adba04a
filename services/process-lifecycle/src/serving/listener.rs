//! The accept loop every service port goes through: a cap on open
//! connections, eviction of idle ones under pressure, and accept errors
//! met with a back-off instead of a tight loop.
//!
//! It yields [`Connection`]s to whichever protocol server sits above (axum
//! for HTTP, tonic for gRPC). TLS is set up here, in [`Listener::accept`]:
//! the accepted socket is wrapped in the listener's current acceptor (so a
//! rotated certificate is used from the next connection on), and the
//! handshake runs as the connection's first reads, bounded by its
//! header-read deadline (see [`Transport`]); nothing above changes.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use nix::errno::Errno;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::connection::{Activity, Connection};
use super::limits::ServingLimits;
use super::listener_metrics::ListenerMetrics;
use super::tls::{AcceptorCache, ListenerSecurity, ServerTls};
use super::transport::{PeerTls, Transport};

/// The first pause after a resource error; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest pause between accept attempts while resources are short.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Idle connections closed at once when the process is out of file
/// descriptors: enough that the next accepts succeed without a pause each.
const EVICT_ON_SHORTAGE: usize = 16;

/// Every connection of every listener in this process, oldest first.
/// File descriptors are the process's, not one listener's: when `accept`
/// runs out of them, a flood of idle connections on one listener must be
/// evicted before another listener's newest (a good client still in its
/// TLS handshake counts as idle), or a flood on HTTP starves gRPC.
static PROCESS_LIVE: Mutex<VecDeque<Weak<Activity>>> = Mutex::new(VecDeque::new());

/// The listener can no longer accept: the service must stop (and be
/// restarted) rather than run with a dead port.
#[derive(Debug, thiserror::Error)]
#[error("listener {name} on {addr} cannot accept: {source}")]
pub struct AcceptFailed {
    /// The listener's name.
    pub name: &'static str,
    /// Its address.
    pub addr: SocketAddr,
    /// What `accept` said.
    #[source]
    pub source: io::Error,
}

/// A bound port with its connection limits.
pub struct Listener {
    name: &'static str,
    addr: SocketAddr,
    tcp: TcpListener,
    limits: ServingLimits,
    slots: Arc<Semaphore>,
    /// Open connections, oldest first, for eviction.
    live: Mutex<VecDeque<Weak<Activity>>>,
    metrics: ListenerMetrics,
    /// TLS material and this listener's acceptor; `None` for plaintext.
    tls: Option<(ServerTls, AcceptorCache)>,
    backoff: Duration,
    /// Accept reported a resource shortage since the last success.
    short: bool,
    fatal: Option<oneshot::Sender<AcceptFailed>>,
    fatal_rx: Option<oneshot::Receiver<AcceptFailed>>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Accept errors that concern one connection only (the peer gave up
/// between SYN and accept, a firewall said no): retry at once. Linux
/// `accept(2)` asks callers to treat these like `EAGAIN`.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(
            Errno::ECONNABORTED
                | Errno::ECONNRESET
                | Errno::EINTR
                | Errno::EAGAIN
                | Errno::EPROTO
                | Errno::EPERM
                | Errno::ENETDOWN
                | Errno::ENOPROTOOPT
                | Errno::EHOSTDOWN
                | Errno::ENONET
                | Errno::EHOSTUNREACH
                | Errno::ENETUNREACH
                | Errno::ETIMEDOUT
        )
    )
}

/// Accept errors that say the process or the machine ran out of something
/// that closing connections gives back.
fn is_resource_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

impl Listener {
    /// Binds `addr` (port 0 picks one). `name` labels logs and metrics.
    /// Plaintext is served only when `security` says so, with a warning.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn bind(
        name: &'static str,
        addr: SocketAddr,
        limits: ServingLimits,
        security: &ListenerSecurity,
        metrics: ListenerMetrics,
    ) -> io::Result<Self> {
        let tcp = TcpListener::bind(addr).await?;
        let addr = tcp.local_addr()?;
        let tls = match security {
            ListenerSecurity::Tls(tls) => Some((tls.clone(), AcceptorCache::default())),
            ListenerSecurity::InsecurePlaintext => {
                tracing::warn!(listener = name, %addr,
                    "serving PLAINTEXT because insecure_plaintext is true: anyone on the network \
                     can read and alter this traffic, bearer tokens included");
                None
            }
        };
        let (fatal, fatal_rx) = oneshot::channel();
        Ok(Self {
            name,
            addr,
            tcp,
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            live: Mutex::new(VecDeque::new()),
            metrics,
            tls,
            backoff: FIRST_BACKOFF,
            short: false,
            fatal: Some(fatal),
            fatal_rx: Some(fatal_rx),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listener's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The application protocols offered in the TLS handshake (ALPN), set
    /// by the protocol server that takes the listener.
    pub(crate) fn offer(&mut self, protocols: &[&[u8]]) {
        if let Some((_, cache)) = &mut self.tls {
            cache.offer(protocols);
        }
    }

    /// Resolves when the listener has failed for good; taken once by the
    /// protocol server's wrapper.
    pub(crate) fn take_failure(&mut self) -> oneshot::Receiver<AcceptFailed> {
        self.fatal_rx.take().unwrap_or_else(|| oneshot::channel().1)
    }

    /// The next connection, once a slot is free.
    ///
    /// # Errors
    /// When `accept` fails in a way no retry can fix (the socket is gone).
    pub async fn accept(&mut self) -> Result<Connection, AcceptFailed> {
        loop {
            match self.tcp.accept().await {
                Ok((stream, remote)) => {
                    if self.short {
                        tracing::info!(listener = self.name, "accepting connections again");
                        self.short = false;
                        self.backoff = FIRST_BACKOFF;
                    }
                    let slot = self.slot_for_newcomer().await;
                    let _ = stream.set_nodelay(true);
                    let activity = Activity::new();
                    self.remember(&activity);
                    let peer = PeerTls::default();
                    let transport = match &mut self.tls {
                        None => Transport::plain(stream),
                        Some((tls, cache)) => Transport::tls(
                            tls.acceptor(cache).accept(stream),
                            peer.clone(),
                            self.metrics.clone(),
                        ),
                    };
                    return Ok(Connection::new(
                        transport,
                        remote,
                        peer,
                        activity,
                        self.limits,
                        self.metrics.clone(),
                        slot,
                    ));
                }
                Err(e) if is_per_connection(&e) => continue,
                Err(e) if is_resource_shortage(&e) => {
                    self.metrics.accept_failed();
                    if !self.short {
                        self.short = true;
                        tracing::warn!(listener = self.name, error = %e,
                            "accept failed; closing the oldest idle connections and backing off");
                    }
                    // Idle connections give their descriptors back within
                    // a scheduler tick; only when there are none does the
                    // pause grow.
                    let freed = (0..EVICT_ON_SHORTAGE)
                        .take_while(|_| evict_oldest_idle(&PROCESS_LIVE))
                        .count();
                    if freed > 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    } else {
                        tokio::time::sleep(self.backoff).await;
                        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    }
                }
                Err(source) => {
                    self.metrics.accept_failed();
                    return Err(AcceptFailed {
                        name: self.name,
                        addr: self.addr,
                        source,
                    });
                }
            }
        }
    }

    /// A slot for a connection just accepted. When the listener is full,
    /// the oldest idle connection (most likely one that never sent a
    /// request) is asked to make room; if every connection is busy, the
    /// newcomer waits for one to end, and later ones wait in the kernel's
    /// backlog.
    async fn slot_for_newcomer(&self) -> OwnedSemaphorePermit {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return slot;
        }
        self.evict_oldest_idle();
        loop {
            match tokio::time::timeout(FIRST_BACKOFF * 20, self.slots.clone().acquire_owned()).await
            {
                Ok(Ok(slot)) => return slot,
                // Closed never happens: the listener owns the semaphore.
                Ok(Err(_)) => std::future::pending::<()>().await,
                // Still full: an idle connection may have appeared since.
                Err(_) => {
                    self.evict_oldest_idle();
                }
            }
        }
    }

    /// Reports a fatal accept error to the protocol server's wrapper.
    pub(crate) fn fail(&mut self, error: AcceptFailed) {
        tracing::error!(error = %error, "listener failed");
        if let Some(tx) = self.fatal.take() {
            let _ = tx.send(error);
        }
    }

    fn remember(&self, activity: &Arc<Activity>) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.len() >= self.limits.max_connections {
            live.retain(|w| w.strong_count() > 0);
        }
        live.push_back(Arc::downgrade(activity));
        drop(live);
        let mut all = PROCESS_LIVE.lock().unwrap_or_else(|p| p.into_inner());
        // Amortised: prune ended connections when the list doubles.
        if all.len() >= 1024 && all.len().is_power_of_two() {
            all.retain(|w| w.strong_count() > 0);
        }
        all.push_back(Arc::downgrade(activity));
    }

    /// Asks this listener's oldest idle connection to close (its slots are
    /// full); false when none is idle.
    fn evict_oldest_idle(&self) -> bool {
        evict_oldest_idle(&self.live)
    }
}

/// Asks the oldest idle connection of `live` to close; false when none is
/// idle.
fn evict_oldest_idle(live: &Mutex<VecDeque<Weak<Activity>>>) -> bool {
    let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
    live.retain(|w| w.strong_count() > 0);
    let victim = live
        .iter()
        .position(|w| w.upgrade().is_some_and(|a| a.is_idle()));
    match victim
        .and_then(|i| live.remove(i))
        .and_then(|w| w.upgrade())
    {
        Some(activity) => {
            activity.evict();
            true
        }
        None => false,
    }
}

impl axum::serve::Listener for Listener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        match Listener::accept(self).await {
            Ok(connection) => {
                let remote = connection.info().remote;
                (connection, remote)
            }
            Err(e) => {
                self.fail(e);
                // The server wrapper stops on the failure; never yield.
                std::future::pending().await
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
