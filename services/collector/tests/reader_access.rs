//! Who may read results, through the real collector binary, its real TLS
//! listeners and kubesim's TokenReview and SubjectAccessReview: a reader
//! bound in `apps` sees only `apps` results through gRPC `Get`/`List`/
//! `GetReport`/`Watch` and the HTTP API, and is refused (403 naming the
//! namespace) elsewhere; callers without valid credentials get 401 while
//! probes stay open; a client certificate from another CA is refused in
//! the handshake, and one from the trusted CA is a reader when the config
//! maps its subject.

mod support;

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use scanfleet_contracts::v1::{
    GetResultRequest, ListResultsRequest, ResultFilter, WatchResultsRequest,
    results_client::ResultsClient,
};
use scanfleet_edge_access::{Authenticated, BearerAuth};
use scanfleet_test_harness::callers::{AUDIENCE, Callers};
use scanfleet_test_harness::https::{https_get, https_request};
use scanfleet_trust::SigningKey;
use support::*;
use tonic::Code;

struct Bench {
    _nats: SecureBus,
    sim: kubesim::Kubesim,
    creds: TestCredentials,
    collector: CollectorProcess,
    js: jetstream::Context,
    key: SigningKey,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn start(extra: &[String]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), extra).await
    }

    async fn start_in(dir: tempfile::TempDir, extra: &[String]) -> Self {
        let (sim, creds) = credentials().await;
        let nats = SecureBus::start().await;
        let key = SigningKey::generate();
        let public = write_public_key(dir.path(), &key);
        let store = format!("sqlite://{}", dir.path().join("r.db").display());
        let mut args = base_args(&nats, &store, &public);
        args.extend(extra.iter().cloned());
        let collector = CollectorProcess::start(args, dir.path(), &creds);
        let js = nats.js(BusIdentity::Worker).await;
        Self {
            _nats: nats,
            sim,
            creds,
            collector,
            js,
            key,
            _dir: dir,
        }
    }

    /// Publishes a result in `namespace` and waits until it is stored.
    async fn store(&self, scan_id: &str, namespace: &str) {
        let p = result(&self.key, scan_id, namespace);
        publish(
            &self.js,
            namespace,
            scan_id,
            HeaderMap::new(),
            inline_event(&p),
        )
        .await;
        let path = format!("/v1/results/{scan_id}");
        eventually("the result stored", || async {
            self.collector.get(&path).await.status == 200
        })
        .await;
    }

    /// A collector reading `config_yaml`, one result stored in `apps`,
    /// and `group` granted `get`/`list` on results cluster-wide.
    async fn configured(config_yaml: &str, group: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("collector.yml");
        std::fs::write(&config, config_yaml).unwrap();
        let bench = Self::start_in(dir, &["--config".into(), config.display().to_string()]).await;
        bench.store("01APPS1", "apps").await;
        Callers::new(&bench.sim)
            .await
            .grant_cluster(
                &format!("{group}-read-results"),
                serde_json::json!([{"apiGroups": ["scanfleet.dev"], "resources": ["results"], "verbs": ["get", "list"]}]),
                serde_json::json!({"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}),
            )
            .await;
        bench
    }

    async fn reader(&self) -> String {
        Callers::new(&self.sim)
            .await
            .caller(
                "apps",
                "reader",
                &["get", "list", "watch"],
                "results",
                &["apps"],
            )
            .await
    }

    async fn results_as(&self, token: &str) -> ResultsClient<Authenticated> {
        self.creds.results_as(self.collector.grpc, token).await
    }
}

fn ids(results: &[scanfleet_contracts::v1::ScanResult]) -> Vec<String> {
    let mut ids: Vec<String> = results.iter().map(|r| r.scan_id.clone()).collect();
    ids.sort();
    ids
}

fn list(namespace: &str) -> ListResultsRequest {
    ListResultsRequest {
        filter: Some(ResultFilter {
            namespace: namespace.into(),
            ..Default::default()
        }),
        page_size: 100,
        page_token: String::new(),
    }
}

#[tokio::test]
async fn a_reader_bound_in_apps_sees_only_apps_results_over_grpc() {
    let bench = Bench::start(&[]).await;
    let token = bench.reader().await;
    let mut reader = bench.results_as(&token).await;
    let mut watch = reader
        .watch(WatchResultsRequest::default())
        .await
        .unwrap()
        .into_inner();
    for (id, namespace) in [
        ("01APPS1", "apps"),
        ("01SHOP1", "shop"),
        ("01APPS2", "apps"),
        ("01SHOP2", "shop"),
    ] {
        bench.store(id, namespace).await;
    }
    bench.store("01APPS3", "apps").await;
    let mut watched = Vec::new();
    for _ in 0..3 {
        let next = tokio::time::timeout(Duration::from_secs(30), watch.message())
            .await
            .expect("the watch delivers")
            .unwrap()
            .expect("an open stream");
        watched.push(next.scan_id);
    }
    assert_eq!(
        watched,
        ["01APPS1", "01APPS2", "01APPS3"],
        "no shop result in between"
    );

    let all = reader.list(list("")).await.unwrap().into_inner().results;
    assert_eq!(ids(&all), ["01APPS1", "01APPS2", "01APPS3"]);
    let refused = reader.list(list("shop")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused
            .message()
            .contains("cannot list resource \"results\""),
        "{refused:?}"
    );
    assert!(
        refused.message().contains("in the namespace \"shop\""),
        "{refused:?}"
    );
    for call in ["get", "report"] {
        let request = GetResultRequest {
            scan_id: "01SHOP1".into(),
        };
        let refused = match call {
            "get" => reader.get(request).await.map(|_| ()),
            _ => reader.get_report(request).await.map(|_| ()),
        }
        .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{call}");
        assert!(
            refused.message().contains("\"shop\""),
            "{call}: {refused:?}"
        );
    }
    let apps = GetResultRequest {
        scan_id: "01APPS1".into(),
    };
    assert_eq!(
        reader.get(apps.clone()).await.unwrap().into_inner().scan_id,
        "01APPS1"
    );
    assert!(
        !reader
            .get_report(apps)
            .await
            .unwrap()
            .into_inner()
            .body
            .is_empty()
    );
    for request in [
        WatchResultsRequest {
            filter: list("shop").filter,
            ..Default::default()
        },
        WatchResultsRequest {
            scan_ids: vec!["01SHOP2".into()],
            ..Default::default()
        },
    ] {
        let refused = reader.watch(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }
    // The operator's cluster-wide grant sees everything.
    let everything = bench
        .collector
        .results()
        .await
        .list(list(""))
        .await
        .unwrap();
    assert_eq!(everything.into_inner().results.len(), 5);
}

#[tokio::test]
async fn a_reader_bound_in_apps_sees_only_apps_results_over_http() {
    let bench = Bench::start(&[]).await;
    bench.store("01APPS1", "apps").await;
    bench.store("01SHOP1", "shop").await;
    let token = bench.reader().await;
    let (http, tls) = (bench.collector.http, bench.creds.tls());
    let get = |path: &'static str| {
        let (tls, token) = (tls.clone(), token.clone());
        async move { https_get(http, &tls, path, Some(&token)).await }
    };
    let all = get("/v1/results").await;
    assert_eq!(all.status, 200, "{}", all.text());
    let names: Vec<String> = all.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scanId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["01APPS1"]);
    for path in [
        "/v1/results?namespace=shop",
        "/v1/results/01SHOP1",
        "/v1/results/01SHOP1/envelope",
        "/v1/results/01SHOP1/report",
    ] {
        let refused = get(path).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.text());
        let error = refused.json()["error"].as_str().unwrap().to_owned();
        assert!(
            error.contains("in the namespace \"shop\""),
            "{path}: {error}"
        );
    }
    assert_eq!(get("/v1/results/01APPS1/report").await.status, 200);
}

