//! Turning one message from the results stream into a verified result, or a
//! precise reason to quarantine it. No IO: the consumer fetches and stores.
//!
//! Order matters for trust: decrypt, decode the event, verify the envelope
//! against the trusted keys, and only then read the statement. Nothing from an
//! unverified envelope is ever interpreted.

use prost::Message;
use scanfleet_bus::PayloadEncoding;
use scanfleet_contracts::v1::{ResultEvent, result_event};
use scanfleet_scan_intents::{ClusterName, ResultPlace};
use scanfleet_trust::{
    AgeIdentities, IN_TOTO_PAYLOAD_TYPE, ScanStatement, StatementError, TrustedKeys, Verified,
    VerifyError, encryption, statement::TargetKind,
};

/// Where the report is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportSource {
    /// In the event.
    Inline(Vec<u8>),
    /// In the report bucket under this name (hex SHA-256).
    Object(String),
    /// The event carries none.
    Absent,
}

/// An event whose envelope verified.
#[derive(Debug)]
pub struct Opened {
    /// The DSSE envelope JSON as received.
    pub envelope: Vec<u8>,
    /// What verification proved.
    pub verified: Verified,
    /// The authenticated statement.
    pub statement: ScanStatement,
    /// The report, to be checked against the signed digest.
    pub report: ReportSource,
}

/// Why an event is quarantined instead of stored.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The encoding header names an unknown encoding.
    #[error("unknown payload encoding {0:?}")]
    UnknownEncoding(String),
    /// An encrypted event, but this collector has no age identity.
    #[error("event is age-encrypted but no identity is configured")]
    NoIdentity,
    /// A plaintext event at a collector that requires encryption.
    #[error("event is not age-encrypted, and this collector requires encryption")]
    Unencrypted,
    /// Decryption failed (foreign recipient, damage).
    #[error("cannot decrypt event: {0}")]
    Undecryptable(String),
    /// The payload is not a `ResultEvent`.
    #[error("not a ResultEvent: {0}")]
    NotAnEvent(String),
    /// The envelope did not verify (malformed, unknown key, bad signature,
    /// wrong payload type).
    #[error("envelope rejected: {0}")]
    Envelope(#[from] VerifyError),
    /// The authenticated payload is not a scan-result statement.
    #[error("statement rejected: {0}")]
    Statement(#[from] StatementError),
    /// The report object name is not a hex SHA-256.
    #[error("report object name {0:?} is not a hex SHA-256")]
    BadObjectName(String),
    /// The report is missing from the bucket.
    #[error("report object {0} is missing")]
    ReportMissing(String),
    /// The report object is larger than the collector reads.
    #[error("report object is {size} bytes, over the limit of {limit}")]
    ReportTooLarge {
        /// Its size.
        size: u64,
        /// The collector's `--max-event-bytes`.
        limit: usize,
    },
    /// The subject names another place than the signed statement: a
    /// subscriber filtering by subject must be able to trust the subject.
    #[error("published on {subject:?}, but the signed statement is about {statement}")]
    WrongSubject {
        /// The subject it arrived on.
        subject: String,
        /// `cluster/namespace` from the statement.
        statement: String,
    },
    /// The report or statement cannot be stored (digest mismatch, bad times).
    #[error("result cannot be stored: {0}")]
    Unstorable(String),
}

impl Rejection {
    /// Every label [`Rejection::label`] can return, so metrics can show each
    /// at zero before the first rejection (alerts need the series).
    pub const LABELS: [&'static str; 14] = [
        "unknown_encoding",
        "unencrypted",
        "undecryptable",
        "malformed_event",
        "malformed_envelope",
        "unsigned",
        "unknown_key",
        "bad_signature",
        "wrong_payload_type",
        "bad_statement",
        "report_missing",
        "report_too_large",
        "wrong_subject",
        "unstorable",
    ];

    /// A stable label for metrics and the quarantine header.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::UnknownEncoding(_) => "unknown_encoding",
            Rejection::Unencrypted => "unencrypted",
            Rejection::NoIdentity | Rejection::Undecryptable(_) => "undecryptable",
            Rejection::NotAnEvent(_) => "malformed_event",
            Rejection::Envelope(VerifyError::Malformed(_)) => "malformed_envelope",
            Rejection::Envelope(VerifyError::NoSignatures) => "unsigned",
            Rejection::Envelope(VerifyError::UnknownKeyId { .. }) => "unknown_key",
            Rejection::Envelope(VerifyError::BadSignature { .. }) => "bad_signature",
            Rejection::Envelope(VerifyError::PayloadTypeMismatch { .. }) => "wrong_payload_type",
            Rejection::Statement(_) => "bad_statement",
            Rejection::BadObjectName(_) | Rejection::ReportMissing(_) => "report_missing",
            Rejection::ReportTooLarge { .. } => "report_too_large",
            Rejection::WrongSubject { .. } => "wrong_subject",
            Rejection::Unstorable(_) => "unstorable",
        }
    }
}

