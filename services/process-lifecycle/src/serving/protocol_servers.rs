//! The two protocol servers over [`Listener`]: axum for HTTP (HTTP/1 and
//! h2c) and tonic for gRPC. Both see only [`Connection`]s, so both get the
//! same limits, and both stop on the same shutdown signal.

use std::convert::Infallible;
use std::future::IntoFuture;

use axum::Router;
use axum::serve::IncomingStream;
use tokio::sync::watch;

use super::connection::Connection;
use super::listener::{AcceptFailed, Listener};
use super::request_tracking::{TrackRequests, Tracked, TrackedBody};

/// Why a server stopped serving before shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener cannot accept any more.
    #[error(transparent)]
    Accept(#[from] AcceptFailed),
    /// The HTTP server failed.
    #[error("HTTP server on {addr}: {source}")]
    Http {
        /// Where it listened.
        addr: std::net::SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server on {addr}: {source}")]
    Grpc {
        /// Where it listened.
        addr: std::net::SocketAddr,
        /// What failed.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Makes one [`Tracked`] router per connection.
#[derive(Clone)]
struct PerConnection(Router);

type HttpResponse = http::Response<axum::body::Body>;
type TrackedRouter = Tracked<axum::routing::RouterIntoService<axum::body::Body>>;
type TrackedResponse = http::Response<TrackedBody<axum::body::Body>>;

fn into_axum_body(response: TrackedResponse) -> HttpResponse {
    response.map(axum::body::Body::new)
}

impl tower::Service<IncomingStream<'_, Listener>> for PerConnection {
    type Response = tower::util::MapResponse<TrackedRouter, fn(TrackedResponse) -> HttpResponse>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, Listener>) -> Self::Future {
        let info = stream.io().info().clone();
        let tracked = Tracked::for_connection(self.0.clone().into_service(), info);
        std::future::ready(Ok(tower::ServiceExt::map_response(
            tracked,
            into_axum_body as fn(TrackedResponse) -> HttpResponse,
        )))
    }
}

/// Serves `router` on `listener` until `shutdown`, then drains in-flight
/// requests.
///
/// # Errors
/// When the listener fails for good or the server stops on its own.
pub async fn serve_http(
    mut listener: Listener,
    router: Router,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let addr = listener.local_addr();
    let failure = listener.take_failure();
    listener.offer(&[b"h2", b"http/1.1"]);
    let server = axum::serve(listener, PerConnection(router))
        .with_graceful_shutdown(stopped(shutdown))
        .into_future();
    tokio::select! {
        served = server => served.map_err(|source| ServeError::Http { addr, source }),
        Ok(failed) = failure => Err(failed.into()),
    }
}

/// Serves gRPC `routes` on `listener` until `shutdown`, then drains.
///
/// # Errors
/// When the listener fails for good or the server stops on its own.
pub async fn serve_grpc(
    mut listener: Listener,
    routes: tonic::service::Routes,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let addr = listener.local_addr();
    let failure = listener.take_failure();
    // gRPC clients (tonic's among them) insist on HTTP/2 by ALPN.
    listener.offer(&[b"h2"]);
    let incoming = futures::stream::unfold(listener, |mut listener| async move {
        match listener.accept().await {
            Ok(connection) => Some((Ok::<Connection, std::io::Error>(connection), listener)),
            Err(e) => {
                listener.fail(e);
                None
            }
        }
    });
    let server = tonic::transport::Server::builder()
        .layer(TrackRequests)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stopped(shutdown));
    tokio::select! {
        served = server => served.map_err(|source| ServeError::Grpc { addr, source }),
        Ok(failed) = failure => Err(failed.into()),
    }
}
