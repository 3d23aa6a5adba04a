//! gRPC calls with exactly the bytes a test chooses as the message: tonic
//! frames them (length prefix, HTTP/2), nothing encodes or checks them,
//! so a service meets truncated, mistyped and oversized protobuf as it
//! would from a hostile peer.

use bytes::{Buf, BufMut};
use http::uri::PathAndQuery;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::verdicts::Answer;

/// Sends and receives raw message bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// The encoder half of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

/// The decoder half of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// How a call authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No `authorization` metadata.
    None,
    /// `authorization: Bearer <token>`.
    Bearer(String),
    /// This exact `authorization` value.
    Header(String),
}

impl Credential {
    fn apply(&self, metadata: &mut MetadataMap) -> Result<(), String> {
        let value = match self {
            Credential::None => return Ok(()),
            Credential::Bearer(t) => format!("Bearer {t}"),
            Credential::Header(v) => v.clone(),
        };
        let value = AsciiMetadataValue::try_from(value.as_str())
            .map_err(|e| format!("the generator made unsendable metadata: {e}"))?;
        metadata.insert("authorization", value);
        Ok(())
    }
}

/// One call of `method` (e.g. `/scanfleet.v1.Intake/Submit`) with
/// `message` as the request bytes. A server-streaming method's status may
/// come after its response headers, so its first item is awaited: a
/// stream still open after [`STREAM_PATIENCE`] was accepted.
pub async fn call(
    channel: &Channel,
    method: &'static str,
    streaming: bool,
    message: Vec<u8>,
    credential: &Credential,
) -> Answer {
    let mut grpc = tonic::client::Grpc::new(channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    if let Err(e) = grpc.ready().await {
        return Answer::Other(format!("channel not ready: {e}"));
    }
    let mut request = tonic::Request::new(message);
    if let Err(e) = credential.apply(request.metadata_mut()) {
        return Answer::Other(e);
    }
    let path = PathAndQuery::from_static(method);
    let result = if streaming {
        match grpc.server_streaming(request, path, RawCodec).await {
            Err(status) => Err(status),
            Ok(response) => {
                let mut stream = response.into_inner();
                match tokio::time::timeout(STREAM_PATIENCE, stream.message()).await {
                    Err(_) => Ok("accepted: the stream stayed open"),
                    Ok(Ok(Some(_))) => Ok("accepted: the stream sent an item"),
                    Ok(Ok(None)) => Ok("accepted: the stream ended cleanly"),
                    Ok(Err(status)) => Err(status),
                }
            }
        }
    } else {
        grpc.unary(request, path, RawCodec)
            .await
            .map(|_| "accepted")
    };
    match result {
        Ok(what) => Answer::Grpc(Code::Ok, what.into()),
        Err(status) => Answer::Grpc(status.code(), status.message().to_owned()),
    }
}

/// How long a stream's first item or status may take.
pub const STREAM_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);
