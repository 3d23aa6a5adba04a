//! Each overlay's intake, worker and collector, laid out as their pods see
//! them (ConfigMaps, the operator's Secrets of docs/install.md, variables,
//! arguments), are accepted by the services' own configuration parsers,
//! and what those parsers settle is what the manifests meant: the right
//! identity's NATS key, TLS on every listener, the signing key, the store.

use clap::{CommandFactory, Parser};
use scanfleet_bus::NatsAuth;
use scanfleet_deployed_config::{OperatorObjects, PodView, RenderedOverlay, flags_for_variables};
use scanfleet_process_lifecycle::ListenerSecurity;

/// `program`'s argument vector for the pod: its variables as flags, then
/// the container's arguments.
fn argv<A: CommandFactory>(program: &str, pod: &PodView) -> Vec<String> {
    let flags = flags_for_variables(&A::command(), &pod.env)
        .unwrap_or_else(|unread| panic!("{program}: {}", unread.join("; ")));
    std::iter::once(program.to_owned())
        .chain(flags)
        .chain(pod.args.iter().cloned())
        .collect()
}

fn parse<A: Parser>(program: &str, pod: &PodView) -> A {
    A::try_parse_from(argv::<A>(program, pod)).unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// The service connects with its own identity's seed (compared, never
/// printed: it is a secret even in a test).
fn assert_nkey(service: &str, auth: &NatsAuth, operator: &OperatorObjects) {
    let secret = format!("scanfleet-nats-{service}");
    match auth {
        NatsAuth::NKey { seed } => assert!(
            seed == operator.text(&secret, "nkey"),
            "{service} connects to NATS with a seed that is not the one in {secret}"
        ),
        other => panic!("{service}: expected an nkey, got {other:?}"),
    }
}

fn assert_tls(service: &str, security: &ListenerSecurity) {
    assert!(
        matches!(security, ListenerSecurity::Tls(_)),
        "{service}: the deployed listeners must be TLS"
    );
}

/// The worker's configuration as its pod in `overlay` settles it.
fn worker_config(
    overlay: &RenderedOverlay,
    operator: &OperatorObjects,
) -> scanfleet_worker::config::Config {
    let pod = PodView::lay_out(overlay, "scanfleet-worker", operator);
    scanfleet_worker::config::Config::from_args(parse("scanfleet-worker", &pod)).unwrap_or_else(
        |e| {
            panic!(
                "{}: worker refuses its config:\n{}",
                overlay.name,
                e.join("\n")
            )
        },
    )
}

fn every_service_accepts(overlay: &RenderedOverlay, operator: &OperatorObjects) {
    let pod = PodView::lay_out(overlay, "scanfleet-intake", operator);
    let intake = scanfleet_intake::config::Config::from_args(parse("scanfleet-intake", &pod))
        .unwrap_or_else(|e| {
            panic!(
                "{}: intake refuses its config:\n{}",
                overlay.name,
                e.join("\n")
            )
        });
    assert_nkey("intake", &intake.nats.auth, operator);
    assert_tls("intake", &intake.security);
    assert!(intake.in_cluster && intake.nats.ca.is_some());
    assert_eq!(intake.grpc_listen.port(), 50051);

    let worker = worker_config(overlay, operator);
    assert_nkey("worker", &worker.nats.auth, operator);
    assert_eq!(
        worker.signing_key.key_id().to_string(),
        operator.signing_key_id
    );
    assert_tls("worker", &worker.security);
    assert_eq!(worker.worker_id, "scanfleet-worker-6c9f7d8b5-x2x4z");
    assert!(worker.profiles.join("container-hardening").is_dir());

    let pod = PodView::lay_out(overlay, "scanfleet-collector", operator);
    let collector =
        scanfleet_collector::config::Config::from_args(parse("scanfleet-collector", &pod))
            .unwrap_or_else(|e| {
                panic!(
                    "{}: collector refuses its config:\n{}",
                    overlay.name,
                    e.join("\n")
                )
            });
    assert_nkey("collector", &collector.nats.auth, operator);
    assert_tls("collector", &collector.security);
    assert!(!collector.trusted.is_empty());
    let expected_store = match overlay.name.as_str() {
        "production" => operator.text("scanfleet-database", "url").to_owned(),
        _ => format!(
            "sqlite://{}",
            pod.root().join("var/lib/scanfleet/results.db").display()
        ),
    };
    assert_eq!(collector.store_url, expected_store);
}

#[test]
fn the_dev_overlay_configures_every_service() {
    every_service_accepts(
        &RenderedOverlay::render("dev"),
        &OperatorObjects::generate(),
    );
}

#[test]
fn the_production_overlay_configures_every_service() {
    every_service_accepts(
        &RenderedOverlay::render("production"),
        &OperatorObjects::generate(),
    );
}

/// The optional `registry-pull-secret` component: the worker accepts the
/// variable it sets, and reads exactly the one Secret that the component's
/// Role lets it get, bound to the worker's own ServiceAccount.
#[test]
fn the_registry_pull_secret_component_grants_the_secret_the_worker_reads() {
    let overlay = RenderedOverlay::render_with("production", &["registry-pull-secret"]);
    let operator = OperatorObjects::generate();
    every_service_accepts(&overlay, &operator);
    let secret = worker_config(&overlay, &operator)
        .images
        .pull_secret
        .expect("the component sets --registry-pull-secret");
    let name = "scanfleet-worker-registry-pull";
    let role = overlay.object("Role", name).expect("the component's Role");
    assert_eq!(role["metadata"]["namespace"], secret.namespace.as_str());
    assert_eq!(
        role["rules"],
        serde_json::json!([{
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [secret.name],
            "verbs": ["get"],
        }]),
        "get on exactly the worker's pull Secret, nothing else"
    );
    let binding = overlay.object("RoleBinding", name).expect("its binding");
    assert_eq!(binding["metadata"]["namespace"], secret.namespace.as_str());
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], name);
    let account = overlay
        .object("Deployment", "scanfleet-worker")
        .expect("the worker")["spec"]["template"]["spec"]["serviceAccountName"]
        .clone();
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": account, "namespace": "scanfleet"}])
    );
}

