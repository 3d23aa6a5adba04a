//! Which profile inputs a requester may override.
//!
//! Inputs change verdicts: narrowing `search_paths` finds fewer
//! world-writable files. Every statement records the inputs it used, but an
//! operator may also want some (or all) inputs fixed fleet-wide, so that no
//! caller can obtain a better-looking attestation at all. Intake refuses
//! such a submission before queueing, and the worker refuses such an intent
//! again (the bus is not trusted to carry only what intake accepted): one
//! rule, here.

use std::collections::{BTreeMap, BTreeSet};

/// The inputs no requester may override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LockedInputs {
    /// Every input may be overridden.
    #[default]
    None,
    /// No input may be overridden.
    All,
    /// These inputs may not be overridden.
    Names(BTreeSet<String>),
}

impl LockedInputs {
    /// Parses the setting: empty for none, `*` for all, else a
    /// comma-separated list of input names.
    ///
    /// # Errors
    /// A message naming the entry that is not an input name.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Ok(Self::None);
        }
        if spec == "*" {
            return Ok(Self::All);
        }
        let mut names = BTreeSet::new();
        for name in spec.split(',').map(str::trim) {
            let valid = !name.is_empty()
                && name.len() <= 128
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid {
                return Err(format!(
                    "{name:?} is not an input name (letters, digits, '_', '-', '.'; or '*' for all)"
                ));
            }
            names.insert(name.to_owned());
        }
        Ok(Self::Names(names))
    }

    /// The overridden inputs this policy forbids, in name order; empty when
    /// the overrides are allowed.
    pub fn refused<'a>(&self, overrides: &'a BTreeMap<String, String>) -> Vec<&'a str> {
        overrides
            .keys()
            .filter(|name| match self {
                Self::None => false,
                Self::All => true,
                Self::Names(locked) => locked.contains(*name),
            })
            .map(String::as_str)
            .collect()
    }

    /// A sentence naming the refused inputs, for errors and dead letters.
    pub fn explain(refused: &[&str]) -> String {
        format!(
            "overriding {} is forbidden by this fleet's policy (locked inputs)",
            refused
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(names: &[&str]) -> BTreeMap<String, String> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), "x".to_owned()))
            .collect()
    }

    #[test]
    fn the_policy_table() {
        let o = overrides(&["allowed_setuid", "search_paths"]);
        assert!(LockedInputs::parse("").unwrap().refused(&o).is_empty());
        assert_eq!(
            LockedInputs::parse("*").unwrap().refused(&o),
            ["allowed_setuid", "search_paths"]
        );
        assert_eq!(
            LockedInputs::parse(" search_paths , other ")
                .unwrap()
                .refused(&o),
            ["search_paths"]
        );
        assert!(LockedInputs::All.refused(&BTreeMap::new()).is_empty());
        assert!(LockedInputs::parse("a,,b").is_err());
        assert!(
            LockedInputs::parse("../x")
                .unwrap_err()
                .contains("\"../x\"")
        );
        assert_eq!(
            LockedInputs::explain(&["search_paths"]),
            "overriding \"search_paths\" is forbidden by this fleet's policy (locked inputs)"
        );
    }
}