#[tokio::test]
async fn callers_without_valid_credentials_are_unauthenticated_and_probes_stay_open() {
    let bench = Bench::start(&[]).await;
    bench.store("01APPS1", "apps").await;
    let (http, tls) = (bench.collector.http, bench.creds.tls());
    let callers = Callers::new(&bench.sim).await;
    callers.service_account("apps", "stranger").await;
    let vault = callers.token("apps", "stranger", "vault", 600).await;
    for token in [None, Some("not-a-token"), Some(vault.as_str())] {
        let r = https_get(http, &tls, "/v1/results", token).await;
        assert_eq!(r.status, 401, "{token:?}: {}", r.text());
        assert!(r.header("www-authenticate").is_some());
        let mut client = match token {
            Some(t) => bench.results_as(t).await,
            None => ResultsClient::with_interceptor(
                bench.creds.channel(bench.collector.grpc).await,
                BearerAuth::none(),
            ),
        };
        let refused = client.list(list("")).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{token:?}");
    }
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            https_get(http, &tls, probe, None).await.status,
            200,
            "{probe}"
        );
    }
    // Expired: the cluster's clock moves past the token's life.
    let short = callers.token("apps", "stranger", AUDIENCE, 600).await;
    let r = https_get(http, &tls, "/v1/results", Some(&short)).await;
    assert_eq!(r.status, 403, "valid but without rights: {}", r.text());
    bench.sim.advance_clock(600 + 61);
    let expired = callers.token("apps", "stranger", AUDIENCE, 600).await;
    bench.sim.advance_clock(600 + 61);
    let r = https_get(http, &tls, "/v1/results", Some(&expired)).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("expired"), "{}", r.text());
}

