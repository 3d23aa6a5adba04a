//! HTTP plumbing shared by the server and the handlers: the response body
//! type, JSON and Status responses, streaming bodies, request-body decoding
//! (JSON, YAML, protobuf; bounded) and PATCH dispatch by media type.

use std::convert::Infallible;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::status::ApiError;

/// Response body type.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Builds a JSON response.
pub fn json_response(code: u16, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed_unsync())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
}

/// Renders an error as its Status response.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.body());
    r.headers_mut().insert(
        "x-content-type-options",
        hyper::header::HeaderValue::from_static("nosniff"),
    );
    if let Some(s) = e.retry_after
        && let Ok(v) = hyper::header::HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

/// A plain-text response (`pods/log`).
pub fn text_response(text: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    r
}

/// An empty response (the server turns it into a dropped connection).
pub fn empty_response() -> Response<Body> {
    Response::new(Full::new(Bytes::new()).boxed_unsync())
}

/// A streaming chunked body fed by a channel.
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    BodyExt::boxed_unsync(StreamBody::new(stream.boxed()))
}

/// Reads and decodes a request body (JSON, YAML or kubectl's protobuf
/// envelope), bounded by upstream's default `--max-resource-write-bytes`;
/// returns the value and the media type it came as.
pub async fn read_json(req: Request<Incoming>) -> Result<(Value, String), ApiError> {
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    // Upstream's default --max-resource-write-bytes.
    const LIMIT: usize = 3 * 1024 * 1024;
    let body = http_body_util::Limited::new(req.into_body(), LIMIT)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::too_large(LIMIT)
            } else {
                ApiError::bad_request(format!("cannot read request body: {e}"))
            }
        })?
        .to_bytes();
    if body.is_empty() {
        return Ok((json!({}), ct));
    }
    if ct.contains("yaml") {
        let v: Value = yaml_serde::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        return Ok((v, ct));
    }
    if ct.contains("protobuf") {
        let v = crate::protobuf::decode(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
        return Ok((v, "application/json".to_string()));
    }
    let v = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}': {e}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })?;
    Ok((v, ct))
}

/// Whether the client asked for a Table (kubectl's `get` output).
pub fn wants_table(req: &Request<Incoming>) -> bool {
    req.headers()
        .get("accept")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

/// Applies a PATCH body according to its media type.
pub fn apply_patch(cur: &Value, body: &Value, ct: &str) -> Result<Value, ApiError> {
    let r = match ct {
        "application/merge-patch+json" => Ok(crate::patch::merge(cur, body)),
        "application/strategic-merge-patch+json" => crate::patch::strategic(cur, body),
        "application/json-patch+json" => crate::patch::json_patch(cur, body),
        other => return Err(ApiError::unsupported_media(other)),
    };
    r.map_err(|e| match e {
        crate::patch::PatchError::Malformed(m) => ApiError::bad_request(m),
        crate::patch::PatchError::Failed(m) => invalid_patch(m),
    })
}

fn invalid_patch(m: String) -> ApiError {
    let mut e = ApiError::bad_request(m);
    e.code = 422;
    e.reason = "Invalid";
    e
}
