//! PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch for the
//! list fields of the kinds kubesim serves, and JSON patch (RFC 6902).
//!
//! Strategic merge differs from a merge patch only in lists that Kubernetes
//! declares `patchStrategy: merge`; those are merged element-wise by their
//! merge key, which is what lets `kubectl debug` append an ephemeral container.

use serde_json::{Map, Value};

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    /// The body is not valid for its media type.
    #[error("{0}")]
    Malformed(String),
    /// A JSON patch `test` failed or a path did not resolve.
    #[error("{0}")]
    Failed(String),
}

/// Merge keys of the strategic-merge lists in Pod and RBAC objects.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "containerStatuses"
        | "initContainerStatuses"
        | "ephemeralContainerStatuses" => "name",
        "volumeMounts" => "mountPath",
        "ports" => "containerPort",
        "conditions" => "type",
        "ownerReferences" => "uid",
        _ => return None,
    })
}

/// RFC 7386 merge patch.
pub fn merge(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => Map::new(),
            };
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = merge(out.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Strategic merge patch for the fields kubesim's kinds declare.
pub fn strategic(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut p = p.clone();
                p.remove("$patch");
                return Ok(Value::Object(p));
            }
            let mut out = t.clone();
            for (k, v) in p {
                if k.starts_with("$setElementOrder/")
                    || k.starts_with("$retainKeys")
                    || k.starts_with("$deleteFromPrimitiveList/")
                    || k == "$patch"
                {
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                let cur = out.get(k).cloned().unwrap_or(Value::Null);
                let merged = match (merge_key(k), &cur, v) {
                    (Some(key), Value::Array(old), Value::Array(new)) => merge_list(old, new, key)?,
                    (_, Value::Object(_), Value::Object(_)) => strategic(&cur, v)?,
                    (_, _, Value::Object(pv)) => {
                        strategic(&Value::Object(Map::new()), &Value::Object(pv.clone()))?
                    }
                    _ => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (_, Value::Object(_)) => strategic(&Value::Object(Map::new()), patch),
        (_, other) => Ok(other.clone()),
    }
}

fn merge_list(old: &[Value], new: &[Value], key: &str) -> Result<Value, PatchError> {
    let mut out: Vec<Value> = old.to_vec();
    for item in new {
        let Some(id) = item.get(key).cloned() else {
            return Err(PatchError::Malformed(format!(
                "map: {item} does not contain declared merge key: {key}"
            )));
        };
        let pos = out.iter().position(|o| o.get(key) == Some(&id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => out[i] = strategic(&out[i], item)?,
            (None, false) => out.push(strategic(&Value::Object(Map::new()), item)?),
        }
    }
    Ok(Value::Array(out))
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn pointer_parent<'a>(
    doc: &'a mut Value,
    path: &str,
) -> Result<(&'a mut Value, String), PatchError> {
    let Some(idx) = path.rfind('/') else {
        return Err(PatchError::Malformed(format!("invalid path {path:?}")));
    };
    let parent = &path[..idx];
    let last = unescape(&path[idx + 1..]);
    let target = doc
        .pointer_mut(parent)
        .ok_or_else(|| PatchError::Failed(format!("doc is missing path: {parent:?}")))?;
    Ok((target, last))
}

/// RFC 6902 JSON patch (add, remove, replace, test, copy, move).
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, PatchError> {
    let Some(ops) = ops.as_array() else {
        return Err(PatchError::Malformed(
            "json patch must be an array of operations".into(),
        ));
    };
    let mut doc = target.clone();
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        match kind {
            "add" | "replace" => {
                let value = op
                    .get("value")
                    .cloned()
                    .ok_or_else(|| PatchError::Malformed(format!("{kind} without value")))?;
                if path.is_empty() {
                    doc = value;
                    continue;
                }
                let (parent, last) = pointer_parent(&mut doc, path)?;
                match parent {
                    Value::Object(m) => {
                        if kind == "replace" && !m.contains_key(&last) {
                            return Err(PatchError::Failed(format!(
                                "replace operation does not apply: doc is missing key: {path}"
                            )));
                        }
                        m.insert(last, value);
                    }
                    Value::Array(a) => {
                        if last == "-" && kind == "add" {
                            a.push(value);
                        } else {
                            let i: usize = last.parse().map_err(|_| {
                                PatchError::Failed(format!("invalid array index {last:?}"))
                            })?;
                            if kind == "add" && i <= a.len() {
                                a.insert(i, value);
                            } else if kind == "replace" && i < a.len() {
                                a[i] = value;
                            } else {
                                return Err(PatchError::Failed(format!(
                                    "array index {i} out of bounds"
                                )));
                            }
                        }
                    }
                    _ => return Err(PatchError::Failed(format!("cannot {kind} at {path}"))),
                }
            }
            "remove" => {
                let (parent, last) = pointer_parent(&mut doc, path)?;
                let removed = match parent {
                    Value::Object(m) => m.remove(&last).is_some(),
                    Value::Array(a) => match last.parse::<usize>() {
                        Ok(i) if i < a.len() => {
                            a.remove(i);
                            true
                        }
                        _ => false,
                    },
                    _ => false,
                };
                if !removed {
                    return Err(PatchError::Failed(format!(
                        "remove operation does not apply: doc is missing path: {path:?}"
                    )));
                }
            }
            "test" => {
                let want = op.get("value").cloned().unwrap_or(Value::Null);
                if doc.pointer(path) != Some(&want) {
                    return Err(PatchError::Failed(format!(
                        "testing value {path} failed: test failed"
                    )));
                }
            }
            "copy" | "move" => {
                let from = op.get("from").and_then(Value::as_str).unwrap_or("");
                let value = doc
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| PatchError::Failed(format!("missing from path {from:?}")))?;
                let mut next = vec![serde_json::json!({"op":"add","path":path,"value":value})];
                if kind == "move" {
                    next.insert(0, serde_json::json!({"op":"remove","path":from}));
                }
                doc = json_patch(&doc, &Value::Array(next))?;
            }
            other => {
                return Err(PatchError::Malformed(format!(
                    "unexpected json patch operation {other:?}"
                )));
            }
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_appends_ephemeral_containers_by_name() {
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}],
            "ephemeralContainers": [{"name": "d1", "image": "y"}]}});
        let patch = json!({"spec": {"ephemeralContainers": [{"name": "d2", "image": "z"}]}});
        let out = strategic(&pod, &patch).expect("valid patch");
        let names: Vec<_> = out["spec"]["ephemeralContainers"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["d1", "d2"]);
        assert_eq!(out["spec"]["containers"][0]["name"], "a");
    }

    #[test]
    fn merge_patch_replaces_lists_and_deletes_nulls() {
        let t = json!({"a": [1, 2], "b": {"c": 1, "d": 2}});
        let out = merge(&t, &json!({"a": [3], "b": {"c": null}}));
        assert_eq!(out, json!({"a": [3], "b": {"d": 2}}));
    }

    #[test]
    fn json_patch_ops() {
        let t = json!({"metadata": {"labels": {"a": "1"}}, "l": [1]});
        let out = json_patch(
            &t,
            &json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"},
                     {"op": "remove", "path": "/metadata/labels/a"},
                     {"op": "add", "path": "/l/-", "value": 2}]),
        )
        .expect("applies");
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2"}}, "l": [1, 2]})
        );
        assert!(json_patch(&t, &json!([{"op": "test", "path": "/l/0", "value": 9}])).is_err());
    }
}
