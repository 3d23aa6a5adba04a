//! Registry push webhooks, turned into normalised [`PushEvent`]s.
//!
//! Registries announce pushed images in four incompatible shapes: CNCF
//! Distribution notification envelopes (also used by ACR), Harbor's default
//! payload, Harbor's CloudEvents payload, and GitHub's `package` /
//! `registry_package` events for GHCR. An [`Endpoint`] takes one delivery as
//! the HTTP layer received it ([`WebhookRequest`]: headers plus the raw body
//! bytes), and in this order
//!
//! 1. refuses bodies over the configured size before looking at them,
//! 2. authenticates the delivery (GHCR: `X-Hub-Signature-256` HMAC over the
//!    raw bytes; everyone else: a shared secret header), in constant time,
//! 3. parses and validates every field it uses, and
//! 4. returns a [`WebhookOutcome`]: the manifest pushes worth scanning, and
//!    everything else (blob uploads, pulls, deletes, non-image artifacts)
//!    listed as ignored with a reason rather than treated as an error, because
//!    registries legitimately send those and retry on 4xx.
//!
//! Every failure is a [`WebhookError`] naming the problem and where it is (a
//! JSON path such as `events[2].target.digest`), with
//! [`WebhookError::http_status`] so the edge maps it without a lookup table.
//!
//! What this crate is not: an HTTP server, a JSON schema for every field a
//! registry sends, or the matcher from pushes to running pods. It does no IO,
//! holds no clock and keeps no state between deliveries; cross-delivery
//! dedupe belongs to JetStream's `Nats-Msg-Id` window, keyed by
//! [`PushEvent::event_id`] or by the digest.
//!
//! Main types: [`Endpoint`], [`WebhookRequest`], [`WebhookOutcome`],
//! [`PushEvent`], [`ManifestDigest`], [`WebhookError`], [`WebhookSecret`].

mod distribution;
mod ghcr;
mod harbor;
mod json_path;

pub mod auth;
pub mod digest;
pub mod endpoint;
pub mod error;
pub mod image_name;
pub mod push_event;
pub mod webhook_request;

pub use auth::{SharedSecretAuth, WebhookSecret};
pub use digest::ManifestDigest;
pub use endpoint::{Endpoint, Limits};
pub use error::WebhookError;
pub use push_event::{IgnoreReason, IgnoredEvent, PushEvent, RegistryKind, WebhookOutcome};
pub use webhook_request::WebhookRequest;
