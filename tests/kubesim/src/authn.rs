//! Authentication of bearer tokens: the static admin token, then
//! ServiceAccount JWTs re-checked against the live store.
//!
//! One rule for every caller: the request filter (401 on failure) and
//! TokenReview (`status.error` on failure) both call [`authenticate`]; they
//! differ only in the audiences they ask for. The failure texts are the ones
//! kube-apiserver reports for the same cases.

use std::collections::BTreeMap;

use crate::rbac::User;
use crate::state::State;
use crate::tokens::{ISSUER, TokenError};

/// Upstream's extra key for the token's `jti` (`JTI=<jti>`).
pub const CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";
/// Upstream's extra key for the bound pod's name.
pub const POD_NAME: &str = "authentication.kubernetes.io/pod-name";
/// Upstream's extra key for the bound pod's uid.
pub const POD_UID: &str = "authentication.kubernetes.io/pod-uid";

/// The audiences the API server identifies as (`--api-audiences`, which
/// default to the issuer).
pub fn api_audiences() -> Vec<String> {
    vec![ISSUER.to_string()]
}

/// A token that authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who it is.
    pub user: User,
    /// The requested audiences the token is valid for.
    pub audiences: Vec<String>,
}

/// Why a token did not authenticate; `Display` is upstream's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    /// No authenticator recognised the token (not a JWT of our issuer, or a
    /// static token outside the requested audiences).
    #[error("invalid bearer token")]
    NotRecognised,
    /// The ServiceAccount authenticator recognised the token and refused it.
    #[error("[invalid bearer token, {0}]")]
    ServiceAccount(String),
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

/// Authenticates `token` for `audiences` (the API audiences for requests).
pub fn authenticate(
    state: &State,
    token: &str,
    audiences: &[String],
) -> Result<Authenticated, AuthnError> {
    if let Some((_, u)) = state.static_tokens.iter().find(|(t, _)| {
        // Compare digests so the comparison time does not depend on
        // how much of the secret a guess got right.
        use sha2::Digest;
        sha2::Sha256::digest(t.as_bytes()) == sha2::Sha256::digest(token.as_bytes())
    }) {
        // Static tokens are audience-agnostic: valid for the API audiences.
        let overlap: Vec<String> = audiences
            .iter()
            .filter(|a| api_audiences().contains(a))
            .cloned()
            .collect();
        if overlap.is_empty() {
            return Err(AuthnError::NotRecognised);
        }
        return Ok(Authenticated {
            user: u.clone(),
            audiences: overlap,
        });
    }
    service_account(state, token, audiences).map_err(|e| {
        tracing::debug!("token rejected: {e}");
        e
    })
}

/// The ServiceAccount JWT authenticator (`pkg/serviceaccount/jwt.go` and
/// `claims.go`): signature, audience, times, then the live ServiceAccount
/// and bound pod.
fn service_account(
    state: &State,
    token: &str,
    audiences: &[String],
) -> Result<Authenticated, AuthnError> {
    let refused = |m: String| AuthnError::ServiceAccount(m);
    let claims = match state.signer.decode(token) {
        Ok(c) => c,
        Err(TokenError::Signature) => {
            return Err(refused(
                "go-jose/go-jose: error in cryptographic primitive".into(),
            ));
        }
        Err(_) => return Err(AuthnError::NotRecognised),
    };
    let overlap = claims.audience_overlap(audiences);
    if overlap.is_empty() {
        return Err(refused(format!(
            "token audiences {} is invalid for the target audiences {}",
            go_quoted(&claims.aud),
            go_quoted(audiences)
        )));
    }
    let now = state.clock.now();
    match claims.check_time(now) {
        Ok(()) => {}
        Err(TokenError::Expired) => {
            return Err(refused("service account token has expired".into()));
        }
        Err(TokenError::NotYetValid) => {
            return Err(refused("service account token is not valid yet".into()));
        }
        Err(_) => {
            return Err(refused(
                "service account token is issued in the future".into(),
            ));
        }
    }
    let k = &claims.kubernetes;
    let sa = state
        .store
        .get("serviceaccounts", &k.namespace, &k.serviceaccount.name)
        .ok_or_else(|| {
            refused(format!(
                "serviceaccounts {:?} not found",
                k.serviceaccount.name
            ))
        })?;
    let sa_uid = sa["metadata"]["uid"].as_str().unwrap_or("");
    if sa_uid != k.serviceaccount.uid {
        return Err(refused(format!(
            "service account UID ({sa_uid}) does not match claim ({})",
            k.serviceaccount.uid
        )));
    }
    let mut extra = BTreeMap::new();
    if let Some(p) = &k.pod {
        let invalidated = || refused("service account token has been invalidated".into());
        let pod = state
            .store
            .get("pods", &k.namespace, &p.name)
            .ok_or_else(invalidated)?;
        let pod_uid = pod["metadata"]["uid"].as_str().unwrap_or("");
        if pod_uid != p.uid {
            return Err(refused(format!(
                "pod UID ({pod_uid}) does not match claim ({})",
                p.uid
            )));
        }
        if let Some(dt) = pod["metadata"]["deletionTimestamp"]
            .as_str()
            .and_then(crate::clock::parse_time)
            && dt < now - crate::tokens::LEEWAY_SECS
        {
            return Err(invalidated());
        }
        extra.insert(POD_NAME.to_string(), vec![p.name.clone()]);
        extra.insert(POD_UID.to_string(), vec![p.uid.clone()]);
    }
    if !claims.jti.is_empty() {
        extra.insert(
            CREDENTIAL_ID.to_string(),
            vec![format!("JTI={}", claims.jti)],
        );
    }
    Ok(Authenticated {
        user: User {
            name: format!(
                "system:serviceaccount:{}:{}",
                k.namespace, k.serviceaccount.name
            ),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", k.namespace),
                "system:authenticated".into(),
            ],
            uid: k.serviceaccount.uid.clone(),
            extra,
        },
        audiences: overlap,
    })
}
