//! HDF from InSpec-syntax profiles, read by the real SAF tools: `scanfleet
//! scan --root` over our own InSpec profiles and the shipped profiles'
//! InSpec rewrites writes files `saf summary` accepts with the counts the
//! statuses predict, and inspecjs converts with the status of every control
//! in `fixtures/inspec/expected-status.tsv`. The HDF carries what InSpec's
//! reporter would: control source, `source_location`, typed tags and
//! inputs, InSpec's `code_desc` wording, `only_if` skips, run-time impact
//! and custom `expect` messages.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use scanfleet_scan_engine::hdf::{control_severity, control_status};
use scanfleet_test_harness::rootfs::build_fixture;
use scanfleet_test_harness::{installed_tool, repo_root};
use serde_json::Value;
use support::{run, scanfleet, system_tool, text};

const OWN: [&str; 4] = ["language", "resources", "libraries", "dynamic"];

fn own_dir(name: &str) -> PathBuf {
    repo_root()
        .join("services/scan-engine/fixtures/inspec")
        .join(name)
}

fn scan_to(root: &Path, profile: &Path, out: &Path) -> Value {
    let o = run(scanfleet()
        .args(["scan", "--root"])
        .arg(root)
        .arg("--profile")
        .arg(profile)
        .arg("--out")
        .arg(out));
    assert!(
        o.status.success(),
        "scan {} failed: {}",
        profile.display(),
        text(&o.stderr)
    );
    serde_json::from_slice(&std::fs::read(out).expect("hdf written")).expect("hdf is JSON")
}

/// (profile, control) -> scenario -> status from the reviewed table.
fn table() -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let text = std::fs::read_to_string(own_dir("expected-status.tsv")).expect("table");
    let mut rows = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    let header: Vec<&str> = rows.next().expect("header").split('\t').collect();
    rows.map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        let row = header[2..]
            .iter()
            .zip(&f[2..])
            .map(|(h, v)| ((*h).to_string(), (*v).to_string()))
            .collect();
        ((f[0].to_string(), f[1].to_string()), row)
    })
    .collect()
}

/// saf summary's counts for one HDF, as inspecjs's rules predict them.
fn predicted(hdf: &Value) -> Value {
    let mut out = serde_json::json!({});
    let controls = hdf["profiles"][0]["controls"].as_array().expect("controls");
    for status in ["passed", "failed", "skipped", "error", "no_impact"] {
        let total = controls
            .iter()
            .filter(|c| control_status(c).key() == status)
            .count();
        out[status] = total.into();
        for sev in ["critical", "high", "medium", "low"] {
            let n = controls
                .iter()
                .filter(|c| control_status(c).key() == status && control_severity(c) == sev)
                .count();
            out[format!("{status}.{sev}")] = n.into();
        }
    }
    out
}

