//! Registry credentials as Kubernetes keeps them: the `.dockerconfigjson`
//! of a `kubernetes.io/dockerconfigjson` Secret, which is also Docker's
//! and skopeo's `config.json` format:
//! `{"auths": {"<registry>": {"auth": base64("user:password")}}}` (or
//! `"username"` and `"password"` fields instead of `"auth"`).
//!
//! The bytes are untrusted (anyone who can write the Secret chooses
//! them), so the read is bounded and every refusal names the source and
//! the registry entry, never a password. No IO here: the worker reads
//! the Secret or the file and hands the bytes over.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

/// Largest document read: a pull secret is a few hundred bytes.
pub const MAX_PULL_SECRET_BYTES: usize = 256 * 1024;
/// Most registry entries in one document.
pub const MAX_REGISTRIES: usize = 256;

/// A user name and password for one registry.
#[derive(Clone)]
pub struct RegistryLogin {
    /// The user.
    pub username: String,
    /// The password or token.
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryLogin({:?}, <redacted>)", self.username)
    }
}

/// Why a pull secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PullSecretError {
    /// Larger than [`MAX_PULL_SECRET_BYTES`].
    #[error("{source_name}: {size} bytes, more than the {max} a pull secret may have")]
    TooLarge {
        /// Where the bytes came from.
        source_name: String,
        /// Their size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not the `{"auths": {...}}` JSON document.
    #[error("{source_name}: not a dockerconfigjson document: {problem}")]
    Malformed {
        /// Where the bytes came from.
        source_name: String,
        /// The parser's complaint (no values quoted).
        problem: String,
    },
    /// More than [`MAX_REGISTRIES`] entries.
    #[error("{source_name}: {count} registries, more than the {max} allowed")]
    TooManyRegistries {
        /// Where the bytes came from.
        source_name: String,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// One registry's entry has no usable user name and password.
    #[error("{source_name}: registry {registry:?}: {problem}")]
    BadEntry {
        /// Where the bytes came from.
        source_name: String,
        /// The entry's key.
        registry: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

#[derive(Deserialize)]
struct Document {
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The logins of one pull secret, by registry host (`host[:port]`).
#[derive(Debug, Clone, Default)]
pub struct PullSecret {
    logins: BTreeMap<String, RegistryLogin>,
}

impl PullSecret {
    /// Parses a `.dockerconfigjson` document read from `source_name`.
    ///
    /// # Errors
    /// [`PullSecretError`], naming the source and, for a bad entry, its
    /// registry.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self, PullSecretError> {
        if bytes.len() > MAX_PULL_SECRET_BYTES {
            return Err(PullSecretError::TooLarge {
                source_name: source_name.into(),
                size: bytes.len(),
                max: MAX_PULL_SECRET_BYTES,
            });
        }
        let doc: Document =
            serde_json::from_slice(bytes).map_err(|e| PullSecretError::Malformed {
                source_name: source_name.into(),
                // serde_json's messages name lines and columns, not values.
                problem: e.to_string(),
            })?;
        if doc.auths.len() > MAX_REGISTRIES {
            return Err(PullSecretError::TooManyRegistries {
                source_name: source_name.into(),
                count: doc.auths.len(),
                max: MAX_REGISTRIES,
            });
        }
        let mut logins = BTreeMap::new();
        for (key, entry) in doc.auths {
            let bad = |problem| PullSecretError::BadEntry {
                source_name: source_name.into(),
                registry: key.chars().take(128).collect(),
                problem,
            };
            let login = entry_login(entry).map_err(bad)?;
            let host = registry_host(&key);
            if host.is_empty() {
                return Err(bad("names no registry host"));
            }
            logins.insert(host.to_owned(), login);
        }
        Ok(Self { logins })
    }

    /// The login for `registry` (`host[:port]`), if the secret has one.
    pub fn login_for(&self, registry: &str) -> Option<&RegistryLogin> {
        self.logins.get(registry)
    }

    /// The registries this secret has logins for.
    pub fn registries(&self) -> impl Iterator<Item = &str> {
        self.logins.keys().map(String::as_str)
    }
}

/// `https://host:port/v1/` → `host:port`: Docker writes keys with a
/// scheme and path, Kubernetes tooling often without.
fn registry_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or_default()
}

fn entry_login(entry: Entry) -> Result<RegistryLogin, &'static str> {
    if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| "\"auth\" is not base64")?,
        );
        let text = std::str::from_utf8(&decoded).map_err(|_| "\"auth\" is not UTF-8")?;
        let (user, password) = text
            .split_once(':')
            .ok_or("\"auth\" is not user:password")?;
        return login(user, password);
    }
    match (entry.username, entry.password.map(Zeroizing::new)) {
        (Some(user), Some(password)) => login(&user, &password),
        _ => Err("neither \"auth\" nor \"username\" and \"password\""),
    }
}

