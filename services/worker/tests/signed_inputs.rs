//! Red-team finding 4 (issue #12): profile-input overrides used to raise a
//! container's compliance while the signed statement named only the
//! profile digest. Through the real worker binary: the statement now lists
//! every input with its value, overrides marked, and the requester; the
//! collector shows the same; and a worker with locked inputs refuses an
//! override even when intake let it through.
//!
//! The requester is the identity intake authenticated (issue #13): a
//! ServiceAccount's token reviewed by kubesim, never the
//! `x-scanfleet-principal` header the caller also sends.

mod support;

use std::time::Duration;

use scanfleet_contracts::v1::{GetScanRequest, ProfileInput, ScanResult, ScanState};
use scanfleet_test_harness::callers::Callers;
use scanfleet_trust::{Envelope, InputSource, InputValueUsed, ScanStatement};
use support::{Fleet, submit_request};

const TARGET: &str = "k8s://apps/web-misconfigured/web";
/// The identity kubesim's TokenReview names for ServiceAccount apps/alice.
const ALICE: &str = "system:serviceaccount:apps:alice";

fn input<'a>(r: &'a ScanResult, name: &str) -> &'a ProfileInput {
    r.inputs
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} missing from {:?}", r.inputs))
}

/// The statement exactly as signed, from the stored envelope.
fn signed_statement(r: &ScanResult) -> ScanStatement {
    let envelope = Envelope::from_json(&r.envelope).unwrap();
    ScanStatement::from_payload(&envelope.payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overrides_are_signed_shown_and_refused_where_locked() {
    let fleet = Fleet::start().await;
    let worker = fleet.worker("w1", 2);
    let alice = Callers::new(&fleet.sim)
        .await
        .caller("apps", "alice", &["create"], "scans", &["apps"])
        .await;
    let plain = fleet.submit(TARGET).await;
    let mut request = tonic::Request::new({
        let mut r = submit_request(TARGET);
        r.profile_inputs = [
            ("search_paths".to_owned(), "/nonexistent".to_owned()),
            ("allowed_setuid".to_owned(), "/x".to_owned()),
        ]
        .into();
        r
    });
    request
        .metadata_mut()
        .insert("x-scanfleet-principal", "mallory".parse().unwrap());
    let overridden = fleet.submit_request_as(&alice, request).await.unwrap();
    let results = fleet
        .wait_results(2, Duration::from_secs(90), &[&worker])
        .await;
    let by_id = |id: &str| results.iter().find(|r| r.scan_id == id).unwrap();
    let (plain, overridden) = (by_id(&plain), by_id(&overridden));

    // The collector shows what the statement claims.
    assert!(!input(plain, "search_paths").overridden);
    assert_eq!(input(plain, "search_paths").values, ["/"]);
    assert!(input(overridden, "search_paths").overridden);
    assert_eq!(input(overridden, "search_paths").values, ["/nonexistent"]);
    assert!(input(overridden, "allowed_setuid").overridden);
    assert!(
        overridden.inputs.iter().any(|i| !i.overridden),
        "defaults are listed too"
    );
    assert_eq!(
        overridden.requested_by, ALICE,
        "the token's, not the header's"
    );
    assert_eq!(
        plain.requested_by, "system:serviceaccount:scanfleet-system:operator",
        "the fleet's operator"
    );
    // Why it matters: the override changes the verdicts.
    let failed = |r: &ScanResult| r.summary.as_ref().unwrap().failed;
    assert!(
        failed(overridden) < failed(plain),
        "narrowing the search hides findings ({} vs {})",
        failed(overridden),
        failed(plain)
    );
    // And the signature covers it: the signed predicate says the same.
    let signed = signed_statement(overridden).predicate;
    let search = signed
        .inputs
        .iter()
        .find(|i| i.name == "search_paths")
        .unwrap();
    assert_eq!(search.source, InputSource::Override);
    assert_eq!(
        search.value,
        InputValueUsed::Many(vec!["/nonexistent".into()])
    );
    assert_eq!(signed.requested_by.as_deref(), Some(ALICE));
    drop(worker);

    // A worker whose policy locks the input refuses the same request,
    // although this intake let it through.
    let locked = fleet.worker_with("w2", 1, &["--locked-inputs", "search_paths"]);
    let mut again = submit_request(TARGET);
    again.profile_inputs = [("search_paths".to_owned(), "/nonexistent".to_owned())].into();
    let refused = fleet
        .submit_request(tonic::Request::new(again))
        .await
        .unwrap();
    // The scan is refused before pre-flight, so no digest is known and no
    // statement can be made; the status and the dead letter say why.
    let mut intake = fleet.intake_as(fleet.creds.operator()).await;
    let why = "overriding \"search_paths\" is forbidden by this fleet's policy (locked inputs)";
    support::eventually(
        "the locked override to be refused",
        Duration::from_secs(60),
        || {
            let mut intake = intake.clone();
            let scan_id = refused.clone();
            async move {
                let status = intake
                    .get_scan(GetScanRequest { scan_id })
                    .await
                    .unwrap()
                    .into_inner();
                status.state == ScanState::Failed as i32 && status.message == why
            }
        },
    )
    .await;
    let _ = &mut intake;
    assert_eq!(fleet.results().await.len(), 2, "nothing was scanned");
    drop(locked);
    fleet.stop().await;
}
