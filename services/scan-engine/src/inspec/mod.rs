//! The InSpec front end: profiles written in InSpec's Ruby DSL (the
//! language of CINC Auditor profiles), run unchanged and compiled into the
//! same fact plan and result model as the YAML profiles.
//!
//! **Flow.** `parse.rs` turns every `.rb` file into an owned tree
//! (`ast.rs`) with ruby-prism. `load.rs` reads `inspec.yml` (typed inputs,
//! overrides) and runs each control file once in *plan* mode with no facts:
//! the interpreter (`interp/`) evaluates the DSL (`dsl/`), resources
//! (`resources/`) and Ruby's core methods (`core/`), and every fact a
//! resource asks for is recorded, so each control knows its facts before
//! any round trip. Values that depend on a fact not yet gathered are
//! [`value::Value::Unknown`]; conditions on them run both branches, so
//! planning covers every branch. `check.rs` wraps each control as a
//! [`crate::checks::CompiledCheck`]: evaluating it re-runs its file in
//! *run* mode against the gathered facts; a resource whose arguments came
//! from other facts shows up as a missing fact, which `scan::scan` fetches
//! in one more round trip for all controls at once.
//!
//! **Safety.** Profiles are untrusted. The interpreter has no file,
//! network or process access (such constants and functions are refused by
//! name), every step, nesting level and byte is budgeted (`budget.rs`),
//! and regexes run on a linear-time engine (`ruby_regex.rs`).

use crate::profile::{InputOverrides, Profile, ProfileError, ProfileSource};

pub mod ast;
pub mod budget;
pub mod check;
pub mod cmp;
pub mod core;
pub mod dsl;
pub mod filter_table;
pub mod interp;
pub mod library;
pub mod load;
pub mod matchers;
pub mod parse;
pub mod profile_check;
pub mod program;
pub mod resources;
pub mod ruby_regex;
pub mod support;
pub mod value;

/// Whether a profile source is an InSpec profile (Ruby controls or libraries).
pub fn is_inspec_source(source: &ProfileSource) -> bool {
    !source.library_files.is_empty() || source.control_files.iter().any(|(p, _)| p.ends_with(".rb"))
}

/// Loads an InSpec profile into the engine's model.
///
/// # Errors
/// Every problem at once, each with `file:line:col` where it applies.
pub fn load_inspec_profile(
    source: &ProfileSource,
    overrides: &InputOverrides,
) -> Result<Profile, ProfileError> {
    if source
        .control_files
        .iter()
        .any(|(p, _)| !p.ends_with(".rb"))
    {
        return Err(ProfileError {
            problems: vec![crate::profile::ProfileProblem {
                location: None,
                message: "a profile's controls are either all YAML (.yml) or all InSpec Ruby (.rb), not both".into(),
            }],
        });
    }
    load::load(source, overrides, budget::Limits::default()).map(|l| l.profile)
}