/// Without the component, the worker reads no Secret and holds no Role.
#[test]
fn without_the_component_the_worker_reads_no_pull_secret() {
    for name in ["dev", "production"] {
        let overlay = RenderedOverlay::render(name);
        let worker = worker_config(&overlay, &OperatorObjects::generate());
        assert!(worker.images.pull_secret.is_none(), "{name}");
        assert!(
            overlay
                .object("Role", "scanfleet-worker-registry-pull")
                .is_none(),
            "{name}"
        );
    }
}

/// The check bites: a key a service does not know, in the rendered
/// ConfigMap, is refused and named.
#[test]
fn an_unknown_key_in_a_rendered_config_map_is_refused() {
    let operator = OperatorObjects::generate();
    for (deployment, file) in [
        ("scanfleet-intake", "intake.yml"),
        ("scanfleet-worker", "worker.yml"),
        ("scanfleet-collector", "collector.yml"),
    ] {
        let mut overlay = RenderedOverlay::render("dev");
        let map_name = overlay
            .object("Deployment", deployment)
            .and_then(|d| {
                d["spec"]["template"]["spec"]["volumes"]
                    .as_array()?
                    .iter()
                    .find(|v| v["name"] == "config")
                    .map(|v| {
                        v["configMap"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned()
                    })
            })
            .expect("a config volume");
        let map = overlay
            .object_mut("ConfigMap", &map_name)
            .expect("its ConfigMap");
        let text = map["data"][file].as_str().expect("the file").to_owned();
        map["data"][file] = format!("{text}\nlisten_adress: 0.0.0.0:1\n").into();
        let pod = PodView::lay_out(&overlay, deployment, &operator);
        let errors = match deployment {
            "scanfleet-intake" => {
                scanfleet_intake::config::Config::from_args(parse(deployment, &pod)).err()
            }
            "scanfleet-worker" => {
                scanfleet_worker::config::Config::from_args(parse(deployment, &pod)).err()
            }
            _ => scanfleet_collector::config::Config::from_args(parse(deployment, &pod)).err(),
        }
        .unwrap_or_else(|| panic!("{deployment} accepted an unknown key"));
        assert!(
            errors.iter().any(|e| e.contains("listen_adress")),
            "{deployment}: {errors:?}"
        );
    }
}

/// A variable the service does not read (a renamed flag) is caught too.
#[test]
fn a_variable_no_service_reads_is_named() {
    let overlay = RenderedOverlay::render("dev");
    let mut pod = PodView::lay_out(&overlay, "scanfleet-worker", &OperatorObjects::generate());
    pod.env.push(("SCANFLEET_NATS_NKEY".into(), "x".into()));
    let unread = flags_for_variables(&scanfleet_worker::config::Args::command(), &pod.env)
        .expect_err("an unread variable");
    assert_eq!(unread.len(), 1);
    assert!(unread[0].contains("SCANFLEET_NATS_NKEY"), "{unread:?}");
}

/// docs/install.md names every Secret and ConfigMap key the pods mount
/// that deploy/ does not create.
#[test]
fn the_install_guide_names_every_operator_object() {
    let missing = OperatorObjects::generate().missing_from_install_guide();
    assert!(
        missing.is_empty(),
        "docs/install.md does not name: {missing:?}"
    );
}
