//! What the listeners count, so an operator can see a slow-client flood
//! (connections at the cap, evictions, header timeouts) before users do.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why the server closed a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// A request's headers did not arrive in time (or a silent connection).
    HeaderTimeout,
    /// An HTTP/2 connection idled longer than the idle timeout.
    Idle,
    /// Its slot went to a newcomer while the listener was full.
    Evicted,
    /// The TLS handshake failed (not TLS, no common parameters, a client
    /// certificate the CA does not vouch for).
    TlsHandshake,
}

impl CloseReason {
    /// Every reason, so that each series exists (at zero) before it counts.
    pub const ALL: [CloseReason; 4] = [
        Self::HeaderTimeout,
        Self::Idle,
        Self::Evicted,
        Self::TlsHandshake,
    ];

    /// The metric label and log word.
    pub fn label(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::Idle => "idle_timeout",
            Self::Evicted => "evicted",
            Self::TlsHandshake => "tls_handshake_failed",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClosedLabels {
    listener: String,
    reason: String,
}

/// The connection families of one service, shared by its listeners.
#[derive(Clone, Debug, Default)]
pub struct ConnectionMetrics {
    open: Family<ListenerLabel, Gauge>,
    closed: Family<ClosedLabels, Counter>,
    accept_errors: Family<ListenerLabel, Counter>,
}

impl ConnectionMetrics {
    /// Registers the families in the service's registry.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "connections_open",
            "Connections open now, by listener.",
            metrics.open.clone(),
        );
        registry.register(
            "connections_closed_by_server",
            "Connections the server closed itself, by listener and reason (header_timeout, idle_timeout, evicted, tls_handshake_failed).",
            metrics.closed.clone(),
        );
        registry.register(
            "accept_errors",
            "Failed accept calls (e.g. out of file descriptors), by listener; each one backs off.",
            metrics.accept_errors.clone(),
        );
        metrics
    }

    /// The handle of one listener, with all its series created at zero.
    pub fn listener(&self, name: &str) -> ListenerMetrics {
        ListenerMetrics {
            open: self.open.get_or_create_owned(&ListenerLabel {
                listener: name.to_owned(),
            }),
            closed: CloseReason::ALL.map(|r| {
                self.closed.get_or_create_owned(&ClosedLabels {
                    listener: name.to_owned(),
                    reason: r.label().to_owned(),
                })
            }),
            accept_errors: self.accept_errors.get_or_create_owned(&ListenerLabel {
                listener: name.to_owned(),
            }),
        }
    }
}

/// One listener's series.
#[derive(Clone, Debug, Default)]
pub struct ListenerMetrics {
    open: Gauge,
    closed: [Counter; 4],
    accept_errors: Counter,
}

impl ListenerMetrics {
    pub(crate) fn opened(&self) {
        self.open.inc();
    }

    pub(crate) fn dropped(&self) {
        self.open.dec();
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        let i = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.closed[i].inc();
    }

    pub(crate) fn accept_failed(&self) {
        self.accept_errors.inc();
    }

    /// Connections open now.
    pub fn open(&self) -> i64 {
        self.open.get()
    }

    /// Connections closed by the server for `reason` so far.
    pub fn closed_count(&self, reason: CloseReason) -> u64 {
        let i = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.closed[i].get()
    }
}
