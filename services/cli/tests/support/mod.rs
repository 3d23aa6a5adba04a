//! Helpers shared by the CLI's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[allow(unused_imports)]
pub use scanfleet_test_harness::{installed_tool, run, system_tool, text, venv_python};

/// The `scanfleet` binary built for this test run.
pub fn scanfleet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scanfleet"))
}

/// The securesystemslib oracle script.
pub fn oracle() -> Command {
    let mut cmd = Command::new(venv_python());
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dsse_oracle.py"));
    cmd
}

/// A fresh key pair in `dir/name`, returning (private, public, key id).
pub fn generate_keys(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let out_dir = dir.join(name);
    let out = run(scanfleet()
        .args(["keys", "generate", "--out-dir"])
        .arg(&out_dir));
    assert_success(&out);
    (
        out_dir.join("signing.pem"),
        out_dir.join("signing.pub.pem"),
        text(&out.stdout).trim().to_owned(),
    )
}

/// Fails the test with both output streams unless the command exited 0.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "expected success, got {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Asserts an exit code and that stderr names the problem, and that the
/// process did not panic (Rust panics exit 101 and print "panicked").
pub fn assert_fails_with(out: &Output, code: i32, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {stderr}",
        text(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        stderr.contains(needle),
        "stderr should mention {needle:?}:\n{stderr}"
    );
}

/// A small in-toto statement about an image, as real results carry.
pub fn statement_json() -> String {
    serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "registry.local/shop/web", "digest": {"sha256": "ab".repeat(32)}}],
        "predicateType": "https://scanfleet.dev/attestations/scan-result/v1",
        "predicate": {"scanId": "01JDQ2Z8Y6W5M3N4P7R9S0T1V2", "outcome": "completed"}
    })
    .to_string()
}

/// What the CLI needs to call a test's secured fleet: the CA bundle and a
/// token file (0600), handed over the way a user would, through
/// `SCANFLEET_CA_FILE` and `SCANFLEET_TOKEN_FILE`.
pub struct CliIdentity {
    /// The CA bundle.
    pub ca_file: PathBuf,
    /// The operator's token, in a file.
    pub token_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl CliIdentity {
    /// The operator of `creds`.
    pub fn operator(creds: &scanfleet_test_harness::credentials::TestCredentials) -> Self {
        Self::with_token(creds, creds.operator())
    }

    /// Whoever `token` belongs to.
    pub fn with_token(
        creds: &scanfleet_test_harness::credentials::TestCredentials,
        token: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        scanfleet_test_harness::write_private(&token_file, token.as_bytes());
        Self {
            ca_file: creds.pki.ca_file(),
            token_file,
            _dir: dir,
        }
    }

    /// Adds the environment to `cmd`.
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("SCANFLEET_CA_FILE", &self.ca_file)
            .env("SCANFLEET_TOKEN_FILE", &self.token_file)
            .env_remove("SCANFLEET_CONFIG")
    }
}
