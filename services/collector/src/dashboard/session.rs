//! Browser logins: a bearer token posted once to `/ui/login` is reviewed
//! (TokenReview, as every API call is) and exchanged for a random session
//! id in an `HttpOnly; Secure; SameSite=Strict` cookie.
//!
//! Why a server-side map and not a signed cookie: the token must never
//! reach the browser again, and a logout or an expiry must end the
//! session at once. The map holds only the reviewed identity (user, groups)
//! and its expiry; every page still asks SubjectAccessReview (through the
//! gatekeeper's short cache), so a revoked Role takes effect within the
//! cache TTL, not at the session's end. The map is bounded: when full, the
//! session closest to expiry makes room.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use scanfleet_edge_access::Caller;

/// The cookie's name.
pub const COOKIE: &str = "scanfleet_session";
/// Most sessions held at once.
pub const MAX_SESSIONS: usize = 10_000;

struct Session {
    caller: Caller,
    expires: Instant,
}

/// The live sessions.
pub struct Sessions {
    ttl: Duration,
    max: usize,
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Sessions lasting `ttl`, at most `max` at once.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max: max.max(1),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session for `caller` and returns its id: 32 random bytes,
    /// hex.
    pub fn open(&self, caller: Caller) -> String {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, s| s.expires > now);
        if live.len() >= self.max
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(
            id.clone(),
            Session {
                caller,
                expires: now + self.ttl,
            },
        );
        id
    }

    /// The caller of a live session.
    pub fn caller(&self, id: &str) -> Option<Caller> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        match live.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.caller.clone()),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// The `Set-Cookie` value that carries `id`.
    pub fn cookie(&self, id: &str) -> String {
        format!(
            "{COOKIE}={id}; Path=/ui; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
            self.ttl.as_secs()
        )
    }
}

/// The `Set-Cookie` value that removes the cookie.
pub fn expired_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

/// The session id in a `Cookie` header, if any.
pub fn session_id(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && value.len() == 64)
        .map(|(_, value)| value.to_owned())
}

#[cfg(test)]
mod tests {
    use scanfleet_edge_access::Proof;

    use super::*;

    fn caller(name: &str) -> Caller {
        Caller {
            name: name.into(),
            uid: String::new(),
            groups: vec![],
            extra: Default::default(),
            proof: Proof::BearerToken,
        }
    }

    #[test]
    fn sessions_expire_close_and_stay_bounded() {
        let sessions = Sessions::new(Duration::from_secs(60), 2);
        let a = sessions.open(caller("a"));
        assert_eq!(a.len(), 64);
        assert_eq!(sessions.caller(&a).unwrap().name, "a");
        let b = sessions.open(caller("b"));
        let c = sessions.open(caller("c"));
        assert!(sessions.caller(&a).is_none(), "the oldest made room");
        assert!(sessions.caller(&b).is_some() && sessions.caller(&c).is_some());
        sessions.close(&b);
        assert!(sessions.caller(&b).is_none());
        let short = Sessions::new(Duration::ZERO, 2);
        let gone = short.open(caller("d"));
        assert!(short.caller(&gone).is_none());
    }

    #[test]
    fn the_cookie_is_http_only_secure_strict_and_read_back() {
        let sessions = Sessions::new(Duration::from_secs(900), 2);
        let id = sessions.open(caller("a"));
        let cookie = sessions.cookie(&id);
        for part in ["HttpOnly", "Secure", "SameSite=Strict", "Max-Age=900"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            format!("other=1; {COOKIE}={id}").parse().unwrap(),
        );
        assert_eq!(session_id(&headers), Some(id));
        headers.insert(
            http::header::COOKIE,
            format!("{COOKIE}=short").parse().unwrap(),
        );
        assert_eq!(session_id(&headers), None);
    }
}
