//! How every check kind words what it matched: patterns as the author wrote
//! them, target bytes made printable, and long offender lists summarised, so
//! `code_desc` and messages read alike across kinds.

use std::collections::BTreeSet;

use regex::Regex;

/// How many offending items a failure message lists before summarising.
const MAX_LISTED: usize = 10;

/// A pattern as the author wrote it (without the `(?m)` the compiler adds).
pub fn pattern(re: &Regex) -> &str {
    re.as_str().trim_start_matches("(?m)")
}

/// Target bytes as printable text: invalid UTF-8 is replaced and control
/// characters become `?`, so a hostile name cannot forge report lines.
pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The first few items, comma-separated, then how many more there are.
pub fn list_paths(paths: &[String]) -> String {
    let mut s = paths
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > MAX_LISTED {
        s.push_str(&format!(" and {} more", paths.len() - MAX_LISTED));
    }
    s
}

/// Every item after its first occurrence (so a triple shows twice).
pub fn duplicates(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items.filter(|i| !seen.insert(i.clone())).collect()
}

/// Joins expectations (`to match /x/`, `to be one of a, b`) into one phrase;
/// with none, the value only has to be set.
pub fn expectations(mut parts: Vec<String>) -> String {
    if parts.is_empty() {
        parts.push("to be set".into());
    }
    parts.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_cases() {
        let re = Regex::new("(?m)^a$").unwrap();
        assert_eq!(pattern(&re), "^a$");
        assert_eq!(lossy(b"a\nb\x1b\xff"), "a?b?\u{fffd}");
        let many: Vec<String> = (0..12).map(|i| i.to_string()).collect();
        assert_eq!(list_paths(&many), "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 2 more");
        assert_eq!(list_paths(&many[..2]), "0, 1");
        assert_eq!(expectations(vec![]), "to be set");
        assert_eq!(
            expectations(vec!["to be x".into(), "to be y".into()]),
            "to be x and to be y"
        );
    }
}
