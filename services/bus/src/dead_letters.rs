//! Moving dead intents into `SCAN_DLQ`.
//!
//! JetStream keeps a WorkQueue message that exhausted `max_deliver` in the
//! stream on purpose and only emits an advisory; it has no built-in DLQ. The
//! forwarder reads those advisories from a durable stream (so none is lost
//! while it is down), copies the original into `SCAN_DLQ` under the message id
//! `SCAN_INTENTS:<seq>` (so a replayed advisory cannot duplicate it), and only
//! then deletes the original.
//!
//! `Term` counts as an ack on a WorkQueue stream, so a terminated intent is
//! already gone when its advisory arrives. Workers therefore call
//! [`dead_letter_and_terminate`], which copies the intent first; the
//! forwarder leaves terminated advisories alone (the server emits some of
//! its own, for messages that were not dead).

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt;
use serde::Deserialize;

use crate::BusError;
pub use crate::headers::{
    HEADER_DEAD_LETTER_DETAIL as HEADER_DETAIL, HEADER_DEAD_LETTER_REASON as HEADER_REASON,
    HEADER_DELIVERIES, HEADER_ORIGINAL_MISSING, HEADER_ORIGINAL_SEQUENCE, HEADER_ORIGINAL_SUBJECT,
};
use crate::headers::{HEADER_SCAN_ID, Headers, safe_value};
use crate::scan_status::{ScanState, ScanStatusBook};
use crate::topology::{
    ADVISORIES_STREAM, DLQ_FORWARDER_CONSUMER, DLQ_SUBJECT_PREFIX, INTENTS_STREAM, get_stream,
};

#[derive(Debug, Deserialize)]
struct Advisory {
    #[serde(rename = "type")]
    kind: String,
    stream: String,
    consumer: String,
    stream_seq: u64,
    #[serde(default)]
    deliveries: u64,
    #[serde(default)]
    reason: Option<String>,
}

fn dead_letter_id(sequence: u64) -> String {
    format!("{INTENTS_STREAM}:{sequence}")
}

/// Runs until `shutdown` resolves, forwarding every terminal advisory.
///
/// Any number of these may run (one per intake replica): they share one
/// durable WorkQueue consumer, so each advisory goes to one of them, and the
/// dead letter's message id (`SCAN_INTENTS:<seq>`) makes a second copy after
/// a crash a duplicate. With `status`, a scan whose intent ran out of
/// deliveries is marked `failed` with the reason, so `GetScan` and
/// `scanfleet watch` show where it went.
///
/// # Errors
/// [`BusError`] when the consumer cannot be reached or its stream ends.
pub async fn forward_dead_letters(
    js: jetstream::Context,
    status: Option<ScanStatusBook>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BusError> {
    let advisories = get_stream(&js, ADVISORIES_STREAM).await?;
    let consumer: PullConsumer = advisories
        .get_consumer(DLQ_FORWARDER_CONSUMER)
        .await
        .map_err(|e| BusError::Consume(e.to_string()))?;
    let intents = get_stream(&js, INTENTS_STREAM).await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(16)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(10))
        .messages()
        .await
        .map_err(|e| BusError::Consume(e.to_string()))?;
    tokio::pin!(shutdown);
    loop {
        let message = tokio::select! {
            () = &mut shutdown => return Ok(()),
            next = messages.next() => next,
        };
        let message = match message {
            None => return Err(BusError::Consume("advisory stream ended".into())),
            Some(Err(e)) => {
                // Missed heartbeats are not terminal; the client re-pulls.
                tracing::warn!(error = %e, "dead-letter advisory stream hiccup");
                continue;
            }
            Some(Ok(m)) => m,
        };
        match serde_json::from_slice::<Advisory>(&message.payload) {
            Ok(advisory) => forward_one(&js, &intents, status.as_ref(), &advisory).await?,
            Err(e) => {
                tracing::error!(error = %e, subject = %message.subject, "unparseable advisory; dropping it");
            }
        }
        message
            .double_ack()
            .await
            .map_err(|e| BusError::Consume(e.to_string()))?;
    }
}

