//! The result model every check kind produces and HDF renders: one status
//! and one readable sentence per expectation.

/// Status of one result, as HDF spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Expectation met.
    Passed,
    /// Expectation not met.
    Failed,
    /// Not evaluated (the reason is in the message).
    Skipped,
    /// Could not be evaluated because gathering failed.
    Error,
}

impl Status {
    /// HDF spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Error => "error",
        }
    }
}

/// One evaluated expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Outcome.
    pub status: Status,
    /// What was tested, as a sentence.
    pub code_desc: String,
    /// Why it failed, was skipped or errored.
    pub message: Option<String>,
}

impl CheckResult {
    /// A result with an explicit status (for outcomes a profile chooses,
    /// such as `key_missing: skipped`).
    pub fn new(status: Status, code_desc: impl Into<String>, message: Option<String>) -> Self {
        Self {
            status,
            code_desc: code_desc.into(),
            message,
        }
    }

    /// The expectation was met.
    pub fn pass(code_desc: impl Into<String>) -> Self {
        Self::new(Status::Passed, code_desc, None)
    }

    /// The expectation was not met, for the reason given.
    pub fn fail(code_desc: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(Status::Failed, code_desc, Some(why.into()))
    }

    /// Passed when `ok`, else failed with `why()`; the reason is only
    /// formatted when it is shown.
    pub fn judge(ok: bool, code_desc: impl Into<String>, why: impl FnOnce() -> String) -> Self {
        if ok {
            Self::pass(code_desc)
        } else {
            Self::fail(code_desc, why())
        }
    }

    /// The facts needed to decide were unavailable.
    pub fn error(code_desc: impl Into<String>, msg: impl Into<String>) -> Self {
        Self::new(Status::Error, code_desc, Some(msg.into()))
    }

    /// Deliberately not evaluated on this target.
    pub fn skip(code_desc: impl Into<String>, msg: impl Into<String>) -> Self {
        Self::new(Status::Skipped, code_desc, Some(msg.into()))
    }
}

/// Everything one evaluation of a check produced: its results, the facts
/// it found it needs only after seeing the first round trip's facts, and
/// a control impact it set while running (InSpec's `impact` inside a
/// condition, `only_if(impact:)`, `only_applicable_if`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckOutcome {
    /// Results (InSpec controls may legitimately have none).
    pub results: Vec<CheckResult>,
    /// Facts that were not gathered; non-empty means the results are not final.
    pub missing: std::collections::BTreeSet<crate::facts::FactRequest>,
    /// Calls whose arguments depended on missing facts, with `file:line`.
    pub pending_calls: Vec<String>,
    /// Impact at the end of evaluation, when it differs from the profile's.
    pub impact: Option<f64>,
    /// No results is a legitimate answer (an InSpec control without tests).
    pub no_results_ok: bool,
}

impl CheckOutcome {
    /// The outcome of a check that only produces results.
    pub fn of(results: Vec<CheckResult>) -> Self {
        Self {
            results,
            ..Self::default()
        }
    }
}
