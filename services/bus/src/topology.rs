//! The JetStream streams, consumers and buckets scanfleet runs on, declared
//! in code. The bootstrap step (`scanfleet bus init`,
//! [`TopologyConfig::ensure`] in `bootstrap.rs`) creates them once with an
//! admin identity; the services only check that they exist
//! ([`crate::check_topology`]) and hold no right to create or change them.
//!
//! Why these shapes (measured facts in `shared/notes/jetstream.md`):
//! - `SCAN_INTENTS` is a **WorkQueue** with `discard: new`: when the fleet is
//!   saturated, producers get an explicit "full" error they turn into 429 /
//!   `RESOURCE_EXHAUSTED`; `discard: old` would silently drop queued work.
//! - One message per subject (`max_messages_per_subject: 1` with
//!   `discard_new_per_subject`): periodic intents end their subject in the
//!   dedupe key (digest, container, profile version), so a flooding scheduler
//!   can never queue the same scan twice while one is pending or running.
//!   Interactive intents end in their own scan id, so they never coalesce.
//! - Two durable pull consumers **per cluster** with disjoint filters
//!   (`scan.intents.<class>.<cluster>.>`) give priority classes and
//!   routing at once: workers drain `high` before `low`, and pull only from
//!   the consumers of clusters they can reach. An intent for a cluster no
//!   running worker serves is never delivered, so it waits (visible in
//!   `GetScan`) instead of being claimed, failed and dead-lettered by a
//!   worker that cannot reach its cluster.
//! - Terminal advisories are captured in a stream, not a core subscription,
//!   so a dead-letter forwarder that is down loses nothing.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use scanfleet_scan_intents::subject::{class_filter, cluster_filter};
use scanfleet_scan_intents::{ClusterName, Priority};

use crate::BusError;

/// The work queue of scan intents.
pub const INTENTS_STREAM: &str = "SCAN_INTENTS";
/// Signed result events, kept for `max_age` for any subscriber to replay.
pub const RESULTS_STREAM: &str = "SCAN_RESULTS";
/// Intents that exhausted their deliveries or were terminated.
pub const DLQ_STREAM: &str = "SCAN_DLQ";
/// Result events that failed verification at the collector.
pub const QUARANTINE_STREAM: &str = "SCAN_QUARANTINE";
/// Durable copy of the intent consumers' terminal advisories.
pub const ADVISORIES_STREAM: &str = "SCAN_INTENT_ADVISORIES";
/// The collector's durable consumer on [`RESULTS_STREAM`].
pub const COLLECTOR_CONSUMER: &str = "collector";
/// Object store bucket for HDF reports too large for one message.
pub const REPORTS_BUCKET: &str = "SCAN_REPORTS";
/// KV bucket of scan states (queued, running, completed…), keyed by scan id.
pub const STATUS_BUCKET: &str = "SCAN_STATUS";
/// KV bucket mapping API idempotency keys to the scan ids they created.
pub const IDEMPOTENCY_BUCKET: &str = "SCAN_IDEMPOTENCY";
/// KV bucket of each cluster's fleet-wide Kubernetes API budget (one token
/// bucket per cluster, keyed by cluster name; `api_budgets.rs`).
pub const API_BUDGETS_BUCKET: &str = "API_BUDGETS";
/// An idle cluster's budget entry is dropped after this long; a missing
/// entry is a full bucket, which an idle day has refilled anyway.
pub const API_BUDGETS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The durable consumer that moves dead intents into [`DLQ_STREAM`].
pub const DLQ_FORWARDER_CONSUMER: &str = "dlq-forwarder";

/// Subject prefix of intents: `scan.intents.<class>.…` (the layout is the
/// intent domain's, `scanfleet_scan_intents::subject`).
pub const INTENTS_SUBJECT_PREFIX: &str = scanfleet_scan_intents::subject::INTENT_SUBJECT_ROOT;
/// Subject prefix of results: `scan.results.<cluster>.<namespace>`
/// (`scanfleet_scan_intents::result_subject`).
pub const RESULTS_SUBJECT_PREFIX: &str = scanfleet_scan_intents::subject::RESULT_SUBJECT_ROOT;
/// Subject prefix of dead letters: `scan.dlq.<consumer>`.
pub const DLQ_SUBJECT_PREFIX: &str = "scan.dlq";
/// Subject prefix of quarantined results.
pub const QUARANTINE_SUBJECT_PREFIX: &str = "scan.quarantine";

/// Queue class of an intent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PriorityClass {
    /// Registry pushes and API requests: someone is waiting.
    High,
    /// Periodic rescans: bulk work that must never starve `High`.
    Low,
}

impl From<Priority> for PriorityClass {
    fn from(p: Priority) -> Self {
        match p {
            Priority::High => PriorityClass::High,
            Priority::Low => PriorityClass::Low,
        }
    }
}

impl PriorityClass {
    /// Both classes, in the order workers drain them.
    pub const ALL: [PriorityClass; 2] = [PriorityClass::High, PriorityClass::Low];

    fn priority(self) -> Priority {
        match self {
            PriorityClass::High => Priority::High,
            PriorityClass::Low => Priority::Low,
        }
    }

