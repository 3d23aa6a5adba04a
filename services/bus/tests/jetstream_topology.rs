//! The bus topology against a real nats-server: backpressure, coalescing,
//! dedupe, dead letters and durability.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::PullConsumer};
use bytes::Bytes;
use futures::StreamExt;
use scanfleet_bus::dead_letters::{HEADER_DETAIL, HEADER_ORIGINAL_SUBJECT, HEADER_REASON};
use scanfleet_bus::topology::{DLQ_STREAM, INTENTS_STREAM};
use scanfleet_bus::{
    EnqueueError, Enqueued, HEADER_SCAN_ID, IntentQueue, OutgoingIntent, PriorityClass, ScanState,
    ScanStatusBook, TopologyConfig, dead_letter_and_terminate, forward_dead_letters,
};
use scanfleet_test_harness::nats::NatsServer;

async fn connect(server: &NatsServer) -> (async_nats::Client, jetstream::Context) {
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = jetstream::new(client.clone());
    (client, js)
}

/// Polls `check` until it returns true or the deadline passes.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn stream_messages(js: &jetstream::Context, name: &str) -> u64 {
    js.get_stream(name)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

/// Pulls one intent of `class`, waiting up to `wait`.
async fn next_intent(
    js: &jetstream::Context,
    class: PriorityClass,
    wait: Duration,
) -> Option<jetstream::Message> {
    let consumer: PullConsumer = js
        .get_stream(INTENTS_STREAM)
        .await
        .unwrap()
        .get_consumer(&class.consumer_name(&kubesim()))
        .await
        .unwrap();
    let mut batch = consumer
        .batch()
        .max_messages(1)
        .expires(wait)
        .messages()
        .await
        .unwrap();
    batch.next().await.transpose().unwrap()
}

fn kubesim() -> scanfleet_scan_intents::ClusterName {
    scanfleet_scan_intents::ClusterName::new("kubesim").unwrap()
}

/// The default topology, with the consumers of the cluster these tests'
/// subjects name.
fn kubesim_topology() -> TopologyConfig {
    TopologyConfig {
        clusters: vec![kubesim()],
        ..TopologyConfig::default()
    }
}

fn subject(class: PriorityClass, key: &str) -> String {
    format!("scan.intents.{}.kubesim.shop.{key}", class.token())
}

async fn enqueue(queue: &IntentQueue, subject: &str, id: &str) -> Result<Enqueued, EnqueueError> {
    queue
        .enqueue(OutgoingIntent {
            subject,
            msg_id: id,
            scan_id: id,
            traceparent: &scanfleet_bus::trace_headers::new_traceparent(),
            payload: Bytes::from(format!("intent {id}")),
        })
        .await
}

/// A bus set up before consumers were per cluster: `bus init` deletes the
/// fleet-wide consumer (its filter overlaps every cluster's) and the intent
/// it had not delivered goes to the cluster's own consumer.
#[tokio::test]
async fn bus_init_replaces_the_fleet_wide_consumers_and_keeps_their_intents() {
    let server = NatsServer::start();
    let (_client, js) = connect(&server).await;
    let config = kubesim_topology();
    let stream = js.create_stream(config.intents_stream()).await.unwrap();
    stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("workers-high".into()),
            filter_subject: PriorityClass::High.filter_subject(),
            ..Default::default()
        })
        .await
        .unwrap();
    let queue = IntentQueue::new(js.clone());
    enqueue(&queue, &subject(PriorityClass::High, "old"), "old")
        .await
        .unwrap();
    let report = config.ensure(&js).await.unwrap();
    let line = |what: &str| {
        report
            .iter()
            .find(|p| p.what == what)
            .map(|p| p.outcome.clone())
    };
    assert_eq!(
        line("consumer SCAN_INTENTS/workers-high"),
        Some(scanfleet_bus::Provision::Removed)
    );
    assert_eq!(
        line("consumer SCAN_INTENTS/workers-high-kubesim"),
        Some(scanfleet_bus::Provision::Created)
    );
    let intent = next_intent(&js, PriorityClass::High, Duration::from_secs(5))
        .await
        .expect("the queued intent reaches the cluster's consumer");
    assert_eq!(intent.subject.as_str(), subject(PriorityClass::High, "old"));
    let again = config.ensure(&js).await.unwrap();
    assert!(
        again
            .iter()
            .all(|p| p.outcome != scanfleet_bus::Provision::Removed),
        "a re-run removes nothing"
    );
}

