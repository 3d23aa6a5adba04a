//! The services' start-up check: the topology they use exists.
//!
//! Services hold no right to create or change streams (that is
//! `scanfleet bus init`'s, with the admin identity), so instead of declaring
//! the topology they look up each stream, consumer and bucket they use and
//! refuse to start, naming everything missing and the command that creates
//! it, rather than fail later on the first message.

use async_nats::jetstream;

use crate::BusError;
use crate::bootstrap::{consumer_info, stream_info};
use crate::identity::{BusIdentity, Required};

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