fn saf_summary(file: &Path) -> Value {
    let saf = installed_tool("node/node_modules/.bin/saf");
    let o = run(Command::new(system_tool("node"))
        .arg(saf)
        .args(["summary", "-f", "json", "--no-print-pretty", "-i"])
        .arg(file));
    assert!(
        o.status.success(),
        "saf summary rejected {}: {}{}",
        file.display(),
        text(&o.stdout),
        text(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("saf prints JSON");
    v.as_array()
        .filter(|a| a.len() == 1)
        .expect("one profile block")[0]
        .clone()
}

fn inspecjs(files: &[PathBuf]) -> Value {
    let o = run(Command::new(system_tool("node"))
        .arg(repo_root().join("services/cli/tests/support/hdf-oracle.js"))
        .args(files)
        .env("INSPECJS", installed_tool("node/node_modules/inspecjs")));
    assert!(
        o.status.success(),
        "inspecjs oracle failed: {}",
        text(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("oracle prints JSON")
}

fn tree(recipe: &str, dest: &Path) {
    build_fixture(recipe, dest);
    let o = run(Command::new("/bin/sh").arg(own_dir("extras.sh")).arg(dest));
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn saf_and_inspecjs_read_inspec_profile_results_as_expected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    let mut hdfs = BTreeMap::new();
    for scenario in ["weak", "hardened"] {
        let root = dir.path().join(scenario);
        tree(&format!("rootfs-{scenario}.sh"), &root);
        let mut profiles: Vec<(String, PathBuf)> =
            OWN.iter().map(|p| ((*p).to_string(), own_dir(p))).collect();
        for p in ["container-baseline-inspec", "container-hardening-inspec"] {
            profiles.push((p.to_string(), repo_root().join("profiles").join(p)));
        }
        for (name, path) in profiles {
            let out = dir.path().join(format!("{scenario}-{name}.json"));
            let hdf = scan_to(&root, &path, &out);
            hdfs.insert((scenario.to_string(), name.clone()), hdf);
            files.push(out);
        }
    }
    for f in &files {
        let summary = saf_summary(f);
        let name = f.file_stem().and_then(|s| s.to_str()).expect("name");
        let (scenario, profile) = name.split_once('-').expect("scenario-profile");
        let hdf = &hdfs[&(scenario.to_string(), profile.to_string())];
        let want = predicted(hdf);
        for status in ["passed", "failed", "skipped", "error", "no_impact"] {
            assert_eq!(
                summary[status]["total"], want[status],
                "{name}: saf summary {status}.total\n{summary}"
            );
            for sev in ["critical", "high", "medium", "low"] {
                assert_eq!(
                    summary[status][sev],
                    want[format!("{status}.{sev}")],
                    "{name}: saf summary {status}.{sev}\n{summary}"
                );
            }
        }
    }
    let oracle = inspecjs(&files);
    let table = table();
    for f in &files {
        let entry = &oracle[f.to_str().expect("utf-8")];
        assert!(
            entry.get("error").is_none(),
            "inspecjs rejected {}: {entry}",
            f.display()
        );
        let name = f.file_stem().and_then(|s| s.to_str()).expect("name");
        let (scenario, profile) = name.split_once('-').expect("scenario-profile");
        for c in entry["controls"].as_array().expect("controls") {
            let id = c["id"].as_str().expect("id");
            if let Some(row) = table.get(&(profile.to_string(), id.to_string())) {
                let want = match row[scenario].as_str() {
                    "passed" => "Passed",
                    "failed" => "Failed",
                    "skipped" => "Not Reviewed",
                    "no_impact" => "Not Applicable",
                    _ => "Profile Error",
                };
                assert_eq!(c["status"].as_str(), Some(want), "{name}/{id}");
            }
        }
    }
    hdf_details(&hdfs[&("hardened".to_string(), "language".to_string())]);
}

/// What InSpec's JSON reporter would write for the constructs of `language`.
fn hdf_details(hdf: &Value) {
    let profile = &hdf["profiles"][0];
    let control = |id: &str| -> &Value {
        profile["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id}"))
    };
    let meta = control("lang-meta");
    assert_eq!(meta["impact"], 0.7);
    assert_eq!(meta["title"], "Metadata of every kind");
    // InSpec's unindent strips the smallest indentation of any line (here
    // the first line's none) and surrounding whitespace.
    assert_eq!(
        meta["desc"],
        "Plain description,\n    unindented like InSpec does."
    );
    let labels: Vec<&str> = meta["descriptions"]
        .as_array()
        .expect("descriptions")
        .iter()
        .filter_map(|d| d["label"].as_str())
        .collect();
    assert_eq!(labels, ["default", "check", "fix"]);
    assert_eq!(meta["tags"]["nist"], serde_json::json!(["AC-6", "CM-6"]));
    assert_eq!(meta["tags"]["weight"], 10);
    assert_eq!(meta["tags"]["enabled"], true);
    assert!(meta["tags"]["standalone"].is_null() && meta["tags"].get("standalone").is_some());
    assert_eq!(meta["refs"][0]["ref"], "NIST SP 800-190");
    assert_eq!(meta["refs"][0]["url"], "https://csrc.nist.gov");
    assert!(
        meta["code"]
            .as_str()
            .expect("code")
            .starts_with("control 'lang-meta' do"),
        "{}",
        meta["code"]
    );
    assert!(meta["code"].as_str().expect("code").ends_with("end"));
    assert_eq!(meta["source_location"]["ref"], "controls/dsl.rb");
    assert_eq!(meta["source_location"]["line"], 4);
    let forms = control("lang-its-forms");
    let descs: Vec<&str> = forms["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["code_desc"].as_str())
        .collect();
    assert!(
        descs.contains(&"File /etc/passwd mode should cmp == \"0644\""),
        "{descs:?}"
    );
    assert!(descs.contains(&"Json content {\"a\": {\"b\": [1, 2, 3]}, \"k\": \"v\"} [\"a\", \"b\"] should eq [1, 2, 3]"), "{descs:?}");
    let msg = &control("lang-expect-message")["results"][0];
    assert_eq!(msg["status"], "failed");
    assert_eq!(msg["message"], "passwd must be 0600");
    let skip = &control("lang-only-if-false")["results"][0];
    assert_eq!(skip["code_desc"], "No-op");
    assert_eq!(
        skip["skip_message"],
        "Skipped control due to only_if condition: the fixture has no /etc/no-such-service"
    );
    assert_eq!(control("lang-impact-runtime")["impact"], 0.0);
    assert_eq!(control("lang-only-if-impact")["impact"], 0.0);
    let inputs: BTreeMap<&str, &Value> = profile["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| (a["name"].as_str().expect("name"), &a["options"]["value"]))
        .collect();
    assert_eq!(inputs["max_uid"], &serde_json::json!(60000));
    assert_eq!(
        inputs["limits"]["shells"],
        serde_json::json!(["/bin/sh", "/bin/bash"])
    );
    assert_eq!(inputs["strict"], &serde_json::json!(true));
    assert_eq!(inputs["inline_default"], &serde_json::json!("fallback"));
}
