//! The edge's one entry point: who is calling ([`Gatekeeper::admit`]),
//! and may they ([`Gatekeeper::authorize`], [`Gatekeeper::scope`]).
//!
//! Authentication, in kube-apiserver's order: an authenticating proxy's
//! verified certificate with the end user in `X-Remote-User`; else a
//! verified client certificate whose subject the configuration maps to a
//! user; else a bearer token, which the cluster reviews for the configured
//! audience. Unlike kube-apiserver, which ignores `X-Remote-User` from
//! anyone else, such a request is refused: a proxy whose certificate was
//! left out of the configuration would otherwise act as itself, silently.
//! Authorization is a SubjectAccessReview on `scanfleet.dev`. Both answers
//! are cached briefly ([`DecisionCache`]); every caller has a rate limit,
//! and so does every peer address whose token is not in the cache yet.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::access_error::AccessError;
use crate::caller::{Caller, Credentials, Proof, REMOTE_GROUP_HEADER, REMOTE_USER_HEADER};
use crate::caller_limits::CallerLimits;
use crate::decision_cache::DecisionCache;
use crate::reviews::{Access, Resource, Reviewer, TokenVerdict, Verb};
use crate::settings::{AccessSettings, MappedUser};

/// What a caller may see of something spanning namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace (a cluster-wide grant).
    Everywhere,
    /// Only these (never empty: no namespace at all is a refusal).
    Only(BTreeSet<String>),
}

impl Scope {
    /// Whether `namespace` is visible.
    pub fn covers(&self, namespace: &str) -> bool {
        match self {
            Scope::Everywhere => true,
            Scope::Only(set) => set.contains(namespace),
        }
    }
}

type DecisionKey = (String, Vec<String>, Access);

/// Authenticates and authorizes callers of one service.
pub struct Gatekeeper {
    reviewer: Arc<dyn Reviewer>,
    audience: String,
    certificate_users: BTreeMap<String, MappedUser>,
    proxy_subjects: BTreeSet<String>,
    tokens: DecisionCache<[u8; 32], Result<Caller, String>>,
    decisions: DecisionCache<DecisionKey, bool>,
    limits: CallerLimits,
}

