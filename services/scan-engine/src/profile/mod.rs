//! Profiles: the validated, compiled form of a compliance profile, and the
//! YAML front end that loads one from an `inspec.yml` + `controls/*.yml`
//! directory.
//!
//! The model here ([`Profile`], [`Control`], [`Metadata`], [`Severity`]) is
//! what planning, evaluation and HDF read; it does not depend on the YAML
//! front end, so a second front end (InSpec's Ruby DSL) can produce it too.
//!
//! The loader takes file *contents* (see [`ProfileSource`]) so this module
//! stays free of IO; `adapters::profile_dir` reads a directory into a source.
//! Every problem is reported with `file:line:col` and all problems found are
//! returned at once, so an author fixes a profile in one pass. Its steps
//! live in `load.rs` (files, metadata, hashing), `controls.rs` (one control's
//! id, impact, tags and checks) and `inputs.rs` (declared inputs, overrides
//! and `{{ name }}` substitution).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::checks::Check;

mod controls;
mod inputs;
mod load;
mod problems;

pub use load::load_profile;
pub use problems::{Location, ProfileError, ProfileProblem};

/// The raw text of a profile directory: what the loader consumes.
#[derive(Debug, Clone, Default)]
pub struct ProfileSource {
    /// Text of `inspec.yml`.
    pub metadata: String,
    /// `(relative path, text)` of every `controls/*.yml` (or, for an InSpec
    /// profile, `controls/*.rb`), in any order.
    pub control_files: Vec<(String, String)>,
    /// `(relative path, text)` of every `libraries/*.rb` (InSpec profiles only).
    pub library_files: Vec<(String, String)>,
}

/// Scan-time overrides of profile inputs (`--input name=value`).
pub type InputOverrides = BTreeMap<String, String>;

/// Profile metadata, as carried into the HDF `profiles[0]` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Unique profile name.
    pub name: String,
    /// Human title.
    #[serde(default)]
    pub title: Option<String>,
    /// Profile version.
    #[serde(default)]
    pub version: Option<String>,
    /// Maintainer.
    #[serde(default)]
    pub maintainer: Option<String>,
    /// One-paragraph summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// License identifier.
    #[serde(default)]
    pub license: Option<String>,
    /// Copyright holder.
    #[serde(default)]
    pub copyright: Option<String>,
    /// Copyright contact.
    #[serde(default)]
    pub copyright_email: Option<String>,
    /// Supported platforms (`platform`, `platform-family`, `platform-name`, `release`).
    #[serde(default)]
    pub supports: Vec<BTreeMap<String, String>>,
    /// Inputs the controls may reference as `{{ name }}`.
    #[serde(default, skip_deserializing)]
    pub inputs: Vec<Input>,
}

/// A profile input and its effective value.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// Name referenced as `{{ name }}` inside control files.
    pub name: String,
    /// Human description.
    pub description: Option<String>,
    /// Effective value: the default, or the scan-time override.
    pub value: InputValue,
}

/// Input values: strings or lists of strings for YAML profiles; any typed
/// value (numbers, booleans, hashes) for InSpec profiles.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// A single value.
    Scalar(String),
    /// A list; overrides give it as comma-separated text.
    List(Vec<String>),
    /// A typed value, as InSpec's `inspec.yml` declares it.
    Typed(serde_json::Value),
}

/// HDF severity bands, lowercase as SAF compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// impact < 0.1
    None,
    /// 0.1 <= impact < 0.4
    Low,
    /// 0.4 <= impact < 0.7
    Medium,
    /// 0.7 <= impact < 0.9
    High,
    /// impact >= 0.9
    Critical,
}

impl Severity {
    /// The band inspecjs derives from an impact (`compute_severity`).
    pub fn from_impact(impact: f64) -> Self {
        if impact < 0.1 {
            Self::None
        } else if impact < 0.4 {
            Self::Low
        } else if impact < 0.7 {
            Self::Medium
        } else if impact < 0.9 {
            Self::High
        } else {
            Self::Critical
        }
    }

    /// Lowercase name used in HDF tags and SAF threshold keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses a lowercase severity name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }
}

/// A validated control, ready to plan and evaluate.
#[derive(Debug, Clone)]
pub struct Control {
    /// Unique id across the profile.
    pub id: String,
    /// Title.
    pub title: String,
    /// Rationale.
    pub desc: String,
    /// Labelled descriptions (`check`, `fix`, ...).
    pub descriptions: BTreeMap<String, String>,
    /// 0..=1.
    pub impact: f64,
    /// Derived from impact, or the explicit (consistent) tag.
    pub severity: Severity,
    /// Free-form tags; `severity` is always present and lowercase.
    pub tags: BTreeMap<String, serde_json::Value>,
    /// `{url|ref|uri: ...}` objects.
    pub refs: Vec<BTreeMap<String, String>>,
    /// Where the control is defined.
    pub source: Location,
    /// The control's source text (HDF `code`); empty for YAML controls.
    pub code: String,
    /// The checks; each yields at least one result.
    pub checks: Vec<Check>,
}

/// A loaded profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Metadata and effective inputs.
    pub metadata: Metadata,
    /// Controls in file order (files sorted by name).
    pub controls: Vec<Control>,
    /// sha256 over the profile's files, so a result names exactly the rules used.
    pub sha256: String,
    /// What the scan declares about its target (a scan option, set after
    /// loading like inputs): InSpec's `virtualization` reads it.
    pub declared: crate::facts::Declarations,
}
