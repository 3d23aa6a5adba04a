//! The local-root and shell targets give identical results on the same tree,
//! the shell target needs exactly one round trip, and hostile names or
//! contents cannot break the framing or spoof a result.

mod common;

use std::collections::BTreeSet;

use common::{chrooted, local, prefixed, rootfs, shipped, weak_fixture};
use scanfleet_scan_engine::facts::{
    ContentFact, FactPlan, FactRequest, FactValue, Facts, GatherLimits, StatFact, WalkFact,
};
use scanfleet_scan_engine::profile::{ProfileSource, load_profile};
use scanfleet_scan_engine::scan::{Target, TargetError, plan, scan};

/// Error texts legitimately differ between transports (an errno vs an exit
/// status); everything else must be identical.
fn normalized(f: &Facts) -> Vec<(FactRequest, FactValue)> {
    f.values
        .iter()
        .map(|(k, v)| {
            let v = match v {
                FactValue::Content(ContentFact::Error(_)) => {
                    FactValue::Content(ContentFact::Error(String::new()))
                }
                FactValue::Stat(StatFact::Error(_)) => {
                    FactValue::Stat(StatFact::Error(String::new()))
                }
                FactValue::Walk(WalkFact::Error(_)) => {
                    FactValue::Walk(WalkFact::Error(String::new()))
                }
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

#[test]
fn both_targets_gather_identical_facts_and_results() {
    let fx = weak_fixture();
    let root = rootfs(&fx);
    for name in ["container-baseline"] {
        let profile = shipped(name);
        let p = plan(&profile);
        let lf = local(&root, GatherLimits::default())
            .gather(&p)
            .expect("local gather");
        let sf = chrooted(&root, GatherLimits::default())
            .gather(&p)
            .expect("shell gather");
        assert_eq!(normalized(&lf), normalized(&sf), "{name}: facts differ");
        assert_eq!(sf.stats.round_trips, 1, "one exec round trip");

        let lr = scan(&profile, &local(&root, GatherLimits::default())).expect("local scan");
        let sr = scan(&profile, &chrooted(&root, GatherLimits::default())).expect("shell scan");
        for (a, b) in lr.outcomes.iter().zip(&sr.outcomes) {
            let id = &profile.controls[a.control].id;
            assert_eq!(a.results.len(), b.results.len(), "{name} {id}");
            for (x, y) in a.results.iter().zip(&b.results) {
                assert_eq!(
                    (x.status, &x.code_desc),
                    (y.status, &y.code_desc),
                    "{name} {id}"
                );
                if x.status != scanfleet_scan_engine::checks::Status::Error {
                    assert_eq!(x.message, y.message, "{name} {id}");
                }
            }
        }
    }
}

fn hostile_plan() -> FactPlan {
    let mut requests = BTreeSet::new();
    for r in [
        FactRequest::Read("/etc/motd".into()),
        FactRequest::Read("/etc/profile".into()),
        FactRequest::Read("/opt/app/passwd-link".into()),
        FactRequest::Read("/etc/nonexistent".into()),
        FactRequest::Walk("/opt/app".into()),
        FactRequest::Walk("/nonexistent".into()),
        FactRequest::Stat("/opt/app/evil\nname".into()),
        FactRequest::Stat("/etc/mtab".into()),
        FactRequest::Stat("/it's $(not) `run`".into()),
        FactRequest::Processes,
    ] {
        requests.insert(r);
    }
    FactPlan { requests }
}

#[test]
fn hostile_names_and_contents_cannot_spoof() {
    let fx = weak_fixture();
    let root = rootfs(&fx);
    let p = hostile_plan();
    let sf = chrooted(&root, GatherLimits::default())
        .gather(&p)
        .expect("shell gather");
    let lf = local(&root, GatherLimits::default())
        .gather(&p)
        .expect("local gather");
    assert_eq!(normalized(&lf), normalized(&sf));

    // Forged frames inside content come back as content, byte for byte.
    let motd = std::fs::read(root.join("etc/motd")).expect("motd");
    assert_eq!(
        sf.content("/etc/motd"),
        ContentFact::Data {
            total_len: motd.len() as u64,
            bytes: motd
        }
    );
    // A FIFO is never opened (it would block); it is reported, not read.
    assert_eq!(sf.content("/etc/profile"), ContentFact::NotRegular);
    assert_eq!(sf.content("/etc/nonexistent"), ContentFact::Missing);
    // Symlinks resolve inside the root.
    let passwd = std::fs::read(root.join("etc/passwd")).expect("passwd");
    assert_eq!(
        sf.content("/opt/app/passwd-link"),
        ContentFact::Data {
            total_len: passwd.len() as u64,
            bytes: passwd
        }
    );
    // Names with newlines and forged frames are single, exact entries.
    let Some(WalkFact::Entries {
        entries,
        complete: true,
        truncated: false,
    }) = sf.walk("/opt/app")
    else {
        panic!("walk of /opt/app failed: {:?}", sf.walk("/opt/app"))
    };
    let names: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect();
    assert!(
        names.contains(&"/opt/app/evil\nname".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"/opt/app/x\nSF00000000000000000000000000000000 WE 0 0".to_string()),
        "{names:?}"
    );
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(matches!(
        sf.stat("/opt/app/evil\nname"),
        StatFact::Present(_)
    ));
    assert!(
        matches!(sf.stat("/etc/mtab"), StatFact::Present(s) if s.link_target.as_deref() == Some(&b"/proc/self/mounts"[..]))
    );
    assert_eq!(sf.stat("/it's $(not) `run`"), StatFact::Missing);
}

#[test]
fn root_prefix_is_applied_and_stripped() {
    let fx = weak_fixture();
    let root = rootfs(&fx);
    let mut requests = BTreeSet::new();
    requests.insert(FactRequest::Walk("/opt/app".into()));
    requests.insert(FactRequest::Read("/etc/os-release".into()));
    requests.insert(FactRequest::Stat("/usr/local/bin/suid-helper".into()));
    let p = FactPlan { requests };
    let sf = prefixed(&root, GatherLimits::default())
        .gather(&p)
        .expect("prefixed gather");
    let lf = local(&root, GatherLimits::default())
        .gather(&p)
        .expect("local gather");
    assert_eq!(normalized(&lf), normalized(&sf));
}

#[test]
fn output_cap_is_a_clear_error() {
    let fx = weak_fixture();
    let root = rootfs(&fx);
    let limits = GatherLimits {
        max_output_bytes: 4096,
        ..GatherLimits::default()
    };
    let err = chrooted(&root, limits)
        .gather(&plan(&shipped("container-baseline")))
        .unwrap_err();
    assert!(matches!(err, TargetError::OutputCap { cap: 4096 }), "{err}");
    assert!(
        err.to_string().contains("exceeded the cap of 4096 bytes"),
        "{err}"
    );
}

#[test]
fn unreadable_file_errors_its_control_and_the_scan_goes_on() {
    let fx = weak_fixture();
    let root = rootfs(&fx);
    let src = ProfileSource {
        metadata: "name: t\n".into(),
        control_files: vec![(
            "controls/c.yml".into(),
            "controls:
  - id: reads-fifo
    title: t
    desc: d
    impact: 0.5
    checks:
      - file: {path: /etc/profile, content_matches: umask}
  - id: after
    title: t
    desc: d
    impact: 0.5
    checks:
      - file: {path: /etc/passwd, mode_max: \"0644\"}
"
            .into(),
        )],
        library_files: Vec::new(),
    };
    let profile = load_profile(&src, &Default::default()).expect("loads");
    for report in [
        scan(&profile, &local(&root, GatherLimits::default())).expect("scan"),
        scan(&profile, &chrooted(&root, GatherLimits::default())).expect("scan"),
    ] {
        let fifo = &report.outcomes[0].results;
        let err = fifo
            .iter()
            .find(|r| r.status == scanfleet_scan_engine::checks::Status::Error)
            .expect("error result");
        assert!(
            err.message
                .as_deref()
                .unwrap_or("")
                .contains("not a regular file"),
            "{err:?}"
        );
        assert_eq!(
            report.outcomes[1].results[0].status,
            scanfleet_scan_engine::checks::Status::Passed
        );
    }
}
