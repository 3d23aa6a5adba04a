//! Decoding of the Kubernetes protobuf request bodies kubectl sends for
//! built-in kinds (`application/vnd.kubernetes.protobuf`).
//!
//! The envelope is `k8s\0` + `runtime.Unknown{typeMeta, raw}`; `raw` is the
//! object's generated.proto message. Only the kinds kubectl creates here are
//! mapped (ServiceAccount, TokenRequest, Role, ClusterRole, RoleBinding,
//! ClusterRoleBinding, SelfSubjectAccessReview, SelfSubjectReview, Namespace,
//! DeleteOptions); the result is the JSON the same object would have been
//! sent as.

use serde_json::{Map, Value, json};

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot decode protobuf body: {0}")]
pub struct DecodeError(pub String);

#[derive(Debug, Clone)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| DecodeError("truncated varint".into()))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError("varint too long".into()))
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, DecodeError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((num, Field::Varint(varint(buf, &mut pos)?))),
            2 => {
                let len = varint(buf, &mut pos)? as usize;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or_else(|| DecodeError("truncated field".into()))?;
                out.push((num, Field::Bytes(&buf[pos..end])));
                pos = end;
            }
            1 => pos += 8,
            5 => pos += 4,
            w => return Err(DecodeError(format!("unsupported wire type {w}"))),
        }
    }
    Ok(out)
}

/// Shape of a message field.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    StrList,
    StrMap,
    Msg(&'static [(u64, &'static str, Kind)]),
    MsgList(&'static [(u64, &'static str, Kind)]),
}

use Kind::*;

const OWNER_REF: &[(u64, &str, Kind)] = &[
    (1, "kind", Str),
    (3, "name", Str),
    (4, "uid", Str),
    (5, "apiVersion", Str),
    (6, "controller", Bool),
    (7, "blockOwnerDeletion", Bool),
];
const META: &[(u64, &str, Kind)] = &[
    (1, "name", Str),
    (2, "generateName", Str),
    (3, "namespace", Str),
    (5, "uid", Str),
    (6, "resourceVersion", Str),
    (11, "labels", StrMap),
    (12, "annotations", StrMap),
    (13, "ownerReferences", MsgList(OWNER_REF)),
    (14, "finalizers", StrList),
];
const RULE: &[(u64, &str, Kind)] = &[
    (1, "verbs", StrList),
    (2, "apiGroups", StrList),
    (3, "resources", StrList),
    (4, "resourceNames", StrList),
    (5, "nonResourceURLs", StrList),
];
const SUBJECT: &[(u64, &str, Kind)] = &[
    (1, "kind", Str),
    (2, "apiGroup", Str),
    (3, "name", Str),
    (4, "namespace", Str),
];
const ROLE_REF: &[(u64, &str, Kind)] = &[(1, "apiGroup", Str), (2, "kind", Str), (3, "name", Str)];
const BOUND_REF: &[(u64, &str, Kind)] = &[
    (1, "kind", Str),
    (2, "apiVersion", Str),
    (3, "name", Str),
    (4, "uid", Str),
];
const TR_SPEC: &[(u64, &str, Kind)] = &[
    (1, "audiences", StrList),
    (3, "boundObjectRef", Msg(BOUND_REF)),
    (4, "expirationSeconds", Int),
];
const REF: &[(u64, &str, Kind)] = &[(1, "name", Str)];
const RES_ATTR: &[(u64, &str, Kind)] = &[
    (1, "namespace", Str),
    (2, "verb", Str),
    (3, "group", Str),
    (4, "version", Str),
    (5, "resource", Str),
    (6, "subresource", Str),
    (7, "name", Str),
];
const NONRES_ATTR: &[(u64, &str, Kind)] = &[(1, "path", Str), (2, "verb", Str)];
const SSAR_SPEC: &[(u64, &str, Kind)] = &[
    (1, "resourceAttributes", Msg(RES_ATTR)),
    (2, "nonResourceAttributes", Msg(NONRES_ATTR)),
];
const SSRR_SPEC: &[(u64, &str, Kind)] = &[(1, "namespace", Str)];
const PRECONDITIONS: &[(u64, &str, Kind)] = &[(1, "uid", Str), (2, "resourceVersion", Str)];

