//! A headless Chromium driven through chromedriver's W3C WebDriver HTTP
//! API (plain HTTP on loopback), just enough for the dashboard's browser
//! test: navigate, find, type, click, run a script, take a screenshot.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use scanfleet_test_harness::https::parse_response;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One HTTP response, read up to its Content-Length: chromedriver keeps
/// the connection open whatever `Connection: close` asks, so reading to
/// the end would wait forever.
async fn read_response(stream: &mut tokio::net::TcpStream) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| format!("a response without Content-Length: {head}"))?;
            if raw.len() >= split + 4 + length {
                raw.truncate(split + 4 + length);
                return Ok(raw);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(120), stream.read(&mut chunk))
            .await
            .map_err(|_| "WebDriver did not answer within 120 s".to_owned())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!(
                "WebDriver closed the connection mid-response: {}",
                String::from_utf8_lossy(&raw)
            ));
        }
        raw.extend_from_slice(&chunk[..n]);
    }
}

/// A chromedriver process; killed on drop.
pub struct ChromeDriver {
    child: Child,
    addr: SocketAddr,
}

impl ChromeDriver {
    /// Starts `/usr/bin/chromedriver` (Debian's chromium-driver, installed
    /// by scripts/setup) and waits until it is ready.
    pub async fn start() -> Self {
        let binary = scanfleet_test_harness::system_tool("chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian chromium-driver; run scripts/setup)");
        let driver = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(v) = driver.try_call("GET", "/status", None).await
                && v["value"]["ready"] == true
            {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver not ready in 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let raw = read_response(&mut stream).await?;
        let response = parse_response(&raw)?;
        let value = response.json();
        if response.status != 200 {
            return Err(format!("{method} {path}: {} {value}", response.status));
        }
        Ok(value)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver: {e}"))["value"]
            .take()
    }

    /// A new headless browser session that trusts exactly one server key:
    /// `spki_pin` is the base64 SHA-256 of the collector certificate's
    /// SubjectPublicKeyInfo (Chromium's `--ignore-certificate-errors-spki-list`),
    /// so the test CA needs no NSS database and no other certificate error
    /// is waved through, unlike `acceptInsecureCerts`.
    pub async fn session(&self, spki_pin: &str) -> Browser<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": scanfleet_test_harness::system_tool("chromium").display().to_string(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1024",
                         format!("--ignore-certificate-errors-spki-list={spki_pin}")]
            }
        }}});
        let v = self.call("POST", "/session", Some(caps)).await;
        Browser {
            driver: self,
            id: v["sessionId"].as_str().expect("a session id").to_owned(),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `--ignore-certificate-errors-spki-list` pin of the key in the PEM
/// file `key_pem`: base64 of the SHA-256 of its SubjectPublicKeyInfo.
pub fn spki_pin(key_pem: &std::path::Path) -> String {
    use sha2::Digest;
    let pem = std::fs::read_to_string(key_pem).expect("the server key");
    let key = rcgen::KeyPair::from_pem(&pem).expect("a PEM private key");
    use rcgen::PublicKeyData;
    base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(key.subject_public_key_info()))
}

/// One browser session.
pub struct Browser<'a> {
    driver: &'a ChromeDriver,
    id: String,
}

impl Browser<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.driver
            .call(method, &format!("/session/{}{path}", self.id), body)
            .await
    }

    /// Loads `url` and waits for it.
    pub async fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's HTML as the browser holds it.
    pub async fn source(&self) -> String {
        self.call("GET", "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    /// Types `text` into the element `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})))
            .await;
    }

    /// Runs `script` (a function body) and returns what it returns.
    pub async fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Runs an async `script` that calls `arguments[0]` with its result.
    pub async fn run_async(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.call("GET", "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .unwrap()
    }

    /// Ends the session.
    pub async fn quit(self) {
        self.call("DELETE", "", None).await;
    }
}
