//! How reports are kept in the store: as received, or (with
//! `require_encryption`) age-encrypted to the collector's own recipients,
//! so that the database files and their backups hold no plaintext report.
//! A report is decrypted only when an authorized reader asks for it, and
//! checked against the digest the signed statement binds before it is
//! handed out.
//!
//! No IO: the consumer seals before storing, the read APIs open after
//! fetching.

use std::sync::Arc;

use scanfleet_result_store::{BodyEncoding, Report};
use scanfleet_trust::{AgeRecipient, encryption};
use sha2::{Digest, Sha256};

use crate::ingest::Ingestor;

/// Seals and opens stored reports.
#[derive(Clone)]
pub struct ReportsAtRest {
    /// Set when reports are kept encrypted.
    recipients: Option<Vec<AgeRecipient>>,
    ingestor: Arc<Ingestor>,
}

/// A stored report that cannot be handed out.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Encrypting failed (never expected with valid recipients).
    #[error("cannot encrypt the report for storage: {0}")]
    Seal(String),
    /// The stored ciphertext does not decrypt with this collector's
    /// identities (rotated away, or damaged).
    #[error("the stored report cannot be decrypted: {0}")]
    Open(String),
    /// The decrypted bytes are not the report the statement signed.
    #[error("the stored report does not match its signed digest")]
    Tampered,
}

impl ReportsAtRest {
    /// Keeps reports encrypted to `ingestor`'s own recipients when
    /// `encrypt` (and it has identities), else as received; opens with
    /// `ingestor`'s identities either way.
    pub fn new(ingestor: Arc<Ingestor>, encrypt: bool) -> Self {
        Self {
            recipients: encrypt.then(|| ingestor.own_recipients()).flatten(),
            ingestor,
        }
    }

    /// The form to store.
    ///
    /// # Errors
    /// [`SealError::Seal`].
    pub fn seal(&self, report: Report) -> Result<Report, SealError> {
        let Some(recipients) = &self.recipients else {
            return Ok(report);
        };
        if report.encoding == BodyEncoding::Age {
            return Ok(report);
        }
        let body = encryption::encrypt(&report.body, recipients, false)
            .map_err(|e| SealError::Seal(e.to_string()))?;
        Ok(Report {
            body,
            encoding: BodyEncoding::Age,
            ..report
        })
    }

    /// `bytes` derived from reports (a drift report quotes their
    /// messages) in the form to store: encrypted exactly when reports are.
    ///
    /// # Errors
    /// [`SealError::Seal`].
    pub fn seal_bytes(&self, bytes: Vec<u8>) -> Result<(Vec<u8>, BodyEncoding), SealError> {
        let Some(recipients) = &self.recipients else {
            return Ok((bytes, BodyEncoding::Plain));
        };
        let body = encryption::encrypt(&bytes, recipients, false)
            .map_err(|e| SealError::Seal(e.to_string()))?;
        Ok((body, BodyEncoding::Age))
    }

    /// The plaintext of bytes [`ReportsAtRest::seal_bytes`] stored.
    ///
    /// # Errors
    /// [`SealError::Open`].
    pub fn open_bytes(&self, body: Vec<u8>, encoding: BodyEncoding) -> Result<Vec<u8>, SealError> {
        match encoding {
            BodyEncoding::Plain => Ok(body),
            BodyEncoding::Age => self
                .ingestor
                .decrypt(&body)
                .map_err(|e| SealError::Open(e.to_string())),
        }
    }

    /// The plaintext report, checked against its signed digest.
    ///
    /// # Errors
    /// [`SealError::Open`] or [`SealError::Tampered`].
    pub fn open(&self, report: Report) -> Result<Report, SealError> {
        let body = match report.encoding {
            BodyEncoding::Plain => report.body,
            BodyEncoding::Age => self
                .ingestor
                .decrypt(&report.body)
                .map_err(|e| SealError::Open(e.to_string()))?,
        };
        if hex::encode(Sha256::digest(&body)) != report.sha256 {
            return Err(SealError::Tampered);
        }
        Ok(Report {
            body,
            encoding: BodyEncoding::Plain,
            ..report
        })
    }
}

#[cfg(test)]
mod tests {
    use scanfleet_trust::{AgeIdentities, TrustedKeys};

    use super::*;

    fn report(body: &[u8]) -> Report {
        Report {
            media_type: "application/vnd.mitre.hdf+json".into(),
            sha256: hex::encode(Sha256::digest(body)),
            body: body.to_vec(),
            encoding: BodyEncoding::Plain,
            controls: Vec::new(),
        }
    }

    fn ingestor() -> Arc<Ingestor> {
        Arc::new(Ingestor::new(
            TrustedKeys::new(),
            Some(AgeIdentities::generate()),
            1 << 20,
        ))
    }

    #[test]
    fn sealed_reports_hold_no_plaintext_and_open_to_the_original() {
        let at_rest = ReportsAtRest::new(ingestor(), true);
        let plain = report(b"{\"profiles\":[\"secret-finding\"]}");
        let sealed = at_rest.seal(plain.clone()).unwrap();
        assert_eq!(sealed.encoding, BodyEncoding::Age);
        assert!(
            !sealed
                .body
                .windows(b"secret-finding".len())
                .any(|w| w == b"secret-finding")
        );
        assert_eq!(at_rest.open(sealed).unwrap(), plain);
        let (body, encoding) = at_rest.seal_bytes(b"secret-finding".to_vec()).unwrap();
        assert_eq!(encoding, BodyEncoding::Age);
        assert!(!body.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            at_rest.open_bytes(body, encoding).unwrap(),
            b"secret-finding"
        );
    }

    #[test]
    fn without_encryption_reports_stay_as_received_and_are_still_checked() {
        let at_rest = ReportsAtRest::new(ingestor(), false);
        let plain = report(b"{}");
        assert_eq!(at_rest.seal(plain.clone()).unwrap(), plain);
        let mut altered = plain;
        altered.body = b"{\"x\":1}".to_vec();
        assert!(matches!(at_rest.open(altered), Err(SealError::Tampered)));
        let foreign = ReportsAtRest::new(ingestor(), true)
            .seal(report(b"{}"))
            .unwrap();
        assert!(matches!(at_rest.open(foreign), Err(SealError::Open(_))));
    }
}
