//! Records the git commit the services are built from, for the
//! `scanfleet_<service>_build_info` metric. `SCANFLEET_GIT_COMMIT` wins (a
//! build from a source tarball has no `.git`); without either, "unknown".

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=SCANFLEET_GIT_COMMIT");
    let commit = std::env::var("SCANFLEET_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            // Rebuild when HEAD moves: its reflog changes on every commit and
            // checkout of this work tree.
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
                let dir = PathBuf::from(dir);
                for file in ["HEAD", "logs/HEAD"] {
                    println!("cargo:rerun-if-changed={}", dir.join(file).display());
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"])
        });
    if let Some(commit) = commit {
        let clean: String = commit
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
            .take(64)
            .collect();
        println!("cargo:rustc-env=SCANFLEET_BUILD_COMMIT={clean}");
    }
}
