//! The conventions every command shares: completion scripts and man pages
//! generated from the command definitions, `--version` naming the commit,
//! and exit status 3 when a cluster does not answer.

mod support;

use support::{assert_fails_with, assert_success, run, scanfleet, text};

#[test]
fn completion_scripts_cover_every_shell_and_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run(scanfleet().args(["completion", shell]));
        assert_success(&out);
        let script = text(&out.stdout);
        for word in ["scanfleet", "results", "profile", "watch", "output"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = run(scanfleet().args(["completion", "tcsh"]));
    assert_fails_with(&out, 2, "invalid value 'tcsh'");
}

#[test]
fn man_pages_are_written_for_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(scanfleet().args(["man", "--out-dir"]).arg(dir.path()));
    assert_success(&out);
    for page in [
        "scanfleet.1",
        "scanfleet-scan.1",
        "scanfleet-results-list.1",
        "scanfleet-profile-check.1",
        "scanfleet-bus-init.1",
    ] {
        let body = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(body.contains(".TH"), "{page} is not a man page");
    }
    let top = std::fs::read_to_string(dir.path().join("scanfleet.1")).unwrap();
    assert!(
        top.contains("Exit status"),
        "the exit statuses are in the page"
    );
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = run(scanfleet().arg("--version"));
    assert_success(&out);
    let version = text(&out.stdout);
    let head = run(std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]));
    assert_success(&head);
    let commit = text(&head.stdout).trim().to_owned();
    assert!(
        version.starts_with(&format!(
            "scanfleet {} (commit {commit}, built ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );
}

/// A kubeconfig that passes every check but whose API server is not
/// there: the scan ends with 3 (unavailable), not 2 (bad input).
#[test]
fn an_unreachable_cluster_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let ca = scanfleet_test_harness::pki::TestCa::new("nowhere-ca");
    let pem = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca.pem());
    let kubeconfig = dir.path().join("nowhere.kubeconfig");
    scanfleet_test_harness::write_private(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: nowhere\n  cluster:\n    server: https://127.0.0.1:1\n    certificate-authority-data: {pem}\nusers:\n- name: admin\n  user:\n    token: not-a-real-token\ncontexts:\n- name: nowhere\n  context: {{cluster: nowhere, user: admin}}\ncurrent-context: nowhere\n"
        )
        .as_bytes(),
    );
    let profile = scanfleet_test_harness::repo_root().join("profiles/container-baseline");
    let out = run(scanfleet()
        .args(["scan", "k8s://apps/web-0/web", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--profile")
        .arg(&profile)
        .args(["--deadline", "20"]));
    assert_fails_with(&out, 3, "reading pod apps/web-0");
}
