//! Every port a service opens, served alike: intake's gRPC and webhook
//! HTTP, the collector's gRPC and HTTP, the worker's health and metrics.
//!
//! A slow or silent client must not be able to hold a port hostage (issue
//! #12, finding 3: 2,000 half-open connections stayed open indefinitely;
//! near the fd limit `/healthz` and gRPC stopped answering). So:
//!
//! - [`Listener`] caps open connections per port ([`ServingLimits`]); at
//!   the cap, or when `accept` reports the process is out of file
//!   descriptors, the oldest idle connection is closed to make room, and
//!   accept errors back off (5 ms doubling to 1 s) instead of spinning;
//! - [`Connection`] closes a connection whose request headers do not
//!   arrive within the header-read timeout, and an HTTP/2 connection idle
//!   for longer than the idle timeout; never one with a request in flight;
//! - [`serve_http`] (axum) and [`serve_grpc`] (tonic) sit on top and only
//!   ever see [`Connection`]s;
//! - TLS (issue #13) is set up in [`Listener::accept`] with the listener's
//!   [`ServerTls`] (certificate and key from files, reloaded when they
//!   change; optional client-certificate verification); the handshake is
//!   the connection's first reads ([`Transport`]), so a client that never
//!   finishes it is held to the same deadlines and eviction as one that
//!   never finishes its headers. Plaintext only with
//!   [`ListenerSecurity::InsecurePlaintext`], announced with a warning.

mod connection;
mod limits;
mod listener;
mod listener_metrics;
mod protocol_servers;
mod request_tracking;
mod security_settings;
mod tls;
mod transport;

pub use connection::{Connection, ConnectionInfo};
pub use limits::{ServingArgs, ServingFile, ServingLimits};
pub use listener::{AcceptFailed, Listener};
pub use listener_metrics::{CloseReason, ConnectionMetrics, ListenerMetrics};
pub use protocol_servers::{ServeError, serve_grpc, serve_http, stopped};
pub use request_tracking::{TrackRequests, Tracked, TrackedBody};
pub use security_settings::{TlsArgs, TlsFile};
pub use tls::{ListenerSecurity, RELOAD_CHECK, ServerTls, TlsError, TlsFiles};
pub use transport::{PeerCertificate, PeerTls, Transport, certificate_subject};
