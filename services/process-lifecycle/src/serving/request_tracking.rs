//! Tells a [`Connection`](super::Connection) when it is busy: a request is
//! in flight from the moment the protocol server hands it to the service
//! (its headers are complete) until its response body is dropped (fully
//! sent, or the peer went away). Busy connections have no deadline and are
//! never evicted.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};

use super::connection::{Activity, ConnectionInfo, RequestGuard};

/// A response body that keeps its request in flight until dropped.
#[derive(Debug)]
pub struct TrackedBody<B> {
    inner: B,
    _guard: Option<RequestGuard>,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Wraps a service so each request marks its connection busy.
///
/// The connection is either known up front (axum: one wrapper per
/// connection, which also hands its [`ConnectionInfo`] to the handlers as
/// a request extension, as tonic does) or found in the request's
/// extensions (tonic inserts the [`ConnectionInfo`] of the connection a
/// request came on).
#[derive(Clone, Debug)]
pub struct Tracked<S> {
    inner: S,
    connection: Option<ConnectionInfo>,
}

impl<S> Tracked<S> {
    pub(crate) fn for_connection(inner: S, info: ConnectionInfo) -> Self {
        Self {
            inner,
            connection: Some(info),
        }
    }
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for Tracked<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if let Some(info) = &self.connection {
            request.extensions_mut().insert(info.clone());
        }
        let activity: Option<Arc<Activity>> = request
            .extensions()
            .get::<ConnectionInfo>()
            .map(|c| c.activity.clone());
        let guard = activity.map(|a| a.begin_request());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| TrackedBody {
                inner,
                _guard: guard,
            }))
        })
    }
}

/// The tower layer form of [`Tracked`], for tonic's server builder.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrackRequests;

impl<S> tower::Layer<S> for TrackRequests {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Tracked<S> {
        Tracked {
            inner,
            connection: None,
        }
    }
}
