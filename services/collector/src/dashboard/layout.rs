//! The frame every dashboard page shares, its stylesheet and the headers
//! that keep it offline-only and unframeable.
//!
//! Why these headers: the pages show text written by scanners and
//! containers. Escaping (maud escapes every interpolation) is the first
//! defence; a CSP that allows no script at all, no inline style and no
//! other origin is the second, so even a missed escape cannot run code or
//! send data anywhere.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The Content-Security-Policy of every `/ui` response.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The one stylesheet, served at `/ui/style.css`.
pub const STYLESHEET: &str = include_str!("style.css");

/// Adds the security headers to a `/ui` response.
pub fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A whole page: `who` is the signed-in user, when there is one.
pub fn frame(title: &str, who: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · scanfleet" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                header class="top" {
                    a class="brand" href="/ui" { "scanfleet posture" }
                    @if let Some(who) = who {
                        span class="who" { "Signed in as " strong { (who) } }
                        form method="post" action="/ui/logout" class="inline" {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// An HTML page with status `code`.
pub fn respond(code: http::StatusCode, markup: Markup) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page explaining a refusal or failure.
pub fn error_page(code: http::StatusCode, message: &str) -> Response {
    let body = html! {
        p class="error" role="alert" { (message) }
        p { a href="/ui" { "Back to the overview" } " · " a href="/ui/login" { "Sign in" } }
    };
    respond(
        code,
        frame(code.canonical_reason().unwrap_or("Error"), None, body),
    )
}

/// "3 h ago", "2 d ago": how old a time is, for freshness columns.
pub fn age(now_ms: i64, at_ms: i64) -> String {
    let s = (now_ms - at_ms).max(0) / 1000;
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// RFC 3339 (UTC) of a Unix-ms time, as the signed statements write it.
pub fn timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
