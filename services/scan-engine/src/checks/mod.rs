//! Checks: what a profile asks of a target, compiled so that planning and
//! evaluation never touch the target.
//!
//! A check never does IO: [`Check::plan`] names the facts it needs and
//! [`Check::evaluate`] reads them, so every target shares one semantics.
//!
//! Layout: each check kind is one module (`file`, `search`, `users`, ...)
//! holding its YAML form, its compile step, the facts it plans and its
//! evaluation, with its own case table. The shared pieces are
//! [`check_result`] (the result model), [`compile`] (field validators and
//! the [`RawForm`] trait), [`matchers`] (how values and offenders are
//! worded) and [`system_facts`] (where system files live and how their facts
//! read back).
//!
//! Adding a check kind: write its module, implementing [`RawForm`] for its
//! YAML form and [`CompiledCheck`] for its compiled form, and add one line
//! to the `check_kinds!` table below.
//!
//! A second profile front end (InSpec's Ruby DSL) compiles into the same
//! [`Check`]: its own compiled kinds implement [`CompiledCheck`] and read
//! facts through [`system_facts`], so the fact plan, both targets, HDF and
//! thresholds stay unchanged.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::facts::{FactRequest, Facts};

pub mod check_result;
pub mod command;
pub mod compile;
pub mod config;
pub mod environment;
pub mod file;
pub mod groups;
pub mod matchers;
pub mod os_release;
pub mod packages;
pub mod process;
pub mod search;
pub mod system_facts;
pub mod users;

#[cfg(test)]
mod test_support;

pub use check_result::{CheckOutcome, CheckResult, Status};
pub use compile::{CompileError, RawForm};
pub use system_facts::{MAIN_ENVIRON, os_release, os_release_requests};

/// A compiled check of any kind and from any profile front end.
pub trait CompiledCheck: fmt::Debug + Send + Sync {
    /// Adds the facts this check needs to `out`.
    fn plan(&self, out: &mut BTreeSet<FactRequest>);

    /// Evaluates the check against gathered facts.
    fn evaluate(&self, facts: &Facts) -> Vec<CheckResult>;

    /// Evaluates and reports what else the evaluation found: facts needed
    /// for a second round trip and a run-time impact. YAML kinds plan
    /// everything up front and keep this default.
    fn evaluate_outcome(&self, facts: &Facts) -> CheckOutcome {
        CheckOutcome::of(self.evaluate(facts))
    }
}

/// A compiled check: shared, immutable, cheap to clone with its profile.
#[derive(Debug, Clone)]
pub struct Check(Arc<dyn CompiledCheck>);

impl Check {
    /// Wraps a compiled check of any kind.
    pub fn new(check: impl CompiledCheck + 'static) -> Self {
        Self(Arc::new(check))
    }

    /// Adds the facts this check needs to `out`.
    pub fn plan(&self, out: &mut BTreeSet<FactRequest>) {
        self.0.plan(out);
    }

    /// Evaluates with everything the check reports (see
    /// [`CompiledCheck::evaluate_outcome`]).
    pub fn outcome(&self, facts: &Facts) -> CheckOutcome {
        let mut o = self.0.evaluate_outcome(facts);
        if o.results.is_empty() && !o.no_results_ok && o.missing.is_empty() {
            o.results.push(CheckResult::error(
                "check",
                "internal: check produced no result",
            ));
        }
        o
    }

    /// Evaluates the check against gathered facts. Always yields at least one
    /// result, so a control can never pass by saying nothing.
    pub fn evaluate(&self, facts: &Facts) -> Vec<CheckResult> {
        let out = self.0.evaluate(facts);
        if out.is_empty() {
            vec![CheckResult::error(
                "check",
                "internal: check produced no result",
            )]
        } else {
            out
        }
    }
}

/// Declares the YAML check kinds: the [`RawCheck`] enum serde reads, the
/// [`CHECK_TYPES`] the loader names in errors, and compile dispatch.
macro_rules! check_kinds {
    ($($(#[$doc:meta])* $key:literal => $variant:ident($raw:ty),)+) => {
        /// Names of the check types, as YAML keys.
        pub const CHECK_TYPES: [&str; [$($key),+].len()] = [$($key),+];

        /// A check as written in YAML: exactly one key naming its type.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub enum RawCheck {
            $($(#[$doc])* #[serde(rename = $key)] $variant($raw),)+
        }

        impl RawCheck {
            /// Validates and compiles a check (regexes, enums, paths).
            ///
            /// # Errors
            /// The span and message of the first problem in this check.
            pub fn compile(&self) -> Result<Check, CompileError> {
                match self {
                    $(Self::$variant(raw) => raw.compile(),)+
                }
            }
        }
    };
}

check_kinds! {
    /// File properties.
    "file" => File(file::RawFile),
    /// Capped searches under paths.
    "search" => Search(search::RawSearch),
    /// passwd/shadow rules.
    "users" => Users(users::RawUsers),
    /// group rules.
    "groups" => Groups(groups::RawGroups),
    /// Installed packages.
    "packages" => Packages(packages::RawPackages),
    /// os-release keys.
    "os_release" => OsRelease(os_release::RawOsRelease),
    /// Processes from /proc.
    "process" => Process(process::RawProcess),
    /// The main process's environment.
    "environment" => Environment(environment::RawEnvironment),
    /// Key/value config files.
    "config" => Config(config::RawConfig),
    /// A shell command.
    "command" => Command(command::RawCommand),
}