fn login(user: &str, password: &str) -> Result<RegistryLogin, &'static str> {
    if user.is_empty() || password.is_empty() {
        return Err("empty user name or password");
    }
    Ok(RegistryLogin {
        username: user.to_owned(),
        password: Zeroizing::new(password.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auth_and_username_password_entries_are_found_by_host() {
        let doc = format!(
            r#"{{"auths": {{"https://reg.example:5000/v1/": {{"auth": "{}"}},
                "ghcr.io": {{"username": "bot", "password": "tok"}}}}}}"#,
            b64("ci:s3cret:with-colon")
        );
        let secret = PullSecret::parse(doc.as_bytes(), "secret apps/pull").unwrap();
        let login = secret.login_for("reg.example:5000").unwrap();
        assert_eq!(login.username, "ci");
        assert_eq!(login.password.as_str(), "s3cret:with-colon");
        assert_eq!(secret.login_for("ghcr.io").unwrap().username, "bot");
        assert!(secret.login_for("reg.example").is_none());
        assert!(!format!("{login:?}").contains("s3cret"));
    }

    #[test]
    fn refusals_name_the_source_and_entry_but_no_secret() {
        let cases: [(&str, &str); 5] = [
            ("not json", "not a dockerconfigjson document"),
            (r#"{"auths": {"r.io": {}}}"#, "registry \"r.io\": neither"),
            (
                r#"{"auths": {"r.io": {"auth": "%%%"}}}"#,
                "\"auth\" is not base64",
            ),
            (
                r#"{"auths": {"r.io": {"username": "u", "password": ""}}}"#,
                "empty user name or password",
            ),
            (
                r#"{"auths": {"https:///": {"auth": "dTpw"}}}"#,
                "names no registry host",
            ),
        ];
        for (doc, want) in cases {
            let e = PullSecret::parse(doc.as_bytes(), "secret apps/pull")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("secret apps/pull: "), "{e}");
            assert!(e.contains(want), "{doc}: {e}");
        }
        let no_colon = format!(
            r#"{{"auths": {{"r.io": {{"auth": "{}"}}}}}}"#,
            b64("hunter2")
        );
        let e = PullSecret::parse(no_colon.as_bytes(), "f")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not user:password") && !e.contains("hunter2"),
            "{e}"
        );
    }

    #[test]
    fn oversized_documents_are_refused_before_parsing() {
        let big = vec![b' '; MAX_PULL_SECRET_BYTES + 1];
        assert!(matches!(
            PullSecret::parse(&big, "f"),
            Err(PullSecretError::TooLarge { .. })
        ));
        let many: Vec<String> = (0..=MAX_REGISTRIES)
            .map(|i| format!(r#""r{i}.io": {{"auth": "dTpw"}}"#))
            .collect();
        let doc = format!(r#"{{"auths": {{{}}}}}"#, many.join(","));
        assert!(matches!(
            PullSecret::parse(doc.as_bytes(), "f"),
            Err(PullSecretError::TooManyRegistries { .. })
        ));
    }
}
