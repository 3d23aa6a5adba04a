//! The result message protocol, in one place: the subject a result travels
//! on, its headers, its message id, how its payload is wrapped, where a
//! large report goes, and how the collector reads it all back.
//!
//! Workers publish through [`ResultStream::publish`]; the collector reads
//! with [`IncomingResult::read`] and [`ResultStream::read_report`], and
//! quarantines with [`ResultStream::quarantine`]; tests and benchmarks that
//! forge results use the same subject and header rules. Like the intent
//! queue, it treats payloads as opaque bytes: what a result *means* is
//! `scanfleet-trust`'s business, and nothing read here is trusted before the
//! collector verifies the signed statement (which must then agree with the
//! subject's place).
//!
//! - Subject: `scan.results.<cluster>.<namespace>`, or
//!   `scan.results.<cluster>._image` for an image scan
//!   (`scanfleet_scan_intents::result_subject`).
//! - Message id: the scan id, so a worker's republish after a crash is a
//!   duplicate inside the window and an upsert after it.
//! - Headers: `Scanfleet-Scan-Id`, a child `traceparent` of the intent's,
//!   `Scanfleet-Encoding: age` when the payload is age-encrypted.
//! - Reports too large for one message go to the `SCAN_REPORTS` object
//!   store under the SHA-256 of the stored bytes (the report, or its
//!   ciphertext when results are encrypted). Content addressing means an
//!   object that exists is never written again, so a worker needs no right
//!   to purge the bucket's old chunks (an overwrite's last step).
//! - Reading one back is bounded by the caller's limit *before* and *while*
//!   reading, and uses direct gets only: the collector never creates a
//!   consumer (the object store's own reader makes one per object).

use async_nats::jetstream::stream::DirectGetErrorKind;
use async_nats::jetstream::{self, message::PublishMessage, object_store};
use bytes::Bytes;
use scanfleet_scan_intents::{ClusterName, ResultPlace, result_place, result_subject};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::headers::{
    HEADER_ENCODING, HEADER_QUARANTINE_DETAIL, HEADER_QUARANTINE_REASON, HEADER_SCAN_ID,
    HEADER_TRACEPARENT, Headers, received_value,
};
use crate::topology::{QUARANTINE_SUBJECT_PREFIX, REPORTS_BUCKET};
use crate::trace_headers::{child_traceparent, trace_id};

/// How a result payload is wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadEncoding {
    /// A serialized `ResultEvent`.
    Plain,
    /// An age-encrypted serialized `ResultEvent` (reports in the object
    /// store are then encrypted the same way).
    Age,
}

/// The encoding header names an encoding this version does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown payload encoding {0:?}")]
pub struct UnknownEncoding(pub String);

impl PayloadEncoding {
    /// Reads the encoding header; absent, empty and `protobuf` are plain.
    ///
    /// # Errors
    /// [`UnknownEncoding`] for anything else.
    pub fn from_header(value: Option<&str>) -> Result<Self, UnknownEncoding> {
        match value {
            None | Some("" | "protobuf") => Ok(Self::Plain),
            Some("age") => Ok(Self::Age),
            Some(other) => Err(UnknownEncoding(other.chars().take(64).collect())),
        }
    }

    fn header_value(self) -> Option<&'static str> {
        match self {
            Self::Plain => None,
            Self::Age => Some("age"),
        }
    }
}

/// One result as a worker publishes it.
#[derive(Debug)]
pub struct OutgoingResult<'a> {
    /// The scan id (message id and header).
    pub scan_id: &'a str,
    /// Where the scanned container runs (or whose workers scanned the
    /// image); becomes the subject.
    pub cluster: &'a ClusterName,
    /// The container's namespace, or image; becomes the subject.
    pub place: &'a ResultPlace,
    /// How `payload` is wrapped.
    pub encoding: PayloadEncoding,
    /// The intent's `traceparent`; the result carries a child of it.
    pub parent_traceparent: Option<&'a str>,
    /// The (possibly encrypted) serialized `ResultEvent`.
    pub payload: Bytes,
}

/// The server's acknowledgement of a published result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultAck {
    /// Stream sequence.
    pub sequence: u64,
    /// True when the stream already had this scan's result.
    pub duplicate: bool,
}

/// What reading a report object found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReportObject {
    /// The bytes, at most the limit.
    Found(Vec<u8>),
    /// No object by that name.
    Missing,
    /// Larger than the limit; nothing beyond the limit was read.
    TooLarge {
        /// The size the store reports, or the limit + 1 when the stored
        /// size understated it.
        size: u64,
        /// The limit.
        limit: usize,
    },
}

