//! A real nats-server with JetStream for one test: random loopback ports, a
//! private store directory, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::installed_tool;

/// Production-like settings: TLS on the client port and user accounts.
/// [`crate::secure_bus::SecureBus`] puts them together the way the fleet
/// runs.
#[derive(Clone, Debug, Default)]
pub struct NatsOptions {
    /// Server certificate and key PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// A CA bundle the server verifies client certificates against (mutual
    /// TLS: clients without a certificate it signed are refused).
    pub client_ca: Option<PathBuf>,
    /// (user, password) pairs; when non-empty, anonymous clients are refused.
    pub users: Vec<(String, String)>,
    /// Configuration files (name, text) written next to the server's own
    /// and included by it, e.g. the shipped authorization block.
    pub includes: Vec<(String, String)>,
    /// Environment variables of the server process (the configuration's
    /// `$VARIABLES`, such as the identities' public nkeys).
    pub env: Vec<(String, String)>,
}

/// A running nats-server. Dropping it kills the process and removes its
/// store; `restart` keeps the store and the port, like a real server restart.
pub struct NatsServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    monitor_port: u16,
    options: NatsOptions,
}

impl NatsServer {
    /// Starts a JetStream-enabled server on random loopback ports.
    ///
    /// # Panics
    /// When nats-server is not installed or does not come up within 20 s.
    pub fn start() -> Self {
        Self::start_with(NatsOptions::default())
    }

    /// Starts a server with TLS and/or user accounts.
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_with(options: NatsOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("scanfleet-nats-")
            .tempdir()
            .expect("temp dir");
        let mut server = Self {
            child: None,
            dir,
            port: 0,
            monitor_port: 0,
            options,
        };
        server.spawn(None);
        server
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("server.conf")
    }

    fn spawn(&mut self, ports: Option<(u16, u16)>) {
        let store = self.dir.path().join("store");
        // Fixed JetStream limits keep tests from sizing themselves off the
        // host (8 GB holds the topology's default stream reservations), and a
        // 1 MiB max payload matches the production default.
        let mut config = format!(
            "jetstream {{ store_dir: {store:?}, max_memory_store: 256MB, max_file_store: 8GB }}\n\
             max_payload: 1MB\n"
        );
        if let Some((cert, key)) = &self.options.tls {
            let verify = self.options.client_ca.as_ref().map_or(String::new(), |ca| {
                format!(", ca_file: {ca:?}, verify: true")
            });
            config.push_str(&format!(
                "tls {{ cert_file: {cert:?}, key_file: {key:?}, timeout: 5{verify} }}\n"
            ));
        }
        for (name, text) in &self.options.includes {
            std::fs::write(self.dir.path().join(name), text).expect("write included config");
            config.push_str(&format!("include {name:?}\n"));
        }
        if !self.options.users.is_empty() {
            config.push_str("authorization { users: [\n");
            for (user, password) in &self.options.users {
                config.push_str(&format!("  {{ user: {user:?}, password: {password:?} }}\n"));
            }
            config.push_str("] }\n");
        }
        std::fs::write(self.config_path(), config).expect("write nats config");
        let ports_dir = self.dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir).expect("ports dir");
        let (port, monitor) = ports.map_or(("-1".to_owned(), "-1".to_owned()), |(p, m)| {
            (p.to_string(), m.to_string())
        });
        let child = Command::new(installed_tool("venv/bin/nats-server"))
            .args(["-a", "127.0.0.1", "-p", &port, "-m", &monitor, "-c"])
            .arg(self.config_path())
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        let pid = child.id();
        self.child = Some(child);
        let ports_file = ports_dir.join(format!("nats-server_{pid}.ports"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((p, m)) = read_ports(&ports_file) {
                self.port = p;
                self.monitor_port = m;
                break;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "nats-server exited early ({status}); log:\n{}",
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not write its ports file within 20 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.wait_until_ready(deadline);
    }

    /// JetStream answers only after it has recovered its store; poll the
    /// health endpoint instead of guessing.
    fn wait_until_ready(&self, deadline: Instant) {
        loop {
            if http_get_ok(self.monitor_port, "/healthz?js-enabled-only=true") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server not healthy within 20 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `nats://127.0.0.1:<port>`, or `tls://` when TLS is on.
    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "tls"
        } else {
            "nats"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The server log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The store directory, to show data survives restarts.
    pub fn store_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server (SIGKILL, like a crash) without removing its store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports with the same store.
    pub fn restart(&mut self) {
        self.kill();
        let ports = (self.port, self.monitor_port);
        self.spawn(Some(ports));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_ports(path: &Path) -> Option<(u16, u16)> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let port = |key: &str| -> Option<u16> {
        let url = json[key][0].as_str()?;
        url.rsplit(':').next()?.parse().ok()
    };
    Some((port("nats")?, port("monitoring")?))
}

fn http_get_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
}
