//! DSSE interop with an independent verifier (securesystemslib), both ways.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use support::*;

const IN_TOTO: &str = "application/vnd.in-toto+json";

#[test]
fn key_id_is_sha256_of_the_raw_public_key_as_computed_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public, key_id) = generate_keys(dir.path(), "k");
    let out = run(oracle().arg("keyid").arg(&public));
    assert_success(&out);
    assert_eq!(text(&out.stdout).trim(), key_id);
    assert_eq!(key_id.len(), 64);

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "signing.pem must be owner-only");

    let out = run(scanfleet().args(["keys", "id"]).arg(&private));
    assert_success(&out);
    assert_eq!(text(&out.stdout).trim(), key_id);
}

#[test]
fn rust_signed_envelope_verifies_in_securesystemslib_and_tamper_fails_in_both() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public, key_id) = generate_keys(dir.path(), "k");
    let payload = dir.path().join("statement.json");
    std::fs::write(&payload, statement_json()).unwrap();

    let envelope = dir.path().join("envelope.json");
    let out = run(scanfleet()
        .args(["envelope", "sign", "--payload-type", IN_TOTO, "--key"])
        .arg(&private)
        .arg(&payload)
        .arg("--out")
        .arg(&envelope));
    assert_success(&out);

    let out = run(oracle()
        .arg("verify")
        .arg(&public)
        .arg(&key_id)
        .arg(&envelope));
    assert_success(&out);
    assert_eq!(text(&out.stdout).trim(), format!("verified {key_id}"));

    let out = run(scanfleet()
        .args(["envelope", "verify", "--payload-type", IN_TOTO, "--key"])
        .arg(&public)
        .arg(&envelope));
    assert_success(&out);
    assert!(text(&out.stdout).contains(&key_id));

    // Change exactly one payload byte.
    let mut wire: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&envelope).unwrap()).unwrap();
    let mut bytes = STANDARD.decode(wire["payload"].as_str().unwrap()).unwrap();
    let i = bytes.iter().position(|b| *b == b'c').unwrap(); // in "completed"
    bytes[i] = b'C';
    wire["payload"] = STANDARD.encode(&bytes).into();
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, wire.to_string()).unwrap();

    let out = run(oracle()
        .arg("verify")
        .arg(&public)
        .arg(&key_id)
        .arg(&tampered));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).starts_with("rejected:"));

    let out = run(scanfleet()
        .args(["envelope", "verify", "--key"])
        .arg(&public)
        .arg(&tampered));
    assert_fails_with(&out, 1, "does not match the payload");
}

#[test]
fn securesystemslib_signed_envelope_verifies_in_scanfleet() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public, key_id) = generate_keys(dir.path(), "k");
    let payload = dir.path().join("statement.json");
    std::fs::write(&payload, statement_json()).unwrap();

    let out = run(oracle()
        .arg("sign")
        .arg(&private)
        .arg(&key_id)
        .arg(IN_TOTO)
        .arg(&payload));
    assert_success(&out);
    let envelope = dir.path().join("foreign.json");
    std::fs::write(&envelope, &out.stdout).unwrap();

    let verified_payload = dir.path().join("payload.out");
    let out = run(scanfleet()
        .args(["envelope", "verify", "--payload-type", IN_TOTO, "--key"])
        .arg(&public)
        .arg(&envelope)
        .arg("--payload-out")
        .arg(&verified_payload));
    assert_success(&out);
    assert_eq!(
        std::fs::read(&verified_payload).unwrap(),
        std::fs::read(&payload).unwrap()
    );
}

#[test]
fn rotation_accepts_old_and_new_keys_and_rejects_a_stranger() {
    let dir = tempfile::tempdir().unwrap();
    let (old_private, old_public, _) = generate_keys(dir.path(), "old");
    let (_, new_public, _) = generate_keys(dir.path(), "new");
    let (stranger_private, _, stranger_id) = generate_keys(dir.path(), "stranger");
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, statement_json()).unwrap();

    for (key, name) in [
        (&old_private, "old.json"),
        (&stranger_private, "stranger.json"),
    ] {
        let out = run(scanfleet()
            .args(["envelope", "sign", "--payload-type", IN_TOTO, "--key"])
            .arg(key)
            .arg(&payload)
            .arg("--out")
            .arg(dir.path().join(name)));
        assert_success(&out);
    }
    let verify = |file: &str| {
        run(scanfleet()
            .args(["envelope", "verify", "--key"])
            .arg(&new_public)
            .arg("--key")
            .arg(&old_public)
            .arg(dir.path().join(file)))
    };
    assert_success(&verify("old.json"));
    let out = verify("stranger.json");
    assert_fails_with(
        &out,
        1,
        &format!("no signature is by a trusted key (envelope key ids: {stranger_id})"),
    );
}
