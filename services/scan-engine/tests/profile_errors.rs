//! Bad profiles give clear errors naming `file:line:col`, never a panic.

use std::collections::BTreeMap;

use scanfleet_scan_engine::profile::{InputOverrides, ProfileSource, load_profile};

const META: &str = "name: t\ninputs:\n  - name: owner\n    value: root\n";

fn load(controls: &str) -> Result<(), String> {
    load_with(controls, &BTreeMap::new())
}

fn load_with(controls: &str, overrides: &InputOverrides) -> Result<(), String> {
    let src = ProfileSource {
        metadata: META.into(),
        control_files: vec![("controls/c.yml".into(), controls.into())],
        library_files: Vec::new(),
    };
    load_profile(&src, overrides)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

const GOOD: &str = "controls:
  - id: c-1
    title: t
    desc: d
    impact: 0.5
    checks:
      - file: {path: /etc/passwd, owner: \"{{ owner }}\"}
";

#[test]
fn good_profile_loads() {
    load(GOOD).expect("loads");
}

fn assert_err(controls: &str, needle: &str, loc: &str) {
    let e = load(controls).expect_err("must fail");
    assert!(e.contains(needle), "expected {needle:?} in:\n{e}");
    assert!(e.contains(loc), "expected location {loc:?} in:\n{e}");
}

#[test]
fn invalid_yaml_names_line_and_column() {
    assert_err(
        "controls:\n  - id: [unclosed\n",
        "invalid YAML",
        "controls/c.yml:",
    );
}

#[test]
fn unknown_check_type() {
    let y = GOOD.replace(
        "- file: {path: /etc/passwd, owner: \"{{ owner }}\"}",
        "- registry: {key: x}",
    );
    assert_err(&y, "registry", "controls/c.yml:7:");
}

#[test]
fn invalid_regex() {
    let y = GOOD.replace("owner: \"{{ owner }}\"", "content_matches: \"a(b\"");
    assert_err(&y, "invalid regex", "controls/c.yml:7:");
}

#[test]
fn duplicate_control_ids() {
    let y = format!("{GOOD}{}", &GOOD["controls:\n".len()..]);
    assert_err(&y, "duplicate control id `c-1`", "controls/c.yml:8:9");
}

#[test]
fn impact_out_of_range() {
    let y = GOOD.replace("impact: 0.5", "impact: 1.5");
    assert_err(&y, "out of range", "controls/c.yml:5:13");
}

#[test]
fn missing_input() {
    let y = GOOD.replace("{{ owner }}", "{{ nobody }}");
    assert_err(&y, "input `nobody` is not declared", "controls/c.yml:7:");
}

#[test]
fn unknown_input_override() {
    let mut o = BTreeMap::new();
    o.insert("nope".to_string(), "1".to_string());
    let e = load_with(GOOD, &o).expect_err("must fail");
    assert!(e.contains("--input nope"), "{e}");
}

#[test]
fn severity_tag_must_match_impact() {
    let y = GOOD.replace("impact: 0.5", "impact: 0.5\n    tags: {severity: High}");
    assert_err(
        &y,
        "tags.severity must be lowercase `medium`",
        "controls/c.yml:6:",
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let y = GOOD
        .replace("impact: 0.5", "impact: 2")
        .replace("/etc/passwd", "relative");
    let e = load(&y).expect_err("must fail");
    assert!(
        e.contains("out of range") && e.contains("must be absolute"),
        "{e}"
    );
}
