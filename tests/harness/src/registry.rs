//! A real CNCF Distribution registry (`docker-registry`, installed by
//! `scripts/setup`) on a loopback port, with TLS from a throwaway CA,
//! htpasswd basic auth or the bearer-token flow (a
//! [`TokenServer`](crate::registry_token::TokenServer)) and optionally a
//! notifications endpoint; plus
//! `umoci` to build small OCI layouts and `skopeo` to push them.
//!
//! The registry process is killed and its storage removed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry_token::{TOKEN_ISSUER, TOKEN_SERVICE, TokenServer};
use crate::{run, system_tool, text};

/// A throwaway CA and a server certificate for 127.0.0.1 and localhost.
pub struct TestPki {
    /// CA certificate (PEM).
    pub ca: PathBuf,
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Server key (PEM).
    pub key: PathBuf,
    /// A directory with `ca.crt`, as skopeo's `--cert-dir` wants.
    pub cert_dir: PathBuf,
}

impl TestPki {
    /// Writes a fresh CA and server pair into `dir`.
    pub fn new(dir: &Path) -> Self {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "scanfleet registry test CA");
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let cert_dir = dir.join("certs.d");
        std::fs::create_dir_all(&cert_dir).unwrap();
        std::fs::write(cert_dir.join("ca.crt"), ca.pem()).unwrap();
        Self {
            ca: write("ca.pem", ca.pem()),
            cert: write("server.pem", server.pem()),
            key: write("server.key", key.serialize_pem()),
            cert_dir,
        }
    }
}

/// Where the registry sends notifications.
pub struct Notifications {
    /// The endpoint URL.
    pub url: String,
    /// A header sent with every notification, e.g. a shared secret.
    pub header: (String, String),
    /// The CA bundle the endpoint's TLS certificate chains to (the
    /// registry, a Go program, reads it from `SSL_CERT_FILE`).
    pub ca_file: Option<std::path::PathBuf>,
}

/// A running registry.
pub struct TestRegistry {
    child: Child,
    /// Its address.
    pub addr: SocketAddr,
    /// Its TLS material.
    pub pki: TestPki,
    /// The user and password it accepts.
    pub user: (String, String),
    /// The token server, when the registry uses the bearer-token flow.
    pub token_server: Option<TokenServer>,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bcrypt hash (what Distribution's htpasswd wants) from libcrypt.
fn bcrypt(password: &str) -> String {
    let out = run(Command::new("python3").args([
        "-W",
        "ignore",
        "-c",
        "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))",
        password,
    ]));
    assert!(out.status.success(), "bcrypt: {}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

impl TestRegistry {
    /// Starts a registry accepting `user`/`password` by basic auth.
    pub fn start(user: &str, password: &str, notifications: Option<Notifications>) -> Self {
        Self::start_with(user, password, notifications, false)
    }

    /// Starts a registry whose clients get bearer tokens from a
    /// [`TokenServer`] accepting `user`/`password`.
    pub fn start_with_token_auth(
        user: &str,
        password: &str,
        notifications: Option<Notifications>,
    ) -> Self {
        Self::start_with(user, password, notifications, true)
    }

    fn start_with(
        user: &str,
        password: &str,
        notifications: Option<Notifications>,
        token_auth: bool,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path());
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let token_server =
            token_auth.then(|| TokenServer::start(dir.path(), &pki.cert, &pki.key, user, password));
        let auth = match &token_server {
            Some(t) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                t.realm(),
                t.signing_cert.display()
            ),
            None => {
                std::fs::write(
                    dir.path().join("htpasswd"),
                    format!("{user}:{}\n", bcrypt(password)),
                )
                .unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: scanfleet-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                )
            }
        };
        let notify_ca = notifications.as_ref().and_then(|n| n.ca_file.clone());
        let notify = notifications
            .map(|n| {
                format!(
                    "notifications:\n  endpoints:\n    - name: intake\n      url: {}\n      headers:\n        {}: [{:?}]\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n",
                    n.url, n.header.0, n.header.1
                )
            })
            .unwrap_or_default();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  tls:\n    certificate: {cert}\n    key: {key}\n{auth}{notify}",
            data = dir.path().join("data").display(),
            cert = pki.cert.display(),
            key = pki.key.display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let mut command = Command::new(system_tool("docker-registry"));
        if let Some(ca) = notify_ca {
            command.env("SSL_CERT_FILE", ca);
        }
        let child = command
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("docker-registry starts (scripts/setup installs it)");
        let registry = Self {
            child,
            addr,
            pki,
            user: (user.into(), password.into()),
            token_server,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not listen on {addr}: {}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Pushes `layout:tag` (an OCI layout) to `repo:tag`, returning the
    /// manifest digest skopeo reports.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str) -> String {
        let digest_file = self.dir.path().join(format!("digest-{}", free_port()));
        let out = run(Command::new(system_tool("skopeo"))
            .args(["copy", "--quiet", "--dest-cert-dir"])
            .arg(&self.pki.cert_dir)
            .arg("--dest-creds")
            .arg(format!("{}:{}", self.user.0, self.user.1))
            .arg("--digestfile")
            .arg(&digest_file)
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.host())));
        assert!(out.status.success(), "skopeo copy: {}", text(&out.stderr));
        std::fs::read_to_string(digest_file)
            .unwrap()
            .trim()
            .to_owned()
    }
}

