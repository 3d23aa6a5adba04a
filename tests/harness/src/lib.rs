//! Shared plumbing for scanfleet's integration and end-to-end tests.
//!
//! Tests never skip because a tool is missing: `scripts/setup` installs every
//! tool into `.tools/`, and a test that cannot find one fails with a message
//! that says how to fix it. This crate holds only that lookup and small helpers
//! for running external commands, plus one module per real server the tests
//! start (`nats`: a nats-server on a random loopback port with a temp store;
//! `postgres`: a throwaway PostgreSQL 15 cluster the same way; `secure_bus`:
//! that nats-server with TLS, the shipped per-service identities and the
//! bootstrapped topology, in one line), and `rootfs` for the scan engine's
//! ground-truth fixtures and live containers.
//! `pki` makes throwaway CAs and certificates for the services' TLS, and
//! `https` is a small client for their HTTP edges; `callers` makes real
//! identities on kubesim (ServiceAccounts, Roles on scanfleet.dev, tokens);
//! `credentials` bundles what a test's services and clients share.

pub mod callers;
pub mod credentials;
pub mod fleet;
pub mod https;
pub mod nats;
pub mod pki;
pub mod postgres;
pub mod registry;
pub mod registry_token;
pub mod rootfs;
pub mod secure_bus;
pub mod slow_clients;
pub mod webhook_sink;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root, derived from this crate's manifest location so tests
/// work from any current directory (nextest runs each test binary from its
/// crate directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/harness sits two levels below the repository root")
        .to_path_buf()
}

/// The folder `scripts/setup` installs pinned tools into.
pub fn tools_dir() -> PathBuf {
    repo_root().join(".tools")
}

/// Path of a tool installed by `scripts/setup`, relative to `.tools/`.
///
/// # Panics
/// When the tool is missing: the test must fail loudly, never skip.
pub fn installed_tool(relative: &str) -> PathBuf {
    let path = tools_dir().join(relative);
    assert!(
        path.exists(),
        "{} is missing; run scripts/setup (it installs every pinned test tool)",
        path.display()
    );
    path
}

/// Path of a system tool that `scripts/setup` installs from Debian.
///
/// # Panics
/// When the tool is not on any of the usual system paths.
pub fn system_tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/sbin"] {
        let candidate = Path::new(dir).join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    panic!("{name} is not installed; run scripts/setup (it installs it from Debian)");
}

/// The project's Python venv interpreter, which has the pinned verifiers.
pub fn venv_python() -> PathBuf {
    installed_tool("venv/bin/python")
}

/// Runs a command to completion, failing the test with its full output when it
/// cannot be started.
///
/// # Panics
/// When the program cannot be spawned.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Lossy text of an output stream, for assertions and failure messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A plain HTTP/1.0 GET against a loopback port: (status code, body).
/// Enough for health, metrics and JSON endpoints without an HTTP client
/// dependency.
///
/// # Panics
/// When the server cannot be reached or answers something that is not HTTP.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("set timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

/// Writes a secret test file (a key, a kubeconfig) the way the services
/// demand it: mode 0600, created fresh, never over an existing file.
///
/// # Panics
/// When the file exists or cannot be written.
pub fn write_private(path: &Path, contents: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(contents)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
