//! `scanfleet submit` against intake running in-process on a real
//! nats-server, serving TLS and reviewing callers on a kubesim; the CLI
//! calls as the operator (CA bundle and token file).

mod support;

use clap::Parser;
use scanfleet_bus::BusIdentity;
use scanfleet_intake::config::{Args, Config};
use scanfleet_test_harness::callers::access_cluster;
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::secure_bus::SecureBus;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_prints_scan_ids_and_refuses_bad_targets_with_the_reason() {
    let nats = SecureBus::start().await;
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    let mut argv = vec!["scanfleet-intake".to_owned()];
    argv.extend(nats.args(BusIdentity::Intake));
    argv.extend(["--cluster", "kubesim", "--grpc-listen", "127.0.0.1:0"].map(String::from));
    argv.extend(creds.service_flags());
    let config = Config::from_args(Args::parse_from(argv)).unwrap();
    let embedded = scanfleet_intake::EmbeddedIntake::start(config)
        .await
        .expect("intake serves");
    let intake = format!("https://{}", embedded.grpc);
    let operator = std::sync::Arc::new(CliIdentity::operator(&creds));

    let run = |args: Vec<&'static str>| {
        let (intake, operator) = (intake.clone(), operator.clone());
        tokio::task::spawn_blocking(move || {
            operator
                .apply(&mut scanfleet())
                .arg("submit")
                .args(args)
                .env("SCANFLEET_INTAKE", intake)
                .output()
                .unwrap()
        })
    };
    let out = run(vec![
        "k8s://shop/web-0/web",
        "--idempotency-key",
        "k1",
        "-o",
        "json",
    ])
    .await
    .unwrap();
    assert_success(&out);
    let queued: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let id = queued[0]["scanId"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 26);
    assert_eq!(queued[0]["target"], "k8s://shop/web-0/web");
    assert_eq!(queued[0]["deduplicated"], false);
    // The hint repeats the CA and token files the operator gave (here by
    // variables), so it works pasted into a shell without them.
    let hint = format!(
        "scanfleet watch --ca-file {} --token-file {} {id}",
        operator.ca_file.display(),
        operator.token_file.display()
    );
    assert!(text(&out.stderr).contains(&hint), "{}", text(&out.stderr));

    // The table for people: a heading, then one line per container.
    let again = run(vec!["k8s://shop/web-0/web", "--idempotency-key", "k1"])
        .await
        .unwrap();
    assert_success(&again);
    let table = text(&again.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("SCAN ID"), "{table}");
    assert!(lines[1].starts_with(&id), "{table}");
    assert!(lines[1].contains("already submitted"), "{table}");

    let bad = run(vec!["k8s://Shop/web-0"]).await.unwrap();
    assert_fails_with(&bad, 2, "target.uri");
    assert_fails_with(&bad, 2, "InvalidArgument");

    embedded.shutdown().await.unwrap();
}
