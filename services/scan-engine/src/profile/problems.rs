//! Where a profile is wrong: positions as `file:line:col`, and the list
//! every loading step adds to, so all problems are reported at once.

use std::fmt;

use marked_yaml::Span;

/// A position in a profile file, printed as `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Path of the file relative to the profile directory.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem in a profile, with where it is when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileProblem {
    /// Where the problem is; `None` for whole-profile problems such as a missing file.
    pub location: Option<Location>,
    /// What is wrong, in words an author can act on.
    pub message: String,
}

impl fmt::Display for ProfileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Every problem found while loading a profile.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid profile:\n{}", .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ProfileError {
    /// All problems, in file order.
    pub problems: Vec<ProfileProblem>,
}

/// The problems found so far, and how to place a YAML span in its file.
pub(super) struct Problems {
    /// File names by YAML source id: `inspec.yml`, then the control files
    /// in load order.
    file_ids: Vec<String>,
    list: Vec<ProfileProblem>,
}

impl Problems {
    /// An empty list for a profile whose files have these source ids.
    pub(super) fn new(file_ids: Vec<String>) -> Self {
        Self {
            file_ids,
            list: Vec::new(),
        }
    }

    /// Where `span` starts, if it has a position.
    pub(super) fn locate(&self, span: &Span) -> Option<Location> {
        span.start().map(|m| Location {
            file: self.file_ids.get(m.source()).cloned().unwrap_or_default(),
            line: m.line(),
            column: m.column(),
        })
    }

    /// A problem at `location`.
    pub(super) fn push(&mut self, location: Option<Location>, message: String) {
        self.list.push(ProfileProblem { location, message });
    }

    /// A problem at `span`.
    pub(super) fn at(&mut self, span: &Span, message: String) {
        self.push(self.locate(span), message);
    }

    /// A problem at `span`, or at `fallback` when the span has no position.
    pub(super) fn at_or(&mut self, span: &Span, fallback: &Location, message: String) {
        let location = self.locate(span).unwrap_or_else(|| fallback.clone());
        self.push(Some(location), message);
    }

    /// How many problems there are so far.
    pub(super) fn count(&self) -> usize {
        self.list.len()
    }

    /// Every problem as the loader's error, or `None` when there are none.
    pub(super) fn into_error(self) -> Option<ProfileError> {
        (!self.list.is_empty()).then_some(ProfileError {
            problems: self.list,
        })
    }

    /// The list, for steps that collect problems on their own.
    pub(super) fn list_mut(&mut self) -> &mut Vec<ProfileProblem> {
        &mut self.list
    }
}
