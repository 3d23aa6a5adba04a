//! `x509_certificate` (a PEM or DER certificate file read from the target,
//! parsed by the memory-safe `x509-parser`) and `auditd` (the loaded audit
//! rules from `auditctl -l`, as InSpec's FilterTable, shell targets only).

use std::rc::Rc;

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Got, ResKind, Resource, cached, content};
use crate::facts::ContentFact;
use crate::inspec::filter_table::table;
use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::value::{RHash, Value};

/// Display names.
pub fn display(kind: ResKind, arg: String) -> (String, String) {
    match kind {
        ResKind::X509Certificate => (arg.clone(), format!("x509_certificate {arg}")),
        _ => (arg, "Audit Daemon Rules".into()),
    }
}

/// Members of both resources.
///
/// # Errors
/// ResourceFailed for an unreadable or unparsable certificate; ResourceSkipped
/// for `auditd` where commands cannot run.
pub fn call(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    if r.kind == ResKind::Auditd {
        return auditd(it, r, name, args);
    }
    let data = cached(r, || certificate(it, &r.arg))?;
    let Value::Hash(h) = &data else {
        return Ok(Some(data));
    };
    let get = |k: &str| {
        h.borrow()
            .get(&Value::str(k))
            .cloned()
            .unwrap_or(Value::Nil)
    };
    Ok(Some(match name {
        "certificate?" | "exist?" | "exists?" => Value::Bool(true),
        "subject_dn"
        | "issuer_dn"
        | "subject"
        | "issuer"
        | "key_length"
        | "signature_algorithm"
        | "validity_in_days"
        | "not_before"
        | "not_after"
        | "serial"
        | "version"
        | "extensions"
        | "keyalgo" => get(name),
        _ => return Ok(None),
    }))
}

fn name_parts(n: &x509_parser::x509::X509Name<'_>) -> Vec<(String, String)> {
    let reg = x509_parser::objects::oid_registry();
    n.iter_attributes()
        .map(|a| {
            // OpenSSL's short names, as InSpec prints them.
            let key = match x509_parser::objects::oid2abbrev(a.attr_type(), reg) {
                Ok("Email") => "emailAddress".to_string(),
                Ok(k) => k.to_string(),
                Err(_) => a.attr_type().to_id_string(),
            };
            (key, a.as_str().unwrap_or("").to_string())
        })
        .collect()
}

fn dn(parts: &[(String, String)]) -> Value {
    Value::str(
        parts
            .iter()
            .map(|(k, v)| format!("/{k}={v}"))
            .collect::<String>(),
    )
}

/// A name's attributes, read as methods (`subject.CN`) like InSpec's OpenStruct.
fn name_struct(parts: &[(String, String)]) -> Value {
    Value::Row(Rc::new(RHash::from_pairs(
        parts.iter().map(|(k, v)| (Value::sym(k), Value::str(v))),
    )))
}

/// A subjectAltName entry as OpenSSL prints it (`DNS:host`, `IP Address:1.2.3.4`).
fn general_name(g: &GeneralName<'_>) -> String {
    match g {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::RFC822Name(m) => format!("email:{m}"),
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::IPAddress(b) => match b.len() {
            4 => format!(
                "IP Address:{}",
                std::net::Ipv4Addr::from([b[0], b[1], b[2], b[3]])
            ),
            16 => <[u8; 16]>::try_from(*b).map_or_else(
                |_| String::new(),
                |a| format!("IP Address:{}", std::net::Ipv6Addr::from(a)),
            ),
            _ => "IP Address:<invalid>".into(),
        },
        other => other.to_string(),
    }
}

fn extensions(cert: &X509Certificate<'_>) -> Value {
    let mut h = RHash::new();
    for ext in cert.extensions() {
        let (name, values): (&str, Vec<String>) = match ext.parsed_extension() {
            ParsedExtension::KeyUsage(k) => (
                "keyUsage",
                k.to_string().split(", ").map(String::from).collect(),
            ),
            ParsedExtension::BasicConstraints(b) => (
                "basicConstraints",
                vec![format!("CA:{}", if b.ca { "TRUE" } else { "FALSE" })],
            ),
            ParsedExtension::SubjectAlternativeName(s) => (
                "subjectAltName",
                s.general_names.iter().map(general_name).collect(),
            ),
            ParsedExtension::ExtendedKeyUsage(e) => {
                let mut v = Vec::new();
                for (on, label) in [
                    (e.server_auth, "TLS Web Server Authentication"),
                    (e.client_auth, "TLS Web Client Authentication"),
                    (e.code_signing, "Code Signing"),
                    (e.email_protection, "E-mail Protection"),
                ] {
                    if on {
                        v.push(label.to_string());
                    }
                }
                ("extendedKeyUsage", v)
            }
            _ => continue,
        };
        h.insert(
            Value::str(name),
            Value::array(values.into_iter().map(Value::str).collect()),
        );
    }
    Value::hash(h)
}

