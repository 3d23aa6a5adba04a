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

use prost::Message;
use scanfleet_bus::{OutgoingResult, PayloadEncoding, ResultStream};
use scanfleet_contracts::v1::{ResultEvent, result_event};
use scanfleet_scan_intents::{ClusterName, NamespaceName, ResultPlace};
use scanfleet_trust::{
    AgeRecipient, Envelope, IN_TOTO_PAYLOAD_TYPE, ScanStatement, SigningKey, encryption,
    statement::TargetKind,
};
use sha2::{Digest, Sha256};

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
    /// The statement names a place that is no valid cluster or namespace
    /// name, so it cannot become a result subject.
    #[error("{what} {value:?} cannot be a NATS subject token: {reason}")]
    BadSubjectToken {
        /// Which field.
        what: &'static str,
        /// The value.
        value: String,
        /// The rule it broke.
        reason: String,
    },
    /// Encryption failed.
    #[error("encrypting the result: {0}")]
    Encrypt(String),
    /// The bus refused the report or the event.
    #[error(transparent)]
    Bus(#[from] scanfleet_bus::ResultStreamError),
}

/// Signs and publishes results for one worker.
pub struct ResultPublisher {
    stream: ResultStream,
    key: SigningKey,
    recipients: Vec<AgeRecipient>,
    max_payload: usize,
}

fn place(statement: &ScanStatement) -> Result<(ClusterName, ResultPlace), PublishError> {
    let t = &statement.predicate.target;
    let bad = |what, value: &str, e: scanfleet_scan_intents::k8s_names::NameError| {
        PublishError::BadSubjectToken {
            what,
            value: value.chars().take(80).collect(),
            reason: e.to_string(),
        }
    };
    Ok((
        ClusterName::new(&t.cluster).map_err(|e| bad("cluster", &t.cluster, e))?,
        match t.kind {
            TargetKind::Container => ResultPlace::Namespace(
                NamespaceName::new(&t.namespace).map_err(|e| bad("namespace", &t.namespace, e))?,
            ),
            TargetKind::Image => ResultPlace::Image,
        },
    ))
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
            stream: ResultStream::new(async_nats::jetstream::new(client.clone())),
            key,
            recipients,
            max_payload: client.max_payload(),
        }
    }

    fn encoding(&self) -> PayloadEncoding {
        if self.recipients.is_empty() {
            PayloadEncoding::Plain
        } else {
            PayloadEncoding::Age
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
        let (cluster, place) = place(statement)?;
        if let (Some(body), Some(bound)) = (report, &statement.predicate.report) {
            let found = hex::encode(Sha256::digest(body));
            if found != bound.sha256 {
                return Err(PublishError::ReportMismatch {
                    expected: bound.sha256.clone(),
                    found,
                });
            }
        }
        let (payload, location) = self.event_payload(statement, report).await?;
        let ack = self
            .stream
            .publish(OutgoingResult {
                scan_id: &statement.predicate.scan_id,
                cluster: &cluster,
                place: &place,
                encoding: self.encoding(),
                parent_traceparent: traceparent,
                payload: payload.into(),
            })
            .await?;
        Ok(PublishedResult {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
            report: location,
        })
    }

    /// Signs the statement and wraps it with its report: inline when the
    /// event fits under the max payload, else the report goes to the object
    /// store under its SHA-256 and the event names it.
    async fn event_payload(
        &self,
        statement: &ScanStatement,
        report: Option<&[u8]>,
    ) -> Result<(Vec<u8>, ReportLocation), PublishError> {
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), &self.key)
            .to_json()
            .into_bytes();
        let mut event = ResultEvent {
            envelope,
            report: report.map(|r| result_event::Report::ReportInline(r.to_vec())),
        };
        let payload = self.seal(event.encode_to_vec())?;
        let Some(body) = report.filter(|_| payload.len() + PAYLOAD_HEADROOM > self.max_payload)
        else {
            let location = if report.is_some() {
                ReportLocation::Inline
            } else {
                ReportLocation::None
            };
            return Ok((payload, location));
        };
        let name = self.stream.store_report(&self.seal(body.to_vec())?).await?;
        event.report = Some(result_event::Report::ReportObject(name.clone()));
        Ok((
            self.seal(event.encode_to_vec())?,
            ReportLocation::ObjectStore(name),
        ))
    }
}