/// Failures of the result protocol's IO; all are worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum ResultStreamError {
    /// The stream did not acknowledge.
    #[error("publishing the result: {0}")]
    Publish(String),
    /// The object store refused the report.
    #[error("storing the report: {0}")]
    ReportStore(String),
    /// The object store could not be read.
    #[error("reading the report: {0}")]
    ReportRead(String),
    /// The quarantine stream did not acknowledge.
    #[error("quarantining the result: {0}")]
    Quarantine(String),
}

/// What the headers and subject of a received result say. Untrusted until
/// the collector verifies the statement; used for logs, routing and the
/// subject-versus-statement check.
#[derive(Debug, Clone)]
pub struct IncomingResult {
    /// The scan id header (at most 64 characters).
    pub scan_id: String,
    /// The trace id from `traceparent`, when valid.
    pub trace_id: Option<String>,
    /// The payload encoding, or why it is unknown.
    pub encoding: Result<PayloadEncoding, UnknownEncoding>,
    /// The place the subject names, `None` when the subject is not a
    /// result subject.
    pub place: Option<(ClusterName, ResultPlace)>,
}

impl IncomingResult {
    /// Reads a received message's subject and headers.
    pub fn read(message: &jetstream::Message) -> Self {
        let headers = message.headers.as_ref();
        let traceparent = received_value(headers, HEADER_TRACEPARENT, 64).unwrap_or_default();
        Self {
            scan_id: received_value(headers, HEADER_SCAN_ID, 64).unwrap_or_default(),
            trace_id: trace_id(&traceparent).map(str::to_owned),
            encoding: PayloadEncoding::from_header(
                headers
                    .and_then(|h| h.get(HEADER_ENCODING))
                    .map(|v| v.as_str()),
            ),
            place: result_place(message.subject.as_str()),
        }
    }
}

/// Publishes and reads results on `SCAN_RESULTS` and `SCAN_REPORTS`.
#[derive(Clone)]
pub struct ResultStream {
    js: jetstream::Context,
    reports: OnceCell<object_store::ObjectStore>,
}

impl ResultStream {
    /// The protocol over a JetStream context whose topology exists.
    pub fn new(js: jetstream::Context) -> Self {
        Self {
            js,
            reports: OnceCell::new(),
        }
    }