async fn forward_one(
    js: &jetstream::Context,
    intents: &jetstream::stream::Stream,
    status: Option<&ScanStatusBook>,
    advisory: &Advisory,
) -> Result<(), BusError> {
    if advisory.stream != INTENTS_STREAM {
        return Ok(());
    }
    if advisory.kind.ends_with(".terminated") {
        // A worker terminates an intent only through
        // `dead_letter_and_terminate`, which copied it into SCAN_DLQ first,
        // so there is nothing to forward. The server also emits terminated
        // advisories of its own ("Unacknowledged message was deleted" when
        // a replicated WorkQueue stream changes leader around acks, or an
        // operator deletes a message): those are not dead letters, and
        // copying them made empty records for scans that had completed
        // (found by the three-node failover test, worker/tests/clustered_bus.rs).
        tracing::debug!(
            sequence = advisory.stream_seq,
            reason = advisory.reason.as_deref().unwrap_or_default(),
            "terminated-intent advisory: the worker already dead-lettered it, or the server removed it"
        );
        return Ok(());
    }
    let mut headers = Headers::new();
    headers
        .set(HEADER_REASON, "max_deliveries")
        .set(HEADER_DELIVERIES, &advisory.deliveries.to_string())
        .set(HEADER_ORIGINAL_SEQUENCE, &advisory.stream_seq.to_string());
    if let Some(reason) = &advisory.reason {
        headers.set(HEADER_DETAIL, reason);
    }
    let mut scan_id = None;
    let payload = match intents.get_raw_message(advisory.stream_seq).await {
        Ok(original) => {
            headers.set(HEADER_ORIGINAL_SUBJECT, original.subject.as_str());
            if let Some(id) = original.headers.get(HEADER_SCAN_ID) {
                headers.set(HEADER_SCAN_ID, id.as_str());
                scan_id = Some(safe_value(id.as_str()));
            }
            original.payload
        }
        Err(_) => {
            headers.set(HEADER_ORIGINAL_MISSING, "true");
            bytes::Bytes::new()
        }
    };
    publish_dead_letter(
        js,
        &advisory.consumer,
        advisory.stream_seq,
        headers,
        payload,
    )
    .await?;
    // Idempotent: a second forwarder pass finds nothing to delete.
    let _ = intents.delete_message(advisory.stream_seq).await;
    if let (Some(book), Some(id)) = (status, &scan_id) {
        // A scan that ran out of deliveries has nobody else to say so.
        let why = format!(
            "dead-lettered after {} deliveries: no worker finished it (each claim crashed, \
             outlived its lease or kept failing); the intent is in {DLQ_SUBJECT_PREFIX}.{}",
            advisory.deliveries, advisory.consumer
        );
        if let Err(e) = book.advance(id, ScanState::Failed, &why, None).await {
            tracing::warn!(scan_id = %id, error = %e, "dead letter's status not recorded");
        }
    }
    tracing::info!(
        sequence = advisory.stream_seq,
        consumer = %advisory.consumer,
        scan_id = scan_id.as_deref().unwrap_or_default(),
        "intent moved to the dead-letter stream"
    );
    Ok(())
}

async fn publish_dead_letter(
    js: &jetstream::Context,
    consumer: &str,
    sequence: u64,
    headers: Headers,
    payload: bytes::Bytes,
) -> Result<(), BusError> {
    let message = jetstream::message::PublishMessage::build()
        .payload(payload)
        .headers(headers.into_map())
        .message_id(dead_letter_id(sequence));
    js.send_publish(format!("{DLQ_SUBJECT_PREFIX}.{consumer}"), message)
        .await
        .map_err(|e| BusError::Publish(e.to_string()))?
        .await
        .map_err(|e| BusError::Publish(e.to_string()))?;
    Ok(())
}

/// For a permanent failure: copies the intent into the dead-letter stream,
/// then terminates it with `reason` (which also lands in the advisory).
/// `reason` may be anything a scan produced (multi-line profile errors,
/// text from the container): every header value is made safe by
/// [`Headers`], and the `+TERM` reason is cut to one line.
///
/// # Errors
/// [`BusError`] when the copy or the termination cannot be sent; the intent
/// then stays leased and is redelivered, so nothing is lost.
pub async fn dead_letter_and_terminate(
    js: &jetstream::Context,
    client: &async_nats::Client,
    message: &jetstream::Message,
    reason: &str,
) -> Result<(), BusError> {
    let info = message
        .info()
        .map_err(|e| BusError::Consume(e.to_string()))?;
    let mut headers = Headers::new();
    headers
        .set(HEADER_REASON, "terminated")
        .set(HEADER_DETAIL, reason)
        .set(HEADER_DELIVERIES, &info.delivered.to_string())
        .set(HEADER_ORIGINAL_SEQUENCE, &info.stream_sequence.to_string())
        .set(HEADER_ORIGINAL_SUBJECT, message.subject.as_str());
    if let Some(id) = message.headers.as_ref().and_then(|h| h.get(HEADER_SCAN_ID)) {
        headers.set(HEADER_SCAN_ID, id.as_str());
    }
    let consumer = info.consumer.to_owned();
    let sequence = info.stream_sequence;
    publish_dead_letter(js, &consumer, sequence, headers, message.payload.clone()).await?;
    let reply = message
        .reply
        .clone()
        .ok_or_else(|| BusError::Consume("message has no reply subject".into()))?;
    // `AckKind::Term` cannot carry a reason; the wire form `+TERM <reason>`
    // can, and the server copies it into the advisory.
    client
        .publish(reply, format!("+TERM {}", safe_value(reason)).into())
        .await
        .map_err(|e| BusError::Publish(e.to_string()))?;
    client
        .flush()
        .await
        .map_err(|e| BusError::Publish(e.to_string()))
}
