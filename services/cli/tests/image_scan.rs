//! `scanfleet scan oci://REGISTRY/REPO@DIGEST` and `--image-archive` end
//! to end: a real Distribution registry on loopback (TLS from a throwaway
//! CA, htpasswd), an image built by umoci and pushed by skopeo, the HDF,
//! and a signed statement about the image digest that securesystemslib
//! verifies; wrong credentials fail once with the registry and the step.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use scanfleet_test_harness::registry::{TestRegistry, build_layout};
use scanfleet_test_harness::repo_root;
use support::{assert_fails_with, assert_success, generate_keys, oracle, run, scanfleet, text};

const FILES: &[(&str, &[u8], u32)] = &[
    ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
    ("etc/group", b"root:x:0:\n", 0o644),
    ("usr/bin/helper", b"#!/bin/sh\n", 0o4755),
];

/// Control id → status of its first result.
fn statuses(hdf: &serde_json::Value) -> BTreeMap<String, String> {
    hdf["profiles"][0]["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["results"][0]["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn profile() -> std::path::PathBuf {
    repo_root().join("profiles/container-baseline")
}

#[test]
fn scans_a_registry_image_by_digest_and_signs_a_statement_about_it() {
    let reg = TestRegistry::start("ci", "pull-pw", None);
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let layout = d.join("layout");
    build_layout(&layout, "v1", FILES);
    let digest = reg.push(&layout, "v1", "shop/web");
    let password = d.join("password");
    std::fs::write(&password, "pull-pw\n").unwrap();
    let (key, public, key_id) = generate_keys(d, "keys");
    let work = d.join("work");
    std::fs::create_dir(&work).unwrap();
    let (hdf_path, envelope) = (d.join("hdf.json"), d.join("envelope.json"));
    let uri = format!("oci://{}/shop/web@{digest}", reg.host());
    let scan = |password: &Path| {
        let mut cmd = scanfleet();
        cmd.args(["scan", &uri, "--profile"])
            .arg(profile())
            .arg("--registry-ca")
            .arg(&reg.pki.ca)
            .args(["--registry-user", "ci", "--registry-password-file"])
            .arg(password)
            .arg("--work-dir")
            .arg(&work)
            .arg("--out")
            .arg(&hdf_path)
            .arg("--sign-key")
            .arg(&key)
            .arg("--envelope-out")
            .arg(&envelope);
        run(&mut cmd)
    };
    let out = scan(&password);
    assert_success(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "scanned {}/shop/web@{digest} (1 layers",
            reg.host()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("pull-pw"),
        "the password never reaches the output"
    );
    let hdf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&hdf_path).unwrap()).unwrap();
    let s = statuses(&hdf);
    assert_eq!(s["cb-files-01"], "passed", "{s:?}");
    // The setuid bit lives only in the recorded metadata, never on disk.
    assert_eq!(s["cb-files-05"], "failed", "{s:?}");
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        0,
        "the unpacked image is gone"
    );

    let verified = run(oracle()
        .arg("verify")
        .arg(&public)
        .arg(&key_id)
        .arg(&envelope));
    assert_success(&verified);
    let wire: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&envelope).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(wire["payload"].as_str().unwrap())
        .unwrap();
    let statement = scanfleet_trust::ScanStatement::from_payload(&payload).unwrap();
    assert_eq!(
        statement.subject[0].name,
        format!("{}/shop/web", reg.host())
    );
    assert_eq!(
        format!("sha256:{}", statement.subject[0].digest["sha256"]),
        digest
    );
    let raw: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(raw["predicate"]["target"]["kind"], "image");
    assert_eq!(raw["predicate"]["approach"], "local");

    let wrong = d.join("wrong");
    std::fs::write(&wrong, "nope").unwrap();
    let out = scan(&wrong);
    assert_fails_with(
        &out,
        2,
        &format!(
            "registry {} refused the credentials for user \"ci\" while fetching manifest \
             shop/web@{digest} (HTTP 401)",
            reg.host()
        ),
    );
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

#[test]
fn scans_an_image_archive() {
    let d = tempfile::tempdir().unwrap();
    let layout = d.path().join("layout");
    build_layout(&layout, "v1", FILES);
    let out = run(scanfleet()
        .args(["scan", "--image-archive"])
        .arg(&layout)
        .arg("--profile")
        .arg(profile()));
    assert_success(&out);
    let hdf: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(statuses(&hdf)["cb-files-05"], "failed");

    let out = run(scanfleet()
        .args(["scan", "--image-archive"])
        .arg(d.path().join("missing.tar"))
        .arg("--profile")
        .arg(profile()));
    assert_fails_with(&out, 2, "missing.tar");
    let out = run(scanfleet()
        .args(["scan", "oci://r.local/shop/web:1.0", "--profile"])
        .arg(profile()));
    assert_fails_with(&out, 2, "scans are by digest only");
}
