//! age encryption interop with the reference `age` CLI, both ways.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

/// A key pair made by the reference `age-keygen`: (identity file, recipient).
fn age_keygen(dir: &Path) -> (std::path::PathBuf, String) {
    let key = dir.join("age.key");
    let out = run(Command::new(system_tool("age-keygen")).arg("-o").arg(&key));
    assert_success(&out);
    let out = run(Command::new(system_tool("age-keygen")).arg("-y").arg(&key));
    assert_success(&out);
    (key, text(&out.stdout).trim().to_owned())
}

#[test]
fn scanfleet_encrypts_and_the_age_cli_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keygen(dir.path());
    let (_, other_recipient) = {
        let sub = dir.path().join("other");
        std::fs::create_dir(&sub).unwrap();
        age_keygen(&sub)
    };
    let plain = dir.path().join("envelope.json");
    std::fs::write(&plain, statement_json()).unwrap();

    for armor in [false, true] {
        let encrypted = dir.path().join(format!("enc-{armor}.age"));
        let mut cmd = scanfleet();
        cmd.args([
            "envelope",
            "encrypt",
            "--recipient",
            &other_recipient,
            "--recipient",
            &recipient,
        ]);
        if armor {
            cmd.arg("--armor");
        }
        let out = run(cmd.arg(&plain).arg("--out").arg(&encrypted));
        assert_success(&out);
        let head = std::fs::read(&encrypted).unwrap();
        assert_eq!(
            head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"),
            armor
        );

        let out = run(Command::new(system_tool("age"))
            .arg("-d")
            .arg("-i")
            .arg(&identity)
            .arg(&encrypted));
        assert_success(&out);
        assert_eq!(out.stdout, std::fs::read(&plain).unwrap());
    }
}

#[test]
fn the_age_cli_encrypts_and_scanfleet_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keygen(dir.path());
    let plain = dir.path().join("envelope.json");
    std::fs::write(&plain, statement_json()).unwrap();

    for armor in [false, true] {
        let encrypted = dir.path().join(format!("cli-{armor}.age"));
        let mut cmd = Command::new(system_tool("age"));
        cmd.arg("-r").arg(&recipient);
        if armor {
            cmd.arg("-a");
        }
        let out = run(cmd.arg("-o").arg(&encrypted).arg(&plain));
        assert_success(&out);

        let out = run(scanfleet()
            .args(["envelope", "decrypt", "--identity"])
            .arg(&identity)
            .arg(&encrypted));
        assert_success(&out);
        assert_eq!(out.stdout, std::fs::read(&plain).unwrap());
    }
}

#[test]
fn decrypting_with_the_wrong_identity_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keygen(dir.path());
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (wrong_identity, _) = age_keygen(&other);
    let plain = dir.path().join("p");
    std::fs::write(&plain, "x").unwrap();
    let encrypted = dir.path().join("p.age");
    let out = run(Command::new(system_tool("age"))
        .arg("-r")
        .arg(&recipient)
        .arg("-o")
        .arg(&encrypted)
        .arg(&plain));
    assert_success(&out);

    let out = run(scanfleet()
        .args(["envelope", "decrypt", "--identity"])
        .arg(&wrong_identity)
        .arg(&encrypted));
    assert_fails_with(&out, 2, "cannot decrypt");
}
