//! Label-selector submissions expand against a live pod cache of kubesim
//! (real pods, real watch) and queue one intent per running container.

use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use clap::Parser;
use prost::Message as _;
use scanfleet_bus::BusIdentity;
use scanfleet_bus::topology::INTENTS_STREAM;
use scanfleet_contracts::v1::{
    LabelSelectorTarget, ProfileRef, ScanIntent, SubmitRequest, TargetSelector, profile_ref::Pin,
    target_selector::Selector,
};
use scanfleet_intake::config::{Args, Config};
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::secure_bus::SecureBus;

fn selector(namespace: &str, labels: &str, container: &str) -> SubmitRequest {
    SubmitRequest {
        target: Some(TargetSelector {
            cluster: String::new(),
            selector: Some(Selector::LabelSelector(LabelSelectorTarget {
                namespace: namespace.into(),
                selector: labels.into(),
                container: container.into(),
            })),
        }),
        profile: Some(ProfileRef {
            name: "container-baseline".into(),
            pin: Some(Pin::Version("1.0.0".into())),
        }),
        ..Default::default()
    }
}

fn targets(response: &scanfleet_contracts::v1::SubmitResponse) -> Vec<String> {
    response
        .scans
        .iter()
        .map(|s| {
            let t = s.target.clone().unwrap();
            format!("{}/{}", t.pod, t.container)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_expand_to_running_containers() {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("intake.kubeconfig");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&kubeconfig)
            .unwrap();
        f.write_all(sim.admin_kubeconfig().as_bytes()).unwrap();
    }

    let nats = SecureBus::start().await;
    let creds = TestCredentials::new(&sim).await;
    let mut argv = vec!["scanfleet-intake".to_owned()];
    argv.extend(nats.args(BusIdentity::Intake));
    argv.extend(
        [
            "--cluster",
            "kubesim",
            "--grpc-listen",
            "127.0.0.1:0",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]
        .map(String::from),
    );
    argv.extend(creds.service_flags());
    let config = Config::from_args(Args::parse_from(argv)).unwrap();
    let intake = scanfleet_intake::EmbeddedIntake::start(config)
        .await
        .expect("intake serves");
    let mut client = creds.intake(intake.grpc).await;

    let web = client
        .submit(selector("apps", "app=web", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(targets(&web), ["web-hardened/web", "web-misconfigured/web"]);

    let workers = client
        .submit(selector("apps", "app=worker", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        targets(&workers),
        [
            "app-with-scanner/app",
            "app-with-scanner/scanner",
            "nonroot-worker/worker"
        ]
    );
    let only_app = client
        .submit(selector(
            "apps",
            "app in (worker, api),tier!=frontend",
            "app",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        targets(&only_app),
        ["app-with-scanner/app", "distroless-app/app"]
    );

    let none = client
        .submit(selector("apps", "app=nothing-here", ""))
        .await
        .unwrap()
        .into_inner();
    assert!(none.scans.is_empty());

    // Every accepted target is one intent on the stream, with its digest-free
    // target and a distinct scan id.
    let js = nats.js(BusIdentity::Admin).await;
    let mut stream = js.get_stream(INTENTS_STREAM).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 7);
    let first = ScanIntent::decode(stream.get_raw_message(1).await.unwrap().payload).unwrap();
    assert_eq!(first.target.unwrap().namespace, "apps");

    intake.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn an_insecure_kubeconfig_stops_intake_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("bad.kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: prod\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context: {cluster: prod, user: u}\n",
    )
    .unwrap();
    let nats = SecureBus::start().await;
    let pki = scanfleet_test_harness::pki::TestPki::new();
    let mut argv = vec!["scanfleet-intake".to_owned()];
    argv.extend(nats.args(BusIdentity::Intake));
    argv.extend(
        [
            "--grpc-listen",
            "127.0.0.1:0",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]
        .map(String::from),
    );
    argv.extend(pki.server_flags());
    let config = Config::from_args(Args::parse_from(argv)).unwrap();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let err = scanfleet_intake::run_with_ready(config, rx, |_| {})
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("refused: cluster \"prod\": insecure-skip-tls-verify"),
        "{text}"
    );
}
