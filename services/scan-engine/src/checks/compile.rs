//! Compiling a check's YAML form: the field validators every kind shares,
//! so a bad regex, enum value, mode or path reads the same in every check.
//!
//! Errors carry the YAML span of the offending value; the profile loader
//! turns it into `file:line:col`.

use marked_yaml::{Span, Spanned};
use regex::Regex;

use super::Check;

/// Where a check is wrong, and why.
pub type CompileError = (Span, String);

/// The YAML form of one check kind: deserialized from the value under its
/// key, then compiled into a [`Check`].
pub trait RawForm {
    /// Validates the fields (regexes, enums, paths) and compiles the check.
    ///
    /// # Errors
    /// The span and message of the first problem in this check.
    fn compile(&self) -> Result<Check, CompileError>;
}

/// A multi-line regex (`^`/`$` match at line breaks, as authors expect for
/// file contents and command output).
pub fn regex(s: &Spanned<String>) -> Result<Regex, CompileError> {
    Regex::new(&format!("(?m){}", s.as_str()))
        .map_err(|e| (*s.span(), format!("invalid regex `{}`: {e}", s.as_str())))
}

/// `s` when it is one of `allowed`, else an error listing them.
pub fn one_of<'a>(
    s: &'a Spanned<String>,
    allowed: &[&str],
    what: &str,
) -> Result<&'a str, CompileError> {
    if allowed.contains(&s.as_str()) {
        Ok(s.as_str())
    } else {
        Err((
            *s.span(),
            format!(
                "unknown {what} `{}`; expected one of: {}",
                s.as_str(),
                allowed.join(", ")
            ),
        ))
    }
}

/// An octal permission mode such as `0644` (or `0o644`), at most `07777`.
pub fn octal(m: &Spanned<String>) -> Result<u32, CompileError> {
    u32::from_str_radix(m.as_str().trim_start_matches("0o"), 8)
        .ok()
        .filter(|v| *v <= 0o7777)
        .ok_or_else(|| {
            (
                *m.span(),
                format!("`{}` is not an octal mode like 0644", m.as_str()),
            )
        })
}

/// A path inside the target: absolute, no `..`, no NUL, so a profile
/// cannot point a check outside the scanned root.
pub fn abs_path(s: &str, span: &Span) -> Result<String, CompileError> {
    if !s.starts_with('/') || s.contains('\0') || s.split('/').any(|c| c == "..") {
        return Err((
            *span,
            format!("path `{s}` must be absolute, without `..` or NUL"),
        ));
    }
    Ok(s.to_string())
}
