//! How the CLI presents itself to a secured fleet, against intake and the
//! collector in-process (TLS, callers reviewed on a kubesim): a CLI config
//! file with relative paths works for `submit` and `results`; a reader
//! bound in `apps` is refused in `shop` with the namespace named; no token
//! is 401 with a hint; a client certificate mapped by the collector's
//! config is a reader; a token is never sent over `http://`; `https://`
//! without a CA bundle says so.

mod support;

use clap::Parser;
use scanfleet_bus::BusIdentity;
use scanfleet_test_harness::callers::{Callers, access_cluster};
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::fleet::write_public_key;
use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_test_harness::write_private;
use scanfleet_trust::SigningKey;
use support::*;

struct Fleet {
    _nats: SecureBus,
    sim: kubesim::Kubesim,
    creds: TestCredentials,
    dir: tempfile::TempDir,
    intake: scanfleet_intake::EmbeddedIntake,
    collector: scanfleet_collector::EmbeddedCollector,
}

async fn fleet() -> Fleet {
    let nats = SecureBus::start().await;
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let public = write_public_key(dir.path(), &SigningKey::generate());
    let mapping = dir.path().join("collector.yml");
    std::fs::write(
        &mapping,
        "client_certificate_users:\n  \"CN=ci, O=example\":\n    user: ci\n    groups: [observers]\n",
    )
    .unwrap();
    let mut extra = nats.auth_args(BusIdentity::Collector);
    extra.extend(creds.service_flags());
    extra.extend(["--config".into(), mapping.display().to_string()]);
    let config = scanfleet_collector::config::Config::loopback(
        &nats.url(),
        &format!("sqlite://{}", dir.path().join("r.db").display()),
        &public,
        &extra,
    )
    .unwrap();
    let collector = scanfleet_collector::EmbeddedCollector::start(config)
        .await
        .unwrap();
    let args = std::iter::once("scanfleet-intake".to_owned())
        .chain(nats.args(BusIdentity::Intake))
        .chain(["--cluster", "kubesim", "--grpc-listen", "127.0.0.1:0"].map(String::from))
        .chain(creds.service_flags());
    let config = scanfleet_intake::config::Config::from_args(
        scanfleet_intake::config::Args::parse_from(args),
    )
    .unwrap();
    let intake = scanfleet_intake::EmbeddedIntake::start(config)
        .await
        .unwrap();
    Fleet {
        _nats: nats,
        sim,
        creds,
        dir,
        intake,
        collector,
    }
}

impl Fleet {
    /// Runs the CLI off the async runtime with only `env` set.
    async fn cli(&self, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
        let mut cmd = scanfleet();
        cmd.args(args).env_remove("SCANFLEET_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert!(
            !text(&out.stderr).contains("panicked"),
            "{}",
            text(&out.stderr)
        );
        out
    }