impl std::fmt::Debug for Gatekeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatekeeper")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Gatekeeper {
    /// A gatekeeper asking `reviewer`, configured by `settings`.
    pub fn new(reviewer: Arc<dyn Reviewer>, settings: &AccessSettings) -> Self {
        Self {
            reviewer,
            audience: settings.audience.clone(),
            certificate_users: settings.certificate_users.clone(),
            proxy_subjects: settings.proxy_subjects.clone(),
            tokens: DecisionCache::new(settings.cache_ttl, settings.cache_size),
            decisions: DecisionCache::new(settings.cache_ttl, settings.cache_size),
            limits: CallerLimits::new(settings.rate_limit),
        }
    }

    /// Who is calling, within their rate limit.
    ///
    /// # Errors
    /// [`AccessError::Unauthenticated`], [`AccessError::RateLimited`] or
    /// [`AccessError::Unavailable`].
    pub async fn admit(&self, credentials: &Credentials) -> Result<Caller, AccessError> {
        let caller = self.authenticate(credentials).await?;
        self.limits
            .check(&format!("caller:{}", caller.name))
            .map_err(|retry_after| AccessError::RateLimited {
                who: caller.name.clone(),
                retry_after,
            })?;
        Ok(caller)
    }

    /// [`Gatekeeper::admit`] for a gRPC request.
    ///
    /// # Errors
    /// As [`Gatekeeper::admit`].
    pub async fn admit_grpc<T>(&self, request: &tonic::Request<T>) -> Result<Caller, AccessError> {
        self.admit(&Credentials::from_grpc(request)).await
    }

    /// The end user an authenticating proxy names, when this request
    /// names one; a refusal when anyone else names one.
    fn proxied(&self, credentials: &Credentials) -> Option<Result<Caller, AccessError>> {
        let forwarded = credentials.forwarded.as_ref()?;
        let proxy = credentials
            .client_subject
            .as_ref()
            .filter(|s| self.proxy_subjects.contains(*s));
        let Some(proxy) = proxy else {
            let who = credentials
                .client_subject
                .as_ref()
                .map_or("no client certificate".to_owned(), |s| {
                    format!("client certificate {s:?}")
                });
            return Some(Err(AccessError::Unauthenticated(format!(
                "{REMOTE_USER_HEADER}/{REMOTE_GROUP_HEADER} are accepted only from an \
                 authenticating proxy (authenticating_proxies); this request came with {who}"
            ))));
        };
        Some(match forwarded {
            Err(problem) => Err(AccessError::Unauthenticated(format!(
                "authenticating proxy {proxy:?}: {problem}"
            ))),
            Ok(user) => {
                let mut groups = user.groups.clone();
                groups.push("system:authenticated".into());
                Ok(Caller {
                    name: user.name.clone(),
                    uid: String::new(),
                    groups,
                    extra: BTreeMap::new(),
                    proof: Proof::AuthenticatingProxy {
                        subject: proxy.clone(),
                    },
                })
            }
        })
    }

    async fn authenticate(&self, credentials: &Credentials) -> Result<Caller, AccessError> {
        if let Some(proxied) = self.proxied(credentials) {
            return proxied;
        }
        if let Some(subject) = &credentials.client_subject {
            if let Some(user) = self.certificate_users.get(subject) {
                let mut groups = user.groups.clone();
                groups.push("system:authenticated".into());
                return Ok(Caller {
                    name: user.name.clone(),
                    uid: String::new(),
                    groups,
                    extra: BTreeMap::new(),
                    proof: Proof::ClientCertificate {
                        subject: subject.clone(),
                    },
                });
            }
            if credentials.bearer.is_none() {
                return Err(AccessError::Unauthenticated(format!(
                    "client certificate {subject:?} is not mapped to a user \
                     (client_certificate_users)"
                )));
            }
        }
        if let Some(problem) = &credentials.malformed {
            return Err(AccessError::Unauthenticated(problem.clone()));
        }
        let Some(token) = &credentials.bearer else {
            return Err(AccessError::Unauthenticated(format!(
                "no credentials: send `Authorization: Bearer <token>` with a token for \
                 audience {:?}, or a client certificate",
                self.audience
            )));
        };
        let key: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
        let verdict = match self.tokens.get(&key) {
            Some(cached) => cached,
            None => {
                if let Some(peer) = credentials.peer {
                    self.limits
                        .check(&format!("peer:{peer}"))
                        .map_err(|retry_after| AccessError::RateLimited {
                            who: peer.to_string(),
                            retry_after,
                        })?;
                }
                let verdict = match self
                    .reviewer
                    .review_token(token.expose(), &self.audience)
                    .await
                    .map_err(|e| AccessError::Unavailable(e.0))?
                {
                    TokenVerdict::Authenticated(caller) => Ok(caller),
                    TokenVerdict::Refused(reason) => Err(reason),
                };
                self.tokens.insert(key, verdict.clone());
                verdict
            }
        };
        verdict.map_err(|reason| {
            AccessError::Unauthenticated(format!("the bearer token was refused: {reason}"))
        })
    }

    /// Whether `caller` may do `access` (cached).
    ///
    /// # Errors
    /// [`AccessError::Unavailable`] when the cluster cannot be asked.
    pub async fn may(&self, caller: &Caller, access: &Access) -> Result<bool, AccessError> {
        let mut groups = caller.groups.clone();
        groups.sort();
        let key = (caller.name.clone(), groups, access.clone());
        if let Some(allowed) = self.decisions.get(&key) {
            return Ok(allowed);
        }
        let allowed = self
            .reviewer
            .review_access(caller, access)
            .await
            .map_err(|e| AccessError::Unavailable(e.0))?;
        self.decisions.insert(key, allowed);
        Ok(allowed)
    }

    /// Allows `access` or refuses it naming verb, resource and namespace.
    ///
    /// # Errors
    /// [`AccessError::Forbidden`] or [`AccessError::Unavailable`].
    pub async fn authorize(&self, caller: &Caller, access: Access) -> Result<(), AccessError> {
        if self.may(caller, &access).await? {
            Ok(())
        } else {
            Err(AccessError::Forbidden {
                user: caller.name.clone(),
                access,
            })
        }
    }

    /// Where `caller` may `verb` `resource`, among `namespaces` (those a
    /// listing would span): everywhere with a cluster-wide grant, else the
    /// permitted subset.
    ///
    /// # Errors
    /// [`AccessError::ForbiddenIn`] naming the namespaces when none is
    /// permitted (or when `namespaces` is empty and there is no
    /// cluster-wide grant), [`AccessError::Unavailable`].
    pub async fn scope(
        &self,
        caller: &Caller,
        verb: Verb,
        resource: Resource,
        namespaces: impl IntoIterator<Item = String>,
    ) -> Result<Scope, AccessError> {
        if self.may(caller, &Access::new(verb, resource, "")).await? {
            return Ok(Scope::Everywhere);
        }
        let mut allowed = BTreeSet::new();
        let mut refused = Vec::new();
        for namespace in namespaces {
            if self
                .may(caller, &Access::new(verb, resource, namespace.clone()))
                .await?
            {
                allowed.insert(namespace);
            } else {
                refused.push(namespace);
            }
        }
        if allowed.is_empty() {
            return Err(match refused.is_empty() {
                true => AccessError::Forbidden {
                    user: caller.name.clone(),
                    access: Access::new(verb, resource, ""),
                },
                false => AccessError::ForbiddenIn {
                    user: caller.name.clone(),
                    verb,
                    resource,
                    namespaces: refused,
                },
            });
        }
        Ok(Scope::Only(allowed))
    }
}

