//! Answers a malformed gRPC request as the caller's fault.
//!
//! tonic answers a request message that does not decode with `INTERNAL`
//! ("failed to decode Protobuf message: …", as gRPC's status table lists
//! a request parse error) and one past the size limit with
//! `OUT_OF_RANGE`. Both are what a hostile or broken client sends, yet
//! `INTERNAL` is counted as our own failure by every dashboard and is
//! retried by clients, and `OUT_OF_RANGE` is not what gRPC's table gives
//! for a message over the limit. The hostile-input suite (issue #13)
//! found both on every gRPC edge. This layer rewrites those answers, and
//! only those (matched by tonic's own wording, on the trailers-only
//! response a decode failure always is), to `INVALID_ARGUMENT` and
//! `RESOURCE_EXHAUSTED`, keeping tonic's message, which names the field.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};

/// tonic's message prefix, the code it answers, the code the caller gets.
const CALLER_FAULTS: &[(&str, &str, &str)] = &[
    ("failed to decode Protobuf message", "13", "3"),
    ("Missing request message", "13", "3"),
    ("Unexpected EOF decoding stream", "13", "3"),
    ("Error, decoded message length too large", "11", "8"),
];

/// Whether a `grpc-message` value (percent-encoded: tonic writes a space
/// as `%20`) starts with `prefix`.
fn message_starts_with(encoded: &[u8], prefix: &str) -> bool {
    let mut rest = encoded;
    for b in prefix.bytes() {
        rest = match rest {
            [first, tail @ ..] if *first == b => tail,
            [b'%', b'2', b'0', tail @ ..] if b == b' ' => tail,
            _ => return false,
        };
    }
    true
}

/// Rewrites the status of a response that reports a malformed request.
pub fn reclassify<B>(response: &mut Response<B>) {
    let headers = response.headers_mut();
    let (Some(status), Some(message)) = (headers.get("grpc-status"), headers.get("grpc-message"))
    else {
        return;
    };
    let fault = CALLER_FAULTS.iter().find(|(prefix, from, _)| {
        status.as_bytes() == from.as_bytes() && message_starts_with(message.as_bytes(), prefix)
    });
    if let Some((_, _, to)) = fault {
        headers.insert("grpc-status", HeaderValue::from_static(to));
    }
}

/// A service whose responses go through [`reclassify`].
#[derive(Clone, Debug)]
pub struct CallerFaults<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for CallerFaults<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            reclassify(&mut response);
            Ok(response)
        })
    }
}

/// The tower layer form of [`CallerFaults`], for tonic's server builder.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReclassifyCallerFaults;

impl<S> tower::Layer<S> for ReclassifyCallerFaults {
    type Service = CallerFaults<S>;

    fn layer(&self, inner: S) -> CallerFaults<S> {
        CallerFaults { inner }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trailers-only response tonic sends for this status.
    fn answer(code: i32, message: &str) -> Response<()> {
        let mut r = tonic::Status::new(tonic::Code::from_i32(code), message).into_http();
        reclassify(&mut r);
        r
    }

    fn code(r: &Response<()>) -> &str {
        r.headers()["grpc-status"].to_str().unwrap()
    }

    #[test]
    fn malformed_requests_are_the_callers_fault() {
        let r = answer(
            13,
            "failed to decode Protobuf message: SubmitRequest.target: buffer underflow",
        );
        assert_eq!(code(&r), "3");
        let status = tonic::Status::from_header_map(r.headers()).unwrap();
        assert_eq!(
            status.message(),
            "failed to decode Protobuf message: SubmitRequest.target: buffer underflow",
            "the message still names the field"
        );
        let r = answer(
            11,
            "Error, decoded message length too large: found 4194400 bytes, the limit is: 4194304 bytes",
        );
        assert_eq!(code(&r), "8");
    }

    #[test]
    fn every_other_status_is_left_alone() {
        assert_eq!(code(&answer(13, "the store failed")), "13");
        assert_eq!(code(&answer(11, "page past the end")), "11");
        assert_eq!(code(&answer(16, "failed to decode Protobuf message")), "16");
        assert_eq!(code(&answer(13, "failed to decode")), "13");
        let mut ok = Response::new(());
        reclassify(&mut ok);
        assert!(ok.headers().is_empty());
    }
}
