//! A throwaway PostgreSQL 15 cluster for one test: initdb in a temp dir (as
//! the `postgres` user, because initdb refuses root), a random loopback port,
//! and `pg_ctl stop` plus removal on drop. `stop`/`start` simulate outages.

use std::path::PathBuf;
use std::process::Command;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL cluster with trust auth on 127.0.0.1.
pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

fn pg(tool: &str) -> PathBuf {
    let path = PathBuf::from(PG_BIN).join(tool);
    assert!(
        path.exists(),
        "{} is missing; run scripts/setup (it installs postgresql-15)",
        path.display()
    );
    path
}

fn as_postgres(tool: &str, args: &[String]) -> std::process::Output {
    let mut command = Command::new("runuser");
    command
        .args(["-u", "postgres", "--"])
        .arg(pg(tool))
        .args(args);
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} as postgres: {e}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl Postgres {
    /// Creates and starts a cluster.
    ///
    /// # Panics
    /// When not root, when PostgreSQL 15 is missing, or when it cannot start.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("scanfleet-pg-")
            .tempdir()
            .expect("temp dir");
        let chown = Command::new("chown")
            .arg("-R")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(
            chown.success(),
            "cannot chown the PostgreSQL dir to postgres; tests must run as root"
        );
        let data = dir.path().join("data");
        let out = as_postgres(
            "initdb",
            &[
                "-D".into(),
                data.display().to_string(),
                "-A".into(),
                "trust".into(),
                "-U".into(),
                "postgres".into(),
                "-E".into(),
                "UTF8".into(),
                "--locale=C.UTF-8".into(),
                "--no-sync".into(),
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Self {
            dir,
            port: free_port(),
            running: false,
        };
        pg.start_again();
        pg
    }

    /// Starts the stopped cluster on the same port (an outage ending).
    ///
    /// # Panics
    /// When the server does not start.
    pub fn start_again(&mut self) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let out = as_postgres(
            "pg_ctl",
            &[
                "-D".into(),
                data.display().to_string(),
                "-l".into(),
                log.display().to_string(),
                "-w".into(),
                "-o".into(),
                options,
                "start".into(),
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
    }

    /// Stops the cluster (fast shutdown), keeping its data.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            "pg_ctl",
            &[
                "-D".into(),
                data.display().to_string(),
                "-m".into(),
                "fast".into(),
                "-w".into(),
                "stop".into(),
            ],
        );
        self.running = false;
    }

    /// The cluster's data directory (tables, WAL), for tests that check
    /// what is written to disk.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// A connection URL for database `postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
