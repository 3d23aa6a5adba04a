//! Bearer tokens that must not get anyone in: forged JWTs (alg `none`, a
//! made-up RS256 signature), genuine tokens with their signature or
//! claims tampered with, genuine tokens for another audience or already
//! expired (minted on kubesim by the test, see [`RealTokens`]), garbage
//! and oversized ones, and malformed `authorization` headers.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::seeded::Seeded;

/// Tokens only the cluster can mint, made by the test before the barrage.
#[derive(Debug, Clone, Default)]
pub struct RealTokens {
    /// Genuine tokens of a privileged ServiceAccount, to tamper with.
    pub genuine: Vec<String>,
    /// Valid tokens, but for another audience.
    pub wrong_audience: Vec<String>,
    /// Tokens whose life ended (the cluster's clock moved past them).
    pub expired: Vec<String>,
}

/// What a hostile caller presents instead of a credential.
#[derive(Debug, Clone)]
pub enum BadCredential {
    /// `authorization: Bearer <token>` with a bad token.
    Token(&'static str, String),
    /// A malformed `authorization` value, or none at all (`None`).
    Header(&'static str, Option<String>),
}

impl BadCredential {
    /// Which generator made it.
    pub fn kind(&self) -> &'static str {
        match self {
            BadCredential::Token(k, _) | BadCredential::Header(k, _) => k,
        }
    }
}

fn sa_claims(rng: &mut Seeded, audience: &str, exp: i64) -> String {
    serde_json::json!({
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": "system:serviceaccount:scanfleet-system:operator",
        "aud": [audience],
        "exp": exp,
        "iat": 1_700_000_000,
        "nbf": 1_700_000_000,
        "jti": hex::encode(rng.bytes(8)),
        "kubernetes.io": {"namespace": "scanfleet-system",
                          "serviceaccount": {"name": "operator", "uid": hex::encode(rng.bytes(8))}},
    })
    .to_string()
}

fn jwt(header: &str, claims: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header),
        B64.encode(claims),
        B64.encode(signature)
    )
}

/// A signature char replaced in the middle (never the last char, whose
/// low bits base64 may ignore), so the decoded signature always differs.
fn tamper_signature(rng: &mut Seeded, token: &str) -> String {
    let (head, sig) = token.rsplit_once('.').unwrap_or((token, ""));
    let mut sig: Vec<u8> = sig.bytes().collect();
    if sig.len() < 3 {
        return format!("{head}.{}", B64.encode(rng.bytes(256)));
    }
    let at = rng.below(sig.len() - 2);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut c = *rng.pick(alphabet);
    while c == sig[at] {
        c = *rng.pick(alphabet);
    }
    sig[at] = c;
    format!("{head}.{}", String::from_utf8_lossy(&sig))
}

/// A genuine token with its claims replaced (the signature no longer
/// covers them).
fn tamper_claims(rng: &mut Seeded, token: &str) -> String {
    let mut parts = token.splitn(3, '.');
    let header = parts.next().unwrap_or_default();
    let _claims = parts.next();
    let sig = parts.next().unwrap_or_default();
    let claims = sa_claims(rng, "scanfleet", 4_000_000_000);
    format!("{header}.{}.{sig}", B64.encode(claims))
}

/// One bad credential, drawn from every generator in turn by `index`.
pub fn bad_credential(rng: &mut Seeded, index: usize, real: &RealTokens) -> BadCredential {
    use BadCredential::{Header, Token};
    match index % 12 {
        0 => {
            let claims = sa_claims(rng, "scanfleet", 4_000_000_000);
            let sig = if rng.chance(50) {
                Vec::new()
            } else {
                rng.bytes_between(0, 64 - 1)
            };
            let alg = *rng.pick(&["none", "None", "NONE", "nOnE"]);
            Token(
                "alg-none",
                jwt(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#), &claims, &sig),
            )
        }
        1 => {
            let claims = sa_claims(rng, "scanfleet", 4_000_000_000);
            let header = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, hex::encode(rng.bytes(8)));
            Token("forged-signature", jwt(&header, &claims, &rng.bytes(256)))
        }
        2 | 3 if !real.genuine.is_empty() => {
            let genuine = rng.pick(&real.genuine).clone();
            Token("tampered-signature", tamper_signature(rng, &genuine))
        }
        4 if !real.genuine.is_empty() => {
            let genuine = rng.pick(&real.genuine).clone();
            Token("tampered-claims", tamper_claims(rng, &genuine))
        }
        5 if !real.wrong_audience.is_empty() => {
            Token("wrong-audience", rng.pick(&real.wrong_audience).clone())
        }
        6 if !real.expired.is_empty() => Token("expired", rng.pick(&real.expired).clone()),
        7 => {
            let n = rng.between(1, 300);
            Token("garbage-token", rng.printable(n))
        }
        8 => {
            // Past the 16 KiB the edge accepts, JWT-shaped.
            let n = rng.between(16 * 1024 + 1, 48 * 1024);
            let text = rng.text(
                n,
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
            );
            Token(
                "huge-token",
                format!(
                    "eyJ{}.{}.{}",
                    &text[..n / 3],
                    &text[n / 3..2 * n / 3],
                    &text[2 * n / 3..]
                ),
            )
        }
        9 => {
            let claims = sa_claims(rng, "scanfleet", 4_000_000_000);
            let parts = rng.between(1, 5);
            let token: Vec<String> = (0..parts)
                .map(|i| match i {
                    0 => B64.encode(r#"{"alg":"HS256"}"#),
                    1 => B64.encode(&claims),
                    _ => rng.printable_between(0, 40).replace('.', ""),
                })
                .collect();
            Token("malformed-jwt", token.join("."))
        }
        10 => Header(
            "malformed-authorization",
            Some(match rng.below(6) {
                0 => "Bearer".to_owned(),
                1 => "Bearer ".to_owned(),
                2 => format!("Basic {}", B64.encode(rng.bytes(12))),
                3 => format!("bearer {} {}", rng.printable(10), rng.printable(10)),
                4 => format!("Token {}", rng.printable(20)),
                _ => rng.printable_between(1, 80),
            }),
        ),
        _ => Header("no-credentials", None),
    }
}
