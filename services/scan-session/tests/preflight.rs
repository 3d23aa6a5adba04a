//! Pre-flight against kubesim's demo pods.

use std::time::Duration;

use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_session::{PreflightError, preflight};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_resolves_the_running_digest_and_names_every_problem() {
    let sim =
        kubesim::Kubesim::start_settled(kubesim::Config::demo().unwrap(), Duration::from_secs(30))
            .await
            .expect("kubesim starts with every pod running (tests run as root)");
    let admin = ClusterAccess::from_kubeconfig(&sim.admin_kubeconfig(), "admin")
        .await
        .unwrap();

    let ok = preflight(&admin.client, "apps", "web-misconfigured", "web")
        .await
        .unwrap();
    assert_eq!(ok.image, "kubesim.local/shell-misconfigured:1.0");
    assert!(ok.image_digest.starts_with("sha256:") && ok.image_digest.len() == 71);
    // The same image runs in another pod with the same digest.
    let same = preflight(&admin.client, "apps", "nonroot-worker", "worker")
        .await
        .unwrap();
    assert_eq!(same.image_digest, ok.image_digest);
    let other = preflight(&admin.client, "apps", "distroless-app", "app")
        .await
        .unwrap();
    assert_ne!(other.image_digest, ok.image_digest);

    let err = preflight(&admin.client, "apps", "nope", "web")
        .await
        .unwrap_err();
    assert!(err.permanent());
    assert_eq!(err.to_string(), "pod apps/nope not found");
    let err = preflight(&admin.client, "apps", "app-with-scanner", "db")
        .await
        .unwrap_err();
    assert!(matches!(err, PreflightError::NoSuchContainer { .. }));
    assert_eq!(
        err.to_string(),
        "pod apps/app-with-scanner has no container \"db\" (it has: app, scanner)"
    );
    sim.shutdown().await;
}