/// Verifies events against the collector's trust configuration.
pub struct Ingestor {
    trusted: TrustedKeys,
    identities: Option<AgeIdentities>,
    max_bytes: usize,
    require_encryption: bool,
}

impl Ingestor {
    /// `max_bytes` bounds every decoded size (event, envelope, report).
    pub fn new(trusted: TrustedKeys, identities: Option<AgeIdentities>, max_bytes: usize) -> Self {
        Self {
            trusted,
            identities,
            max_bytes,
            require_encryption: false,
        }
    }

    /// Refuses plaintext events ([`Rejection::Unencrypted`]) when `yes`.
    pub fn requiring_encryption(mut self, yes: bool) -> Self {
        self.require_encryption = yes;
        self
    }

    /// The recipients this collector's own identities decrypt, to keep
    /// reports encrypted at rest; `None` without identities.
    pub fn own_recipients(&self) -> Option<Vec<scanfleet_trust::AgeRecipient>> {
        self.identities.as_ref().map(AgeIdentities::recipients)
    }

    /// The most bytes any part of an event may have, the report object
    /// included.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Checks the subject's place against the signed statement's.
    ///
    /// # Errors
    /// [`Rejection::WrongSubject`], also for a subject that names no place.
    pub fn check_place(
        &self,
        subject: &str,
        place: Option<&(ClusterName, ResultPlace)>,
        statement: &ScanStatement,
    ) -> Result<(), Rejection> {
        let target = &statement.predicate.target;
        let agrees = place.is_some_and(|(cluster, place)| {
            cluster.as_str() == target.cluster
                && match place {
                    ResultPlace::Namespace(ns) => {
                        target.kind == TargetKind::Container && ns.as_str() == target.namespace
                    }
                    ResultPlace::Image => target.kind == TargetKind::Image,
                }
        });
        if agrees {
            Ok(())
        } else {
            Err(Rejection::WrongSubject {
                subject: subject.chars().take(128).collect(),
                statement: match target.kind {
                    TargetKind::Container => format!("{}/{}", target.cluster, target.namespace),
                    TargetKind::Image => {
                        format!("{}/image {}", target.cluster, target.image_digest)
                    }
                }
                .chars()
                .take(128)
                .collect(),
            })
        }
    }

    /// Decrypts bytes that were encrypted the same way as the event (used
    /// for report objects of encrypted fleets).
    ///
    /// # Errors
    /// [`Rejection::NoIdentity`] or [`Rejection::Undecryptable`].
    pub fn decrypt(&self, bytes: &[u8]) -> Result<Vec<u8>, Rejection> {
        let identities = self.identities.as_ref().ok_or(Rejection::NoIdentity)?;
        encryption::decrypt(bytes, identities, self.max_bytes)
            .map_err(|e| Rejection::Undecryptable(e.to_string()))
    }

    /// Opens one event.
    ///
    /// # Errors
    /// [`Rejection`] saying why the event must be quarantined.
    pub fn open(&self, payload: &[u8], encoding: PayloadEncoding) -> Result<Opened, Rejection> {
        let plain;
        let bytes = match encoding {
            PayloadEncoding::Plain if self.require_encryption => {
                return Err(Rejection::Unencrypted);
            }
            PayloadEncoding::Plain => payload,
            PayloadEncoding::Age => {
                plain = self.decrypt(payload)?;
                &plain
            }
        };
        let event = ResultEvent::decode(bytes).map_err(|e| Rejection::NotAnEvent(e.to_string()))?;
        let verified = self.trusted.verify_json(
            &event.envelope,
            self.max_bytes,
            Some(IN_TOTO_PAYLOAD_TYPE),
        )?;
        let statement = ScanStatement::from_payload(&verified.payload)?;
        let report = match event.report {
            Some(result_event::Report::ReportInline(body)) => ReportSource::Inline(body),
            Some(result_event::Report::ReportObject(name)) => {
                if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Rejection::BadObjectName(name.chars().take(80).collect()));
                }
                ReportSource::Object(name.to_ascii_lowercase())
            }
            None => ReportSource::Absent,
        };
        Ok(Opened {
            envelope: event.envelope,
            verified,
            statement,
            report,
        })
    }
}

