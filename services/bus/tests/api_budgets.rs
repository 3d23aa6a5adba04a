//! The API budget book against a real nats-server with the worker's own
//! identity: compare-and-set on the entry's revision, so of two writers
//! that read the same revision exactly one owns what it wrote.

use scanfleet_bus::{ApiBudgetBook, BudgetWrite, BusIdentity};
use scanfleet_test_harness::secure_bus::SecureBus;

#[tokio::test]
async fn only_one_of_two_writers_of_the_same_revision_wins() {
    let bus = SecureBus::start().await;
    let js = bus.js(BusIdentity::Worker).await;
    let book = ApiBudgetBook::open(&js).await.unwrap();

    assert_eq!(book.read("kubesim").await.unwrap(), None);
    assert_eq!(
        book.write("kubesim", b"first".to_vec(), None)
            .await
            .unwrap(),
        BudgetWrite::Stored
    );
    assert_eq!(
        book.write("kubesim", b"also first".to_vec(), None)
            .await
            .unwrap(),
        BudgetWrite::Conflict,
        "a second create finds the entry"
    );
    let read = book.read("kubesim").await.unwrap().unwrap();
    assert_eq!(&read.value[..], b"first");
    assert_eq!(
        book.write("kubesim", b"a".to_vec(), Some(read.revision))
            .await
            .unwrap(),
        BudgetWrite::Stored
    );
    assert_eq!(
        book.write("kubesim", b"b".to_vec(), Some(read.revision))
            .await
            .unwrap(),
        BudgetWrite::Conflict,
        "the second writer of that revision must re-read"
    );
    assert_eq!(
        &book.read("kubesim").await.unwrap().unwrap().value[..],
        b"a"
    );
    // Another cluster's budget is its own entry.
    assert_eq!(book.read("other").await.unwrap(), None);
}
