//! `scanfleet bus identities` and `scanfleet bus init` against a real
//! nats-server running the shipped authorization: the bootstrap creates the
//! topology with the limits given as flags, a re-run changes nothing and
//! says where the flags differ, and a service identity cannot do it.

mod support;

use scanfleet_bus::BusIdentity;
use scanfleet_bus::topology::{QUARANTINE_STREAM, RESULTS_STREAM};
use scanfleet_bus::{UserNkey, check_topology};
use scanfleet_test_harness::secure_bus::SecureBus;
use support::*;

fn bus_init(bus: &SecureBus, identity: BusIdentity, flags: &[&str]) -> std::process::Output {
    scanfleet()
        .args(["bus", "init"])
        .args(bus.args(identity))
        .args(flags)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_init_creates_the_topology_once_with_the_flags_limits() {
    let bus = SecureBus::without_topology();

    // A service identity may not create streams: the server refuses it.
    let refused = bus_init(&bus, BusIdentity::Worker, &[]);
    assert_fails_with(&refused, 2, "bus init needs the NATS admin identity");
    assert!(text(&refused.stderr).contains("Permissions Violation"));
    let missing = check_topology(
        &bus.js(BusIdentity::Collector).await,
        BusIdentity::Collector,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(missing.contains("stream SCAN_RESULTS"), "{missing}");

    let out = bus_init(
        &bus,
        BusIdentity::Admin,
        &[
            "--results-max-bytes",
            "64MiB",
            "--quarantine-max-bytes",
            "8MiB",
            "--reports-max-bytes",
            "32MiB",
        ],
    );
    assert_success(&out);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("created  stream SCAN_RESULTS"), "{stdout}");
    assert!(
        stdout.contains("created  object store SCAN_REPORTS"),
        "{stdout}"
    );
    let admin = bus.admin().await;
    for (stream, bytes) in [
        (RESULTS_STREAM, 64 << 20),
        (QUARANTINE_STREAM, 8 << 20),
        ("OBJ_SCAN_REPORTS", 32 << 20),
    ] {
        let mut live = admin.get_stream(stream).await.unwrap();
        let info = live.info().await.unwrap();
        assert_eq!(info.config.max_bytes, bytes, "{stream}");
    }
    for identity in BusIdentity::SERVICES {
        check_topology(&bus.js(identity).await, identity)
            .await
            .unwrap_or_else(|e| panic!("{identity}: {e}"));
    }

    // A re-run with other limits changes nothing and names the difference.
    let again = bus_init(&bus, BusIdentity::Admin, &["--results-max-bytes", "1GiB"]);
    assert_success(&again);
    let stdout = text(&again.stdout);
    assert!(
        stdout.contains(&format!(
            "exists   stream SCAN_RESULTS (left unchanged; differs from the flags: max_bytes: live {}, flags {}",
            64 << 20,
            1 << 30
        )),
        "{stdout}"
    );
    let mut live = admin.get_stream(RESULTS_STREAM).await.unwrap();
    let info = live.info().await.unwrap();
    assert_eq!(info.config.max_bytes, 64 << 20);

    // Bad limits are named before anything is touched.
    let bad = bus_init(
        &bus,
        BusIdentity::Admin,
        &["--quarantine-max-bytes", "0", "--replicas", "7"],
    );
    assert_fails_with(&bad, 2, "--quarantine-max-bytes: 0");
    assert!(
        text(&bad.stderr).contains("--replicas: 7"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn bus_identities_writes_private_seeds_and_the_servers_public_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = scanfleet()
        .args(["bus", "identities", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_success(&out);
    let env = std::fs::read_to_string(dir.path().join("nats-server.env")).unwrap();
    for identity in BusIdentity::ALL {
        let path = dir.path().join(format!("{}.nk", identity.name()));
        let seed = std::fs::read_to_string(&path).unwrap();
        let public = UserNkey::public_of(&seed).unwrap();
        assert!(
            env.contains(&format!("{}={public}\n", identity.nkey_variable())),
            "{env}"
        );
        assert!(!text(&out.stdout).contains(&seed), "a seed was printed");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    // A second run keeps the seeds (services already hold them).
    let before = std::fs::read_to_string(dir.path().join("worker.nk")).unwrap();
    assert_success(
        &scanfleet()
            .args(["bus", "identities", "--out"])
            .arg(dir.path())
            .output()
            .unwrap(),
    );
    let after = std::fs::read_to_string(dir.path().join("worker.nk")).unwrap();
    assert_eq!(before, after);
}
