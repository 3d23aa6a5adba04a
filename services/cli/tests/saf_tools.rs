//! The real SAF tools accept what we produce and agree with our threshold
//! gate: `saf summary`, inspecjs `ExecJSON` conversion, and a differential
//! test against `saf validate threshold` over generated HDF and threshold files.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use scanfleet_test_harness::{installed_tool, repo_root, run, system_tool, text};
use serde_json::{Value, json};

fn scanfleet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanfleet"))
}

fn saf() -> Command {
    let mut c = Command::new(system_tool("node"));
    c.arg(installed_tool("node/node_modules/.bin/saf"));
    c
}

fn weak_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(Command::new("/bin/sh")
        .arg(repo_root().join("services/scan-engine/fixtures/rootfs-weak.sh"))
        .arg(dir.path().join("rootfs"))
        .env("BUSYBOX", system_tool("busybox")));
    assert!(
        out.status.success(),
        "fixture recipe failed: {}",
        text(&out.stderr)
    );
    dir
}

// ------------------------------------------------------------------ threshold

/// Deterministic generator so a failing case can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const IMPACTS: [(f64, &str); 4] = [
    (0.3, "low"),
    (0.5, "medium"),
    (0.7, "high"),
    (0.9, "critical"),
];

fn gen_hdf(rng: &mut Lcg) -> Value {
    let n = 4 + rng.below(10);
    let mut controls = Vec::new();
    for i in 0..n {
        let (mut impact, sev) = IMPACTS[rng.below(4) as usize];
        let kind = rng.below(6);
        let mut result = json!({"code_desc": "generated", "start_time": "2026-01-01T00:00:00Z", "run_time": 0.0});
        match kind {
            0 | 1 => result["status"] = json!("passed"),
            2 => result["status"] = json!("failed"),
            3 => result["status"] = json!("skipped"),
            4 => {
                result["status"] = json!("error");
                result["backtrace"] = json!(["x"]);
            }
            _ => {
                impact = 0.0;
                result["status"] = json!("skipped");
            }
        }
        controls.push(json!({
            "id": format!("G-{i}"), "title": "t", "desc": "d", "impact": impact, "refs": [],
            "tags": {"nist": ["CM-6"], "severity": sev}, "code": "", "source_location": {"ref": "g", "line": 1},
            "results": [result],
        }));
    }
    json!({
        "platform": {"name": "gen", "release": "1"}, "version": "1", "statistics": {"duration": 0.1},
        "profiles": [{"name": "gen", "sha256": "0", "supports": [], "attributes": [], "groups": [], "status": "loaded", "controls": controls}],
    })
}

fn gen_threshold(rng: &mut Lcg, hdf: &Value) -> String {
    // Bounds near the real counts, so cases pass and fail about equally.
    let counts =
        scanfleet_scan_engine::threshold::counts_from_hdf(hdf).expect("generated HDF is valid");
    let near = |rng: &mut Lcg, v: u64| (v + rng.below(3)).saturating_sub(1);
    let statuses = ["passed", "failed", "skipped", "error"];
    let mut y = String::new();
    let comp = counts.compliance();
    if rng.below(2) == 0 {
        y.push_str(&format!(
            "compliance:\n  min: {}\n",
            (comp + rng.below(11)).saturating_sub(5).clamp(1, 100)
        ));
    }
    let mut by_status: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for _ in 0..(1 + rng.below(3)) {
        let st = statuses[rng.below(4) as usize];
        let s = scanfleet_scan_engine::hdf::ControlStatus::from_key(st).expect("status");
        let total = counts.totals.get(&s).copied().unwrap_or(0);
        let line = match rng.below(3) {
            0 => format!("  total:\n    max: {}\n", near(rng, total)),
            1 => format!("  total:\n    min: {}\n", near(rng, total).max(1)),
            _ => {
                let sev = ["critical", "high", "medium", "low"][rng.below(4) as usize];
                let ids = counts
                    .buckets
                    .get(&(s, sev.to_string()))
                    .cloned()
                    .unwrap_or_default();
                if !ids.is_empty() && rng.below(2) == 0 {
                    let mut list: Vec<String> = ids.into_iter().collect();
                    if rng.below(2) == 0 {
                        list.pop();
                        if list.is_empty() {
                            list.push("G-99".into());
                        }
                    }
                    format!("  {sev}:\n    controls: [{}]\n", list.join(", "))
                } else {
                    format!("  {sev}:\n    max: {}\n", near(rng, ids.len() as u64))
                }
            }
        };
        by_status.entry(st).or_default().push(line);
    }
    for (st, lines) in by_status {
        // One block per status; later duplicates of the same sub-key are dropped.
        let mut seen = std::collections::BTreeSet::new();
        y.push_str(&format!("{st}:\n"));
        for l in lines {
            let key = l.lines().next().unwrap_or_default().to_string();
            if seen.insert(key) {
                y.push_str(&l);
            }
        }
    }
    y
}