/// The certificate's attributes as a hash, or a failure.
fn certificate(it: &Interp<'_>, path: &str) -> R<Value> {
    let bytes = match content(it, path) {
        Got::Unknown => return Ok(Value::Unknown),
        Got::Ready(ContentFact::Data { bytes, total_len })
            if *total_len as usize == bytes.len() =>
        {
            bytes.clone()
        }
        Got::Ready(ContentFact::Missing) => {
            return it.raise("ResourceFailed", format!("{path} does not exist"));
        }
        Got::Ready(_) => return it.raise("ResourceFailed", format!("{path} cannot be read whole")),
    };
    let der = match x509_parser::pem::parse_x509_pem(&bytes) {
        Ok((_, pem)) => pem.contents,
        Err(_) => bytes,
    };
    let cert = match X509Certificate::from_der(&der) {
        Ok((_, c)) => c,
        Err(e) => {
            return it.raise(
                "ResourceFailed",
                format!("{path} is not an X.509 certificate: {e}"),
            );
        }
    };
    let reg = x509_parser::objects::oid_registry();
    let sig = x509_parser::objects::oid2sn(&cert.signature_algorithm.algorithm, reg).map_or_else(
        |_| cert.signature_algorithm.algorithm.to_id_string(),
        str::to_string,
    );
    let key_length = cert.public_key().parsed().map_or(0, |k| k.key_size());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    #[allow(clippy::cast_precision_loss)]
    let days = (cert.validity().not_after.timestamp() - now) as f64 / 86_400.0;
    let (subject, issuer) = (name_parts(cert.subject()), name_parts(cert.issuer()));
    Ok(Value::hash(RHash::from_pairs([
        (Value::str("subject_dn"), dn(&subject)),
        (Value::str("issuer_dn"), dn(&issuer)),
        (Value::str("subject"), name_struct(&subject)),
        (Value::str("issuer"), name_struct(&issuer)),
        (
            Value::str("key_length"),
            Value::Int(i64::try_from(key_length).unwrap_or(0)),
        ),
        (Value::str("signature_algorithm"), Value::str(sig)),
        (Value::str("validity_in_days"), Value::Float(days)),
        (
            Value::str("not_before"),
            Value::str(cert.validity().not_before.to_string()),
        ),
        (
            Value::str("not_after"),
            Value::str(cert.validity().not_after.to_string()),
        ),
        (
            Value::str("serial"),
            Value::str(cert.raw_serial_as_string()),
        ),
        (
            Value::str("version"),
            Value::Int(i64::from(cert.version().0) + 1),
        ),
        (Value::str("extensions"), extensions(&cert)),
    ])))
}

/// One `auditctl -l` line as rows (one per syscall, as InSpec splits them).
fn audit_rows(line: &str) -> Vec<Rc<RHash>> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let opt = |flag: &str| {
        w.iter()
            .position(|x| *x == flag)
            .and_then(|i| w.get(i + 1))
            .map(|s| (*s).to_string())
    };
    let fields: Vec<String> = w
        .windows(2)
        .filter(|p| p[0] == "-F")
        .map(|p| p[1].to_string())
        .collect();
    let field = |k: &str| {
        fields
            .iter()
            .find_map(|f| f.strip_prefix(&format!("{k}=")))
            .map(String::from)
    };
    let key = opt("-k").or_else(|| field("key"));
    let perms = opt("-p")
        .or_else(|| field("perm"))
        .map(|p| Value::array(p.chars().map(|c| Value::str(c.to_string())).collect()));
    let s = |v: Option<String>| v.map_or(Value::Nil, Value::str);
    let (action, list) = match opt("-a").and_then(|a| {
        a.split_once(',')
            .map(|(x, y)| (x.to_string(), y.to_string()))
    }) {
        Some((a, l)) => (Some(a), Some(l)),
        None => (None, None),
    };
    let syscalls: Vec<String> = opt("-S")
        .map(|s| s.split(',').map(String::from).collect())
        .unwrap_or_else(|| vec![String::new()]);
    syscalls
        .into_iter()
        .map(|sc| {
            Rc::new(RHash::from_pairs([
                (Value::sym("file"), s(opt("-w").or_else(|| field("path")))),
                (Value::sym("list"), s(list.clone())),
                (Value::sym("action"), s(action.clone())),
                (
                    Value::sym("fields"),
                    Value::array(fields.iter().map(Value::str).collect()),
                ),
                (
                    Value::sym("syscall"),
                    if sc.is_empty() {
                        Value::Nil
                    } else {
                        Value::str(sc)
                    },
                ),
                (Value::sym("key"), s(key.clone())),
                (Value::sym("arch"), s(field("arch"))),
                (Value::sym("path"), s(field("path"))),
                (
                    Value::sym("permissions"),
                    perms.clone().unwrap_or(Value::Nil),
                ),
            ]))
        })
        .collect()
}

fn auditd(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    let data = cached(r, || {
        let Some((_, out, _)) = super::system::run(it, "auditctl -l")? else {
            return Ok(Value::Unknown);
        };
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with('-')).collect();
        let rows = lines.iter().flat_map(|l| audit_rows(l)).collect();
        Ok(Value::array(vec![
            Value::array(lines.iter().map(|l| Value::str(*l)).collect()),
            Value::Table(table(
                r.display.clone(),
                rows,
                &[
                    ("file", "file", false),
                    ("list", "list", false),
                    ("action", "action", false),
                    ("fields", "fields", false),
                    ("syscall", "syscall", false),
                    ("key", "key", false),
                    ("arch", "arch", false),
                    ("path", "path", false),
                    ("permissions", "permissions", false),
                ],
            )),
        ]))
    })?;
    let Value::Array(parts) = &data else {
        return Ok(Some(data));
    };
    let (lines, t) = (parts.borrow()[0].clone(), parts.borrow()[1].clone());
    match (name, &t) {
        ("lines", _) => Ok(Some(lines)),
        (_, Value::Table(t)) => crate::inspec::filter_table::call(it, t, name, args),
        _ => Ok(None),
    }
}
