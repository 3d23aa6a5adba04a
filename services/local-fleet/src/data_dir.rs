//! The data directory: everything the fleet keeps (NATS store, SQLite
//! results, signing keys, logs, kubesim's audit log). Given with
//! `--data-dir`, it survives restarts, so a second start picks up the
//! backlog of the first; without it, a temporary directory is removed at
//! exit.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The data directory and the paths inside it.
pub struct DataDir {
    root: PathBuf,
    /// Kept only to remove the temporary directory on drop.
    _temp: Option<tempfile::TempDir>,
}

impl DataDir {
    /// Uses `given` (created if missing) or a new temporary directory.
    ///
    /// # Errors
    /// When the directory or its `logs/` cannot be created.
    pub fn open(given: Option<&Path>) -> Result<Self> {
        let (root, temp) = match given {
            Some(dir) => (dir.to_path_buf(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("scanfleet-dev-")
                    .tempdir()
                    .context("creating a temporary data directory")?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let dir = Self { root, _temp: temp };
        std::fs::create_dir_all(dir.logs())
            .with_context(|| format!("creating {}", dir.logs().display()))?;
        Ok(dir)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// One log file per child, appended across restarts.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// nats-server's JetStream store.
    pub fn nats_store(&self) -> PathBuf {
        self.root.join("nats")
    }

    /// The bus's TLS files and identities (see [`crate::bus_credentials`]).
    pub fn bus(&self) -> PathBuf {
        self.root.join("bus")
    }

    /// The collector's SQLite database.
    pub fn results_db(&self) -> PathBuf {
        self.root.join("results.db")
    }

    /// The signing keys (see [`crate::signing_keys`]).
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// kubesim's cluster-admin kubeconfig (0600, rewritten on every start).
    pub fn kubeconfig(&self) -> PathBuf {
        self.root.join("kubesim-admin.kubeconfig")
    }

    /// kubesim's audit log: one JSON line per API request, appended across
    /// restarts, so a user can see exactly what the scanner did.
    pub fn audit_log(&self) -> PathBuf {
        self.root.join("kubesim-audit.jsonl")
    }

    /// The workers' YAML settings.
    pub fn worker_config(&self) -> PathBuf {
        self.root.join("worker.yml")
    }
}
