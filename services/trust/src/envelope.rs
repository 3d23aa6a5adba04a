//! DSSE envelopes (Dead Simple Signing Envelope, v1.0).
//!
//! The signature covers the PAE encoding of the payload type and payload, so a
//! verifier never has to canonicalize JSON and the payload type cannot be
//! swapped without breaking the signature. The JSON wire form uses standard
//! base64 for `payload` and `sig`, which is what securesystemslib, sigstore and
//! in-toto emit and accept.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::keys::SigningKey;

/// The upper bound on an envelope accepted by [`Envelope::from_json`] unless the
/// caller chooses another. Result envelopes hold a statement that *references*
/// the HDF report by digest, so real ones are a few kilobytes; the bound exists
/// to keep hostile input from exhausting memory.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 16 * 1024 * 1024;

/// Why bytes could not be read as an envelope.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Larger than the caller's limit; nothing was parsed.
    #[error("envelope is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Not the DSSE JSON shape (with the serde location, line and column).
    #[error("not a DSSE envelope: {0}")]
    Json(String),
    /// A base64 field that does not decode.
    #[error("{field} is not valid standard base64: {reason}")]
    Base64 {
        /// Which field, e.g. `payload` or `signatures[1].sig`.
        field: String,
        /// The decoder's explanation.
        reason: String,
    },
}

/// One signature over the envelope's PAE bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// Which key made it; see [`crate::KeyId`]. May be empty in foreign envelopes.
    pub keyid: String,
    /// The raw signature bytes.
    pub sig: Vec<u8>,
}

/// A decoded DSSE envelope. Holding decoded bytes (not base64 text) means
/// verification works on exactly what was signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The signed content, e.g. an in-toto statement.
    pub payload: Vec<u8>,
    /// The media type of the payload, covered by the signature.
    pub payload_type: String,
    /// Zero or more signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<WireSignature>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// The DSSE v1 pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// Signs `payload` as `payload_type` with one key.
    pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Self {
        let sig = key.sign(&pae(payload_type, payload)).to_vec();
        Self {
            payload: payload.to_vec(),
            payload_type: payload_type.to_owned(),
            signatures: vec![EnvelopeSignature {
                keyid: key.key_id().as_str().to_owned(),
                sig,
            }],
        }
    }

    /// Adds another signature (e.g. during key rotation, old and new key).
    pub fn add_signature(&mut self, key: &SigningKey) {
        let sig = key.sign(&pae(&self.payload_type, &self.payload)).to_vec();
        self.signatures.push(EnvelopeSignature {
            keyid: key.key_id().as_str().to_owned(),
            sig,
        });
    }

    /// The PAE bytes the signatures cover.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Parses the JSON wire form with [`DEFAULT_MAX_ENVELOPE_BYTES`].
    ///
    /// # Errors
    /// [`EnvelopeError`] for oversized input, a wrong shape or bad base64.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Self::from_json_limited(bytes, DEFAULT_MAX_ENVELOPE_BYTES)
    }

    /// Parses the JSON wire form, refusing input over `limit` bytes before
    /// parsing anything.
    ///
    /// # Errors
    /// [`EnvelopeError`] for oversized input, a wrong shape or bad base64.
    pub fn from_json_limited(bytes: &[u8], limit: usize) -> Result<Self, EnvelopeError> {
        if bytes.len() > limit {
            return Err(EnvelopeError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let wire: WireEnvelope =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        let payload = decode_b64("payload", &wire.payload)?;
        let signatures = wire
            .signatures
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(EnvelopeSignature {
                    sig: decode_b64(&format!("signatures[{i}].sig"), &s.sig)?,
                    keyid: s.keyid,
                })
            })
            .collect::<Result<_, EnvelopeError>>()?;
        Ok(Self {
            payload,
            payload_type: wire.payload_type,
            signatures,
        })
    }

    /// The JSON wire form.
    pub fn to_json(&self) -> String {
        let wire = WireEnvelope {
            payload: STANDARD.encode(&self.payload),
            payload_type: self.payload_type.clone(),
            signatures: self
                .signatures
                .iter()
                .map(|s| WireSignature {
                    keyid: s.keyid.clone(),
                    sig: STANDARD.encode(&s.sig),
                })
                .collect(),
        };
        serde_json::to_string(&wire).expect("envelope JSON serialization cannot fail")
    }
}

fn decode_b64(field: &str, text: &str) -> Result<Vec<u8>, EnvelopeError> {
    STANDARD.decode(text).map_err(|e| EnvelopeError::Base64 {
        field: field.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // The worked example from the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn json_round_trip_keeps_every_byte() {
        let key = SigningKey::generate();
        let payload = b"\x00\xffbinary \"payload\"\n";
        let env = Envelope::sign("application/x-test", payload, &key);
        let json = env.to_json();
        let back = Envelope::from_json(json.as_bytes()).unwrap();
        assert_eq!(back, env);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["payloadType"], "application/x-test");
        assert_eq!(value["signatures"][0]["keyid"], key.key_id().as_str());
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let err = Envelope::from_json_limited(&[b' '; 100], 99).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::TooLarge {
                size: 100,
                limit: 99
            }
        );
    }

    #[test]
    fn invalid_base64_names_the_field() {
        let json =
            r#"{"payload":"aGk=","payloadType":"t","signatures":[{"keyid":"k","sig":"***"}]}"#;
        let err = Envelope::from_json(json.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, EnvelopeError::Base64 { field, .. } if field == "signatures[0].sig"),
            "{err}"
        );
    }

    #[test]
    fn wrong_shape_reports_line_and_column() {
        let err = Envelope::from_json(b"{\n \"payload\": 5}").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2"), "{text}");
    }
}
