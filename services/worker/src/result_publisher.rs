//! Publishing a finished scan: sign, choose where the report travels,
//! optionally encrypt, publish, and wait for the server's acknowledgement.
//!
//! The worker acknowledges its intent only after this returns `Ok`, which is
//! what makes a crash between scanning and publishing harmless: the intent is
//! redelivered and the result published again under the same message id
//! (the scan id), which the stream deduplicates inside its window and the
//! collector's upsert absorbs after it.
//!
//! No report is lost to a size limit: one that would push the event over the
//! server's max payload goes to the `SCAN_REPORTS` object store under its
//! SHA-256, which the signed statement already binds.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use prost::Message;
use scanfleet_bus::topology::{REPORTS_BUCKET, RESULTS_SUBJECT_PREFIX};
use scanfleet_contracts::v1::{ResultEvent, result_event};
use scanfleet_trust::{
    AgeRecipient, Envelope, IN_TOTO_PAYLOAD_TYPE, ScanStatement, SigningKey, encryption,
};
use sha2::{Digest, Sha256};

/// Header naming the payload encoding (read by the collector).
pub const HEADER_ENCODING: &str = "Scanfleet-Encoding";
pub use scanfleet_bus::HEADER_SCAN_ID;

/// Room left for headers and protocol framing under the max payload.
const PAYLOAD_HEADROOM: usize = 8 * 1024;

/// Where the report went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportLocation {
    /// Inside the event.
    Inline,
    /// In the object store under this name.
    ObjectStore(String),
    /// The result has no report (the scan failed before producing one).
    None,
}

/// The server's acknowledgement of a published result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedResult {
    /// Stream sequence.
    pub sequence: u64,
    /// True when the stream already had this scan's result (a republish
    /// after a crash).
    pub duplicate: bool,
    /// Where the report travels.
    pub report: ReportLocation,
}

/// Why a result could not be published. Every variant is transient from the
/// intent's point of view: the worker NAKs, and the scan is retried.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The report is not the one the statement binds (a worker bug).
    #[error("report digest {found} differs from the statement's {expected}")]
    ReportMismatch {
        /// Digest in the statement.
        expected: String,
        /// Digest of the bytes given.
        found: String,
    },
    /// A subject token would be invalid (dots, spaces, wildcards).
    #[error("{what} {value:?} cannot be a NATS subject token")]
    BadSubjectToken {
        /// Which field.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// Encryption failed.
    #[error("encrypting the result: {0}")]
    Encrypt(String),
    /// The object store refused the report.
    #[error("storing the report: {0}")]
    ReportStore(String),
    /// The stream did not acknowledge the event.
    #[error("publishing the result: {0}")]
    Publish(String),
}

/// Signs and publishes results for one worker.
pub struct ResultPublisher {
    js: jetstream::Context,
    key: SigningKey,
    recipients: Vec<AgeRecipient>,
    max_payload: usize,
}

fn subject_token(what: &'static str, value: &str) -> Result<(), PublishError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PublishError::BadSubjectToken {
            what,
            value: value.chars().take(80).collect(),
        })
    }
}

impl ResultPublisher {
    /// A publisher signing with `key`; with recipients, events and stored
    /// reports are age-encrypted to them.
    pub fn new(
        client: &async_nats::Client,
        key: SigningKey,
        recipients: Vec<AgeRecipient>,
    ) -> Self {
        Self {
            js: jetstream::new(client.clone()),
            key,
            recipients,
            max_payload: client.max_payload(),
        }
    }

    fn seal(&self, bytes: Vec<u8>) -> Result<Vec<u8>, PublishError> {
        if self.recipients.is_empty() {
            return Ok(bytes);
        }
        encryption::encrypt(&bytes, &self.recipients, false)
            .map_err(|e| PublishError::Encrypt(e.to_string()))
    }

    /// Publishes one scan's result and waits for the PubAck.
    ///
    /// # Errors
    /// [`PublishError`]; the caller must not acknowledge the intent.
    pub async fn publish(
        &self,
        statement: &ScanStatement,
        report: Option<&[u8]>,
    ) -> Result<PublishedResult, PublishError> {
        self.publish_traced(statement, report, None).await
    }

    /// [`Self::publish`], continuing the scan's trace: the result event
    /// carries a child `traceparent` of the intent's.
    ///
    /// # Errors
    /// As [`Self::publish`].
    pub async fn publish_traced(
        &self,
        statement: &ScanStatement,
        report: Option<&[u8]>,
        traceparent: Option<&str>,
    ) -> Result<PublishedResult, PublishError> {
        let p = &statement.predicate;
        subject_token("cluster", &p.target.cluster)?;
        subject_token("namespace", &p.target.namespace)?;
        if let (Some(body), Some(bound)) = (report, &p.report) {
            let found = hex::encode(Sha256::digest(body));
            if found != bound.sha256 {
                return Err(PublishError::ReportMismatch {
                    expected: bound.sha256.clone(),
                    found,
                });
            }
        }
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), &self.key)
            .to_json()
            .into_bytes();

        let mut event = ResultEvent {
            envelope,
            report: report.map(|r| result_event::Report::ReportInline(r.to_vec())),
        };
        let mut location = if report.is_some() {
            ReportLocation::Inline
        } else {
            ReportLocation::None
        };
        let mut payload = self.seal(event.encode_to_vec())?;
        if payload.len() + PAYLOAD_HEADROOM > self.max_payload
            && let Some(body) = report
        {
            let name = hex::encode(Sha256::digest(body));
            let stored = self.seal(body.to_vec())?;
            let bucket = self
                .js
                .get_object_store(REPORTS_BUCKET)
                .await
                .map_err(|e| PublishError::ReportStore(e.to_string()))?;
            bucket
                .put(name.as_str(), &mut stored.as_slice())
                .await
                .map_err(|e| PublishError::ReportStore(e.to_string()))?;
            event.report = Some(result_event::Report::ReportObject(name.clone()));
            location = ReportLocation::ObjectStore(name);
            payload = self.seal(event.encode_to_vec())?;
        }

        let mut headers = HeaderMap::new();
        headers.insert(HEADER_SCAN_ID, p.scan_id.as_str());
        if let Some(child) = traceparent.and_then(scanfleet_bus::trace_headers::child_traceparent) {
            headers.insert(scanfleet_bus::HEADER_TRACEPARENT, child.as_str());
        }
        if !self.recipients.is_empty() {
            headers.insert(HEADER_ENCODING, "age");
        }
        let subject = format!(
            "{RESULTS_SUBJECT_PREFIX}.{}.{}",
            p.target.cluster, p.target.namespace
        );
        let message = PublishMessage::build()
            .payload(payload.into())
            .headers(headers)
            .message_id(&p.scan_id);
        let ack = self
            .js
            .send_publish(subject, message)
            .await
            .map_err(|e| PublishError::Publish(e.to_string()))?
            .await
            .map_err(|e| PublishError::Publish(e.to_string()))?;
        Ok(PublishedResult {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
            report: location,
        })
    }
}