    /// The subject token of the class.
    pub fn token(self) -> &'static str {
        self.priority().token()
    }

    /// The consumer name of the class before consumers were per cluster;
    /// `bus init` removes such a consumer (its filter overlaps every
    /// cluster's, which a WorkQueue stream refuses).
    pub const fn legacy_consumer_name(self) -> &'static str {
        match self {
            PriorityClass::High => "workers-high",
            PriorityClass::Low => "workers-low",
        }
    }

    /// The durable consumer that serves the class for one cluster, e.g.
    /// `workers-high-east` (cluster names are RFC 1123 labels, which are
    /// valid consumer names).
    pub fn consumer_name(self, cluster: &ClusterName) -> String {
        format!("{}-{}", self.legacy_consumer_name(), cluster.as_str())
    }

    /// The stream subjects of the class, e.g. `scan.intents.high.>`.
    pub fn filter_subject(self) -> String {
        class_filter(self.priority())
    }

    /// One cluster's consumer filter, e.g. `scan.intents.high.east.>`.
    pub fn cluster_filter_subject(self, cluster: &ClusterName) -> String {
        cluster_filter(self.priority(), cluster)
    }
}

/// Tunables of the topology. Defaults suit a small fleet; production sets
/// `replicas: 3`.
#[derive(Clone, Debug)]
pub struct TopologyConfig {
    /// Replica count of every stream (1 in tests, 3 in production).
    pub replicas: usize,
    /// Queue capacity in messages; publishing beyond it is refused.
    pub intents_max_messages: i64,
    /// Queue capacity in bytes; publishing beyond it is refused.
    pub intents_max_bytes: i64,
    /// How long a `Nats-Msg-Id` is remembered for publish dedupe.
    pub duplicate_window: Duration,
    /// How long results stay replayable.
    pub results_max_age: Duration,
    /// `SCAN_RESULTS` capacity in bytes. At the limit the oldest results
    /// go (`discard: old`): results are kept for replay long after the
    /// collector stored them, so refusing new ones instead would stop the
    /// fleet over history. Alert on the collector consumer's lag, which is
    /// the only way an unstored result could age out.
    pub results_max_bytes: i64,
    /// `SCAN_REPORTS` (object store) capacity in bytes.
    pub reports_max_bytes: i64,
    /// `SCAN_QUARANTINE` capacity in bytes. At the limit the oldest
    /// quarantined events go (`discard: old`), so a flood of forged results
    /// can never stop the collector; alert on the quarantine rate.
    pub quarantine_max_bytes: i64,
    /// How long dead letters and quarantined events are kept.
    pub dlq_max_age: Duration,
    /// Deliveries before an intent is dead-lettered.
    pub max_deliver: i64,
    /// Redelivery delays after ack-wait timeouts (a crashed worker); the
    /// first entry also becomes the ack wait.
    pub backoff: Vec<Duration>,
    /// Fleet-wide cap on unacknowledged intents per class and cluster
    /// (workers × concurrency): the bound that keeps a leak from flooding
    /// the cluster.
    pub max_ack_pending: i64,
    /// The clusters the fleet scans: each gets its own pair of consumers.
    pub clusters: Vec<ClusterName>,
}

/// The cluster a fleet scans when none is named.
pub fn default_cluster() -> ClusterName {
    ClusterName::new("default").expect("\"default\" is an RFC 1123 label")
}

const GIB: i64 = 1024 * 1024 * 1024;

impl Default for TopologyConfig {
    fn default() -> Self {
        Self {
            replicas: 1,
            intents_max_messages: 100_000,
            intents_max_bytes: 256 * 1024 * 1024,
            duplicate_window: Duration::from_secs(300),
            results_max_age: Duration::from_secs(7 * 24 * 3600),
            results_max_bytes: 2 * GIB,
            reports_max_bytes: 2 * GIB,
            quarantine_max_bytes: GIB / 4,
            dlq_max_age: Duration::from_secs(30 * 24 * 3600),
            max_deliver: 5,
            backoff: vec![
                Duration::from_secs(60),
                Duration::from_secs(120),
                Duration::from_secs(300),
                Duration::from_secs(600),
            ],
            max_ack_pending: 256,
            clusters: vec![default_cluster()],
        }
    }
}

impl TopologyConfig {
    /// The `SCAN_INTENTS` stream.
    pub fn intents_stream(&self) -> stream::Config {
        stream::Config {
            name: INTENTS_STREAM.into(),
            subjects: PriorityClass::ALL
                .iter()
                .map(|c| c.filter_subject())
                .collect(),
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            discard: stream::DiscardPolicy::New,
            max_messages: self.intents_max_messages,
            max_bytes: self.intents_max_bytes,
            max_messages_per_subject: 1,
            discard_new_per_subject: true,
            duplicate_window: self.duplicate_window,
            ..Default::default()
        }
    }

