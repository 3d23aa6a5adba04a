//! `meta.k8s.io/v1 Table` responses, which kubectl requests for `get`.
//!
//! Pods get upstream's printer columns (with `-o wide` ones at priority 1);
//! other kinds get Name and Age.

use serde_json::{Value, json};

use crate::resources::ResourceType;

/// Short human age, as kubectl prints it (`5s`, `3m`, `2h`, `4d`).
pub fn age(created: &str, now: i64) -> String {
    let Some(t) = crate::clock::parse_time(created) else {
        return "<unknown>".into();
    };
    let d = (now - t).max(0);
    match d {
        0..=119 => format!("{d}s"),
        120..=7199 => format!("{}m", d / 60),
        7200..=172_799 => format!("{}h", d / 3600),
        _ => format!("{}d", d / 86400),
    }
}

fn column(name: &str, ty: &str, format: &str, priority: i32, description: &str) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
}

fn pod_cells(p: &Value, now: i64) -> Vec<Value> {
    let statuses = p["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = p["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|s| s["restartCount"].as_i64())
        .sum();
    let mut reason = p["status"]["phase"]
        .as_str()
        .unwrap_or("Pending")
        .to_string();
    for s in &statuses {
        if let Some(r) = s["state"]["waiting"]["reason"].as_str() {
            reason = r.to_string();
        } else if let Some(r) = s["state"]["terminated"]["reason"].as_str()
            && reason != "Running"
        {
            reason = r.to_string();
        }
    }
    if p["metadata"]["deletionTimestamp"].is_string() {
        reason = "Terminating".into();
    }
    vec![
        p["metadata"]["name"].clone(),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(
            p["metadata"]["creationTimestamp"].as_str().unwrap_or(""),
            now
        )),
        json!(p["status"]["podIP"].as_str().unwrap_or("<none>")),
        json!(p["spec"]["nodeName"].as_str().unwrap_or("<none>")),
        json!("<none>"),
        json!("<none>"),
    ]
}

/// Builds a Table of `items`.
pub fn table(t: &ResourceType, items: &[Value], rv: &str, now: i64) -> Value {
    let name_col = column(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace.",
    );
    let (columns, rows): (Vec<Value>, Vec<Vec<Value>>) = if t.kind == "Pod" {
        (
            vec![
                name_col,
                column(
                    "Ready",
                    "string",
                    "",
                    0,
                    "The aggregate readiness state of this pod for accepting traffic.",
                ),
                column(
                    "Status",
                    "string",
                    "",
                    0,
                    "The aggregate status of the containers in this pod.",
                ),
                column(
                    "Restarts",
                    "string",
                    "",
                    0,
                    "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                ),
                column(
                    "Age",
                    "string",
                    "",
                    0,
                    "CreationTimestamp is a timestamp representing the server time when this object was created.",
                ),
                column(
                    "IP",
                    "string",
                    "",
                    1,
                    "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
                ),
                column(
                    "Node",
                    "string",
                    "",
                    1,
                    "NodeName indicates in which node this pod is scheduled.",
                ),
                column(
                    "Nominated Node",
                    "string",
                    "",
                    1,
                    "nominatedNodeName is set only when this pod preempts other pods on the node.",
                ),
                column(
                    "Readiness Gates",
                    "string",
                    "",
                    1,
                    "If specified, all readiness gates will be evaluated for pod readiness.",
                ),
            ],
            items.iter().map(|p| pod_cells(p, now)).collect(),
        )
    } else {
        (
            vec![
                name_col,
                column(
                    "Age",
                    "string",
                    "",
                    0,
                    "CreationTimestamp is a timestamp representing the server time when this object was created.",
                ),
            ],
            items
                .iter()
                .map(|o| {
                    vec![
                        o["metadata"]["name"].clone(),
                        json!(age(
                            o["metadata"]["creationTimestamp"].as_str().unwrap_or(""),
                            now
                        )),
                    ]
                })
                .collect(),
        )
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .zip(items)
        .map(|(cells, o)| {
            json!({"cells": cells, "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": o["metadata"].clone()}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
           "columnDefinitions": columns, "rows": rows})
}
