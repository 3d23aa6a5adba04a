//! The Intake gRPC API against a real nats-server, over TLS, as an
//! operator allowed every scanfleet.dev right (reviewed by kubesim).

use async_nats::jetstream;
use clap::Parser;
use prost::Message as _;
use scanfleet_bus::topology::INTENTS_STREAM;
use scanfleet_bus::{BusIdentity, TopologyConfig};
use scanfleet_contracts::v1::{
    GetScanRequest, ProfileRef, ScanIntent, ScanState, SubmitBatchRequest, SubmitRequest,
    TargetSelector, intake_client::IntakeClient, profile_ref::Pin, target_selector::Selector,
};
use scanfleet_edge_access::Authenticated;
use scanfleet_intake::config::{Args, Config};
use scanfleet_test_harness::callers::{Callers, access_cluster};
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_test_harness::slow_clients::LimitedProcess;
use tonic::Code;

struct Running {
    nats: SecureBus,
    client: IntakeClient<Authenticated>,
    js: jetstream::Context,
    intake: scanfleet_intake::EmbeddedIntake,
    _creds: TestCredentials,
    _sim: kubesim::Kubesim,
}

async fn start(nats: SecureBus, extra: &[&str]) -> Running {
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    let mut argv = vec!["scanfleet-intake".to_owned()];
    argv.extend(nats.args(BusIdentity::Intake));
    argv.extend([
        "--cluster".into(),
        "kubesim".into(),
        "--grpc-listen".into(),
        "127.0.0.1:0".into(),
    ]);
    argv.extend(extra.iter().map(|s| s.to_string()));
    argv.extend(creds.service_flags());
    let config = Config::from_args(Args::parse_from(argv)).unwrap();
    let intake = scanfleet_intake::EmbeddedIntake::start(config)
        .await
        .expect("intake serves");
    let client = creds.intake(intake.grpc).await;
    let js = nats.js(BusIdentity::Admin).await;
    Running {
        nats,
        client,
        js,
        intake,
        _creds: creds,
        _sim: sim,
    }
}

impl Running {
    async fn queued(&self) -> u64 {
        let mut s = self.js.get_stream(INTENTS_STREAM).await.unwrap();
        s.info().await.unwrap().state.messages
    }

    async fn stop(self) {
        self.intake.shutdown().await.unwrap();
        drop(self.nats);
    }
}

