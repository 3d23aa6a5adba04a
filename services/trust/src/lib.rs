//! scanfleet's trust layer: what makes a scan result verifiable by anyone.
//!
//! Every result leaves a worker as an in-toto Statement v1 about the scanned
//! image digest, signed into a DSSE envelope with an Ed25519 key, optionally
//! age-encrypted to the collectors. These are standard formats on purpose:
//! securesystemslib, in-toto and the `age` CLI read them without scanfleet.
//!
//! Main types: [`SigningKey`] / [`PublicKey`] (PEM, key ids), [`Envelope`]
//! (DSSE), [`TrustedKeys`] (verification with rotation), [`ScanStatement`]
//! (the signed claim), and [`encryption`].
//!
//! This crate does no IO: callers read and write files, sockets and streams,
//! and hand it bytes and strings. That keeps the security logic testable in
//! isolation and free of policy about where keys live.

pub mod encryption;
pub mod envelope;
pub mod keys;
pub mod statement;
pub mod trusted_keys;

pub use encryption::{AgeIdentities, AgeRecipient, EncryptionError};
pub use envelope::{DEFAULT_MAX_ENVELOPE_BYTES, Envelope, EnvelopeError, EnvelopeSignature, pae};
pub use keys::{KeyError, KeyId, PublicKey, SigningKey};
pub use statement::{
    IN_TOTO_PAYLOAD_TYPE, InputSource, InputUsed, InputValueUsed, SCAN_RESULT_PREDICATE_TYPE,
    ScanResultPredicate, ScanStatement, Statement, StatementError, Subject,
};
pub use trusted_keys::{TrustedKeys, Verified, VerifyError};