    fn collector(&self) -> String {
        format!("https://{}", self.collector.listening.grpc)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_with_relative_paths_carries_the_identity() {
    let fleet = fleet().await;
    // The file, the CA and the token side by side; the file names them
    // relative to itself.
    let home = fleet.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::copy(fleet.creds.pki.ca_file(), home.join("ca.pem")).unwrap();
    write_private(&home.join("token"), fleet.creds.operator().as_bytes());
    let config = home.join("cli.yaml");
    std::fs::write(
        &config,
        format!(
            "intake: https://{}\ncollector: {}\nca_file: ca.pem\ntoken_file: token\n",
            fleet.intake.grpc,
            fleet.collector()
        ),
    )
    .unwrap();
    let env = [("SCANFLEET_CONFIG", config.display().to_string())];
    let out = fleet.cli(&["submit", "k8s://apps/web-0/web"], &env).await;
    assert_success(&out);
    assert!(text(&out.stdout).contains("k8s://apps/web-0/web"));
    // The hint works when pasted into a shell without the variable: it
    // repeats the config file, so its watch reaches this collector as the
    // operator (no worker runs here, so it times out waiting for the scan).
    let stderr = text(&out.stderr);
    let hint = stderr
        .lines()
        .find_map(|l| l.split_once("follow with: ").map(|(_, hint)| hint))
        .unwrap_or_else(|| panic!("no hint in: {stderr}"));
    let words: Vec<&str> = hint.split_whitespace().collect();
    let id = *words.last().unwrap();
    assert_eq!(
        words[1..words.len() - 1],
        ["watch", "--config", &config.display().to_string()]
    );
    let pasted: Vec<&str> = words[1..]
        .iter()
        .copied()
        .chain(["--timeout", "1"])
        .collect();
    let out = fleet.cli(&pasted, &[]).await;
    assert_fails_with(&out, 1, &format!("still waiting for: {id}"));
    let config_flag = config.display().to_string();
    let out = fleet
        .cli(&["results", "list", "--config", &config_flag], &[])
        .await;
    assert_success(&out);

    let bad = home.join("bad.yaml");
    std::fs::write(&bad, "colector: https://x\n").unwrap();
    let out = fleet
        .cli(&["results", "list", "--config", bad.to_str().unwrap()], &[])
        .await;
    assert_fails_with(&out, 2, "bad.yaml: not a scanfleet CLI config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_what_is_missing() {
    let fleet = fleet().await;
    let reader = Callers::new(&fleet.sim)
        .await
        .caller(
            "apps",
            "reader",
            &["get", "list", "watch"],
            "results",
            &["apps"],
        )
        .await;
    let as_reader = CliIdentity::with_token(&fleet.creds, &reader);
    let env = [
        ("SCANFLEET_COLLECTOR", fleet.collector()),
        ("SCANFLEET_CA_FILE", as_reader.ca_file.display().to_string()),
        (
            "SCANFLEET_TOKEN_FILE",
            as_reader.token_file.display().to_string(),
        ),
    ];
    assert_success(
        &fleet
            .cli(&["results", "list", "--namespace", "apps"], &env)
            .await,
    );
    let out = fleet
        .cli(&["results", "list", "--namespace", "shop"], &env)
        .await;
    assert_fails_with(&out, 2, "in the namespace \"shop\"");
    assert_fails_with(&out, 2, "PermissionDenied");
    assert_fails_with(&out, 2, "ask a cluster admin for a Role on scanfleet.dev");
    // The same reader may not submit.
    let intake = format!("https://{}", fleet.intake.grpc);
    let out = fleet
        .cli(
            &["submit", "--intake", &intake, "k8s://apps/web-0/web"],
            &env,
        )
        .await;
    assert_fails_with(&out, 2, "PermissionDenied");

    let out = fleet.cli(&["results", "list"], &env[..2]).await;
    assert_fails_with(&out, 2, "Unauthenticated");
    assert_fails_with(&out, 2, "give a bearer token (--token-file)");

    let plaintext = format!("http://{}", fleet.collector.listening.grpc);
    let mut over_http = env.clone();
    over_http[0].1 = plaintext.clone();
    let out = fleet.cli(&["results", "list"], &over_http).await;
    assert_fails_with(
        &out,
        2,
        "a bearer token is never sent over plaintext http://",
    );
    let out = fleet.cli(&["results", "list"], &[env[0].clone()]).await;
    assert_fails_with(&out, 2, "TLS needs the CA bundle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_client_certificate_is_a_reader() {
    let fleet = fleet().await;
    Callers::new(&fleet.sim)
        .await
        .grant_cluster(
            "observers-read-results",
            serde_json::json!([{"apiGroups": ["scanfleet.dev"], "resources": ["results"], "verbs": ["get", "list"]}]),
            serde_json::json!({"kind": "Group", "name": "observers", "apiGroup": "rbac.authorization.k8s.io"}),
        )
        .await;
    let id = fleet.creds.pki.ca.client("ci", "example");
    let cert = fleet.dir.path().join("ci.pem");
    std::fs::write(&cert, &id.cert_pem).unwrap();
    let key = fleet.dir.path().join("ci-key.pem");
    write_private(&key, id.key_pem.as_bytes());
    let ca = fleet.creds.pki.ca_file().display().to_string();
    let collector = fleet.collector();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let args = [
        "results",
        "list",
        "--collector",
        &collector,
        "--ca-file",
        &ca,
        "--client-cert-file",
        &cert,
    ];
    assert_success(
        &fleet
            .cli(&[&args[..], &["--client-key-file", &key]].concat(), &[])
            .await,
    );
    let out = fleet.cli(&args, &[]).await;
    assert_fails_with(&out, 2, "--client-cert-file needs --client-key-file");
}
