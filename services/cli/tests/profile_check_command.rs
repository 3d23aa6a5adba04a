//! `scanfleet profile check`: per control, supported or not (naming the
//! construct and `file:line`), the facts planned and the round trips
//! needed; exit 0 when everything runs, 1 when something does not, 2 when
//! the profile does not load. Also `scanfleet scan --container`.

mod support;

use scanfleet_test_harness::repo_root;
use serde_json::Value;
use support::{run, scanfleet, text};

fn own(name: &str) -> std::path::PathBuf {
    repo_root()
        .join("services/scan-engine/fixtures/inspec")
        .join(name)
}

#[test]
fn unsupported_constructs_are_named_and_fail_the_check() {
    let o = run(scanfleet().args(["profile", "check"]).arg(own("language")));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("FAIL ruby-unsupported (controls/ruby.rb:"),
        "{out}"
    );
    assert!(
        out.contains("refused: `File.read`") && out.contains("at controls/ruby.rb:207"),
        "{out}"
    );
    assert!(
        out.contains("ok   lang-meta (controls/dsl.rb:4): 1 facts, 1 round trip"),
        "{out}"
    );
    assert!(
        out.contains("1 of 23 controls use constructs scanfleet does not run"),
        "{out}"
    );
}

#[test]
fn json_reports_facts_and_round_trips() {
    let o = run(scanfleet()
        .args(["profile", "check", "-o", "json"])
        .arg(own("dynamic")));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(r["format"], "inspec");
    assert_eq!(r["round_trips"], 2);
    let control = |id: &str| {
        r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()
            .clone()
    };
    let homes = control("dyn-home-dirs");
    assert_eq!(homes["round_trips"], 2);
    assert!(
        homes["dynamic_calls"][0]
            .as_str()
            .unwrap()
            .starts_with("directory(...) at controls/dynamic.rb:"),
        "{homes}"
    );
    assert!(
        homes["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str() == Some("Read(\"/etc/passwd\")")),
        "{homes}"
    );
    assert_eq!(control("dyn-sshd-include")["round_trips"], 1);
}

#[test]
fn shipped_profiles_of_both_kinds_pass_the_check() {
    for p in [
        "container-baseline",
        "container-baseline-inspec",
        "container-hardening-inspec",
    ] {
        let o = run(scanfleet()
            .args(["profile", "check"])
            .arg(repo_root().join("profiles").join(p)));
        assert_eq!(
            o.status.code(),
            Some(0),
            "{p}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    }
}

#[test]
fn a_profile_that_does_not_load_exits_2_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("controls")).unwrap();
    std::fs::write(dir.path().join("inspec.yml"), "name: broken\n").unwrap();
    std::fs::write(
        dir.path().join("controls/c.rb"),
        "control 'x' do\n  describe file('/a' do\nend\n",
    )
    .unwrap();
    let o = run(scanfleet().args(["profile", "check"]).arg(dir.path()));
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("controls/c.rb:2:") && err.contains("syntax error"),
        "{err}"
    );
}

#[test]
fn scan_container_flag_declares_the_target_a_container() {
    let dir = tempfile::tempdir().unwrap();
    let (profile, root) = (dir.path().join("p"), dir.path().join("root"));
    std::fs::create_dir_all(profile.join("controls")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(profile.join("inspec.yml"), "name: virt\n").unwrap();
    std::fs::write(
        profile.join("controls/v.rb"),
        "control 'v' do\n  only_if('not a container') { virtualization.system == 'docker' }\n  describe 'x' do\n    it { should eq 'x' }\n  end\nend\n",
    )
    .unwrap();
    let status = |extra: &[&str]| {
        let o = run(scanfleet()
            .args(["scan", "--root"])
            .arg(&root)
            .arg("--profile")
            .arg(&profile)
            .args(extra));
        assert!(o.status.success(), "{}", text(&o.stderr));
        let hdf: Value = serde_json::from_slice(&o.stdout).unwrap();
        hdf["profiles"][0]["controls"][0]["results"][0]["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        status(&[]),
        "skipped",
        "InSpec's detection: no /.dockerenv, no docker cgroup"
    );
    assert_eq!(status(&["--container"]), "passed");
}
