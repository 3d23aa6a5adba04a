//! Authentication of bearer tokens: the static admin token, then
//! ServiceAccount JWTs re-checked against the live store on every request.

use crate::rbac::User;
use crate::state::State;

/// Authenticates a bearer token: static tokens, then ServiceAccount JWTs
/// re-checked against the live store (SA and bound pod must still exist
/// with the same uid).
pub fn authenticate(state: &State, token: &str) -> Option<User> {
    if let Some((_, u)) = state.static_tokens.iter().find(|(t, _)| {
        // Compare digests so the comparison time does not depend on
        // how much of the secret a guess got right.
        use sha2::Digest;
        sha2::Sha256::digest(t.as_bytes()) == sha2::Sha256::digest(token.as_bytes())
    }) {
        return Some(u.clone());
    }
    let now = state.clock.now();
    let claims = match state.signer.verify(token, now) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("token rejected: {e}");
            return None;
        }
    };
    let k = &claims.kubernetes;
    let sa = state
        .store
        .get("serviceaccounts", &k.namespace, &k.serviceaccount.name)?;
    if sa["metadata"]["uid"].as_str() != Some(k.serviceaccount.uid.as_str()) {
        tracing::debug!("token rejected: service account uid changed");
        return None;
    }
    if let Some(p) = &k.pod {
        let pod = state.store.get("pods", &k.namespace, &p.name)?;
        if pod["metadata"]["uid"].as_str() != Some(p.uid.as_str()) {
            tracing::debug!("token rejected: bound pod uid changed");
            return None;
        }
        if let Some(dt) = pod["metadata"]["deletionTimestamp"]
            .as_str()
            .and_then(crate::clock::parse_time)
            && dt < now - 60
        {
            return None;
        }
    }
    Some(User {
        name: claims.sub.clone(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", k.namespace),
            "system:authenticated".into(),
        ],
    })
}