    /// The `SCAN_RESULTS` stream.
    pub fn results_stream(&self) -> stream::Config {
        stream::Config {
            name: RESULTS_STREAM.into(),
            subjects: vec![format!("{RESULTS_SUBJECT_PREFIX}.>")],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            max_age: self.results_max_age,
            max_bytes: self.results_max_bytes,
            discard: stream::DiscardPolicy::Old,
            duplicate_window: self.duplicate_window.min(self.results_max_age),
            ..Default::default()
        }
    }

    /// The dead-letter stream.
    pub fn dlq_stream(&self) -> stream::Config {
        stream::Config {
            name: DLQ_STREAM.into(),
            subjects: vec![format!("{DLQ_SUBJECT_PREFIX}.>")],
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            max_age: self.dlq_max_age,
            duplicate_window: self.duplicate_window,
            ..Default::default()
        }
    }

    /// The quarantine stream for results that failed verification.
    pub fn quarantine_stream(&self) -> stream::Config {
        stream::Config {
            name: QUARANTINE_STREAM.into(),
            subjects: vec![format!("{QUARANTINE_SUBJECT_PREFIX}.>")],
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            max_age: self.dlq_max_age,
            max_bytes: self.quarantine_max_bytes,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        }
    }

    /// The stream that keeps the intent consumers' terminal advisories.
    pub fn advisories_stream(&self) -> stream::Config {
        stream::Config {
            name: ADVISORIES_STREAM.into(),
            subjects: vec![
                format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{INTENTS_STREAM}.*"),
                format!("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{INTENTS_STREAM}.*"),
            ],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            max_age: self.dlq_max_age,
            ..Default::default()
        }
    }

    /// The durable pull consumer for one class of one cluster.
    pub fn worker_consumer(
        &self,
        class: PriorityClass,
        cluster: &ClusterName,
    ) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(class.consumer_name(cluster)),
            filter_subject: class.cluster_filter_subject(cluster),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: self
                .backoff
                .first()
                .copied()
                .unwrap_or(Duration::from_secs(60)),
            max_deliver: self.max_deliver,
            backoff: self.backoff.clone(),
            max_ack_pending: self.max_ack_pending,
            ..Default::default()
        }
    }

    /// The durable consumer of the dead-letter forwarder.
    pub fn dlq_forwarder_consumer(&self) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(DLQ_FORWARDER_CONSUMER.into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        }
    }

    /// The collector's consumer: it never gives up on a result (a database
    /// outage must delay results, not drop them), and it pulls in small
    /// batches so an outage leaves little in flight.
    pub fn collector_consumer(&self) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(COLLECTOR_CONSUMER.into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_deliver: -1,
            max_ack_pending: 1024,
            ..Default::default()
        }
    }

    /// The scan status book: one record per scan, kept as long as results.
    pub fn status_bucket(&self) -> jetstream::kv::Config {
        self.bucket(STATUS_BUCKET, self.results_max_age)
    }

    /// API idempotency keys, remembered as long as the duplicate window.
    pub fn idempotency_bucket(&self) -> jetstream::kv::Config {
        self.bucket(IDEMPOTENCY_BUCKET, self.duplicate_window)
    }

    /// The fleet-wide API budgets: tiny, rewritten at every lease, history 1.
    pub fn api_budgets_bucket(&self) -> jetstream::kv::Config {
        self.bucket(API_BUDGETS_BUCKET, API_BUDGETS_MAX_AGE)
    }

    fn bucket(&self, name: &str, max_age: Duration) -> jetstream::kv::Config {
        jetstream::kv::Config {
            bucket: name.into(),
            history: 1,
            max_age,
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    /// The report bucket; reports live as long as the results that bind them.
    pub fn reports_bucket(&self) -> jetstream::object_store::Config {
        jetstream::object_store::Config {
            bucket: REPORTS_BUCKET.into(),
            description: Some("HDF reports too large for one result message".into()),
            max_age: self.results_max_age,
            max_bytes: self.reports_max_bytes,
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            ..Default::default()
        }
    }
}

pub(crate) async fn get_stream(
    js: &jetstream::Context,
    name: &str,
) -> Result<stream::Stream, BusError> {
    js.get_stream(name).await.map_err(|e| BusError::Topology {
        what: name.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_classes_have_disjoint_filters_inside_the_stream() {
        let config = TopologyConfig::default();
        let stream = config.intents_stream();
        assert_eq!(
            stream.subjects,
            vec!["scan.intents.high.>", "scan.intents.low.>"]
        );
        assert_eq!(stream.discard, stream::DiscardPolicy::New);
        assert!(stream.discard_new_per_subject);
        let east = ClusterName::new("east").unwrap();
        let west = ClusterName::new("west").unwrap();
        for class in PriorityClass::ALL {
            let consumer = config.worker_consumer(class, &east);
            assert_eq!(
                consumer.filter_subject,
                format!("scan.intents.{}.east.>", class.token())
            );
            assert_eq!(
                consumer.durable_name.as_deref(),
                Some(format!("workers-{}-east", class.token()).as_str())
            );
            assert_ne!(
                consumer.filter_subject,
                config.worker_consumer(class, &west).filter_subject
            );
            assert_eq!(consumer.ack_wait, config.backoff[0]);
        }
        assert_eq!(config.clusters, vec![default_cluster()]);
    }
}
