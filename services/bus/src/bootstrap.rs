//! Creating the topology: the one step that needs stream-management rights.
//!
//! `scanfleet bus init` runs it with the admin identity, before any service
//! starts (and the tests run the same code before starting theirs). It
//! creates what is missing and **never changes what exists**: a live limit
//! is changed deliberately, not as a side effect of a re-run, so a re-run
//! only reports where the existing configuration differs from the flags.

use std::time::Duration;

use async_nats::jetstream::{self, ErrorCode, consumer, response::Response, stream};

use crate::BusError;
use crate::identity::{BusIdentity, Required};
use crate::topology::{
    ADVISORIES_STREAM, COLLECTOR_CONSUMER, DLQ_FORWARDER_CONSUMER, INTENTS_STREAM, PriorityClass,
    RESULTS_STREAM, TopologyConfig,
};

/// What the bootstrap found or did for one stream, consumer or bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provision {
    /// It was missing and is now created from the flags.
    Created,
    /// It existed and was left alone; `differences` lists the settings
    /// whose live value differs from the flags (`max_bytes: live 1024, flags 2048`).
    Exists {
        /// One line per differing setting.
        differences: Vec<String>,
    },
    /// A consumer of an older topology that the current one cannot live
    /// beside was deleted (its unacknowledged intents stay in the stream
    /// and go to the per-cluster consumers).
    Removed,
}

/// One line of the bootstrap's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioned {
    /// The stream, consumer or bucket, as `consumer SCAN_INTENTS/workers-high-east`.
    pub what: String,
    /// Created, or left as it was.
    pub outcome: Provision,
}

