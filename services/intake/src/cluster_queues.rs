//! Whether a cluster's intents are being taken: each cluster has its own
//! pair of consumers (`workers-<class>-<cluster>`), so an intent for a
//! cluster no running worker serves simply waits in the stream. This
//! module tells that apart for `GetScan` ("waiting: no running worker
//! serves cluster X") and for the metrics, from the consumers' own state:
//! an idle worker always holds a pull request open on its clusters' high
//! consumer, and a busy one holds unacknowledged intents, so a cluster
//! with neither has no worker.

use std::time::Duration;

use async_nats::jetstream;
use scanfleet_bus::topology::INTENTS_STREAM;
use scanfleet_bus::{PriorityClass, consumer_info};
use scanfleet_scan_intents::ClusterName;
use tokio::sync::watch;

use crate::metrics::{ClusterLabel, Metrics};

/// One cluster's queue, as its consumers show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueState {
    /// Intents queued and not yet delivered, both classes.
    pub pending: u64,
    /// Some worker pulls or runs this cluster's intents.
    pub served: bool,
}

/// Reads the state of clusters' queues.
#[derive(Clone)]
pub struct ClusterQueues {
    js: jetstream::Context,
}

impl ClusterQueues {
    /// Over a JetStream context allowed `CONSUMER.INFO` on `SCAN_INTENTS`.
    pub fn new(js: jetstream::Context) -> Self {
        Self { js }
    }

    /// The state of `cluster`'s queue; a cluster without consumers (`bus
    /// init` was not told about it) is unserved.
    ///
    /// # Errors
    /// The bus cannot be asked.
    pub async fn state(&self, cluster: &ClusterName) -> Result<QueueState, String> {
        let mut state = QueueState {
            pending: 0,
            served: false,
        };
        for class in PriorityClass::ALL {
            let name = class.consumer_name(cluster);
            let Some(info) = consumer_info(&self.js, INTENTS_STREAM, &name).await? else {
                continue;
            };
            state.pending += info.num_pending;
            state.served |=
                info.num_ack_pending > 0 || (class == PriorityClass::High && info.num_waiting > 0);
        }
        Ok(state)
    }

    /// Refreshes the per-cluster gauges every `every` until shutdown; a
    /// failed read keeps the last values and is retried.
    pub async fn publish_metrics(
        self,
        clusters: Vec<ClusterName>,
        metrics: std::sync::Arc<Metrics>,
        every: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            for cluster in &clusters {
                let label = ClusterLabel {
                    cluster: cluster.as_str().to_owned(),
                };
                match self.state(cluster).await {
                    Ok(state) => {
                        let waiting = if state.served { 0 } else { state.pending };
                        metrics
                            .cluster_intents_waiting
                            .get_or_create(&label)
                            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
                        metrics
                            .cluster_served
                            .get_or_create(&label)
                            .set(i64::from(state.served));
                    }
                    Err(e) => {
                        tracing::warn!(%cluster, error = %e, "cannot read the cluster's queue")
                    }
                }
            }
        }
    }
}