    async fn reports(&self) -> Result<&object_store::ObjectStore, String> {
        self.reports
            .get_or_try_init(|| async {
                self.js
                    .get_object_store(REPORTS_BUCKET)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
    }

    /// Publishes one result and waits for the PubAck.
    ///
    /// # Errors
    /// [`ResultStreamError::Publish`]; the worker must not acknowledge its
    /// intent then.
    pub async fn publish(
        &self,
        result: OutgoingResult<'_>,
    ) -> Result<ResultAck, ResultStreamError> {
        let mut headers = Headers::new().with(HEADER_SCAN_ID, result.scan_id);
        if let Some(child) = result.parent_traceparent.and_then(child_traceparent) {
            headers.set(HEADER_TRACEPARENT, &child);
        }
        if let Some(encoding) = result.encoding.header_value() {
            headers.set(HEADER_ENCODING, encoding);
        }
        self.publish_raw(
            result.cluster,
            result.place,
            result.scan_id,
            headers,
            result.payload,
        )
        .await
    }

    /// Publishes exactly these headers and bytes on the result subject of a
    /// place, with `msg_id` as the message id. [`Self::publish`] builds on
    /// it; tests use it to forge results a worker would never send.
    ///
    /// # Errors
    /// [`ResultStreamError::Publish`].
    pub async fn publish_raw(
        &self,
        cluster: &ClusterName,
        place: &ResultPlace,
        msg_id: &str,
        headers: Headers,
        payload: Bytes,
    ) -> Result<ResultAck, ResultStreamError> {
        let message = PublishMessage::build()
            .payload(payload)
            .headers(headers.into_map())
            .message_id(msg_id);
        let ack = self
            .js
            .send_publish(result_subject(cluster, place), message)
            .await
            .map_err(|e| ResultStreamError::Publish(e.to_string()))?
            .await
            .map_err(|e| ResultStreamError::Publish(e.to_string()))?;
        Ok(ResultAck {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Stores a report (the bytes as they should sit in the bucket, already
    /// encrypted when results are) and returns its object name: the hex
    /// SHA-256 of those bytes. An object of that name already holds exactly
    /// these bytes, so it is left as it is.
    ///
    /// # Errors
    /// [`ResultStreamError::ReportStore`].
    pub async fn store_report(&self, body: &[u8]) -> Result<String, ResultStreamError> {
        let name = hex::encode(Sha256::digest(body));
        let bucket = self
            .reports()
            .await
            .map_err(ResultStreamError::ReportStore)?;
        match bucket.info(&name).await {
            Ok(info) if !info.deleted && info.size == body.len() => return Ok(name),
            Ok(_) => {}
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => {}
            Err(e) => return Err(ResultStreamError::ReportStore(e.to_string())),
        }
        bucket
            .put(name.as_str(), &mut &body[..])
            .await
            .map_err(|e| ResultStreamError::ReportStore(e.to_string()))?;
        Ok(name)
    }

    /// Reads the report `name`, never more than `limit` bytes: the stored
    /// size is checked first, and the read itself stops once the chunks
    /// exceed the limit in case that size understated it. Chunks are read
    /// one direct get at a time, in stream order.
    ///
    /// # Errors
    /// [`ResultStreamError::ReportRead`] when the store cannot be read
    /// (worth retrying; a missing or oversized object is an answer, not an
    /// error).
    pub async fn read_report(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<ReportObject, ResultStreamError> {
        let bucket = self
            .reports()
            .await
            .map_err(ResultStreamError::ReportRead)?;
        let info = match bucket.info(name).await {
            // A link has no chunks of its own; workers never make one.
            Ok(info) if info.deleted || info.options.as_ref().is_some_and(|o| o.link.is_some()) => {
                return Ok(ReportObject::Missing);
            }
            Ok(info) => info,
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => {
                return Ok(ReportObject::Missing);
            }
            Err(e) => return Err(ResultStreamError::ReportRead(e.to_string())),
        };
        if info.size as u64 > limit as u64 {
            return Ok(ReportObject::TooLarge {
                size: info.size as u64,
                limit,
            });
        }
        let stream = self
            .js
            .get_stream_no_info(format!("OBJ_{REPORTS_BUCKET}"))
            .await
            .map_err(|e| ResultStreamError::ReportRead(e.to_string()))?;
        let chunks = format!("$O.{REPORTS_BUCKET}.C.{}", info.nuid);
        let mut body = Vec::with_capacity(info.size);
        let mut next = None;
        for _ in 0..info.chunks {
            let chunk = match stream.direct_get_next_for_subject(&chunks, next).await {
                Ok(chunk) => chunk,
                // Chunks that aged out or were never all written.
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => {
                    return Ok(ReportObject::Missing);
                }
                Err(e) => return Err(ResultStreamError::ReportRead(e.to_string())),
            };
            if body.len() + chunk.payload.len() > limit {
                return Ok(ReportObject::TooLarge {
                    size: limit as u64 + 1,
                    limit,
                });
            }
            body.extend_from_slice(&chunk.payload);
            next = Some(chunk.sequence + 1);
        }
        if body.len() != info.size {
            return Ok(ReportObject::Missing);
        }
        Ok(ReportObject::Found(body))
    }

    /// Copies a refused result into `SCAN_QUARANTINE` under
    /// `scan.quarantine.<label>`, with its original headers plus the reason
    /// label and a safe detail. The message id is the result's stream
    /// sequence, so a collector that crashes before acknowledging and sees
    /// the result again quarantines it once.
    ///
    /// # Errors
    /// [`ResultStreamError::Quarantine`]; the caller must then leave the
    /// result unacknowledged so it comes back.
    pub async fn quarantine(
        &self,
        message: &jetstream::Message,
        label: &str,
        detail: &str,
    ) -> Result<(), ResultStreamError> {
        let mut headers = Headers::received(message.headers.as_ref());
        headers
            .set(HEADER_QUARANTINE_REASON, label)
            .set(HEADER_QUARANTINE_DETAIL, detail);
        let msg_id = match message.info() {
            Ok(info) => format!("quarantine:{}:{}", info.stream, info.stream_sequence),
            Err(_) => format!("quarantine:{}", message.subject),
        };
        let publish = PublishMessage::build()
            .payload(message.payload.clone())
            .headers(headers.into_map())
            .message_id(&msg_id);
        self.js
            .send_publish(format!("{QUARANTINE_SUBJECT_PREFIX}.{label}"), publish)
            .await
            .map_err(|e| ResultStreamError::Quarantine(e.to_string()))?
            .await
            .map_err(|e| ResultStreamError::Quarantine(e.to_string()))?;
        Ok(())
    }
}
