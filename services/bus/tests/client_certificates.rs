//! Mutual TLS to the bus, against the real nats-server with `verify: true`
//! (the option `deploy/nats/nats-server.conf` ships commented out): a
//! service identity presenting a certificate the bus CA signed connects
//! and works within its grants; the same identity presenting a
//! certificate from another CA, or none, is refused in the handshake, and
//! `scanfleet_bus::connect` (what every service calls) says so.

use scanfleet_bus::topology::INTENTS_STREAM;
use scanfleet_bus::{BusError, BusIdentity};
use scanfleet_test_harness::pki::TestCa;
use scanfleet_test_harness::secure_bus::SecureBus;

async fn refusal(
    bus: &SecureBus,
    client_cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> String {
    let mut settings = bus.settings(BusIdentity::Worker);
    settings.client_cert = client_cert;
    settings.connect_attempts = 1;
    match scanfleet_bus::connect(&settings, BusIdentity::Worker).await {
        Ok(client) => {
            // A refused certificate may surface only on the first round trip.
            match client.flush().await {
                Ok(()) => panic!("the bus accepted the connection"),
                Err(e) => e.to_string(),
            }
        }
        Err(BusError::Connect(reason)) => reason,
        Err(other) => panic!("not a connection error: {other}"),
    }
}

#[tokio::test]
async fn only_certificates_of_the_bus_ca_are_accepted() {
    let bus = SecureBus::requiring_client_certificates().await;

    // Ours: connected, and the identity's grants apply as without mTLS.
    let worker = bus.js(BusIdentity::Worker).await;
    worker
        .get_stream(INTENTS_STREAM)
        .await
        .expect("a worker reads the intent stream's info");
    let intake = bus.connect(BusIdentity::Intake).await;
    intake.flush().await.expect("intake is connected");

    // The worker's nkey with a certificate from another CA.
    let stranger = TestCa::new("someone-else").client("worker", "scanfleet");
    let foreign = bus.write_certificate("foreign-worker", &stranger);
    let reason = refusal(&bus, Some(foreign)).await;
    assert!(
        reason.contains("UnknownCA"),
        "the server refused the certificate's CA in the handshake: {reason}"
    );

    // The worker's nkey with no certificate at all.
    let reason = refusal(&bus, None).await;
    assert!(
        reason.contains("CertificateRequired"),
        "the server required a certificate in the handshake: {reason}"
    );

    // The server saw both handshakes fail.
    let log = bus.log();
    let failures = log
        .lines()
        .filter(|l| l.contains("TLS handshake error"))
        .count();
    assert!(failures >= 2, "{log}");
}
