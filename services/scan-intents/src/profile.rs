//! Which compliance profile a scan evaluates, pinned so that "the same
//! scan" is well defined for dedupe and results are reproducible.

use std::fmt;

use crate::image_digest::ImageDigest;

/// Longest profile name or version string.
pub const MAX_PROFILE_FIELD_LEN: usize = 128;

/// A profile name: letters, digits, `.`, `_`, `-`, starting with a letter
/// or digit (profile names become log fields and file names downstream).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProfileName(String);

/// How a profile is pinned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProfilePin {
    /// A released version, e.g. `2.3.1`.
    Version(String),
    /// The sha256 of the profile content.
    Digest(ImageDigest),
}

/// A pinned profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProfileRef {
    /// Which profile.
    pub name: ProfileName,
    /// Which edition of it.
    pub pin: ProfilePin,
}

/// Why a profile field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Empty.
    #[error("must not be empty")]
    Empty,
    /// Too long.
    #[error("must be no more than {MAX_PROFILE_FIELD_LEN} characters")]
    TooLong,
    /// Bad name characters.
    #[error("must consist of letters, digits, '.', '_' or '-', starting with a letter or digit")]
    NameSyntax,
    /// Bad version characters.
    #[error(
        "must consist of letters, digits, '.', '_', '-' or '+', starting with a letter or digit, without '..'"
    )]
    VersionSyntax,
}

fn bounded(s: &str) -> Result<(), ProfileError> {
    if s.is_empty() {
        return Err(ProfileError::Empty);
    }
    if s.len() > MAX_PROFILE_FIELD_LEN {
        return Err(ProfileError::TooLong);
    }
    Ok(())
}

impl ProfileName {
    /// Validates `s`.
    pub fn new(s: &str) -> Result<Self, ProfileError> {
        bounded(s)?;
        let b = s.as_bytes();
        if !b[0].is_ascii_alphanumeric()
            || !b
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        {
            return Err(ProfileError::NameSyntax);
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ProfilePin {
    /// Validates a version string. Versions name directories and files in
    /// profile stores, so they are held to a plain-name rule (SemVer with
    /// build metadata fits): never a path such as `../../1`.
    pub fn version(s: &str) -> Result<Self, ProfileError> {
        bounded(s)?;
        let b = s.as_bytes();
        if !b[0].is_ascii_alphanumeric()
            || s.contains("..")
            || !b
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'+'))
        {
            return Err(ProfileError::VersionSyntax);
        }
        Ok(Self::Version(s.to_owned()))
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ProfileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pin {
            ProfilePin::Version(v) => write!(f, "{}@{v}", self.name.0),
            ProfilePin::Digest(d) => write!(f, "{}@{d}", self.name.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_field_table() {
        let names = [
            ("cis-k8s", Ok(())),
            ("RHEL9_stig.v2", Ok(())),
            ("", Err(ProfileError::Empty)),
            ("-x", Err(ProfileError::NameSyntax)),
            ("a b", Err(ProfileError::NameSyntax)),
            ("a/b", Err(ProfileError::NameSyntax)),
        ];
        for (s, want) in names {
            assert_eq!(ProfileName::new(s).map(|_| ()), want, "{s:?}");
        }
        assert_eq!(
            ProfileName::new(&"a".repeat(129)).unwrap_err(),
            ProfileError::TooLong
        );
        let versions = [
            ("2.3.1", Ok(())),
            ("v1+build.7", Ok(())),
            ("", Err(ProfileError::Empty)),
            ("1 2", Err(ProfileError::VersionSyntax)),
            ("1\n", Err(ProfileError::VersionSyntax)),
            ("../../1", Err(ProfileError::VersionSyntax)),
            ("1/2", Err(ProfileError::VersionSyntax)),
            ("1..2", Err(ProfileError::VersionSyntax)),
            (".1", Err(ProfileError::VersionSyntax)),
        ];
        for (s, want) in versions {
            assert_eq!(ProfilePin::version(s).map(|_| ()), want, "{s:?}");
        }
        let p = ProfileRef {
            name: ProfileName::new("cis").unwrap(),
            pin: ProfilePin::version("1.0").unwrap(),
        };
        assert_eq!(p.to_string(), "cis@1.0");
    }
}
