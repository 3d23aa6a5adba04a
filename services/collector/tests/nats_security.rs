//! Production NATS settings: TLS pinned to a CA and user authentication
//! (a password here; the fleet's own nkey identities everywhere else).
//! Credentials and certificates that do not fit fail fast and say why.

mod support;

use async_nats::HeaderMap;
use scanfleet_bus::{NatsAuth, NatsSettings, TopologyConfig, UserNkey};
use scanfleet_test_harness::nats::{NatsOptions, NatsServer};
use scanfleet_test_harness::pki::TestPki;
use scanfleet_trust::SigningKey;
use support::*;

struct Pki {
    ca: std::path::PathBuf,
    other_ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn pki(dir: &std::path::Path) -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "scanfleet test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params.clone(), ca_key).unwrap();
    let other = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        other_ca: write("other-ca.pem", other.pem()),
        cert: write("server.pem", server.pem()),
        key: write("server.key", server_key.serialize_pem()),
    }
}

fn secure_args(
    nats: &NatsServer,
    store: &str,
    key: &std::path::Path,
    ca: &std::path::Path,
    password_file: &std::path::Path,
) -> Vec<String> {
    let nats = [
        "--nats-url",
        &nats.url(),
        "--nats-ca",
        &ca.display().to_string(),
        "--nats-user",
        "collector",
        "--nats-password-file",
        &password_file.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    collector_args(nats, store, key)
}

#[tokio::test]
async fn collector_works_over_tls_with_a_password_and_refuses_wrong_settings() {
    let (_sim, creds) = credentials().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let nats = NatsServer::start_with(NatsOptions {
        tls: Some((pki.cert.clone(), pki.key.clone())),
        users: vec![
            ("collector".into(), "collector-secret-7f3a".into()),
            ("worker".into(), "worker-secret-91bc".into()),
        ],
        ..Default::default()
    });
    assert!(nats.url().starts_with("tls://"));
    let key = SigningKey::generate();
    let public = write_public_key(dir.path(), &key);
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let good_password = dir.path().join("collector.pw");
    std::fs::write(&good_password, "collector-secret-7f3a\n").unwrap();

    // A worker with its own account publishes a result over TLS.
    let worker = scanfleet_bus::connect(
        &NatsSettings {
            urls: vec![nats.url()],
            auth: NatsAuth::UserPassword {
                user: "worker".into(),
                password: "worker-secret-91bc".into(),
            },
            ca: Some(pki.ca.clone()),
            client_cert: None,
            connect_attempts: 3,
        },
        BusIdentity::Worker,
    )
    .await
    .unwrap();
    let js = async_nats::jetstream::new(worker);
    // Users without permissions on this server may do anything, so the
    // worker's account can create the topology the collector checks for.
    TopologyConfig::default().ensure(&js).await.unwrap();
    let collector = CollectorProcess::start(
        secure_args(&nats, &store, &public, &pki.ca, &good_password),
        dir.path(),
        &creds,
    );
    let p = result(&key, "01TLS", "shop");
    publish(&js, "shop", &p.scan_id, HeaderMap::new(), inline_event(&p)).await;
    eventually("the result over TLS", || async {
        collector
            .metric("scanfleet_collector_results_stored_total")
            .await
            == 1
    })
    .await;
    assert!(
        !collector.log().contains("collector-secret-7f3a"),
        "the password must never be logged"
    );

    // Wrong password: refused at once, with the reason.
    let bad_password = dir.path().join("bad.pw");
    std::fs::write(&bad_password, "guess").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanfleet-collector"))
        .args(secure_args(&nats, &store, &public, &pki.ca, &bad_password))
        .args(creds.service_flags())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("authorization violation"),
        "{err}"
    );
    assert!(err.contains("attempt 1"), "not retried: {err}");
    assert!(!err.contains("guess"), "the password must never be logged");

    // A CA that did not sign the server certificate: refused at once.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanfleet-collector"))
        .args(secure_args(
            &nats,
            &store,
            &public,
            &pki.other_ca,
            &good_password,
        ))
        .args(creds.service_flags())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("attempt 1"), "not retried: {err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[tokio::test]
async fn an_nkey_the_server_does_not_know_is_refused_at_once_and_never_logged() {
    let bus = SecureBus::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let public = write_public_key(dir.path(), &key);
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let stranger = UserNkey::generate();
    let seed_file = dir.path().join("stranger.nk");
    scanfleet_test_harness::write_private(&seed_file, stranger.seed.as_bytes());
    let mut args = base_args(&bus, &store, &public);
    let at = args.iter().position(|a| a == "--nats-nkey-file").unwrap();
    args[at + 1] = seed_file.display().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanfleet-collector"))
        .args(&args)
        .args(TestPki::new().server_flags())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("authorization violation"),
        "{err}"
    );
    assert!(err.contains("attempt 1"), "not retried: {err}");
    assert!(
        !err.contains(&stranger.seed),
        "the seed must never be logged"
    );
}

#[test]
fn without_its_topology_the_collector_names_what_is_missing_and_how_to_create_it() {
    let bus = SecureBus::without_topology();
    let dir = tempfile::tempdir().unwrap();
    let public = write_public_key(dir.path(), &SigningKey::generate());
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scanfleet-collector"))
        .args(base_args(&bus, &store, &public))
        .args(TestPki::new().server_flags())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "missing stream SCAN_RESULTS, stream SCAN_QUARANTINE, object store SCAN_REPORTS"
        ),
        "{err}"
    );
    assert!(err.contains("scanfleet bus init"), "{err}");
}