#[test]
fn threshold_verdicts_agree_with_saf_validate_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Lcg(0x5ca9_f1ee7);
    let mut cases = Vec::new();
    for i in 0..14 {
        let hdf = gen_hdf(&mut rng);
        let th = gen_threshold(&mut rng, &hdf);
        let hp = dir.path().join(format!("h{i}.json"));
        let tp = dir.path().join(format!("t{i}.yml"));
        std::fs::write(&hp, hdf.to_string()).expect("write");
        std::fs::write(&tp, &th).expect("write");
        cases.push((hp, tp, th));
    }
    // saf takes ~1.5 s per run; two at a time keeps the test short.
    let verdicts: Vec<(bool, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(2))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(hp, tp, _)| {
                            let o = run(saf()
                                .args(["validate", "threshold", "-i"])
                                .arg(hp)
                                .arg("-T")
                                .arg(tp));
                            let pass = o.status.success()
                                && text(&o.stdout).trim() == "All validation tests passed";
                            (pass, format!("{}{}", text(&o.stdout), text(&o.stderr)))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("saf thread"))
            .collect()
    });
    let (mut passes, mut fails) = (0, 0);
    for ((hp, tp, th), (saf_pass, saf_out)) in cases.iter().zip(verdicts) {
        let o = run(scanfleet()
            .args(["threshold", "-i"])
            .arg(hp)
            .arg("-T")
            .arg(tp));
        let ours = o.status.code();
        assert!(
            matches!(ours, Some(0 | 1)),
            "our gate refused a valid case {th}: {}",
            text(&o.stderr)
        );
        assert_eq!(
            ours == Some(0),
            saf_pass,
            "verdicts differ for\n{th}\nsaf: {saf_out}\nours: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        if saf_pass { passes += 1 } else { fails += 1 }
    }
    assert!(
        passes >= 3 && fails >= 3,
        "generator must exercise both verdicts ({passes} pass, {fails} fail)"
    );
}

