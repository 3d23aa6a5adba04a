//! Why a call was refused at the edge, and how each protocol says it.
//!
//! One owner for the words: gRPC and HTTP callers read the same message.
//! No or bad credentials are `UNAUTHENTICATED` / 401; a missing permission
//! is `PERMISSION_DENIED` / 403 naming the verb, the resource and the
//! namespace, in kube-apiserver's phrasing so that cluster admins know
//! which Role to write; too many requests are `RESOURCE_EXHAUSTED` / 429
//! with `retry-after`; a cluster that cannot be asked is `UNAVAILABLE` /
//! 503 (never a silent allow).

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::reviews::{Access, GROUP, Resource, Verb};

/// Most namespaces a refusal lists by name.
const NAMED_NAMESPACES: usize = 10;

/// A refused call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccessError {
    /// No credentials, or credentials the cluster does not accept.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Authenticated, but RBAC does not allow it.
    #[error("{}", forbidden(user, access.verb, access.resource, &scope(&access.namespace)))]
    Forbidden {
        /// Who asked.
        user: String,
        /// What for.
        access: Access,
    },
    /// A call spanning namespaces, refused in these.
    #[error("{}", forbidden(user, *verb, *resource, &in_namespaces(namespaces)))]
    ForbiddenIn {
        /// Who asked.
        user: String,
        /// The verb.
        verb: Verb,
        /// The resource.
        resource: Resource,
        /// Where it is not allowed.
        namespaces: Vec<String>,
    },
    /// Too many requests from this caller.
    #[error("too many requests from {who}; retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// The caller (or peer address).
        who: String,
        /// How long to wait.
        retry_after: Duration,
    },
    /// The cluster could not be asked.
    #[error("cannot check credentials or permissions now: {0}")]
    Unavailable(String),
}

fn scope(namespace: &str) -> String {
    if namespace.is_empty() {
        "at the cluster scope".into()
    } else {
        format!("in the namespace {namespace:?}")
    }
}

fn in_namespaces(namespaces: &[String]) -> String {
    let mut named: Vec<String> = namespaces
        .iter()
        .take(NAMED_NAMESPACES)
        .map(|n| format!("{n:?}"))
        .collect();
    if namespaces.len() > NAMED_NAMESPACES {
        named.push(format!("and {} more", namespaces.len() - NAMED_NAMESPACES));
    }
    format!("in the namespaces {}", named.join(", "))
}

fn forbidden(user: &str, verb: Verb, resource: Resource, place: &str) -> String {
    format!(
        "{resource}.{GROUP} is forbidden: User {user:?} cannot {verb} resource {resource:?} \
         in API group {GROUP:?} {place}",
        resource = resource.as_str(),
        verb = verb.as_str(),
    )
}

impl AccessError {
    /// The gRPC status.
    pub fn to_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            AccessError::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            AccessError::Forbidden { .. } | AccessError::ForbiddenIn { .. } => {
                tonic::Status::permission_denied(message)
            }
            AccessError::RateLimited { retry_after, .. } => {
                let mut status = tonic::Status::resource_exhausted(message);
                if let Ok(v) = retry_after.as_secs().to_string().parse() {
                    status.metadata_mut().insert("retry-after", v);
                }
                status
            }
            AccessError::Unavailable(_) => tonic::Status::unavailable(message),
        }
    }

    /// The HTTP status code.
    pub fn http_status(&self) -> StatusCode {
        match self {
            AccessError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AccessError::Forbidden { .. } | AccessError::ForbiddenIn { .. } => {
                StatusCode::FORBIDDEN
            }
            AccessError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AccessError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<AccessError> for tonic::Status {
    fn from(e: AccessError) -> Self {
        e.to_status()
    }
}

/// `{"error": "…"}`, as every JSON error of the services, with
/// `WWW-Authenticate` on 401 and `Retry-After` on 429.
impl IntoResponse for AccessError {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.to_string() }));
        let mut response = (self.http_status(), body).into_response();
        let headers = response.headers_mut();
        match &self {
            AccessError::Unauthenticated(_) => {
                headers.insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer realm=\"scanfleet\""),
                );
            }
            AccessError::RateLimited { retry_after, .. } => {
                headers.insert(http::header::RETRY_AFTER, retry_after.as_secs().into());
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_verb_resource_and_namespace() {
        let e = AccessError::Forbidden {
            user: "system:serviceaccount:apps:submitter".into(),
            access: Access::new(Verb::Create, Resource::Scans, "kube-system"),
        };
        assert_eq!(
            e.to_string(),
            "scans.scanfleet.dev is forbidden: User \"system:serviceaccount:apps:submitter\" \
             cannot create resource \"scans\" in API group \"scanfleet.dev\" in the namespace \
             \"kube-system\""
        );
        assert_eq!(e.to_status().code(), tonic::Code::PermissionDenied);
        let e = AccessError::ForbiddenIn {
            user: "u".into(),
            verb: Verb::List,
            resource: Resource::Results,
            namespaces: (0..12).map(|i| format!("ns{i}")).collect(),
        };
        let text = e.to_string();
        assert!(text.ends_with("in the namespaces \"ns0\", \"ns1\", \"ns2\", \"ns3\", \"ns4\", \"ns5\", \"ns6\", \"ns7\", \"ns8\", \"ns9\", and 2 more"), "{text}");
    }

    #[test]
    fn each_refusal_has_its_code_and_headers() {
        let limited = AccessError::RateLimited {
            who: "u".into(),
            retry_after: Duration::from_secs(2),
        };
        let status = limited.to_status();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "2");
        let response = limited.into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "2");
        let response = AccessError::Unauthenticated("no credentials".into()).into_response();
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        assert_eq!(
            AccessError::Unavailable("down".into()).to_status().code(),
            tonic::Code::Unavailable
        );
    }
}
