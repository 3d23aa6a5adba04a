//! The domain of a scan request before it reaches the bus.
//!
//! Intake takes requests from three places (the gRPC API, registry pushes,
//! the periodic scheduler) and turns each into intents on the
//! `SCAN_INTENTS` stream. This crate holds every rule that decision needs,
//! as pure functions and values:
//!
//! - [`submission`]: validation of `Submit`/`SubmitBatch` requests, with
//!   proto field paths for `INVALID_ARGUMENT` ([`InvalidArgument`]);
//! - [`target`], [`k8s_names`], [`label_selector`]: `k8s://ns/pod/container`
//!   URIs, Kubernetes name rules, label selector parsing and matching;
//! - [`image_target`]: `oci://registry/repository@sha256:…` image targets;
//! - [`scan_id`]: ULID scan ids from an injected clock and randomness;
//! - [`priority`]: trigger to queue class (API and push high, schedule low);
//! - [`subject`]: NATS subject layout and token safety;
//! - [`dedupe`]: the flood rule's key and `Nats-Msg-Id`s, and why both;
//! - [`routing`]: an intent's subject and message id, for every trigger;
//! - [`cron`], [`schedule`]: schedules, jitter and a poll-driven scheduler
//!   with an injected [`Clock`] and seed.
//!
//! - [`intent`]: the scan intent itself, the one type intake builds and
//!   the worker receives; [`intent_wire`] is the only conversion to and
//!   from `scanfleet.v1.ScanIntent`, re-validating every field on the way in.
//!
//! What it is not: it does no IO and holds no NATS or Kubernetes client.
//! Only [`intent_wire`] knows the wire types in `scanfleet-contracts`; the
//! gRPC edge converts requests into [`Submission`] field for field. Nothing here sleeps or reads the system clock except
//! [`SystemClock`], which callers inject.

pub mod cron;
pub mod dedupe;
pub mod image_digest;
pub mod image_target;
pub mod input_policy;
pub mod intent;
pub mod intent_wire;
pub mod k8s_names;
pub mod label_selector;
pub mod priority;
pub mod profile;
pub mod routing;
pub mod scan_id;
pub mod schedule;
pub mod subject;
pub mod submission;
pub mod target;

pub use cron::CronExpr;
pub use dedupe::{DedupeKey, Occasion};
pub use image_digest::{ImageDigest, ImageIdentity};
pub use image_target::{ImageTarget, ImageTargetError};
pub use input_policy::LockedInputs;
pub use intent::{Approach, ImageSpec, Intent, IntentTarget, ThresholdName, ThresholdRef, Trigger};
pub use k8s_names::{ClusterName, ContainerName, NamespaceName, PodName};
pub use label_selector::{LabelSelector, Requirement, SelectorLimits};
pub use priority::{Priority, TriggerKind};
pub use profile::{ProfileName, ProfilePin, ProfileRef};
pub use routing::{Routing, route};
pub use scan_id::{RandomSource, ScanId, SplitMix64};
pub use schedule::{
    Cadence, Clock, Fire, JitterSeed, ManualClock, Schedule, Scheduler, SystemClock,
};
pub use subject::{
    ResultPlace, SubjectTail, SubjectToken, intent_subject, result_place, result_subject,
};
pub use submission::{FieldViolation, IntakeLimits, InvalidArgument, Submission, validate_batch};
pub use target::{ContainerRef, Target};