#[tokio::test]
async fn client_certificates_are_verified_and_mapped_subjects_are_readers() {
    let bench = Bench::configured(
        "client_certificate_users:\n  \"CN=dashboard, O=example\":\n    user: dashboard\n    groups: [observers]\n",
        "observers",
    )
    .await;
    let http = bench.collector.http;
    let mapped = bench
        .creds
        .tls()
        .with_identity(bench.creds.pki.ca.client("dashboard", "example"));
    let r = https_get(http, &mapped, "/v1/results", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 1);
    let unmapped = bench
        .creds
        .tls()
        .with_identity(bench.creds.pki.ca.client("intruder", "example"));
    let r = https_get(http, &unmapped, "/v1/results", None).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("not mapped"), "{}", r.text());
    let foreign = bench.creds.tls().with_identity(
        scanfleet_test_harness::pki::TestCa::new("elsewhere").client("dashboard", "example"),
    );
    let refused = https_request(http, &foreign, "GET", "/v1/results", None, &[], b"").await;
    assert!(refused.is_err(), "another CA's certificate: {refused:?}");
    let mut grpc = ResultsClient::with_interceptor(
        bench.creds.channel(bench.collector.grpc).await,
        BearerAuth::none(),
    );
    assert_eq!(
        grpc.list(list("")).await.unwrap_err().code(),
        Code::Unauthenticated,
        "no certificate, no token"
    );
}

#[tokio::test]
async fn an_authenticating_proxy_names_the_end_user_and_nobody_else_may() {
    let bench = Bench::configured(
        "authenticating_proxies:\n  - \"CN=oidc-proxy, O=example\"\n",
        "auditors",
    )
    .await;
    let http = bench.collector.http;
    let proxy = bench
        .creds
        .tls()
        .with_identity(bench.creds.pki.ca.client("oidc-proxy", "example"));
    let as_user = |user: &str, groups: &[&str]| {
        let mut headers = vec![("X-Remote-User".to_owned(), user.as_bytes().to_vec())];
        headers.extend(
            groups
                .iter()
                .map(|g| ("X-Remote-Group".to_owned(), g.as_bytes().to_vec())),
        );
        headers
    };
    let get = |tls, path: &'static str, token: Option<String>, headers: Vec<(String, Vec<u8>)>| async move {
        https_request(http, &tls, "GET", path, token.as_deref(), &headers, b"")
            .await
            .unwrap()
    };
    // The end user's groups decide, through SubjectAccessReview.
    let jane = get(
        proxy.clone(),
        "/v1/results",
        None,
        as_user("jane", &["auditors"]),
    )
    .await;
    assert_eq!(jane.status, 200, "{}", jane.text());
    assert_eq!(jane.json()["results"].as_array().unwrap().len(), 1);
    let page = get(proxy.clone(), "/ui", None, as_user("jane", &["auditors"])).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("Signed in as <strong>jane</strong>"));
    let bob = get(proxy.clone(), "/v1/results", None, as_user("bob", &[])).await;
    assert_eq!(bob.status, 403, "bob has no grant: {}", bob.text());
    assert!(
        bob.json()["error"]
            .as_str()
            .unwrap()
            .contains("User \"bob\""),
        "{}",
        bob.text()
    );
    // The proxy without a header is nobody; nobody else may name a user.
    let bare = get(proxy.clone(), "/v1/results", None, vec![]).await;
    assert_eq!(bare.status, 401, "{}", bare.text());
    let reader = bench.reader().await;
    let forged = get(
        bench.creds.tls(),
        "/v1/results",
        Some(reader),
        as_user("jane", &["auditors"]),
    )
    .await;
    assert_eq!(forged.status, 401, "{}", forged.text());
    assert!(
        forged.text().contains("authenticating_proxies"),
        "{}",
        forged.text()
    );
    let other = bench
        .creds
        .tls()
        .with_identity(bench.creds.pki.ca.client("intruder", "example"));
    let forged = get(other, "/ui", None, as_user("jane", &["auditors"])).await;
    assert_eq!(forged.status, 401, "{}", forged.text());
}
