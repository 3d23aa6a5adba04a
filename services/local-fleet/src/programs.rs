//! Where the fleet's programs are: the scanfleet binaries and kubesim next to
//! this executable (cargo builds them into one directory), nats-server from
//! the repository's pinned tools, and the repository's profiles.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

/// Every program and directory the fleet runs from.
#[derive(Debug, Clone)]
pub struct Programs {
    /// JetStream server.
    pub nats_server: PathBuf,
    /// The Kubernetes API stand-in.
    pub kubesim: PathBuf,
    /// `scanfleet-intake`.
    pub intake: PathBuf,
    /// `scanfleet-worker`.
    pub worker: PathBuf,
    /// `scanfleet-collector`.
    pub collector: PathBuf,
    /// The operator CLI, for the commands printed to the user; `None` when
    /// it was not built.
    pub cli: Option<PathBuf>,
    /// The repository's `profiles/` directory.
    pub profiles: PathBuf,
}

impl Programs {
    /// Finds everything, or says what is missing and how to get it.
    ///
    /// # Errors
    /// When a program or the profiles are missing.
    pub fn locate() -> Result<Self> {
        let exe = std::env::current_exe()?;
        Ok(Self {
            nats_server: tool(
                &exe,
                "SCANFLEET_NATS_SERVER",
                "venv/bin/nats-server",
                "nats-server",
            )?,
            kubesim: sibling(&exe, "kubesim")?,
            intake: sibling(&exe, "scanfleet-intake")?,
            worker: sibling(&exe, "scanfleet-worker")?,
            collector: sibling(&exe, "scanfleet-collector")?,
            cli: sibling(&exe, "scanfleet").ok(),
            profiles: repo_profiles(&exe)?,
        })
    }
}

/// A binary built next to this executable.
fn sibling(exe: &Path, name: &str) -> Result<PathBuf> {
    let path = exe.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(anyhow!(
            "{name} not found next to {}; build everything with `cargo build --bins`",
            exe.display()
        ))
    }
}

/// The repository's pinned tool (`$env` first, then `.tools/` found from
/// this executable upwards, then `$PATH`).
fn tool(exe: &Path, env: &str, relative: &str, bare: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    for dir in exe.ancestors() {
        let candidate = dir.join(".tools").join(relative);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join(bare).is_file() {
            return Ok(dir.join(bare));
        }
    }
    bail!("{bare} not found: run scripts/setup, or set {env}")
}

fn repo_profiles(exe: &Path) -> Result<PathBuf> {
    exe.ancestors()
        .map(|d| d.join("profiles"))
        .find(|p| p.join("container-baseline/inspec.yml").is_file())
        .ok_or_else(|| {
            anyhow!(
                "the profiles/ directory was not found above {}",
                exe.display()
            )
        })
}