fn schema(kind: &str) -> Option<&'static [(u64, &'static str, Kind)]> {
    Some(match kind {
        "ServiceAccount" => &[
            (1, "metadata", Msg(META)),
            (3, "imagePullSecrets", MsgList(REF)),
            (4, "automountServiceAccountToken", Bool),
        ],
        "TokenRequest" => &[(1, "metadata", Msg(META)), (2, "spec", Msg(TR_SPEC))],
        "Role" | "ClusterRole" => &[(1, "metadata", Msg(META)), (2, "rules", MsgList(RULE))],
        "RoleBinding" | "ClusterRoleBinding" => &[
            (1, "metadata", Msg(META)),
            (2, "subjects", MsgList(SUBJECT)),
            (3, "roleRef", Msg(ROLE_REF)),
        ],
        "SelfSubjectAccessReview" => &[(1, "metadata", Msg(META)), (2, "spec", Msg(SSAR_SPEC))],
        "SelfSubjectRulesReview" => &[(1, "metadata", Msg(META)), (2, "spec", Msg(SSRR_SPEC))],
        "SelfSubjectReview" => &[(1, "metadata", Msg(META))],
        "Namespace" => &[(1, "metadata", Msg(META))],
        "DeleteOptions" => &[
            (1, "gracePeriodSeconds", Int),
            (2, "preconditions", Msg(PRECONDITIONS)),
            (4, "propagationPolicy", Str),
        ],
        _ => return None,
    })
}

fn text(b: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError("string is not UTF-8".into()))
}

fn message(buf: &[u8], schema: &[(u64, &str, Kind)]) -> Result<Value, DecodeError> {
    let mut out = Map::new();
    for (num, f) in fields(buf)? {
        let Some((_, name, kind)) = schema.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = name.to_string();
        match (kind, f) {
            (Str, Field::Bytes(b)) => {
                out.insert(name, json!(text(b)?));
            }
            (Int, Field::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Bool, Field::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            (StrList, Field::Bytes(b)) => {
                let e = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut() {
                    a.push(json!(text(b)?));
                }
            }
            (StrMap, Field::Bytes(b)) => {
                let (mut k, mut v) = (String::new(), String::new());
                for (n, f) in fields(b)? {
                    if let Field::Bytes(x) = f {
                        if n == 1 {
                            k = text(x)?;
                        } else if n == 2 {
                            v = text(x)?;
                        }
                    }
                }
                let e = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = e.as_object_mut() {
                    m.insert(k, json!(v));
                }
            }
            (Msg(s), Field::Bytes(b)) => {
                out.insert(name, message(b, s)?);
            }
            (MsgList(s), Field::Bytes(b)) => {
                let v = message(b, s)?;
                let e = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut() {
                    a.push(v);
                }
            }
            _ => {
                return Err(DecodeError(format!(
                    "field {name} has an unexpected wire type"
                )));
            }
        }
    }
    Ok(Value::Object(out))
}

/// Decodes an enveloped protobuf body into JSON with apiVersion and kind.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let rest = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| DecodeError("missing the k8s protobuf magic prefix".into()))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(rest)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (m, g) in fields(tm)? {
                    if let Field::Bytes(x) = g {
                        if m == 1 {
                            api_version = text(x)?;
                        } else if m == 2 {
                            kind = text(x)?;
                        }
                    }
                }
            }
            (2, Field::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    let s = schema(&kind)
        .ok_or_else(|| DecodeError(format!("kind {kind:?} is not supported in protobuf")))?;
    let mut v = message(raw, s)?;
    v["apiVersion"] = json!(api_version);
    v["kind"] = json!(kind);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(num: u64, b: &[u8]) -> Vec<u8> {
        let mut v = vec![((num << 3) | 2) as u8, b.len() as u8];
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn decodes_a_role_binding_envelope() {
        let meta = ld(1, b"rb");
        let subject = [ld(1, b"ServiceAccount"), ld(3, b"sa"), ld(4, b"ns")].concat();
        let role_ref = [
            ld(1, b"rbac.authorization.k8s.io"),
            ld(2, b"Role"),
            ld(3, b"r"),
        ]
        .concat();
        let raw = [ld(1, &meta), ld(2, &subject), ld(3, &role_ref)].concat();
        let tm = [
            ld(1, b"rbac.authorization.k8s.io/v1"),
            ld(2, b"RoleBinding"),
        ]
        .concat();
        let body = [b"k8s\0".to_vec(), ld(1, &tm), ld(2, &raw)].concat();
        let v = decode(&body).expect("decodes");
        assert_eq!(v["metadata"]["name"], "rb");
        assert_eq!(v["subjects"][0]["namespace"], "ns");
        assert_eq!(v["roleRef"]["kind"], "Role");
        assert_eq!(v["kind"], "RoleBinding");
        assert!(decode(b"k8s\0\x0a\xff").is_err());
        assert!(decode(b"{}").is_err());
    }
}
