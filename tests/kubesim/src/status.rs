//! Upstream `meta/v1 Status` errors.
//!
//! Every failure a handler can produce is an [`ApiError`], rendered with the
//! exact message shapes of apimachinery's `pkg/api/errors` so clients that
//! match on reason, code or message behave as against a real API server.

use serde_json::{Value, json};

/// One field error of a 422 `Invalid` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `FieldValueInvalid`, `FieldValueForbidden`, `FieldValueNotFound`, ...
    pub cause: &'static str,
    /// Field path, e.g. `spec.expirationSeconds`.
    pub field: String,
    /// Full rendered message, e.g. `Invalid value: 60: may not ...`.
    pub message: String,
}

impl FieldError {
    /// `Invalid value: <value>: <detail>`.
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        Self {
            cause: "FieldValueInvalid",
            field: field.to_string(),
            message: format!("Invalid value: {value}: {detail}"),
        }
    }
    /// `Forbidden: <detail>`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self {
            cause: "FieldValueForbidden",
            field: field.to_string(),
            message: format!("Forbidden: {detail}"),
        }
    }
    /// `Required value[: <detail>]`.
    pub fn required(field: &str, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Self {
            cause: "FieldValueRequired",
            field: field.to_string(),
            message,
        }
    }
    /// `Not found: "<value>"`.
    pub fn not_found(field: &str, value: &str) -> Self {
        Self {
            cause: "FieldValueNotFound",
            field: field.to_string(),
            message: format!("Not found: \"{value}\""),
        }
    }
    /// `Duplicate value: "<value>"`.
    pub fn duplicate(field: &str, value: &str) -> Self {
        Self {
            cause: "FieldValueDuplicate",
            field: field.to_string(),
            message: format!("Duplicate value: \"{value}\""),
        }
    }
}

/// An error response: HTTP code plus the Status body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// The Status reason (`NotFound`, `Forbidden`, ...).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details` object, when upstream sends one.
    pub details: Option<Value>,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
}

/// GroupResource as upstream prints it: `pods`, `roles.rbac.authorization.k8s.io`.
pub fn group_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn details(name: &str, group: &str, kind: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        d.insert("kind".into(), json!(kind));
    }
    Value::Object(d)
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Option<Value>) -> Self {
        Self {
            code,
            reason,
            message,
            details,
            retry_after: None,
        }
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    /// 401 `Unauthorized`, the body the authentication filter writes.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized".into(), None)
    }

    /// 403 `Forbidden` for a resource.
    pub fn forbidden(group: &str, resource: &str, name: &str, err: &str) -> Self {
        let gr = group_resource(group, resource);
        let message = if name.is_empty() {
            format!("{gr} is forbidden: {err}")
        } else {
            format!("{gr} \"{name}\" is forbidden: {err}")
        };
        Self::new(
            403,
            "Forbidden",
            message,
            Some(details(name, group, resource)),
        )
    }

    /// 403 for a non-resource path (no details, as upstream).
    pub fn forbidden_path(err: &str) -> Self {
        Self::new(403, "Forbidden", format!("forbidden: {err}"), None)
    }

    /// 404 `NotFound`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let gr = group_resource(group, resource);
        Self::new(
            404,
            "NotFound",
            format!("{gr} \"{name}\" not found"),
            Some(details(name, group, resource)),
        )
    }

    /// 404 for a path that names no API.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Some(json!({})),
        )
    }

    /// 405 for a verb a resource does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message.into(), Some(json!({})))
    }

    /// 409 `AlreadyExists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let gr = group_resource(group, resource);
        Self::new(
            409,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
            Some(details(name, group, resource)),
        )
    }

    /// 409 `Conflict`.
    pub fn conflict(group: &str, resource: &str, name: &str, err: &str) -> Self {
        let gr = group_resource(group, resource);
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {gr} \"{name}\": {err}"),
            Some(details(name, group, resource)),
        )
    }

    /// 409 for a stale resourceVersion on update.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 410 `Expired`.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message.into(), None)
    }

    /// 413 for a body over the write limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
            None,
        )
    }

    /// 415 for a body media type this server does not decode.
    pub fn unsupported_media(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json (got {ct})"
            ),
            None,
        )
    }

    /// 422 `Invalid`; `kind` is the object Kind (not the plural).
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let rendered: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        let joined = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let gk = group_resource(group, kind);
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.cause, "message": e.message, "field": e.field}))
            .collect();
        let mut d = details(name, group, kind);
        d["causes"] = Value::Array(causes);
        Self::new(
            422,
            "Invalid",
            format!("{gk} \"{name}\" is invalid: {joined}"),
            Some(d),
        )
    }

    /// 429 `TooManyRequests` with `Retry-After`.
    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.".into(),
            Some(json!({"retryAfterSeconds": retry_after})),
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 500 `InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        let m = message.into();
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {m}"),
            Some(json!({"causes": [{"message": m}]})),
        )
    }

    /// The Status body.
    pub fn body(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}