#[tokio::test]
async fn ensure_is_idempotent_and_declares_the_documented_shape() {
    let server = NatsServer::start();
    let (_client, js) = connect(&server).await;
    let config = kubesim_topology();
    config.ensure(&js).await.unwrap();
    config.ensure(&js).await.unwrap();

    let info = js
        .get_stream(INTENTS_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(
        info.config.retention,
        jetstream::stream::RetentionPolicy::WorkQueue
    );
    assert_eq!(info.config.discard, jetstream::stream::DiscardPolicy::New);
    assert_eq!(info.config.max_messages_per_subject, 1);
    assert_eq!(info.config.duplicate_window, config.duplicate_window);
    let mut stream = js.get_stream(INTENTS_STREAM).await.unwrap();
    for class in PriorityClass::ALL {
        let consumer = stream
            .consumer_info(class.consumer_name(&kubesim()))
            .await
            .unwrap()
            .clone();
        assert_eq!(
            consumer.config.filter_subject,
            class.cluster_filter_subject(&kubesim())
        );
        assert_eq!(consumer.config.max_deliver, config.max_deliver);
    }
    let _ = stream.info().await.unwrap();

    // A later service with other defaults does not overwrite what exists.
    TopologyConfig {
        intents_max_messages: 7,
        max_deliver: 9,
        backoff: vec![Duration::from_secs(1)],
        ..kubesim_topology()
    }
    .ensure(&js)
    .await
    .unwrap();
    let info = js
        .get_stream(INTENTS_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.config.max_messages, config.intents_max_messages);
    let consumer = stream
        .consumer_info(PriorityClass::High.consumer_name(&kubesim()))
        .await
        .unwrap()
        .clone();
    assert_eq!(consumer.config.max_deliver, config.max_deliver);
}

#[tokio::test]
async fn a_full_queue_refuses_new_intents_instead_of_dropping_old_ones() {
    let server = NatsServer::start();
    let (_client, js) = connect(&server).await;
    let config = TopologyConfig {
        intents_max_messages: 3,
        ..kubesim_topology()
    };
    config.ensure(&js).await.unwrap();
    let queue = IntentQueue::new(js.clone());
    for i in 0..3 {
        let outcome = enqueue(
            &queue,
            &subject(PriorityClass::High, &format!("s{i}")),
            &format!("id{i}"),
        )
        .await
        .unwrap();
        assert!(matches!(outcome, Enqueued::Queued { .. }), "{outcome:?}");
    }
    let err = enqueue(&queue, &subject(PriorityClass::High, "s3"), "id3")
        .await
        .unwrap_err();
    assert!(matches!(err, EnqueueError::QueueFull(_)), "{err}");
    assert!(
        err.to_string().contains("maximum messages exceeded"),
        "{err}"
    );
    assert_eq!(
        stream_messages(&js, INTENTS_STREAM).await,
        3,
        "nothing was dropped"
    );
}

#[tokio::test]
async fn the_same_dedupe_subject_coalesces_until_the_first_is_acked() {
    let server = NatsServer::start();
    let (_client, js) = connect(&server).await;
    kubesim_topology().ensure(&js).await.unwrap();
    let queue = IntentQueue::new(js.clone());
    let key = subject(PriorityClass::Low, "digest-abc.web.baseline-1_0_0");

    assert!(matches!(
        enqueue(&queue, &key, "a").await.unwrap(),
        Enqueued::Queued { .. }
    ));
    assert_eq!(
        enqueue(&queue, &key, "b").await.unwrap(),
        Enqueued::AlreadyQueued
    );
    // A repeated message id is a duplicate, whatever the subject state.
    assert!(matches!(
        enqueue(&queue, &key, "a").await.unwrap(),
        Enqueued::Duplicate { .. }
    ));

    // Take and ack the queued one; the key is free again.
    let message = next_intent(&js, PriorityClass::Low, Duration::from_secs(5))
        .await
        .expect("the queued intent");
    assert_eq!(message.payload, Bytes::from("intent a"));
    message.double_ack().await.unwrap();
    assert!(matches!(
        enqueue(&queue, &key, "c").await.unwrap(),
        Enqueued::Queued { .. }
    ));
}

#[tokio::test]
async fn an_intent_that_exhausts_its_deliveries_moves_to_the_dlq() {
    let server = NatsServer::start();
    let (_client, js) = connect(&server).await;
    let config = TopologyConfig {
        max_deliver: 2,
        backoff: vec![Duration::from_millis(200)],
        ..kubesim_topology()
    };
    config.ensure(&js).await.unwrap();
    let book = ScanStatusBook::open(&js).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let forwarder = tokio::spawn(forward_dead_letters(
        js.clone(),
        Some(book.clone()),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let queue = IntentQueue::new(js.clone());
    let key = subject(PriorityClass::High, "01JDQ2Z8Y6W5M3N4P7R9S0T1V2");
    enqueue(&queue, &key, "poison").await.unwrap();
    book.advance("poison", ScanState::Running, "", None)
        .await
        .unwrap();
    // Receive it twice without acking, as a crashing worker would.
    for delivery in 1..=2 {
        let message = next_intent(&js, PriorityClass::High, Duration::from_secs(5))
            .await
            .expect("a delivery");
        assert_eq!(message.info().unwrap().delivered, delivery);
    }
    // Workers keep pulling; the server decides on the next redelivery
    // attempt that the budget is spent, and emits the advisory instead.
    assert!(
        next_intent(&js, PriorityClass::High, Duration::from_secs(2))
            .await
            .is_none(),
        "no third delivery"
    );

    eventually("the dead letter", || async {
        stream_messages(&js, DLQ_STREAM).await == 1
    })
    .await;
    eventually("the original to be deleted", || async {
        stream_messages(&js, INTENTS_STREAM).await == 0
    })
    .await;
    let dlq = js.get_stream(DLQ_STREAM).await.unwrap();
    let dead = dlq.get_raw_message(1).await.unwrap();
    assert_eq!(dead.payload, Bytes::from("intent poison"));
    assert_eq!(
        dead.headers.get(HEADER_REASON).unwrap().as_str(),
        "max_deliveries"
    );
    assert_eq!(
        dead.headers.get(HEADER_ORIGINAL_SUBJECT).unwrap().as_str(),
        key
    );
    assert_eq!(dead.headers.get(HEADER_SCAN_ID).unwrap().as_str(), "poison");
    // Whoever asks about the scan learns where it went.
    let record = book.get("poison").await.unwrap().unwrap();
    assert_eq!(record.state, ScanState::Failed);
    assert!(
        record
            .message
            .starts_with("dead-lettered after 2 deliveries"),
        "{}",
        record.message
    );

    stop_tx.send(()).unwrap();
    forwarder.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_terminated_intent_is_dead_lettered_once_with_its_reason() {
    let server = NatsServer::start();
    let (client, js) = connect(&server).await;
    kubesim_topology().ensure(&js).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let forwarder = tokio::spawn(forward_dead_letters(js.clone(), None, async move {
        let _ = stop_rx.await;
    }));

    let queue = IntentQueue::new(js.clone());
    enqueue(&queue, &subject(PriorityClass::High, "s1"), "gone")
        .await
        .unwrap();
    let message = next_intent(&js, PriorityClass::High, Duration::from_secs(5))
        .await
        .expect("the queued intent");
    dead_letter_and_terminate(&js, &client, &message, "pod shop/web-0 not found")
        .await
        .unwrap();

    // Wait until the forwarder has consumed the TERMINATED advisory too.
    eventually("the advisory to be forwarded", || async {
        let mut forwarder_consumer: PullConsumer = js
            .get_stream("SCAN_INTENT_ADVISORIES")
            .await
            .unwrap()
            .get_consumer("dlq-forwarder")
            .await
            .unwrap();
        let info = forwarder_consumer.info().await.unwrap();
        info.delivered.stream_sequence >= 1 && info.num_ack_pending == 0 && info.num_pending == 0
    })
    .await;
    assert_eq!(
        stream_messages(&js, DLQ_STREAM).await,
        1,
        "deduplicated to one record"
    );
    assert_eq!(stream_messages(&js, INTENTS_STREAM).await, 0);
    let dead = js
        .get_stream(DLQ_STREAM)
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    assert_eq!(dead.payload, Bytes::from("intent gone"));
    assert_eq!(
        dead.headers.get(HEADER_REASON).unwrap().as_str(),
        "terminated"
    );
    assert_eq!(
        dead.headers.get(HEADER_DETAIL).unwrap().as_str(),
        "pod shop/web-0 not found"
    );

    stop_tx.send(()).unwrap();
    forwarder.await.unwrap().unwrap();
}

/// Red-team finding 1 (issue #12): a multi-line failure reason used to
/// panic async-nats inside `dead_letter_and_terminate` ("invalid header
/// value"), so the intent was redelivered and panicked every worker that
/// claimed it. Now it is dead-lettered once, with the reason on one line.
#[tokio::test]
async fn a_multi_line_reason_is_dead_lettered_not_a_panic() {
    let server = NatsServer::start();
    let (client, js) = connect(&server).await;
    kubesim_topology().ensure(&js).await.unwrap();
    let queue = IntentQueue::new(js.clone());
    enqueue(&queue, &subject(PriorityClass::High, "s1"), "hostile")
        .await
        .unwrap();
    let message = next_intent(&js, PriorityClass::High, Duration::from_secs(5))
        .await
        .expect("the queued intent");
    let reason = "profile container-baseline: unknown input \"no_such_input\"\r\n  \
                  at controls/x.yml:3:1\nScanfleet-Scan-Id: forged\0";
    dead_letter_and_terminate(&js, &client, &message, reason)
        .await
        .unwrap();
    eventually("the dead letter", || async {
        stream_messages(&js, DLQ_STREAM).await == 1
    })
    .await;
    let dead = js
        .get_stream(DLQ_STREAM)
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    let detail = dead.headers.get(HEADER_DETAIL).unwrap().as_str();
    assert!(!detail.chars().any(char::is_control), "{detail:?}");
    assert!(
        detail.contains("unknown input \"no_such_input\""),
        "{detail:?}"
    );
    assert_eq!(
        dead.headers.get(HEADER_SCAN_ID).unwrap().as_str(),
        "hostile",
        "the forged line did not become a header"
    );
    assert_eq!(stream_messages(&js, INTENTS_STREAM).await, 0, "terminated");
}

#[tokio::test]
async fn queued_intents_survive_a_server_crash() {
    let mut server = NatsServer::start();
    {
        let (_client, js) = connect(&server).await;
        kubesim_topology().ensure(&js).await.unwrap();
        let queue = IntentQueue::new(js.clone());
        for i in 0..50 {
            enqueue(
                &queue,
                &subject(PriorityClass::Low, &format!("k{i}")),
                &format!("id{i}"),
            )
            .await
            .unwrap();
        }
    }
    server.restart();
    let (_client, js) = connect(&server).await;
    assert_eq!(
        stream_messages(&js, INTENTS_STREAM).await,
        50,
        "{}",
        server.log()
    );
}
