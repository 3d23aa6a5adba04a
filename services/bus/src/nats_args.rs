//! The NATS command-line and environment options every service takes, so
//! intake, workers and the collector configure the bus the same way.

use std::path::PathBuf;

use crate::connection::{NatsAuth, NatsSettings};
use crate::identity::UserNkey;

/// NATS connection options (flags or `SCANFLEET_NATS_*` variables).
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated (`nats://` or `tls://`)
    /// [default: nats://127.0.0.1:4222]
    #[arg(long, env = "SCANFLEET_NATS_URL")]
    pub nats_url: Option<String>,
    /// NATS user (with --nats-password-file).
    #[arg(long, env = "SCANFLEET_NATS_USER")]
    pub nats_user: Option<String>,
    /// File holding the NATS password (kept out of the process list).
    #[arg(long, env = "SCANFLEET_NATS_PASSWORD_FILE")]
    pub nats_password_file: Option<PathBuf>,
    /// NATS credentials (.creds) file for operator/JWT auth.
    #[arg(long, env = "SCANFLEET_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// File holding this service's NATS user nkey seed (`SU…`), the
    /// identity the server's configuration grants the service's subjects.
    #[arg(long, env = "SCANFLEET_NATS_NKEY_FILE")]
    pub nats_nkey_file: Option<PathBuf>,
    /// CA certificate that must sign the NATS server's certificate (enables TLS).
    #[arg(long, env = "SCANFLEET_NATS_CA")]
    pub nats_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a NATS server that verifies clients
    /// (with --nats-client-key).
    #[arg(long, env = "SCANFLEET_NATS_CLIENT_CERT")]
    pub nats_client_cert: Option<PathBuf>,
    /// Private key (PEM) of --nats-client-cert.
    #[arg(long, env = "SCANFLEET_NATS_CLIENT_KEY")]
    pub nats_client_key: Option<PathBuf>,
}

/// The same settings in a service's YAML file, under `nats:` (each key is
/// the flag's name without `--nats-`, e.g. `nkey_file`). A flag or its
/// variable wins over the file, as for every setting.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsFile {
    /// `--nats-url`.
    pub url: Option<String>,
    /// `--nats-user`.
    pub user: Option<String>,
    /// `--nats-password-file`.
    pub password_file: Option<PathBuf>,
    /// `--nats-creds`.
    pub creds: Option<PathBuf>,
    /// `--nats-nkey-file`.
    pub nkey_file: Option<PathBuf>,
    /// `--nats-ca`.
    pub ca: Option<PathBuf>,
    /// `--nats-client-cert`.
    pub client_cert: Option<PathBuf>,
    /// `--nats-client-key`.
    pub client_key: Option<PathBuf>,
}

impl NatsArgs {
    /// Validates the options, appending every problem to `errors`.
    pub fn settings(&self, errors: &mut Vec<String>) -> NatsSettings {
        self.settle(&NatsFile::default(), errors)
    }

    /// The flags over the `nats:` section of the YAML file, validated;
    /// every problem is appended to `errors`.
    pub fn settle(&self, file: &NatsFile, errors: &mut Vec<String>) -> NatsSettings {
        let file = file.clone();
        let merged = NatsArgs {
            nats_url: self.nats_url.clone().or(file.url),
            nats_user: self.nats_user.clone().or(file.user),
            nats_password_file: self.nats_password_file.clone().or(file.password_file),
            nats_creds: self.nats_creds.clone().or(file.creds),
            nats_nkey_file: self.nats_nkey_file.clone().or(file.nkey_file),
            nats_ca: self.nats_ca.clone().or(file.ca),
            nats_client_cert: self.nats_client_cert.clone().or(file.client_cert),
            nats_client_key: self.nats_client_key.clone().or(file.client_key),
        };
        merged.validated(errors)
    }

    fn validated(&self, errors: &mut Vec<String>) -> NatsSettings {
        let urls: Vec<String> = self
            .nats_url
            .as_deref()
            .unwrap_or("nats://127.0.0.1:4222")
            .split(',')
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            errors.push("--nats-url: at least one URL is required".into());
        }
        for url in &urls {
            if !(url.starts_with("nats://") || url.starts_with("tls://")) {
                errors.push(format!(
                    "--nats-url: {url:?} must start with nats:// or tls://"
                ));
            }
        }
        let auth = self.auth(errors);
        if let Some(ca) = &self.nats_ca
            && !ca.is_file()
        {
            errors.push(format!("--nats-ca: {} is not a file", ca.display()));
        }
        NatsSettings {
            urls,
            auth,
            ca: self.nats_ca.clone(),
            client_cert: self.client_cert(errors),
            connect_attempts: 15,
        }
    }

    /// One way to authenticate, or none; a mix is refused.
    fn auth(&self, errors: &mut Vec<String>) -> NatsAuth {
        match (
            &self.nats_user,
            &self.nats_password_file,
            &self.nats_creds,
            &self.nats_nkey_file,
        ) {
            (None, None, None, None) => NatsAuth::None,
            (Some(user), Some(file), None, None) => match read_secret(file) {
                Ok(password) => NatsAuth::UserPassword {
                    user: user.clone(),
                    password,
                },
                Err(e) => {
                    errors.push(format!("--nats-password-file: {e}"));
                    NatsAuth::None
                }
            },
            (None, None, Some(creds), None) => {
                if !creds.is_file() {
                    errors.push(format!("--nats-creds: {} is not a file", creds.display()));
                }
                NatsAuth::Creds(creds.clone())
            }
            (None, None, None, Some(file)) => {
                match read_secret(file).and_then(|seed| {
                    UserNkey::public_of(&seed).map_err(|e| format!("{}: {e}", file.display()))?;
                    Ok(seed)
                }) {
                    Ok(seed) => NatsAuth::NKey { seed },
                    Err(e) => {
                        errors.push(format!("--nats-nkey-file: {e}"));
                        NatsAuth::None
                    }
                }
            }
            _ => {
                errors.push(
                    "NATS auth: give one of --nats-nkey-file, --nats-user with \
                     --nats-password-file, or --nats-creds, not a mix"
                        .into(),
                );
                NatsAuth::None
            }
        }
    }

    fn client_cert(&self, errors: &mut Vec<String>) -> Option<(PathBuf, PathBuf)> {
        match (&self.nats_client_cert, &self.nats_client_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                for (flag, path) in [("--nats-client-cert", cert), ("--nats-client-key", key)] {
                    if !path.is_file() {
                        errors.push(format!("{flag}: {} is not a file", path.display()));
                    }
                }
                Some((cert.clone(), key.clone()))
            }
            _ => {
                errors.push("--nats-client-cert and --nats-client-key go together".into());
                None
            }
        }
    }
}

fn read_secret(path: &std::path::Path) -> Result<String, String> {
    read_small_file(path, 4096).map(|p| p.trim_end().to_owned())
}

/// Reads a small configuration file (a key, a password, a recipient list)
/// with a size bound, so a wrong path to a huge file fails fast and clearly.
/// Every service uses it for its secret and key files.
///
/// # Errors
/// A message naming the file and the problem.
pub fn read_small_file(path: &std::path::Path, max_bytes: u64) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > max_bytes {
        return Err(format!("{}: larger than {max_bytes} bytes", path.display()));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}
