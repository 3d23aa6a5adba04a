//! Least privilege on the bus, against a real nats-server running the
//! shipped authorization (`deploy/nats/scanfleet-authorization.conf`):
//!
//! - the permission matrix: every service identity is refused, with a
//!   permissions violation, on every subject outside its part, and none can
//!   create, change, purge or delete a stream or consumer (red-team finding
//!   7 of issue #12: anyone could purge `SCAN_QUARANTINE`);
//! - each identity can do its part: the matrix's allowed rows here, and its
//!   whole part through the real services in the end-to-end tests, which
//!   all run on this bus with their own identity (`SecureBus`): the worker
//!   fleet (`worker/tests/fleet_end_to_end.rs`), the dead-letter path
//!   (`intake/tests/dead_letters.rs`), the collector (`collector/tests`).
//!
//! Run with `--nocapture` to print the matrix as tested.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use scanfleet_bus::topology::{
    ADVISORIES_STREAM, COLLECTOR_CONSUMER, DLQ_FORWARDER_CONSUMER, DLQ_STREAM, INTENTS_STREAM,
    QUARANTINE_STREAM, RESULTS_STREAM,
};
use scanfleet_bus::{BusIdentity, PriorityClass, default_cluster};
use scanfleet_test_harness::secure_bus::SecureBus;
use tokio::sync::mpsc;

use BusIdentity::{Collector, Intake, Worker};

/// What the server did with one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Refused,
}

use Verdict::{Allowed as A, Refused as R};