/// An admitted caller, as an axum extractor: the router's state must give
/// the [`Gatekeeper`] (`FromRef`). A refusal answers 401/429/503 itself.
#[derive(Debug, Clone)]
pub struct Admitted(pub Caller);

impl<S> axum::extract::FromRequestParts<S> for Admitted
where
    Arc<Gatekeeper>: axum::extract::FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AccessError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, AccessError> {
        let gatekeeper = <Arc<Gatekeeper> as axum::extract::FromRef<S>>::from_ref(state);
        gatekeeper
            .admit(&Credentials::from_http(parts))
            .await
            .map(Admitted)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::future::BoxFuture;

    use super::*;
    use crate::reviews::ReviewError;
    use crate::settings::AccessSettings;

    /// Refuses every token, allows nothing, counts the questions.
    #[derive(Default)]
    struct Counting {
        tokens: AtomicUsize,
        accesses: AtomicUsize,
    }

    impl Reviewer for Counting {
        fn review_token<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<TokenVerdict, ReviewError>> {
            self.tokens.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(TokenVerdict::Refused("invalid bearer token".into())) })
        }

        fn review_access<'a>(
            &'a self,
            _: &'a Caller,
            _: &'a Access,
        ) -> BoxFuture<'a, Result<bool, ReviewError>> {
            self.accesses.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(false) })
        }
    }

    fn with_token(token: &str) -> Credentials {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        Credentials::from_parts(&headers, None)
    }

    #[tokio::test]
    async fn a_replayed_bad_token_is_reviewed_once_per_ttl() {
        let reviewer = Arc::new(Counting::default());
        let gate = Gatekeeper::new(reviewer.clone(), &AccessSettings::default());
        for _ in 0..20 {
            let refused = gate.admit(&with_token("bogus")).await.unwrap_err();
            assert!(matches!(refused, AccessError::Unauthenticated(_)));
        }
        assert_eq!(reviewer.tokens.load(Ordering::SeqCst), 1);
    }

    /// A gatekeeper with `settings` plus certificate `CN=ci` mapped to
    /// user `ci`, and the reviewer it asks.
    fn mapping_ci(mut settings: AccessSettings) -> (Arc<Counting>, Gatekeeper) {
        let reviewer = Arc::new(Counting::default());
        settings.certificate_users.insert(
            "CN=ci".into(),
            crate::settings::MappedUser {
                name: "ci".into(),
                groups: vec![],
            },
        );
        let gate = Gatekeeper::new(reviewer.clone(), &settings);
        (reviewer, gate)
    }

    #[tokio::test]
    async fn a_mapped_certificate_is_used_before_any_token() {
        let (reviewer, gate) = mapping_ci(AccessSettings::default());
        let mut credentials = with_token("whatever");
        credentials.client_subject = Some("CN=ci".into());
        let caller = gate.admit(&credentials).await.unwrap();
        assert_eq!(caller.name, "ci");
        assert_eq!(caller.groups, ["system:authenticated"]);
        assert_eq!(reviewer.tokens.load(Ordering::SeqCst), 0);
        let denied = gate
            .authorize(&caller, Access::new(Verb::Get, Resource::Results, "apps"))
            .await;
        assert!(matches!(denied, Err(AccessError::Forbidden { .. })));
        let _ = gate
            .authorize(&caller, Access::new(Verb::Get, Resource::Results, "apps"))
            .await;
        assert_eq!(reviewer.accesses.load(Ordering::SeqCst), 1, "cached");
    }

    fn proxied_as(subject: Option<&str>, user: &str) -> Credentials {
        let mut headers = http::HeaderMap::new();
        headers.insert(REMOTE_USER_HEADER, user.parse().unwrap());
        headers.append(REMOTE_GROUP_HEADER, "auditors".parse().unwrap());
        let mut credentials = Credentials::from_parts(&headers, None);
        credentials.client_subject = subject.map(str::to_owned);
        credentials
    }

    #[tokio::test]
    async fn only_a_configured_proxy_may_name_the_end_user() {
        let mut settings = AccessSettings::default();
        settings.proxy_subjects.insert("CN=proxy".into());
        let (reviewer, gate) = mapping_ci(settings);
        let caller = gate
            .admit(&proxied_as(Some("CN=proxy"), "jane"))
            .await
            .unwrap();
        assert_eq!(caller.name, "jane");
        assert_eq!(caller.groups, ["auditors", "system:authenticated"]);
        assert_eq!(
            caller.proof,
            Proof::AuthenticatingProxy {
                subject: "CN=proxy".into()
            }
        );
        for (subject, needle) in [
            (Some("CN=ci"), "client certificate \"CN=ci\""),
            (None, "no client certificate"),
        ] {
            let Err(AccessError::Unauthenticated(why)) =
                gate.admit(&proxied_as(subject, "jane")).await
            else {
                panic!("{subject:?} may not name a user");
            };
            assert!(why.contains(needle), "{why}");
            assert!(why.contains("authenticating_proxies"), "{why}");
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(REMOTE_USER_HEADER, http::HeaderValue::from_static(" "));
        let mut bad = Credentials::from_parts(&headers, None);
        bad.client_subject = Some("CN=proxy".into());
        assert!(matches!(
            gate.admit(&bad).await,
            Err(AccessError::Unauthenticated(why)) if why.contains("authenticating proxy \"CN=proxy\"")
        ));
        let no_header = Credentials {
            client_subject: Some("CN=proxy".into()),
            ..Default::default()
        };
        assert!(
            matches!(gate.admit(&no_header).await, Err(AccessError::Unauthenticated(why)) if why.contains("not mapped")),
            "without X-Remote-User the proxy is nobody"
        );
        assert_eq!(reviewer.tokens.load(Ordering::SeqCst), 0);
    }
}