fn request(uri: &str) -> SubmitRequest {
    SubmitRequest {
        target: Some(TargetSelector {
            cluster: String::new(),
            selector: Some(Selector::Uri(uri.into())),
        }),
        profile: Some(ProfileRef {
            name: "container-baseline".into(),
            pin: Some(Pin::Version("1.0.0".into())),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_valid_submission_is_queued_on_its_subject_and_reported() {
    let mut r = start(SecureBus::start().await, &[]).await;
    let accepted = r
        .client
        .submit(request("k8s://shop/web-0/web"))
        .await
        .unwrap()
        .into_inner()
        .scans;
    assert_eq!(accepted.len(), 1);
    let id = accepted[0].scan_id.clone();
    assert_eq!(id.len(), 26, "a ULID");
    assert!(!accepted[0].deduplicated);

    let stream = r.js.get_stream(INTENTS_STREAM).await.unwrap();
    let message = stream.get_raw_message(1).await.unwrap();
    assert_eq!(
        message.subject.as_str(),
        format!("scan.intents.high.kubesim.shop.{id}")
    );
    let intent = ScanIntent::decode(message.payload).unwrap();
    assert_eq!(intent.id, id);
    let target = intent.target.unwrap();
    assert_eq!(
        (
            target.cluster.as_str(),
            target.namespace.as_str(),
            target.pod.as_str(),
            target.container.as_str()
        ),
        ("kubesim", "shop", "web-0", "web")
    );
    let deadline = intent.deadline.unwrap().seconds - intent.requested_at.unwrap().seconds;
    assert_eq!(deadline, 600, "the default timeout");

    let status = r
        .client
        .get_scan(GetScanRequest {
            scan_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.state, ScanState::Queued as i32);
    assert_eq!(status.intent.unwrap().id, id);

    let missing = r
        .client
        .get_scan(GetScanRequest {
            scan_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let bad = r
        .client
        .get_scan(GetScanRequest {
            scan_id: "../etc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    r.stop().await;
}

#[tokio::test]
async fn every_violation_is_reported_with_its_field_path_and_nothing_is_queued() {
    let mut r = start(SecureBus::start().await, &[]).await;
    let mut bad = request("k8s://Shop/web-0");
    bad.profile = None;
    bad.timeout = Some(prost_types::Duration {
        seconds: 7200,
        nanos: 0,
    });
    let err = r.client.submit(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    for field in ["target.uri", "profile.name", "timeout"] {
        assert!(
            err.message().contains(field),
            "{field} missing in {}",
            err.message()
        );
    }

    let err = r
        .client
        .submit_batch(SubmitBatchRequest {
            requests: vec![request("k8s://shop/a/web"), request("k8s://shop/b")],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("requests[1].target.uri"),
        "{}",
        err.message()
    );
    assert_eq!(r.queued().await, 0, "an invalid batch queues nothing");

    let ok = r
        .client
        .submit_batch(SubmitBatchRequest {
            requests: vec![request("k8s://shop/a/web"), request("k8s://shop/b/web")],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.responses.len(), 2);
    assert_eq!(r.queued().await, 2);
    r.stop().await;
}

/// Red-team finding 1 (issue #12): an unknown profile input used to be
/// queued, fail the scan permanently and panic every worker that tried to
/// dead-letter it; hostile threshold names, profile versions and negative
/// timeouts were queued too. Each is now `INVALID_ARGUMENT` naming the
/// field, before anything is queued.
#[tokio::test]
async fn hostile_submissions_are_refused_by_field_before_queueing() {
    let profiles = scanfleet_test_harness::repo_root().join("profiles");
    let mut r = start(
        SecureBus::start().await,
        &["--profiles", profiles.to_str().unwrap()],
    )
    .await;
    let uri = "k8s://shop/web-0/web";
    let with = |change: &dyn Fn(&mut SubmitRequest)| {
        let mut req = request(uri);
        change(&mut req);
        req
    };
    let cases: Vec<(SubmitRequest, &str, &str)> = vec![
        (
            with(&|r| {
                r.profile_inputs = [("no_such_input".to_owned(), "v".to_owned())].into();
            }),
            "profile_inputs",
            "no_such_input",
        ),
        (
            with(&|r| {
                r.threshold = Some(scanfleet_contracts::v1::ThresholdRef {
                    name: "../../etc/passwd".into(),
                    digest: String::new(),
                });
            }),
            "threshold.name",
            "letters, digits",
        ),
        (
            with(&|r| {
                r.threshold = Some(scanfleet_contracts::v1::ThresholdRef {
                    name: "a".repeat(5000),
                    digest: String::new(),
                });
            }),
            "threshold.name",
            "no more than 128",
        ),
        (
            with(&|r| {
                r.profile = Some(ProfileRef {
                    name: "container-baseline".into(),
                    pin: Some(Pin::Version("../../1".into())),
                });
            }),
            "profile.version",
            "without '..'",
        ),
        (
            with(&|r| {
                r.timeout = Some(prost_types::Duration {
                    seconds: -5,
                    nanos: 0,
                });
            }),
            "timeout",
            "must not be negative",
        ),
        (
            with(&|r| {
                r.profile = Some(ProfileRef {
                    name: "no-such-profile".into(),
                    pin: Some(Pin::Version("1.0.0".into())),
                });
            }),
            "profile.name",
            "no-such-profile",
        ),
        (
            with(&|r| {
                r.profile = Some(ProfileRef {
                    name: "container-baseline".into(),
                    pin: Some(Pin::Version("9.9.9".into())),
                });
            }),
            "profile",
            "version 9.9.9 requested",
        ),
    ];
    for (req, field, text) in cases {
        let err = r.client.submit(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
        assert!(
            err.message().contains(&format!("{field}: ")) && err.message().contains(text),
            "expected {field} / {text:?} in {}",
            err.message()
        );
    }
    assert_eq!(r.queued().await, 0, "nothing hostile was queued");
    // A known input with a good value is accepted.
    let ok = with(&|r| {
        r.profile_inputs = [("search_paths".to_owned(), "/etc,/usr".to_owned())].into();
    });
    r.client.submit(ok).await.unwrap();
    assert_eq!(r.queued().await, 1);
    r.stop().await;
}

/// Red-team finding 4 (issue #12): with `--locked-inputs`, overriding a
/// locked input is refused before anything is queued, naming the input.
#[tokio::test]
async fn overriding_a_locked_input_is_permission_denied() {
    let mut r = start(
        SecureBus::start().await,
        &["--locked-inputs", "search_paths"],
    )
    .await;
    let mut req = request("k8s://shop/web-0/web");
    req.profile_inputs = [("search_paths".to_owned(), "/nonexistent".to_owned())].into();
    let err = r.client.submit(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "profile_inputs: overriding \"search_paths\" is forbidden by this fleet's policy (locked inputs)"
    );
    let err = r
        .client
        .submit_batch(SubmitBatchRequest {
            requests: vec![request("k8s://shop/a/web"), req],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().starts_with("requests[1].profile_inputs: "),
        "{}",
        err.message()
    );
    assert_eq!(r.queued().await, 0, "nothing was queued");
    let mut unlocked = request("k8s://shop/web-0/web");
    unlocked.profile_inputs = [("allowed_setuid".to_owned(), "/x".to_owned())].into();
    r.client.submit(unlocked).await.unwrap();
    assert_eq!(r.queued().await, 1, "other inputs may still be overridden");
    r.stop().await;
}

/// The refusal, through intake's real binary: a ServiceAccount
/// allowed to create scans only in `apps` asks for `kube-system` and gets
/// PERMISSION_DENIED with upstream's 403 text naming the namespace, before
/// anything is queued; the same caller in `apps` is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_outside_the_callers_namespace_is_denied_naming_it() {
    let nats = SecureBus::start().await;
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    let token = Callers::new(&sim)
        .await
        .caller("apps", "submitter", &["create"], "scans", &["apps"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = nats.args(BusIdentity::Intake);
    args.extend(["--cluster", "kubesim", "--grpc-listen", "127.0.0.1:0"].map(String::from));
    args.extend(creds.service_flags());
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_scanfleet-intake"));
    let intake = LimitedProcess::start(exe, &args, 1024, &dir.path().join("intake.log"));
    let mut client = creds.intake_as(intake.addr("grpc="), &token).await;

    let err = client
        .submit(request("k8s://kube-system/coredns-0/coredns"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(
        err.message(),
        "scans.scanfleet.dev is forbidden: User \"system:serviceaccount:apps:submitter\" \
         cannot create resource \"scans\" in API group \"scanfleet.dev\" in the namespace \
         \"kube-system\""
    );
    let js = nats.js(BusIdentity::Admin).await;
    let queued = || async {
        let mut stream = js.get_stream(INTENTS_STREAM).await.unwrap();
        stream.info().await.unwrap().state.messages
    };
    assert_eq!(queued().await, 0, "nothing was queued");
    client
        .submit(request("k8s://apps/web-0/web"))
        .await
        .unwrap();
    assert_eq!(queued().await, 1, "the same caller may scan in apps");
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_scan_id() {
    let mut r = start(SecureBus::start().await, &[]).await;
    let mut req = request("k8s://shop/web-0/web");
    req.idempotency_key = "ci-run-4711".into();
    let first = r
        .client
        .submit(req.clone())
        .await
        .unwrap()
        .into_inner()
        .scans;
    let second = r
        .client
        .submit(req.clone())
        .await
        .unwrap()
        .into_inner()
        .scans;
    assert_eq!(first[0].scan_id, second[0].scan_id);
    assert!(second[0].deduplicated);
    assert_eq!(r.queued().await, 1);
    // Another target under the same key is another scan.
    req.target = request("k8s://shop/web-1/web").target;
    let third = r.client.submit(req).await.unwrap().into_inner().scans;
    assert_ne!(third[0].scan_id, first[0].scan_id);
    r.stop().await;
}

#[tokio::test]
async fn a_full_queue_is_resource_exhausted_not_a_silent_drop() {
    // The operator sized the queue at `bus init`, before intake started.
    let nats = SecureBus::start_with(TopologyConfig {
        intents_max_messages: 2,
        ..Default::default()
    })
    .await;
    let mut r = start(nats, &[]).await;
    for pod in ["a", "b"] {
        r.client
            .submit(request(&format!("k8s://shop/{pod}/web")))
            .await
            .unwrap();
    }
    let err = r
        .client
        .submit(request("k8s://shop/c/web"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.message().contains("retry later"), "{}", err.message());
    assert_eq!(r.queued().await, 2);
    r.stop().await;
}

#[tokio::test]
async fn selector_targets_are_refused_until_the_pod_directory_exists() {
    let mut r = start(SecureBus::start().await, &[]).await;
    let mut req = request("");
    req.target = Some(TargetSelector {
        cluster: String::new(),
        selector: Some(Selector::LabelSelector(
            scanfleet_contracts::v1::LabelSelectorTarget {
                namespace: "shop".into(),
                selector: "app=web".into(),
                container: String::new(),
            },
        )),
    });
    let err = r.client.submit(req).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("pod directory"));
    r.stop().await;
}

#[test]
fn bad_configuration_lists_every_problem() {
    let errors = Config::from_args(Args::parse_from([
        "scanfleet-intake",
        "--nats-url",
        "http://x",
        "--cluster",
        "Not A Name",
        "--max-batch",
        "0",
    ]))
    .unwrap_err();
    let all = errors.join("\n");
    for needle in ["--nats-url", "--cluster", "--max-batch"] {
        assert!(all.contains(needle), "{needle} missing in {all}");
    }
}

/// A critical task that dies (here: the HTTP server, stopped as a crash
/// would stop it) stops intake with an error naming it, instead of leaving
/// it half-alive; the binary turns that error into a non-zero exit.
#[tokio::test]
async fn intake_stops_when_a_critical_task_dies() {
    let nats = SecureBus::start().await;
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    let mut argv = vec!["scanfleet-intake".to_owned()];
    argv.extend(nats.args(BusIdentity::Intake));
    argv.extend(
        [
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ]
        .map(String::from),
    );
    argv.extend(creds.service_flags());
    let config = Config::from_args(Args::parse_from(argv)).unwrap();
    let intake = scanfleet_intake::EmbeddedIntake::start(config)
        .await
        .unwrap();
    assert_eq!(
        intake.tasks.names(),
        ["cluster-queues", "dead-letters", "grpc", "http"]
    );
    assert!(intake.tasks.abort("http"));
    let err = tokio::time::timeout(std::time::Duration::from_secs(30), intake.stopped())
        .await
        .expect("intake stops by itself")
        .unwrap_err();
    assert!(format!("{err:#}").contains("critical task http"), "{err:#}");
    assert_eq!(
        scanfleet_process_lifecycle::exit_code("scanfleet-intake", Err(err)),
        std::process::ExitCode::FAILURE
    );
}