/// One operation, as the subject it publishes to (with a payload) or
/// subscribes to. `{me}` / `{other}` stand for the identity's own inbox
/// prefix and another identity's.
#[derive(Clone, Copy)]
enum Op {
    Publish(&'static str, &'static str),
    Subscribe(&'static str),
}

/// A row of the matrix: the operation and the expected verdict for intake,
/// worker and collector.
struct Row {
    what: &'static str,
    op: Op,
    expected: [Verdict; 3],
}

const fn row(what: &'static str, op: Op, expected: [Verdict; 3]) -> Row {
    Row { what, op, expected }
}

use Op::{Publish as P, Subscribe as S};

/// Everything each service does, and a sample of what none may do. Kept
/// as a table: one operation per line.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    row("publish an intent", P("scan.intents.high.kubesim.shop.probe", "x"), [A, R, R]),
    row("publish a periodic intent", P("scan.intents.low.kubesim.shop.probe", "x"), [A, R, R]),
    row("publish an image-scan intent", P("scan.intents.high.kubesim._image.probe", "x"), [A, R, R]),
    row("publish a periodic image-scan intent", P("scan.intents.low.kubesim._image.probe", "x"), [A, R, R]),
    row("publish a result", P("scan.results.kubesim.shop", "x"), [R, A, R]),
    row("publish an image scan's result", P("scan.results.kubesim._image", "x"), [R, A, R]),
    row("publish a dead letter", P("scan.dlq.workers-high", "x"), [A, A, R]),
    row("publish into quarantine", P("scan.quarantine.probe", "x"), [R, R, A]),
    row("write a scan status", P("$KV.SCAN_STATUS.probe", "{}"), [A, A, R]),
    row("read a scan status", P("$JS.API.DIRECT.GET.KV_SCAN_STATUS.$KV.SCAN_STATUS.probe", ""), [A, A, R]),
    row("write an idempotency key", P("$KV.SCAN_IDEMPOTENCY.probe", "x"), [A, R, R]),
    row("read an idempotency key", P("$JS.API.DIRECT.GET.KV_SCAN_IDEMPOTENCY.$KV.SCAN_IDEMPOTENCY.probe", ""), [A, R, R]),
    row("write a cluster's API budget", P("$KV.API_BUDGETS.kubesim", "{}"), [A, A, R]),
    row("read a cluster's API budget", P("$JS.API.DIRECT.GET.KV_API_BUDGETS.$KV.API_BUDGETS.kubesim", ""), [A, A, R]),
    row("look up the API budget bucket", P("$JS.API.STREAM.INFO.KV_API_BUDGETS", ""), [A, A, R]),
    row("write below a budget key", P("$KV.API_BUDGETS.kubesim.extra", "{}"), [R, R, R]),
    row("purge the API budget bucket", P("$JS.API.STREAM.PURGE.KV_API_BUDGETS", ""), [R, R, R]),
    row("delete the API budget bucket", P("$JS.API.STREAM.DELETE.KV_API_BUDGETS", ""), [R, R, R]),
    row("look up SCAN_INTENTS", P("$JS.API.STREAM.INFO.SCAN_INTENTS", ""), [A, A, R]),
    row("look up SCAN_RESULTS", P("$JS.API.STREAM.INFO.SCAN_RESULTS", ""), [R, A, A]),
    row("look up SCAN_QUARANTINE", P("$JS.API.STREAM.INFO.SCAN_QUARANTINE", ""), [R, R, A]),
    row("look up a cluster's worker consumer", P("$JS.API.CONSUMER.INFO.SCAN_INTENTS.workers-high-kubesim", ""), [A, A, R]),
    row("pull a cluster's high intents", P("$JS.API.CONSUMER.MSG.NEXT.SCAN_INTENTS.workers-high-kubesim", r#"{"batch":1,"no_wait":true}"#), [R, A, R]),
    row("pull a cluster's low intents", P("$JS.API.CONSUMER.MSG.NEXT.SCAN_INTENTS.workers-low-kubesim", r#"{"batch":1,"no_wait":true}"#), [R, A, R]),
    row("ack / nak / term / progress an intent", P("$JS.ACK.SCAN_INTENTS.workers-high-kubesim.1.999999.1.0.0", "+ACK"), [R, A, R]),
    row("look up the collector's consumer", P("$JS.API.CONSUMER.INFO.SCAN_RESULTS.collector", ""), [R, R, A]),
    row("pull results", P("$JS.API.CONSUMER.MSG.NEXT.SCAN_RESULTS.collector", r#"{"batch":1,"no_wait":true}"#), [R, R, A]),
    row("ack a result", P("$JS.ACK.SCAN_RESULTS.collector.1.999999.1.0.0", "+ACK"), [R, R, A]),
    row("pull terminal advisories", P("$JS.API.CONSUMER.MSG.NEXT.SCAN_INTENT_ADVISORIES.dlq-forwarder", r#"{"batch":1,"no_wait":true}"#), [A, R, R]),
    row("ack an advisory", P("$JS.ACK.SCAN_INTENT_ADVISORIES.dlq-forwarder.1.999999.1.0.0", "+ACK"), [A, R, R]),
    row("get an intent message", P("$JS.API.STREAM.MSG.GET.SCAN_INTENTS", r#"{"seq":999999}"#), [A, R, R]),
    row("delete an intent message", P("$JS.API.STREAM.MSG.DELETE.SCAN_INTENTS", r#"{"seq":999999}"#), [A, R, R]),
    row("write a report chunk", P("$O.SCAN_REPORTS.C.probe", "x"), [R, A, R]),
    row("write a report's metadata", P("$O.SCAN_REPORTS.M.probe", "{}"), [R, A, R]),
    row("look up a report's metadata", P("$JS.API.DIRECT.GET.OBJ_SCAN_REPORTS.$O.SCAN_REPORTS.M.probe", ""), [R, A, A]),
    row("read report chunks", P("$JS.API.DIRECT.GET.OBJ_SCAN_REPORTS", r#"{"seq":999999}"#), [R, R, A]),
    row("read a result message directly", P("$JS.API.STREAM.MSG.GET.SCAN_RESULTS", r#"{"seq":1}"#), [R, R, R]),
    row("purge SCAN_QUARANTINE", P("$JS.API.STREAM.PURGE.SCAN_QUARANTINE", ""), [R, R, R]),
    row("purge SCAN_INTENTS", P("$JS.API.STREAM.PURGE.SCAN_INTENTS", ""), [R, R, R]),
    row("purge SCAN_RESULTS", P("$JS.API.STREAM.PURGE.SCAN_RESULTS", ""), [R, R, R]),
    row("purge SCAN_DLQ", P("$JS.API.STREAM.PURGE.SCAN_DLQ", ""), [R, R, R]),
    row("purge SCAN_INTENT_ADVISORIES", P("$JS.API.STREAM.PURGE.SCAN_INTENT_ADVISORIES", ""), [R, R, R]),
    row("purge the status bucket", P("$JS.API.STREAM.PURGE.KV_SCAN_STATUS", ""), [R, R, R]),
    row("purge the report bucket", P("$JS.API.STREAM.PURGE.OBJ_SCAN_REPORTS", ""), [R, R, R]),
    row("delete SCAN_QUARANTINE", P("$JS.API.STREAM.DELETE.SCAN_QUARANTINE", ""), [R, R, R]),
    row("delete SCAN_INTENTS", P("$JS.API.STREAM.DELETE.SCAN_INTENTS", ""), [R, R, R]),
    row("delete SCAN_RESULTS", P("$JS.API.STREAM.DELETE.SCAN_RESULTS", ""), [R, R, R]),
    row("delete SCAN_DLQ", P("$JS.API.STREAM.DELETE.SCAN_DLQ", ""), [R, R, R]),
    row("delete the report bucket", P("$JS.API.STREAM.DELETE.OBJ_SCAN_REPORTS", ""), [R, R, R]),
    row("delete a quarantined message", P("$JS.API.STREAM.MSG.DELETE.SCAN_QUARANTINE", r#"{"seq":1}"#), [R, R, R]),
    row("delete a result message", P("$JS.API.STREAM.MSG.DELETE.SCAN_RESULTS", r#"{"seq":1}"#), [R, R, R]),
    row("delete a dead letter", P("$JS.API.STREAM.MSG.DELETE.SCAN_DLQ", r#"{"seq":1}"#), [R, R, R]),
    row("create a stream", P("$JS.API.STREAM.CREATE.PROBE", r#"{"name":"PROBE","subjects":["probe.>"]}"#), [R, R, R]),
    row("change a stream's limits", P("$JS.API.STREAM.UPDATE.SCAN_QUARANTINE", r#"{"name":"SCAN_QUARANTINE"}"#), [R, R, R]),
    row("create an ephemeral consumer", P("$JS.API.CONSUMER.CREATE.SCAN_INTENTS", "{}"), [R, R, R]),
    row("create a named consumer", P("$JS.API.CONSUMER.CREATE.SCAN_RESULTS.probe", "{}"), [R, R, R]),
    row("create a filtered consumer", P("$JS.API.CONSUMER.CREATE.OBJ_SCAN_REPORTS.probe.$O.SCAN_REPORTS.C.x", "{}"), [R, R, R]),
    row("create a durable consumer (old API)", P("$JS.API.CONSUMER.DURABLE.CREATE.SCAN_INTENTS.probe", "{}"), [R, R, R]),
    row("delete the worker consumer", P("$JS.API.CONSUMER.DELETE.SCAN_INTENTS.workers-high", ""), [R, R, R]),
    row("delete the collector consumer", P("$JS.API.CONSUMER.DELETE.SCAN_RESULTS.collector", ""), [R, R, R]),
    row("delete the forwarder consumer", P("$JS.API.CONSUMER.DELETE.SCAN_INTENT_ADVISORIES.dlq-forwarder", ""), [R, R, R]),
    row("list streams", P("$JS.API.STREAM.NAMES", ""), [R, R, R]),
    row("read account info", P("$JS.API.INFO", ""), [R, R, R]),
    row("subscribe to its own inbox", S("{me}.>"), [A, A, A]),
    row("subscribe to another identity's inbox", S("{other}.>"), [R, R, R]),
    row("subscribe to every inbox", S("_INBOX.>"), [R, R, R]),
    row("subscribe to intents", S("scan.intents.>"), [R, R, R]),
    row("subscribe to results", S("scan.results.>"), [R, R, R]),
    row("subscribe to JetStream advisories", S("$JS.EVENT.>"), [R, R, R]),
    row("subscribe to everything", S(">"), [R, R, R]),
];

/// A connection as one identity that reports the server's errors.
struct Probe {
    identity: BusIdentity,
    client: async_nats::Client,
    errors: mpsc::UnboundedReceiver<String>,
    sentinels: u32,
}

impl Probe {
    async fn connect(bus: &SecureBus, identity: BusIdentity) -> Self {
        let (tx, errors) = mpsc::unbounded_channel();
        let seed = std::fs::read_to_string(bus.nkey_file(identity)).unwrap();
        let client = async_nats::ConnectOptions::new()
            .nkey(seed)
            .add_root_certificates(bus.ca().to_path_buf())
            .require_tls(true)
            .custom_inbox_prefix(identity.inbox_prefix())
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .connect(bus.url())
            .await
            .unwrap();
        Self {
            identity,
            client,
            errors,
            sentinels: 0,
        }
    }

    fn expand(&self, subject: &str) -> String {
        let other = if self.identity == Worker {
            Collector
        } else {
            Worker
        };
        subject
            .replace("{me}", self.identity.inbox_prefix())
            .replace("{other}", other.inbox_prefix())
    }

    /// Performs `op`, then publishes to a subject no service may use. The
    /// server handles a connection's operations in order, so the
    /// sentinel's violation arrives after `op`'s, if `op` had one: no
    /// waiting and hoping.
    async fn try_op(&mut self, op: Op) -> Verdict {
        let (subject, _subscription) = match op {
            Op::Publish(subject, payload) => {
                let subject = self.expand(subject);
                let reply = format!("{}.probe", self.identity.inbox_prefix());
                self.client
                    .publish_with_reply(subject.clone(), reply, Bytes::from(payload))
                    .await
                    .unwrap();
                (subject, None)
            }
            Op::Subscribe(subject) => {
                let subject = self.expand(subject);
                let subscription = self.client.subscribe(subject.clone()).await.unwrap();
                (subject, Some(subscription))
            }
        };
        self.sentinels += 1;
        let sentinel = format!("scanfleet.probe.sentinel.{}", self.sentinels);
        self.client
            .publish(sentinel.clone(), Bytes::new())
            .await
            .unwrap();
        self.client.flush().await.unwrap();
        let mut verdict = Verdict::Allowed;
        loop {
            let error = tokio::time::timeout(Duration::from_secs(10), self.errors.recv())
                .await
                .unwrap_or_else(|_| panic!("no answer for the sentinel after {subject}"))
                .expect("the connection's event channel");
            assert!(
                error.contains("Permissions Violation"),
                "unexpected server error: {error}"
            );
            if error.contains(&format!("\"{sentinel}\"")) {
                return verdict;
            }
            assert!(
                error.contains(&format!("\"{subject}\"")),
                "a violation for another subject than {subject}: {error}"
            );
            verdict = Verdict::Refused;
        }
    }
}

fn label(v: Verdict) -> &'static str {
    match v {
        Verdict::Allowed => "allowed",
        Verdict::Refused => "refused",
    }
}

/// Every durable consumer is still there after the services' attempts.
async fn every_consumer_survived(admin: &async_nats::jetstream::Context) {
    for (stream, consumer) in [
        (
            INTENTS_STREAM,
            PriorityClass::High.consumer_name(&default_cluster()),
        ),
        (
            INTENTS_STREAM,
            PriorityClass::Low.consumer_name(&default_cluster()),
        ),
        (RESULTS_STREAM, COLLECTOR_CONSUMER.to_owned()),
        (ADVISORIES_STREAM, DLQ_FORWARDER_CONSUMER.to_owned()),
    ] {
        admin
            .get_stream(stream)
            .await
            .unwrap()
            .consumer_info(&consumer)
            .await
            .unwrap_or_else(|e| panic!("{stream}/{consumer}: {e}"));
    }
}

#[tokio::test]
async fn every_identity_is_refused_outside_its_part_and_none_can_erase_anything() {
    let bus = SecureBus::start().await;
    let admin = bus.admin().await;
    // Evidence that must survive every attempt below.
    for subject in [
        "scan.quarantine.bad_signature",
        "scan.results.kubesim.shop",
        "scan.dlq.workers-high",
    ] {
        admin
            .publish(subject, Bytes::from_static(b"evidence"))
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let mut actual: BTreeMap<(usize, BusIdentity), Verdict> = BTreeMap::new();
    for identity in [Intake, Worker, Collector] {
        let mut probe = Probe::connect(&bus, identity).await;
        for (i, row) in ROWS.iter().enumerate() {
            actual.insert((i, identity), probe.try_op(row.op).await);
        }
    }

    let mut table = String::from(
        "| operation | subject | intake | worker | collector |\n|---|---|---|---|---|\n",
    );
    let mut wrong = Vec::new();
    for (i, row) in ROWS.iter().enumerate() {
        let subject = match row.op {
            Op::Publish(s, _) => format!("publish `{s}`"),
            Op::Subscribe(s) => format!("subscribe `{s}`"),
        };
        let cells: Vec<&str> = [Intake, Worker, Collector]
            .iter()
            .zip(row.expected)
            .map(|(who, expected)| {
                let got = actual[&(i, *who)];
                if got != expected {
                    wrong.push(format!(
                        "{}: {who} was {}, expected {}",
                        row.what,
                        label(got),
                        label(expected)
                    ));
                }
                label(got)
            })
            .collect();
        table.push_str(&format!(
            "| {} | {subject} | {} |\n",
            row.what,
            cells.join(" | ")
        ));
    }
    println!("{table}");
    assert!(wrong.is_empty(), "{}\n\n{table}", wrong.join("\n"));

    // Nothing was purged or deleted: every stream and consumer is there,
    // and the first message of each evidence stream is still message 1.
    for stream in [
        INTENTS_STREAM,
        RESULTS_STREAM,
        DLQ_STREAM,
        QUARANTINE_STREAM,
        ADVISORIES_STREAM,
        "KV_SCAN_STATUS",
        "KV_SCAN_IDEMPOTENCY",
        "KV_API_BUDGETS",
        "OBJ_SCAN_REPORTS",
    ] {
        admin
            .get_stream(stream)
            .await
            .unwrap_or_else(|e| panic!("{stream}: {e}"));
    }
    for stream in [QUARANTINE_STREAM, RESULTS_STREAM, DLQ_STREAM] {
        let first = admin
            .get_stream(stream)
            .await
            .unwrap()
            .get_raw_message(1)
            .await
            .unwrap_or_else(|e| panic!("{stream} lost its evidence: {e}"));
        assert_eq!(first.payload, Bytes::from_static(b"evidence"));
    }
    every_consumer_survived(&admin).await;
    assert!(
        admin.get_stream("PROBE").await.is_err(),
        "no stream created"
    );

    // The admin identity can do what no service can (that is all it is for).
    let mut quarantine = admin.get_stream(QUARANTINE_STREAM).await.unwrap();
    quarantine.purge().await.unwrap();
    assert_eq!(quarantine.info().await.unwrap().state.messages, 0);
    admin
        .get_stream(RESULTS_STREAM)
        .await
        .unwrap()
        .delete_consumer(COLLECTOR_CONSUMER)
        .await
        .unwrap();
    admin.delete_stream(DLQ_STREAM).await.unwrap();
}