#[cfg(test)]
mod tests {
    use scanfleet_trust::{EnvelopeError, VerifyError};

    use super::*;

    /// One rejection of each kind. The match lists every variant without a
    /// wildcard, so a new kind does not compile until it is added here,
    /// and the test then fails until its label is in `LABELS`.
    #[test]
    fn labels_lists_every_label() {
        let verify = |e: VerifyError| Rejection::Envelope(e);
        let samples = [
            Rejection::UnknownEncoding(String::new()),
            Rejection::Unencrypted,
            Rejection::NoIdentity,
            Rejection::Undecryptable(String::new()),
            Rejection::NotAnEvent(String::new()),
            verify(VerifyError::Malformed(EnvelopeError::Json(String::new()))),
            verify(VerifyError::NoSignatures),
            verify(VerifyError::UnknownKeyId { key_ids: vec![] }),
            verify(VerifyError::BadSignature {
                key_id: String::new(),
            }),
            verify(VerifyError::PayloadTypeMismatch {
                expected: String::new(),
                found: String::new(),
            }),
            Rejection::Statement(StatementError::Json(String::new())),
            Rejection::BadObjectName(String::new()),
            Rejection::ReportMissing(String::new()),
            Rejection::ReportTooLarge { size: 0, limit: 0 },
            Rejection::WrongSubject {
                subject: String::new(),
                statement: String::new(),
            },
            Rejection::Unstorable(String::new()),
        ];
        for sample in &samples {
            match sample {
                Rejection::UnknownEncoding(_)
                | Rejection::Unencrypted
                | Rejection::NoIdentity
                | Rejection::Undecryptable(_)
                | Rejection::NotAnEvent(_)
                | Rejection::Envelope(_)
                | Rejection::Statement(_)
                | Rejection::BadObjectName(_)
                | Rejection::ReportMissing(_)
                | Rejection::ReportTooLarge { .. }
                | Rejection::WrongSubject { .. }
                | Rejection::Unstorable(_) => {}
            }
        }
        let mut from_samples: Vec<&str> = samples.iter().map(Rejection::label).collect();
        from_samples.sort_unstable();
        from_samples.dedup();
        let mut labels = Rejection::LABELS.to_vec();
        labels.sort_unstable();
        assert_eq!(from_samples, labels);
    }

    /// A container's result belongs under its namespace's subject and an
    /// image's under `_image`; neither may pass for the other.
    #[test]
    fn image_and_container_results_each_need_their_own_subject() {
        use scanfleet_test_harness::fleet::SampleStatement;
        let ingestor = Ingestor::new(TrustedKeys::new(), None, 1 << 20);
        let container = SampleStatement::new("c").build();
        let image = SampleStatement::new("i")
            .with(|p| {
                p.target.kind = TargetKind::Image;
                p.target.namespace.clear();
                p.target.pod.clear();
                p.target.container.clear();
            })
            .build();
        let check = |subject: &str, statement: &ScanStatement| {
            let place = scanfleet_scan_intents::result_place(subject);
            ingestor.check_place(subject, place.as_ref(), statement)
        };
        assert!(check("scan.results.kubesim.shop", &container).is_ok());
        assert!(check("scan.results.kubesim._image", &image).is_ok());
        for (subject, statement) in [
            ("scan.results.kubesim._image", &container),
            ("scan.results.kubesim.shop", &image),
            ("scan.results.other._image", &image),
        ] {
            let e = check(subject, statement).unwrap_err();
            assert_eq!(e.label(), "wrong_subject", "{subject}");
        }
        let e = check("scan.results.kubesim.shop", &image).unwrap_err();
        assert!(e.to_string().contains("kubesim/image sha256:"), "{e}");
    }
}