#[test]
fn threshold_exit_codes_and_every_failure_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Lcg(7);
    let hdf = gen_hdf(&mut rng);
    let hp = dir.path().join("h.json");
    std::fs::write(&hp, hdf.to_string()).expect("write");
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).expect("write");
        p
    };
    let gate = |h: &Path, t: &Path| {
        run(scanfleet()
            .args(["threshold", "-i"])
            .arg(h)
            .arg("-T")
            .arg(t))
    };

    let pass = write("pass.yml", "compliance:\n  max: 100\n");
    let o = gate(&hp, &pass);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "All validation tests passed");

    let fail = write(
        "fail.yml",
        "compliance:\n  min: 100\npassed:\n  total:\n    max: 0\nfailed:\n  total:\n    min: 99\n",
    );
    let o = gate(&hp, &fail);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    for needle in [
        "compliance.min",
        "passed.total.max",
        "failed.total.min",
        "3 of 3",
    ] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }

    // Where saf silently passes, we refuse with exit status 2.
    for (name, body, needle) in [
        ("scalar.yml", "compliance: 90\n", "scalar shorthand"),
        ("sev.yml", "failed:\n  high: 0\n", "scalar shorthand"),
        (
            "unknown.yml",
            "failed:\n  totl:\n    max: 0\n",
            "unknown key",
        ),
        (
            "noimpact.yml",
            "no_impact:\n  total:\n    max: 0\n",
            "no_impact.total",
        ),
    ] {
        let o = gate(&hp, &write(name, body));
        assert_eq!(o.status.code(), Some(2), "{name}");
        assert!(
            text(&o.stderr).contains(needle),
            "{name}: {}",
            text(&o.stderr)
        );
        assert!(
            text(&o.stderr).contains(&format!("{name}:")),
            "names the file: {}",
            text(&o.stderr)
        );
    }
    let o = gate(&dir.path().join("missing.json"), &pass);
    assert_eq!(o.status.code(), Some(2));
    let mut broken = hdf.clone();
    broken["profiles"][0]
        .as_object_mut()
        .expect("obj")
        .remove("sha256");
    let bp = write("broken.json", &broken.to_string());
    let o = gate(&bp, &pass);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("profiles[0].sha256"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn scan_exits_non_zero_when_its_threshold_fails() {
    let fx = weak_fixture();
    let root = fx.path().join("rootfs");
    let th = fx.path().join("t.yml");
    std::fs::write(&th, "failed:\n  critical:\n    max: 0\n").expect("write");
    let o = run(scanfleet()
        .args(["scan", "--root"])
        .arg(&root)
        .arg("--profile")
        .arg(repo_root().join("profiles/container-baseline"))
        .arg("--threshold")
        .arg(&th)
        .arg("--out")
        .arg(fx.path().join("r.json")));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("failed.critical.max"),
        "{}",
        text(&o.stderr)
    );
    let o = run(scanfleet()
        .args(["scan", "--root"])
        .arg(&root)
        .arg("--profile")
        .arg(repo_root().join("profiles/container-baseline"))
        .args(["--input", "no_such_input=1"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--input no_such_input"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn the_shipped_hardening_profile_is_complete_and_finds_the_weak_fixture() {
    let dir = weak_fixture();
    let out = dir.path().join("hardening.json");
    let o = run(scanfleet()
        .args(["scan", "--root"])
        .arg(dir.path().join("rootfs"))
        .arg("--profile")
        .arg(repo_root().join("profiles/container-hardening"))
        .arg("--out")
        .arg(&out));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let hdf: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let controls = hdf["profiles"][0]["controls"].as_array().unwrap();
    let ids: std::collections::BTreeSet<&str> =
        controls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(controls.len() >= 80, "{} controls", controls.len());
    assert_eq!(ids.len(), controls.len(), "control ids are unique");
    let mut failed = 0;
    for c in controls {
        let id = c["id"].as_str().unwrap();
        assert!(
            c["tags"]["nist"].as_array().is_some_and(|n| !n.is_empty()),
            "{id} has NIST tags"
        );
        assert!(c["tags"]["severity"].is_string(), "{id} has a severity");
        assert!(
            c["desc"].as_str().is_some_and(|d| d.len() > 20),
            "{id} has a rationale"
        );
        assert!(
            !c["results"].as_array().unwrap().is_empty(),
            "{id} has results"
        );
        if c["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "failed")
        {
            failed += 1;
        }
    }
    assert!(
        failed >= 20,
        "the weak fixture fails {failed} hardening controls"
    );
    // And the real SAF CLI reads it.
    let summary = run(saf()
        .args(["summary", "-i"])
        .arg(&out)
        .args(["--format", "json"]));
    assert!(summary.status.success(), "{}", text(&summary.stderr));
}
