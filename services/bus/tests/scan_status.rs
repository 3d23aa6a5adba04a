//! The scan status book against a real nats-server: forward-only states,
//! compare-and-set under concurrent writers.

use async_nats::jetstream;
use scanfleet_bus::{ScanState, ScanStatusBook, TopologyConfig};
use scanfleet_test_harness::nats::NatsServer;

#[tokio::test]
async fn states_only_move_forward_and_keep_the_intent() {
    let server = NatsServer::start();
    let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    TopologyConfig::default().ensure(&js).await.unwrap();
    let book = ScanStatusBook::open(&js).await.unwrap();

    assert_eq!(book.get("01A").await.unwrap(), None);
    assert!(
        book.advance("01A", ScanState::Queued, "", Some(b"intent"))
            .await
            .unwrap()
    );
    assert!(
        book.advance("01A", ScanState::Running, "", None)
            .await
            .unwrap()
    );
    assert!(
        !book
            .advance("01A", ScanState::Queued, "", None)
            .await
            .unwrap(),
        "no going back"
    );
    assert!(
        book.advance("01A", ScanState::Retrying, "429", None)
            .await
            .unwrap()
    );
    assert!(
        book.advance("01A", ScanState::Running, "", None)
            .await
            .unwrap()
    );
    assert!(
        book.advance("01A", ScanState::Completed, "", None)
            .await
            .unwrap()
    );
    assert!(
        !book
            .advance("01A", ScanState::Running, "redelivered", None)
            .await
            .unwrap()
    );
    let record = book.get("01A").await.unwrap().unwrap();
    assert_eq!(record.state, ScanState::Completed);
    assert_eq!(record.intent, b"intent", "the intent survives later writes");
}

#[tokio::test]
async fn concurrent_writers_never_lose_a_terminal_state() {
    let server = NatsServer::start();
    let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    TopologyConfig::default().ensure(&js).await.unwrap();
    let book = ScanStatusBook::open(&js).await.unwrap();
    book.advance("01B", ScanState::Queued, "", None)
        .await
        .unwrap();
    let mut writers = Vec::new();
    for i in 0..16 {
        let book = book.clone();
        writers.push(tokio::spawn(async move {
            let state = if i == 7 {
                ScanState::Failed
            } else {
                ScanState::Running
            };
            book.advance("01B", state, "", None).await.unwrap();
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(
        book.get("01B").await.unwrap().unwrap().state,
        ScanState::Failed
    );
}
