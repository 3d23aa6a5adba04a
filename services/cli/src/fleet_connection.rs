//! How `submit`, `watch` and `results` reach a fleet's secured edges: the
//! address, the CA bundle that signed the services' certificates, a client
//! certificate (for identities outside the cluster, such as CI) and a
//! bearer token (a ServiceAccount token for the `scanfleet` audience).
//!
//! Each comes from a flag (or its environment variable), else from the CLI
//! config file (`--config`, `$SCANFLEET_CONFIG`, else
//! `~/.config/scanfleet/cli.yaml` when it exists), else a default. Paths in
//! the file are relative to the file. The token is only ever read from a
//! file (`--token-file`): a token on the command line would be visible to
//! every user in the process list. What the address scheme means, and the
//! refusal to send a token over plaintext, belong to
//! `scanfleet_edge_access::EdgeClient`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use clap::Args;
use scanfleet_contracts::v1::intake_client::IntakeClient;
use scanfleet_contracts::v1::results_client::ResultsClient;
use scanfleet_edge_access::{Authenticated, EdgeClient};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::files;

/// Upper bound for the config file, PEM files and the token file.
const FILE_LIMIT: usize = 256 * 1024;

/// Intake's default address (its gRPC port on this machine).
pub const DEFAULT_INTAKE: &str = "https://127.0.0.1:50051";
/// The collector's default address (its gRPC port on this machine).
pub const DEFAULT_COLLECTOR: &str = "https://127.0.0.1:50052";

/// Who the CLI is to the fleet, and how it checks who the fleet is.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnectionArgs {
    /// CLI config file (YAML keys: intake, collector, ca_file,
    /// client_cert_file, client_key_file, token_file, tls_server_name);
    /// flags win over it.
    #[arg(long = "config", env = "SCANFLEET_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The CA bundle (PEM) that signed the services' certificates.
    #[arg(long, env = "SCANFLEET_CA_FILE", value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// A client certificate (PEM) to call as (mTLS); with --client-key-file.
    #[arg(long, env = "SCANFLEET_CLIENT_CERT_FILE", value_name = "PEM")]
    client_cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "SCANFLEET_CLIENT_KEY_FILE", value_name = "PEM")]
    client_key_file: Option<PathBuf>,
    /// A file holding a bearer token (e.g. from `kubectl create token NAME
    /// --audience scanfleet`).
    #[arg(long, env = "SCANFLEET_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The name to verify in the services' certificates (default: the
    /// address's host).
    #[arg(long, env = "SCANFLEET_TLS_SERVER_NAME")]
    tls_server_name: Option<String>,
}

/// The CLI config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    intake: Option<String>,
    collector: Option<String>,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
    tls_server_name: Option<String>,
}

/// Which service a client is for.
#[derive(Debug, Clone, Copy)]
enum Service {
    Intake,
    Collector,
}

/// Settled settings: what to present, and the addresses.
pub struct Connection {
    client: EdgeClient,
    intake: String,
    collector: String,
}

impl ConnectionArgs {
    /// Settles flags, the config file and defaults; reads the files named.
    ///
    /// # Errors
    /// When the config file or a named file cannot be read, or a client
    /// certificate comes without its key (or the other way round).
    pub fn settle(
        &self,
        intake_flag: Option<&str>,
        collector_flag: Option<&str>,
    ) -> Result<Connection> {
        let (file, base) = self.config_file()?;
        let from_file = |p: &Option<PathBuf>| p.as_ref().map(|p| base.join(p));
        let pick = |flag: &Option<PathBuf>, file: &Option<PathBuf>| {
            flag.clone().or_else(|| from_file(file))
        };
        let ca_file = pick(&self.ca_file, &file.ca_file);
        let cert_file = pick(&self.client_cert_file, &file.client_cert_file);
        let key_file = pick(&self.client_key_file, &file.client_key_file);
        let token_file = pick(&self.token_file, &file.token_file);
        let identity = match (cert_file, key_file) {
            (Some(cert), Some(key)) => {
                Some((files::read_text(&cert, FILE_LIMIT)?, read_secret(&key)?))
            }
            (None, None) => None,
            (Some(_), None) => return Err(anyhow!("--client-cert-file needs --client-key-file")),
            (None, Some(_)) => return Err(anyhow!("--client-key-file needs --client-cert-file")),
        };
        let client = EdgeClient {
            ca_pem: ca_file
                .map(|p| files::read_text(&p, FILE_LIMIT))
                .transpose()?,
            identity,
            token: token_file.map(|p| read_secret(&p)).transpose()?,
            server_name: self.tls_server_name.clone().or(file.tls_server_name),
        };
        let address = |flag: Option<&str>, file: Option<String>, default: &str| {
            flag.map(str::to_owned)
                .or(file)
                .unwrap_or_else(|| default.to_owned())
        };
        Ok(Connection {
            client,
            intake: address(intake_flag, file.intake, DEFAULT_INTAKE),
            collector: address(collector_flag, file.collector, DEFAULT_COLLECTOR),
        })
    }

