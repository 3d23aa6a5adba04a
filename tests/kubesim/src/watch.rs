//! Watch streams: chunked JSON lines of ADDED/MODIFIED/DELETED events, with
//! periodic BOOKMARKs, a server-side timeout, and the 410 `Expired` ERROR
//! event when the requested resourceVersion has been compacted away.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::http::{Body, channel_body};
use crate::resources::{Labels, Query, ResourceType, label_selector_matches, parse_selector};
use crate::state::State;

fn field_value<'a>(o: &'a Value, field: &str) -> Option<&'a str> {
    match field {
        "metadata.name" => o["metadata"]["name"].as_str(),
        "metadata.namespace" => o["metadata"]["namespace"].as_str(),
        "spec.nodeName" => o["spec"]["nodeName"].as_str(),
        "spec.serviceAccountName" => o["spec"]["serviceAccountName"].as_str(),
        "status.phase" => o["status"]["phase"].as_str(),
        _ => None,
    }
}

/// Whether `o` satisfies the request's label and field selectors.
pub fn matches(o: &Value, q: &Query) -> bool {
    if let Some(fs) = q.get("fieldSelector") {
        for (k, v, eq) in parse_selector(fs) {
            let actual = field_value(o, &k).unwrap_or("");
            if (actual == v) != eq {
                return false;
            }
        }
    }
    if let Some(ls) = q.get("labelSelector") {
        let labels: Labels = o["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        if !label_selector_matches(ls, &labels) {
            return false;
        }
    }
    true
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = serde_json::to_string(&json!({"type": kind, "object": object})).unwrap_or_default();
    s.push('\n');
    Bytes::from(s)
}

fn key(o: &Value) -> (String, String) {
    (
        o["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        o["metadata"]["name"].as_str().unwrap_or("").to_string(),
    )
}

/// Starts a watch response.
pub fn serve(
    state: Arc<State>,
    t: &'static ResourceType,
    ns: &str,
    q: &Query,
    table: bool,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let q = q.clone();
    let ns = ns.to_string();
    let gr = crate::api::gr(t);
    let rv_param = q.get("resourceVersion").unwrap_or("").to_string();
    let bookmarks = q.flag("allowWatchBookmarks");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1800);
    let initial_end = q.flag("sendInitialEvents");
    tokio::spawn(async move {
        let clock = state.clock.clone();
        // kubectl get -w asks for Tables: each event carries a one-row Table.
        let render = move |kind: &str, o: &Value| -> Bytes {
            if table {
                let rv = o["metadata"]["resourceVersion"].as_str().unwrap_or("");
                line(
                    kind,
                    &crate::table::table(t, std::slice::from_ref(o), rv, clock.now()),
                )
            } else {
                line(kind, o)
            }
        };
        let mut shutdown = state.shutdown.clone();
        let in_scope = |ev_gr: &str, ev_ns: &str| ev_gr == gr && (ns.is_empty() || ev_ns == ns);
        let mut sent: BTreeSet<(String, String)> = BTreeSet::new();
        let mut last_rv;
        let mut live: broadcast::Receiver<crate::store::Event>;
        if rv_param.is_empty() || rv_param == "0" {
            let (items, rv, rx) = state
                .store
                .snapshot_and_watch(&gr, (!ns.is_empty()).then_some(ns.as_str()));
            for o in items.into_iter().filter(|o| matches(o, &q)) {
                sent.insert(key(&o));
                if tx.send(render("ADDED", &o)).await.is_err() {
                    return;
                }
            }
            last_rv = rv;
            live = rx;
            if initial_end && bookmarks {
                let b = json!({"kind": t.kind, "apiVersion": t.api_version(),
                    "metadata": {"resourceVersion": rv.to_string(),
                                 "annotations": {"k8s.io/initial-events-end": "true"}}});
                if tx.send(line("BOOKMARK", &b)).await.is_err() {
                    return;
                }
            }
        } else {
            let Ok(rv) = rv_param.parse::<u64>() else {
                let e = crate::status::ApiError::bad_request(format!(
                    "invalid resource version: {rv_param}"
                ));
                let _ = tx.send(line("ERROR", &e.body())).await;
                return;
            };
            match state.store.watch_from(rv) {
                Ok((backlog, rx)) => {
                    last_rv = rv;
                    live = rx;
                    for ev in backlog {
                        last_rv = ev.rv;
                        if !in_scope(&ev.gr, &ev.namespace) {
                            continue;
                        }
                        if let Some((kind, o)) = event_line(&ev, &q, &mut sent)
                            && tx.send(render(kind, &o)).await.is_err()
                        {
                            return;
                        }
                    }
                }
                Err(too_old) => {
                    let e = crate::status::ApiError::expired(format!(
                        "too old resource version: {} ({})",
                        too_old.requested, too_old.oldest
                    ));
                    let _ = tx.send(line("ERROR", &e.body())).await;
                    return;
                }
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(state.bookmark_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    // Everything up to `now_rv` is already queued in `live`;
                    // drain it before promising the client that version.
                    let now_rv = state.store.resource_version();
                    loop {
                        match live.try_recv() {
                            Ok(ev) => {
                                if ev.rv <= last_rv { continue; }
                                last_rv = ev.rv;
                                if in_scope(&ev.gr, &ev.namespace)
                                    && let Some((kind, o)) = event_line(&ev, &q, &mut sent)
                                    && tx.send(render(kind, &o)).await.is_err() { return; }
                            }
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(_) => return,
                        }
                    }
                    last_rv = last_rv.max(now_rv);
                    let b = json!({"kind": t.kind, "apiVersion": t.api_version(),
                                   "metadata": {"resourceVersion": last_rv.to_string()}});
                    if tx.send(line("BOOKMARK", &b)).await.is_err() { return; }
                }
                ev = live.recv() => {
                    let Ok(ev) = ev else { return };
                    if ev.rv <= last_rv { continue; }
                    last_rv = ev.rv;
                    if !in_scope(&ev.gr, &ev.namespace) { continue; }
                    if let Some((kind, o)) = event_line(&ev, &q, &mut sent)
                        && tx.send(render(kind, &o)).await.is_err() { return; }
                }
            }
        }
    });
    let mut r = Response::new(channel_body(rx));
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn event_line(
    ev: &crate::store::Event,
    q: &Query,
    sent: &mut BTreeSet<(String, String)>,
) -> Option<(&'static str, Value)> {
    let k = key(&ev.object);
    if matches(&ev.object, q) {
        if ev.kind == "DELETED" {
            sent.remove(&k);
        } else {
            sent.insert(k);
        }
        return Some((ev.kind, ev.object.clone()));
    }
    // An object that stops matching the selector leaves the watched set.
    (ev.kind == "MODIFIED" && sent.remove(&k)).then(|| ("DELETED", ev.object.clone()))
}
