//! The services' start-up check: the topology they use exists.
//!
//! Services hold no right to create or change streams (that is
//! `scanfleet bus init`'s, with the admin identity), so instead of declaring
//! the topology they look up each stream, consumer and bucket they use and
//! refuse to start, naming everything missing and the command that creates
//! it, rather than fail later on the first message.

use async_nats::jetstream;

use scanfleet_scan_intents::ClusterName;

use crate::BusError;
use crate::bootstrap::{consumer_info, stream_info};
use crate::identity::{BusIdentity, Required};
use crate::topology::{INTENTS_STREAM, PriorityClass};

/// Checks that everything `identity` requires exists. Needs only the
/// `$JS.API.STREAM.INFO` / `$JS.API.CONSUMER.INFO` subjects of those.
///
/// # Errors
/// [`BusError::TopologyMissing`] listing every missing part, or
/// [`BusError::Topology`] when a part cannot be looked up at all (the server
/// is unreachable, or the identity may not look it up).
pub async fn check_topology(
    js: &jetstream::Context,
    identity: BusIdentity,
) -> Result<(), BusError> {
    let mut missing: Vec<String> = Vec::new();
    let mut missing_streams: Vec<String> = Vec::new();
    for &what in identity.requires() {
        let found = match what {
            Required::Consumer(stream, name) => {
                if missing_streams.iter().any(|s| s == stream) {
                    continue;
                }
                consumer_info(js, stream, name).await.map(|i| i.is_some())
            }
            _ => stream_info(js, &what.stream()).await.map(|i| i.is_some()),
        }
        .map_err(|reason| BusError::Topology {
            what: what.to_string(),
            reason: format!(
                "cannot look it up as {identity}: {reason} (a permissions violation in this \
                 log means the NATS server configuration does not grant this identity its part)"
            ),
        })?;
        if !found {
            if !matches!(what, Required::Consumer(..)) {
                missing_streams.push(what.stream());
            }
            missing.push(what.to_string());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(BusError::TopologyMissing { missing })
    }
}

/// Checks that every cluster a worker serves has its intent consumers, so
/// a worker configured for a cluster `bus init` was not told about refuses
/// to start, naming the command that fixes it, instead of idling forever.
///
/// # Errors
/// [`BusError::TopologyMissing`] listing every missing consumer, or
/// [`BusError::Topology`] when one cannot be looked up.
pub async fn check_cluster_consumers(
    js: &jetstream::Context,
    clusters: &[ClusterName],
) -> Result<(), BusError> {
    let mut missing = Vec::new();
    for cluster in clusters {
        for class in PriorityClass::ALL {
            let name = class.consumer_name(cluster);
            let what = format!("consumer {INTENTS_STREAM}/{name}");
            let found = consumer_info(js, INTENTS_STREAM, &name)
                .await
                .map_err(|reason| BusError::Topology {
                    what: what.clone(),
                    reason,
                })?;
            if found.is_none() {
                missing.push(format!(
                    "{what} (cluster {cluster}: run `scanfleet bus init --cluster {cluster}` \
                     with every cluster the fleet scans)"
                ));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(BusError::TopologyMissing { missing })
    }
}