impl TestRegistry {
    /// Reads `repo@digest`'s manifest and config back with `skopeo inspect`
    /// (a client pulling it), returning what skopeo prints.
    pub fn inspect(&self, repo: &str, digest: &str) -> String {
        let out = self.skopeo("inspect", &format!("{repo}@{digest}"));
        text(&out.stdout)
    }

    /// Deletes the manifest `repo@digest` with `skopeo delete`.
    pub fn delete(&self, repo: &str, digest: &str) {
        self.skopeo("delete", &format!("{repo}@{digest}"));
    }

    fn skopeo(&self, verb: &str, reference: &str) -> std::process::Output {
        let out = run(Command::new(system_tool("skopeo"))
            .args([verb, "--cert-dir"])
            .arg(&self.pki.cert_dir)
            .arg("--creds")
            .arg(format!("{}:{}", self.user.0, self.user.1))
            .arg(format!("docker://{}/{reference}", self.host())));
        assert!(out.status.success(), "skopeo {verb}: {}", text(&out.stderr));
        out
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds an OCI layout at `layout` with tag `tag` whose one layer holds
/// `files` (path inside the image, contents, mode), using umoci.
pub fn build_layout(layout: &Path, tag: &str, files: &[(&str, &[u8], u32)]) {
    build_layout_with(layout, tag, |rootfs| {
        for (path, contents, mode) in files {
            use std::os::unix::fs::PermissionsExt as _;
            let host = rootfs.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(host.parent().unwrap()).unwrap();
            std::fs::write(&host, contents).unwrap();
            std::fs::set_permissions(&host, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
    });
}

/// Builds an OCI layout at `layout` with tag `tag` whose one layer is what
/// `fill` writes into the (empty) root filesystem it is given, using umoci.
pub fn build_layout_with(layout: &Path, tag: &str, fill: impl FnOnce(&Path)) {
    let umoci = system_tool("umoci");
    let image = format!("{}:{tag}", layout.display());
    if !layout.join("index.json").exists() {
        let out = run(Command::new(&umoci).arg("init").arg("--layout").arg(layout));
        assert!(out.status.success(), "umoci init: {}", text(&out.stderr));
    }
    let out = run(Command::new(&umoci).args(["new", "--image", &image]));
    assert!(out.status.success(), "umoci new: {}", text(&out.stderr));
    let bundle = tempfile::tempdir().unwrap();
    let bundle_dir = bundle.path().join("b");
    let out = run(Command::new(&umoci)
        .args(["unpack", "--image", &image])
        .arg(&bundle_dir));
    assert!(out.status.success(), "umoci unpack: {}", text(&out.stderr));
    fill(&bundle_dir.join("rootfs"));
    let out = run(Command::new(&umoci)
        .args(["repack", "--image", &image])
        .arg(&bundle_dir));
    assert!(out.status.success(), "umoci repack: {}", text(&out.stderr));
}
