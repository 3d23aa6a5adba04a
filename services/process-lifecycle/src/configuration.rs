//! How every service reads its configuration: one precedence rule, one
//! YAML reader, one way of reporting problems.
//!
//! **Precedence**, for every setting, in intake, the worker and the
//! collector alike:
//!
//! 1. the command-line flag,
//! 2. its `SCANFLEET_*` environment variable,
//! 3. the YAML file given by `--config` (the key is the flag's name in
//!    snake_case, e.g. `--grpc-listen` is `grpc_listen`),
//! 4. the built-in default.
//!
//! clap resolves 1 over 2 (flags carry no clap defaults, so "not given" is
//! visible); [`setting`] puts the file and the default under them. Settings
//! too structured for a flag (webhook endpoints, schedules, the throttle)
//! live only in the file. The NATS connection settings are the bus crate's
//! (`scanfleet_bus::NatsArgs` and `NatsFile`): in the file they sit under
//! `nats:`, each key the flag's name without `--nats-` (`nkey_file`, `ca`).
//!
//! **Problems** are collected, never returned one by one: a service
//! validates everything, then prints the whole list ([`invalid_config`])
//! and exits with code 2. YAML problems carry `file:line:column`.

use std::fmt::Display;
use std::path::Path;
use std::process::ExitCode;

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::{LoaderOptions, Node};
use serde::de::DeserializeOwned;

/// Exit code for configuration that cannot be used, so that supervisors and
/// scripts can tell "fix your config" (2) from "it ran and failed" (1).
pub const EXIT_INVALID_CONFIG: u8 = 2;

/// The largest configuration file read; anything bigger is a mistake (or
/// not a configuration file).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Prints every configuration error at once (fixing them one start at a
/// time is the slow path operators complain about) and gives the exit code.
pub fn invalid_config<E: Display>(program: &str, errors: &[E]) -> ExitCode {
    eprintln!("{program}: invalid configuration:");
    for e in errors {
        eprintln!("  - {e}");
    }
    ExitCode::from(EXIT_INVALID_CONFIG)
}

/// The precedence rule for one setting: the flag (or its variable, which
/// clap already folded in) over the file over the default.
pub fn setting<T>(flag: Option<T>, file: Option<T>, default: T) -> T {
    flag.or(file).unwrap_or(default)
}

/// Reads the YAML file `path` (named `--config` in messages) into `T`.
///
/// Every problem is appended to `errors`, with line and column, and the
/// keys at fault are left at their defaults so that the rest of the file
/// is still checked: unknown keys, values of the wrong type, duplicate
/// keys, a file that is not a mapping. An empty file is an empty mapping;
/// a key whose value is empty, `~` or `null` counts as absent.
pub fn read_yaml_file<T: DeserializeOwned + Default>(path: &Path, errors: &mut Vec<String>) -> T {
    let at = format!("--config {}", path.display());
    let text = match read_bounded(path) {
        Ok(text) => text,
        Err(e) => {
            errors.push(format!("{at}: {e}"));
            return T::default();
        }
    };
    parse_yaml(&text, &at, errors)
}

/// [`read_yaml_file`] on text already read; `at` names it in messages.
pub fn parse_yaml<T: DeserializeOwned + Default>(
    text: &str,
    at: &str,
    errors: &mut Vec<String>,
) -> T {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return T::default();
    }
    // Quoted scalars stay strings (`"80"` is not a number), as in YAML.
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let mut node = match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(node) => node,
        Err(e) => {
            errors.push(format!("{at}: {}", load_error(&e)));
            return T::default();
        }
    };
    drop_nulls(&mut node);
    let Some(top) = node.as_mapping_mut() else {
        errors.push(format!("{at}: expected a mapping of settings"));
        return T::default();
    };
    // Each failed attempt names one problem; the top-level key holding it
    // is dropped and the rest tried again, so every key is checked.
    for _ in 0..=top.len() {
        match marked_yaml::from_node::<T>(&Node::Mapping(top.clone())) {
            Ok(value) => return value,
            Err(e) => {
                let mark = e.start_mark().or_else(|| match &*e {
                    // serde reports unknown keys without a place; find it.
                    marked_yaml::Error::UnknownFieldError(field, _, _) => key_mark(top, field),
                    _ => None,
                });
                errors.push(match mark {
                    Some(m) => format!("{at}:{}:{}: {}", m.line(), m.column(), message(&e)),
                    None => format!("{at}: {}", message(&e)),
                });
                match mark.and_then(|m| key_holding(top, m.character())) {
                    Some(key) => {
                        top.remove(key.as_str());
                    }
                    None => return T::default(),
                }
            }
        }
    }
    T::default()
}

fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
    }
    Ok(text)
}

/// The serde message in the words the services have always used
/// (lower-case "unknown field `x`").
fn message(e: &marked_yaml::FromNodeError) -> String {
    use marked_yaml::Error as E;
    match &**e {
        E::UnknownFieldError(field, expected, _) => {
            format!(
                "unknown field `{field}`, expected one of: {}",
                expected.join(", ")
            )
        }
        E::NotBoolean(_) => "expected true or false".into(),
        other => other.to_string(),
    }
}