impl TopologyConfig {
    /// Every problem with these settings, or none. The server would refuse
    /// some of them anyway (e.g. more backoff steps than deliveries), but
    /// only after creating half the topology.
    ///
    /// # Errors
    /// One message per problem, naming the setting.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if !(1..=5).contains(&self.replicas) {
            problems.push(format!("--replicas: {} is not 1 to 5", self.replicas));
        }
        for (name, value) in [
            ("--intents-max-messages", self.intents_max_messages),
            ("--intents-max-bytes", self.intents_max_bytes),
            ("--results-max-bytes", self.results_max_bytes),
            ("--quarantine-max-bytes", self.quarantine_max_bytes),
            ("--reports-max-bytes", self.reports_max_bytes),
            ("--max-ack-pending", self.max_ack_pending),
            ("--max-deliver", self.max_deliver),
        ] {
            if value < 1 {
                problems.push(format!("{name}: {value} must be at least 1"));
            }
        }
        for (name, value) in [
            ("--duplicate-window", self.duplicate_window),
            ("--results-max-age", self.results_max_age),
            ("--dead-letter-max-age", self.dlq_max_age),
        ] {
            if value.is_zero() {
                problems.push(format!("{name}: must be longer than 0"));
            }
        }
        if self.backoff.is_empty() || self.backoff.iter().any(Duration::is_zero) {
            problems.push("--backoff: give at least one step, each longer than 0".into());
        }
        if self.backoff.len() as i64 > self.max_deliver {
            problems.push(format!(
                "--backoff: {} steps but --max-deliver is {}; the server refuses more steps than deliveries",
                self.backoff.len(),
                self.max_deliver
            ));
        }
        if self.clusters.is_empty() {
            problems.push("--cluster: name at least one cluster the fleet scans".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for cluster in &self.clusters {
            if !seen.insert(cluster.as_str()) {
                problems.push(format!("--cluster {cluster}: named twice"));
            }
        }
        if self.duplicate_window > self.results_max_age {
            problems.push("--duplicate-window: longer than --results-max-age".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Creates every stream, consumer and bucket that does not exist yet and
    /// leaves existing ones alone, reporting what it did in the order
    /// [`BusIdentity::Admin`] requires them. Needs the admin identity.
    ///
    /// # Errors
    /// [`BusError::Topology`] naming the invalid settings, or the stream,
    /// consumer or bucket that could not be read or created.
    pub async fn ensure(&self, js: &jetstream::Context) -> Result<Vec<Provisioned>, BusError> {
        self.validate().map_err(|problems| BusError::Topology {
            what: "settings".into(),
            reason: problems.join("; "),
        })?;
        let mut report = Vec::new();
        for &what in BusIdentity::Admin.requires() {
            let outcome = self
                .provision(js, what)
                .await
                .map_err(|reason| BusError::Topology {
                    what: what.to_string(),
                    reason,
                })?;
            report.push(Provisioned {
                what: what.to_string(),
                outcome,
            });
        }
        // The legacy fleet-wide consumers overlap every cluster's filter.
        for class in PriorityClass::ALL {
            let name = class.legacy_consumer_name();
            if let Some(outcome) = remove_consumer(js, INTENTS_STREAM, name).await? {
                report.push(Provisioned {
                    what: format!("consumer {INTENTS_STREAM}/{name}"),
                    outcome,
                });
            }
        }
        for cluster in &self.clusters {
            for class in PriorityClass::ALL {
                let wanted = self.worker_consumer(class, cluster);
                let name = class.consumer_name(cluster);
                let what = format!("consumer {INTENTS_STREAM}/{name}");
                let outcome = self
                    .provision_consumer(js, INTENTS_STREAM, &name, wanted)
                    .await
                    .map_err(|reason| BusError::Topology {
                        what: what.clone(),
                        reason,
                    })?;
                report.push(Provisioned { what, outcome });
            }
        }
        Ok(report)
    }

    async fn provision_consumer(
        &self,
        js: &jetstream::Context,
        stream: &str,
        name: &str,
        wanted: consumer::pull::Config,
    ) -> Result<Provision, String> {
        match consumer_info(js, stream, name).await? {
            Some(live) => Ok(exists(consumer_differences(&wanted, &live.config))),
            None => {
                let stream = js.get_stream(stream).await.map_err(|e| e.to_string())?;
                stream
                    .create_consumer(wanted)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Provision::Created)
            }
        }
    }

    async fn provision(
        &self,
        js: &jetstream::Context,
        what: Required,
    ) -> Result<Provision, String> {
        match what {
            Required::Consumer(stream, name) => {
                let wanted = self.consumer_config(stream, name)?;
                self.provision_consumer(js, stream, name, wanted).await
            }
            _ => {
                let wanted = self.stream_config(what)?;
                match stream_info(js, &what.stream()).await? {
                    Some(live) => Ok(exists(stream_differences(&wanted, &live.config))),
                    None => {
                        self.create(js, what, wanted).await?;
                        Ok(Provision::Created)
                    }
                }
            }
        }
    }

    async fn create(
        &self,
        js: &jetstream::Context,
        what: Required,
        stream: stream::Config,
    ) -> Result<(), String> {
        match what {
            Required::KeyValue(_) => {
                let config = match what {
                    Required::KeyValue(crate::topology::STATUS_BUCKET) => self.status_bucket(),
                    Required::KeyValue(crate::topology::API_BUDGETS_BUCKET) => {
                        self.api_budgets_bucket()
                    }
                    _ => self.idempotency_bucket(),
                };
                js.create_key_value(config)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            Required::ObjectStore(_) => js
                .create_object_store(self.reports_bucket())
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            _ => js
                .create_stream(stream)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }

    /// What a stream (or a bucket's stream) should look like, for creating
    /// it and for comparing a live one against.
    fn stream_config(&self, what: Required) -> Result<stream::Config, String> {
        use crate::topology::{
            API_BUDGETS_BUCKET, API_BUDGETS_MAX_AGE, DLQ_STREAM, IDEMPOTENCY_BUCKET,
            QUARANTINE_STREAM, REPORTS_BUCKET, STATUS_BUCKET,
        };
        let bucket = |max_age: Duration, max_bytes: i64| stream::Config {
            name: what.stream(),
            max_age,
            max_bytes,
            num_replicas: self.replicas,
            ..Default::default()
        };
        Ok(match what {
            Required::Stream(INTENTS_STREAM) => self.intents_stream(),
            Required::Stream(RESULTS_STREAM) => self.results_stream(),
            Required::Stream(DLQ_STREAM) => self.dlq_stream(),
            Required::Stream(QUARANTINE_STREAM) => self.quarantine_stream(),
            Required::Stream(ADVISORIES_STREAM) => self.advisories_stream(),
            Required::KeyValue(STATUS_BUCKET) => bucket(self.results_max_age, -1),
            Required::KeyValue(IDEMPOTENCY_BUCKET) => bucket(self.duplicate_window, -1),
            Required::KeyValue(API_BUDGETS_BUCKET) => bucket(API_BUDGETS_MAX_AGE, -1),
            Required::ObjectStore(REPORTS_BUCKET) => {
                bucket(self.results_max_age, self.reports_max_bytes)
            }
            other => return Err(format!("{other} is not part of the topology")),
        })
    }

    fn consumer_config(&self, stream: &str, name: &str) -> Result<consumer::pull::Config, String> {
        Ok(match (stream, name) {
            (RESULTS_STREAM, COLLECTOR_CONSUMER) => self.collector_consumer(),
            (ADVISORIES_STREAM, DLQ_FORWARDER_CONSUMER) => self.dlq_forwarder_consumer(),
            _ => {
                return Err(format!(
                    "consumer {stream}/{name} is not part of the topology"
                ));
            }
        })
    }
}

/// Deletes a consumer if it exists; `None` when there was none.
async fn remove_consumer(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Result<Option<Provision>, BusError> {
    let failed = |reason: String| BusError::Topology {
        what: format!("consumer {stream}/{name}"),
        reason,
    };
    if consumer_info(js, stream, name)
        .await
        .map_err(failed)?
        .is_none()
    {
        return Ok(None);
    }
    let stream = js
        .get_stream(stream)
        .await
        .map_err(|e| failed(e.to_string()))?;
    stream
        .delete_consumer(name)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(Some(Provision::Removed))
}

fn exists(differences: Vec<String>) -> Provision {
    Provision::Exists { differences }
}

/// A stream's live configuration, `None` when it does not exist.
pub(crate) async fn stream_info(
    js: &jetstream::Context,
    name: &str,
) -> Result<Option<stream::Info>, String> {
    let response: Response<stream::Info> = js
        .request(format!("STREAM.INFO.{name}"), &())
        .await
        .map_err(|e| e.to_string())?;
    match response {
        Response::Ok(info) => Ok(Some(info)),
        Response::Err { error } if error.error_code() == ErrorCode::STREAM_NOT_FOUND => Ok(None),
        Response::Err { error } => Err(error.to_string()),
    }
}

/// A consumer's live configuration, `None` when it (or its stream) does not
/// exist.
pub async fn consumer_info(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Result<Option<consumer::Info>, String> {
    let response: Response<consumer::Info> = js
        .request(
            format!("CONSUMER.INFO.{stream}.{name}"),
            &serde_json::json!({}),
        )
        .await
        .map_err(|e| e.to_string())?;
    match response {
        Response::Ok(info) => Ok(Some(info)),
        Response::Err { error }
            if [ErrorCode::CONSUMER_NOT_FOUND, ErrorCode::STREAM_NOT_FOUND]
                .contains(&error.error_code()) =>
        {
            Ok(None)
        }
        Response::Err { error } => Err(error.to_string()),
    }
}

/// The limits the flags set, where the live value differs. Only settings
/// the flags choose are compared (the server fills in others).
fn stream_differences(wanted: &stream::Config, live: &stream::Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |name: &str, want: String, have: String| {
        if want != have {
            out.push(format!("{name}: live {have}, flags {want}"));
        }
    };
    differ(
        "replicas",
        wanted.num_replicas.to_string(),
        live.num_replicas.to_string(),
    );
    if wanted.max_bytes > 0 {
        differ(
            "max_bytes",
            wanted.max_bytes.to_string(),
            live.max_bytes.to_string(),
        );
    }
    if wanted.max_messages > 0 {
        differ(
            "max_msgs",
            wanted.max_messages.to_string(),
            live.max_messages.to_string(),
        );
    }
    if !wanted.max_age.is_zero() {
        differ(
            "max_age",
            format!("{:?}", wanted.max_age),
            format!("{:?}", live.max_age),
        );
    }
    out
}

fn consumer_differences(wanted: &consumer::pull::Config, live: &consumer::Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |name: &str, want: String, have: String| {
        if want != have {
            out.push(format!("{name}: live {have}, flags {want}"));
        }
    };
    if wanted.max_deliver != 0 {
        differ(
            "max_deliver",
            wanted.max_deliver.to_string(),
            live.max_deliver.to_string(),
        );
    }
    if wanted.max_ack_pending > 0 {
        differ(
            "max_ack_pending",
            wanted.max_ack_pending.to_string(),
            live.max_ack_pending.to_string(),
        );
    }
    if !wanted.ack_wait.is_zero() {
        differ(
            "ack_wait",
            format!("{:?}", wanted.ack_wait),
            format!("{:?}", live.ack_wait),
        );
    }
    if !wanted.backoff.is_empty() {
        differ(
            "backoff",
            format!("{:?}", wanted.backoff),
            format!("{:?}", live.backoff),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_setting_is_named_at_once() {
        let config = TopologyConfig {
            replicas: 0,
            results_max_bytes: 0,
            max_deliver: 2,
            backoff: vec![Duration::from_secs(1); 3],
            duplicate_window: Duration::ZERO,
            ..Default::default()
        };
        let problems = config.validate().unwrap_err().join("\n");
        for needle in [
            "--replicas: 0",
            "--results-max-bytes: 0",
            "--backoff: 3 steps but --max-deliver is 2",
            "--duplicate-window: must be longer",
        ] {
            assert!(problems.contains(needle), "{needle} in {problems}");
        }
        assert!(TopologyConfig::default().validate().is_ok());
    }

    #[test]
    fn differences_name_the_setting_and_both_values() {
        let config = TopologyConfig::default();
        let wanted = config.results_stream();
        let mut live = wanted.clone();
        live.max_bytes = 1024;
        assert_eq!(
            stream_differences(&wanted, &live),
            vec![format!("max_bytes: live 1024, flags {}", wanted.max_bytes)]
        );
        assert!(stream_differences(&wanted, &wanted).is_empty());
    }
}
