//! Every kind of bad input gets a clear error naming the problem and the file,
//! a non-zero exit, and never a panic.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::*;

struct Fixture {
    dir: tempfile::TempDir,
    private: PathBuf,
    public: PathBuf,
    envelope: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (private, public, _) = generate_keys(dir.path(), "k");
    let payload = dir.path().join("p.json");
    std::fs::write(&payload, statement_json()).unwrap();
    let envelope = dir.path().join("e.json");
    let out = run(scanfleet()
        .args([
            "envelope",
            "sign",
            "--payload-type",
            "application/vnd.in-toto+json",
            "--key",
        ])
        .arg(&private)
        .arg(&payload)
        .arg("--out")
        .arg(&envelope));
    assert_success(&out);
    Fixture {
        dir,
        private,
        public,
        envelope,
    }
}

fn verify(fx: &Fixture, file: &PathBuf) -> std::process::Output {
    run(scanfleet()
        .args(["envelope", "verify", "--key"])
        .arg(&fx.public)
        .arg(file))
}

fn envelope_json(fx: &Fixture) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(&fx.envelope).unwrap()).unwrap()
}

#[test]
fn truncated_pem_keys_are_refused() {
    let fx = fixture();
    for (source, what) in [(&fx.private, "sign"), (&fx.public, "verify")] {
        let pem = std::fs::read_to_string(source).unwrap();
        let cut = fx.dir.path().join(format!("cut-{what}.pem"));
        std::fs::write(&cut, &pem[..pem.len() - 30]).unwrap();
        let out = if what == "sign" {
            run(scanfleet()
                .args(["envelope", "sign", "--payload-type", "t", "--key"])
                .arg(&cut)
                .arg(&fx.envelope))
        } else {
            run(scanfleet()
                .args(["envelope", "verify", "--key"])
                .arg(&cut)
                .arg(&fx.envelope))
        };
        assert_fails_with(&out, 2, "not a valid PEM block");
        assert_fails_with(&out, 2, &cut.display().to_string());
    }
}

#[test]
fn wrong_key_types_are_named() {
    let fx = fixture();
    // A P-256 key made by an independent library.
    let ec = fx.dir.path().join("ec.pem");
    let out = run(Command::new(venv_python()).arg("-c").arg(format!(
        "from cryptography.hazmat.primitives.asymmetric import ec;\
         from cryptography.hazmat.primitives import serialization as s;\
         k=ec.generate_private_key(ec.SECP256R1());\
         open({:?},'wb').write(k.private_bytes(s.Encoding.PEM,s.PrivateFormat.PKCS8,s.NoEncryption()))",
        ec.display().to_string()
    )));
    assert_success(&out);
    let out = run(scanfleet()
        .args(["envelope", "sign", "--payload-type", "t", "--key"])
        .arg(&ec)
        .arg(&fx.envelope));
    assert_fails_with(
        &out,
        2,
        "key algorithm is 1.2.840.10045.2.1 (EC), expected Ed25519",
    );

    // A private key where a public key belongs.
    let out = run(scanfleet()
        .args(["envelope", "verify", "--key"])
        .arg(&fx.private)
        .arg(&fx.envelope));
    assert_fails_with(&out, 2, "labelled \"PRIVATE KEY\", expected \"PUBLIC KEY\"");
}

#[test]
fn invalid_base64_is_named_by_field() {
    let fx = fixture();
    let mut wire = envelope_json(&fx);
    wire["payload"] = "not base64!".into();
    let bad = fx.dir.path().join("bad64.json");
    std::fs::write(&bad, wire.to_string()).unwrap();
    assert_fails_with(
        &verify(&fx, &bad),
        2,
        "payload is not valid standard base64",
    );
}

#[test]
fn an_envelope_without_signatures_is_rejected() {
    let fx = fixture();
    let mut wire = envelope_json(&fx);
    wire["signatures"] = serde_json::json!([]);
    let bad = fx.dir.path().join("unsigned.json");
    std::fs::write(&bad, wire.to_string()).unwrap();
    assert_fails_with(&verify(&fx, &bad), 1, "envelope has no signatures");
}

#[test]
fn an_unknown_key_id_is_rejected_and_named() {
    let fx = fixture();
    let mut wire = envelope_json(&fx);
    wire["signatures"][0]["keyid"] = "00".repeat(32).into();
    let bad = fx.dir.path().join("unknown.json");
    std::fs::write(&bad, wire.to_string()).unwrap();
    assert_fails_with(
        &verify(&fx, &bad),
        1,
        &format!(
            "no signature is by a trusted key (envelope key ids: {})",
            "00".repeat(32)
        ),
    );
}

#[test]
fn oversized_files_are_refused_before_reading() {
    let fx = fixture();
    let big = fx.dir.path().join("big.json");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(17 * 1024 * 1024).unwrap(); // sparse, over the 16 MiB default
    assert_fails_with(&verify(&fx, &big), 2, "over the 16777216-byte limit");

    let out = run(scanfleet()
        .args(["envelope", "verify", "--max-bytes", "100", "--key"])
        .arg(&fx.public)
        .arg(&fx.envelope));
    assert_fails_with(&out, 2, "over the 100-byte limit");
}

#[test]
fn malformed_json_reports_the_position() {
    let fx = fixture();
    let bad = fx.dir.path().join("broken.json");
    std::fs::write(&bad, "{\"payload\": \"aGk=\",\n \"payloadType\": 7}").unwrap();
    let out = verify(&fx, &bad);
    assert_fails_with(&out, 2, "not a DSSE envelope");
    assert_fails_with(&out, 2, "line 2");
}

#[test]
fn bad_age_recipients_and_identities_are_named() {
    let fx = fixture();
    let out = run(scanfleet()
        .args([
            "envelope",
            "encrypt",
            "--armor",
            "--recipient",
            "age1notakey",
        ])
        .arg(&fx.envelope));
    assert_fails_with(&out, 2, "recipient 0: not an age X25519 recipient");

    let identity = fx.dir.path().join("id.txt");
    std::fs::write(&identity, "# created: today\nAGE-SECRET-KEY-1NOPE\n").unwrap();
    let out = run(scanfleet()
        .args(["envelope", "decrypt", "--identity"])
        .arg(&identity)
        .arg(&fx.envelope));
    assert_fails_with(&out, 2, "identity file line 2");
}

#[test]
fn missing_files_and_existing_keys_are_clear_errors() {
    let fx = fixture();
    let missing = fx.dir.path().join("nope.json");
    assert_fails_with(&verify(&fx, &missing), 2, "nope.json");

    let out = run(scanfleet()
        .args(["keys", "generate", "--out-dir"])
        .arg(fx.private.parent().unwrap()));
    assert_fails_with(&out, 2, "refusing to overwrite a key");
}
