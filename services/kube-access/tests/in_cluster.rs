//! The worker's in-cluster identity, from a ServiceAccount volume laid out
//! as kubelet projects it, against kubesim.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use scanfleet_kube_access::{ApiThrottle, ClusterAccess, KubeAccessError, ThrottleConfig};

fn volume(dir: &Path, token: &str, ca_pem: &str) {
    std::fs::write(dir.join("token"), token).unwrap();
    std::fs::write(dir.join("ca.crt"), ca_pem).unwrap();
    std::fs::write(dir.join("namespace"), "apps\n").unwrap();
}

fn host_port(url: &str) -> (String, String) {
    let rest = url.strip_prefix("https://").expect("kubesim serves https");
    let (host, port) = rest.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.to_owned())
}

async fn access(dir: &Path, url: &str) -> Result<ClusterAccess, KubeAccessError> {
    let (host, port) = host_port(url);
    let throttle = ApiThrottle::new(ThrottleConfig::default()).unwrap();
    ClusterAccess::from_service_account_dir(dir, &host, &port, throttle).await
}

async fn refused(dir: &Path, host: &str, port: &str) -> KubeAccessError {
    let throttle = ApiThrottle::new(ThrottleConfig::default()).unwrap();
    match ClusterAccess::from_service_account_dir(dir, host, port, throttle).await {
        Ok(_) => panic!("accepted {}", dir.display()),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projected_service_account_reaches_the_api_server_with_the_pinned_ca() {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
    let dir = tempfile::tempdir().unwrap();
    volume(dir.path(), &sim.admin_token, &sim.ca_pem);

    let access = access(dir.path(), &sim.url)
        .await
        .expect("in-cluster access");
    assert_eq!(access.server, sim.url);
    // The namespace file is the client's default namespace.
    let pod = Api::<Pod>::default_namespaced(access.client.clone())
        .get("web-misconfigured")
        .await
        .expect("get a pod in the volume's namespace");
    assert_eq!(pod.metadata.namespace.as_deref(), Some("apps"));
    // Per-scan clients are built from the same server and CA.
    let per_scan = access
        .client_for_token("scan", &sim.admin_token, "apps")
        .await
        .unwrap();
    Api::<Pod>::namespaced(per_scan, "apps")
        .get("web-misconfigured")
        .await
        .expect("a per-scan client reaches the same server");
    assert_eq!(
        access.throttle.stats().attempts,
        2,
        "both calls passed the throttle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_ca_or_a_rejected_token_fails_and_a_missing_file_is_named() {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
    let pods = |a: ClusterAccess| Api::<Pod>::namespaced(a.client, "apps");

    // A CA that did not sign the server's certificate: TLS fails.
    let foreign = kubesim::tls::generate().unwrap().ca_pem;
    let dir = tempfile::tempdir().unwrap();
    volume(dir.path(), &sim.admin_token, &foreign);
    let err = pods(access(dir.path(), &sim.url).await.unwrap())
        .get("web-misconfigured")
        .await
        .expect_err("a foreign CA must not be trusted");
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "no API answer: {err:?}"
    );

    // The right CA with a token the server does not know: 401.
    volume(dir.path(), "not-a-token", &sim.ca_pem);
    match pods(access(dir.path(), &sim.url).await.unwrap())
        .get("web-misconfigured")
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }

    // Missing or empty files are named at start-up.
    let (host, port) = host_port(&sim.url);
    std::fs::remove_file(dir.path().join("ca.crt")).unwrap();
    let err = refused(dir.path(), &host, &port).await;
    assert!(err.to_string().contains("ca.crt"), "{err}");
    std::fs::write(dir.path().join("token"), "\n").unwrap();
    let err = refused(dir.path(), &host, &port).await;
    assert!(err.to_string().contains("token: empty token"), "{err}");
    let err = refused(dir.path(), "127.0.0.1", "https").await;
    assert!(err.to_string().contains("is not a host and port"), "{err}");
}