    /// These settings as the flags that repeat them, each shell-quoted, for
    /// a command a hint tells the user to run next: `submit`'s "follow
    /// with: scanfleet watch …" must reach the fleet the submit reached, not
    /// the defaults. The token goes by its file's name, never its value.
    pub fn as_flags(&self) -> Vec<String> {
        let paths = [
            ("--config", &self.config),
            ("--ca-file", &self.ca_file),
            ("--client-cert-file", &self.client_cert_file),
            ("--client-key-file", &self.client_key_file),
            ("--token-file", &self.token_file),
        ];
        let mut flags = Vec::new();
        for (flag, path) in paths {
            if let Some(path) = path {
                flags.push(flag.to_owned());
                flags.push(shell_word(&path.to_string_lossy()));
            }
        }
        if let Some(name) = &self.tls_server_name {
            flags.push("--tls-server-name".to_owned());
            flags.push(shell_word(name));
        }
        flags
    }

    /// The config file and the directory its paths are relative to.
    fn config_file(&self) -> Result<(ConfigFile, PathBuf)> {
        let path = match &self.config {
            Some(path) => path.clone(),
            None => match default_config_file() {
                Some(path) if path.is_file() => path,
                _ => return Ok((ConfigFile::default(), PathBuf::new())),
            },
        };
        let text = files::read_text(&path, FILE_LIMIT)?;
        let file: ConfigFile = yaml_serde::from_str(&text)
            .with_context(|| format!("{}: not a scanfleet CLI config", path.display()))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((file, base))
    }
}

fn default_config_file() -> Option<PathBuf> {
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(dir.join("scanfleet").join("cli.yaml"))
}

/// A token or key file: trimmed, wiped from memory when dropped, and a
/// warning when others can read it.
fn read_secret(path: &Path) -> Result<Zeroizing<String>> {
    files::warn_if_exposed(path);
    let text = files::read_secret(path, FILE_LIMIT)?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

impl Connection {
    /// An `Intake` client.
    ///
    /// # Errors
    /// When intake cannot be reached (the error names the address).
    pub async fn intake(&self) -> Result<IntakeClient<Authenticated>> {
        let (channel, auth) = self.connect(Service::Intake).await?;
        Ok(IntakeClient::with_interceptor(channel, auth))
    }

    /// A `Results` client.
    ///
    /// # Errors
    /// When the collector cannot be reached (the error names the address).
    pub async fn results(&self) -> Result<ResultsClient<Authenticated>> {
        let (channel, auth) = self.connect(Service::Collector).await?;
        Ok(ResultsClient::with_interceptor(channel, auth))
    }

    async fn connect(
        &self,
        service: Service,
    ) -> Result<(tonic::transport::Channel, scanfleet_edge_access::BearerAuth)> {
        let (address, name) = match service {
            Service::Intake => (&self.intake, "intake"),
            Service::Collector => (&self.collector, "the collector"),
        };
        self.client
            .connect(address)
            .await
            .with_context(|| format!("connecting to {name}"))
    }
}

/// A refused or failed call, with what to do about a refusal.
pub fn refusal(status: tonic::Status) -> anyhow::Error {
    let hint = match status.code() {
        tonic::Code::Unauthenticated => {
            "; give a bearer token (--token-file) or a client certificate (--client-cert-file)"
        }
        tonic::Code::PermissionDenied => {
            "; ask a cluster admin for a Role on scanfleet.dev granting it"
        }
        _ => "",
    };
    let message = format!("{} ({:?}){hint}", status.message(), status.code());
    match status.code() {
        // The service did not answer in time or at all: exit status 3.
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
            anyhow::Error::new(crate::commands::Unavailable(message))
        }
        _ => anyhow!(message),
    }
}

/// `word` as one shell word: as it is when it holds only characters no
/// shell treats specially, else single-quoted, so a printed command works
/// when pasted whatever the path.
pub fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_reads_each_quoted_word_back_unchanged() {
        let words = [
            "/tmp/scanfleet-dev-ab12/cli.yaml",
            "/home/a user/cli.yaml",
            "it's; rm -rf ~ $HOME `x` \"q\" \\",
            "",
        ];
        for word in words {
            let quoted = shell_word(word);
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {quoted}")])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), word, "{quoted}");
        }
        assert_eq!(shell_word("/tmp/x.yaml"), "/tmp/x.yaml");
    }
}