fn load_error(e: &marked_yaml::LoadError) -> String {
    use marked_yaml::LoadError as L;
    let (mark, what) = match e {
        L::TopLevelMustBeMapping(m) => (m, "expected a mapping of settings".to_owned()),
        L::TopLevelMustBeSequence(m) => (m, "expected a sequence".to_owned()),
        L::UnexpectedAnchor(m) => (m, "anchors are not supported".to_owned()),
        L::MappingKeyMustBeScalar(m) => (m, "keys must be plain strings".to_owned()),
        L::UnexpectedTag(m) => (m, "tags are not supported".to_owned()),
        L::ScanError(m, s) => (m, format!("not YAML: {s}")),
        L::DuplicateKey(d) => {
            let key = d.prev_key.as_str();
            let m = d.key.span().start().or(d.prev_key.span().start());
            return match m {
                Some(m) => format!("{}:{}: key `{key}` appears twice", m.line(), m.column()),
                None => format!("key `{key}` appears twice"),
            };
        }
    };
    format!("{}:{}: {what}", mark.line(), mark.column())
}

/// Removes mapping entries whose value is a YAML null, at every depth.
fn drop_nulls(node: &mut Node) {
    match node {
        Node::Mapping(map) => {
            let nulls: Vec<String> = map
                .iter()
                .filter(|(_, v)| is_null(v))
                .map(|(k, _)| k.as_str().to_owned())
                .collect();
            for key in nulls {
                map.remove(key.as_str());
            }
            for (_, v) in map.iter_mut() {
                drop_nulls(v);
            }
        }
        Node::Sequence(seq) => seq.iter_mut().for_each(drop_nulls),
        Node::Scalar(_) => {}
    }
}

fn is_null(node: &Node) -> bool {
    node.as_scalar().is_some_and(|s| {
        s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL")
    })
}

/// Where the key `field` is written: at the top level if there, else the
/// first one found below.
fn key_mark(top: &MarkedMappingNode, field: &str) -> Option<marked_yaml::Marker> {
    fn search(node: &Node, field: &str) -> Option<marked_yaml::Marker> {
        match node {
            Node::Mapping(map) => map.iter().find_map(|(k, v)| {
                if k.as_str() == field {
                    k.span().start().copied()
                } else {
                    search(v, field)
                }
            }),
            Node::Sequence(seq) => seq.iter().find_map(|n| search(n, field)),
            Node::Scalar(_) => None,
        }
    }
    top.keys()
        .find(|k| k.as_str() == field)
        .and_then(|k| k.span().start().copied())
        .or_else(|| top.values().find_map(|v| search(v, field)))
}

/// The top-level key whose entry holds the character offset `at`: the
/// last key that starts at or before it (keys keep document order).
fn key_holding(top: &MarkedMappingNode, at: usize) -> Option<String> {
    top.keys()
        .rfind(|k| k.span().start().is_some_and(|s| s.character() <= at))
        .map(|k| k.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read through Debug and errors only
    struct Sample {
        port: Option<u16>,
        name: Option<String>,
        #[serde(default)]
        nested: Nested,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read through errors only
    struct Nested {
        on: Option<bool>,
    }

    fn parse(text: &str) -> (Sample, Vec<String>) {
        let mut errors = Vec::new();
        let value = parse_yaml(text, "--config f.yml", &mut errors);
        (value, errors)
    }

    #[test]
    fn the_flag_wins_over_the_file_which_wins_over_the_default() {
        assert_eq!(setting(Some(1), Some(2), 3), 1);
        assert_eq!(setting(None, Some(2), 3), 2);
        assert_eq!(setting(None, None, 3), 3);
    }

    #[test]
    fn every_problem_in_a_file_is_reported_with_its_place() {
        let (value, errors) = parse("port: lots\nbogus: 1\nname: ok\nnested: {on: maybe}\n");
        assert_eq!(value.name.as_deref(), Some("ok"), "good keys still count");
        let all = errors.join("\n");
        assert_eq!(errors.len(), 3, "{all}");
        assert!(all.contains("--config f.yml:1:"), "{all}");
        assert!(all.contains("unknown field `bogus`"), "{all}");
        assert!(all.contains("f.yml:2:"), "{all}");
        assert!(all.contains("expected true or false"), "{all}");
    }

    #[test]
    fn empty_files_and_null_values_are_absent_settings() {
        let (value, errors) = parse("# nothing yet\n");
        assert!(errors.is_empty() && value.port.is_none());
        let (value, errors) = parse("port: ~\nname:\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert!(value.port.is_none() && value.name.is_none());
        let (value, errors) = parse("name: ''\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            value.name.as_deref(),
            Some(""),
            "a quoted empty string is a value"
        );
    }

    #[test]
    fn duplicate_keys_and_non_mappings_are_refused() {
        let (_, errors) = parse("port: 1\nport: 2\n");
        assert!(errors[0].contains("key `port` appears twice"), "{errors:?}");
        let (_, errors) = parse("- a\n- b\n");
        assert!(errors[0].contains("expected a mapping"), "{errors:?}");
    }

    #[test]
    fn oversized_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yml");
        std::fs::write(&big, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).unwrap();
        let mut errors = Vec::new();
        let _: Sample = read_yaml_file(&big, &mut errors);
        let _: Sample = read_yaml_file(&dir.path().join("absent.yml"), &mut errors);
        assert!(errors[0].contains("big.yml: larger than"), "{errors:?}");
        assert!(errors[1].contains("absent.yml: "), "{errors:?}");
    }

    #[test]
    fn invalid_configuration_exits_with_code_2() {
        let code = invalid_config("scanfleet-test", &["--nats-url: missing"]);
        assert_eq!(code, ExitCode::from(2));
    }
}
