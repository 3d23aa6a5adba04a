//! Connecting to NATS the way every scanfleet service does: explicit auth,
//! TLS pinned to a CA when configured, bounded retries for an unreachable
//! server, and no retries for refused credentials (retrying a wrong password
//! only hides the misconfiguration).

use std::path::PathBuf;
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions};

use crate::BusError;

/// How a service authenticates to NATS.
#[derive(Clone)]
pub enum NatsAuth {
    /// No credentials (development only).
    None,
    /// User and password; the password is never logged.
    UserPassword {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// An operator/JWT `.creds` file.
    Creds(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => write!(f, "UserPassword({user}, ***)"),
            NatsAuth::Creds(path) => write!(f, "Creds({})", path.display()),
        }
    }
}

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct NatsSettings {
    /// `nats://` or `tls://` URLs.
    pub urls: Vec<String>,
    /// Credentials.
    pub auth: NatsAuth,
    /// CA that must sign the server certificate; setting it requires TLS.
    pub ca: Option<PathBuf>,
    /// Reconnect attempts while the server is unreachable at start-up.
    pub connect_attempts: u32,
}

impl NatsSettings {
    /// Plain, unauthenticated settings for one URL (development and tests).
    pub fn plain(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            auth: NatsAuth::None,
            ca: None,
            connect_attempts: 10,
        }
    }
}

/// Connects, naming the client `name` in the server's connection list.
///
/// # Errors
/// [`BusError::Connect`] with the reason; credential and TLS failures are
/// reported at once, unreachable servers after the bounded retries.
pub async fn connect(settings: &NatsSettings, name: &str) -> Result<async_nats::Client, BusError> {
    let urls: Vec<async_nats::ServerAddr> = settings
        .urls
        .iter()
        .map(|u| {
            u.parse()
                .map_err(|e| BusError::Connect(format!("NATS URL {u:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut options = ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(5));
        options = match &settings.auth {
            NatsAuth::None => options,
            NatsAuth::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
            NatsAuth::Creds(path) => options.credentials_file(path).await.map_err(|e| {
                BusError::Connect(format!("NATS credentials {}: {e}", path.display()))
            })?,
        };
        if let Some(ca) = &settings.ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        match options.connect(urls.clone()).await {
            Ok(client) => return Ok(client),
            Err(e) => {
                // A certificate the CA does not vouch for surfaces as an IO
                // error of kind InvalidData; it will not fix itself either.
                let bad_certificate = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData);
                let fatal = bad_certificate
                    || matches!(
                        e.kind(),
                        ConnectErrorKind::AuthorizationViolation
                            | ConnectErrorKind::Authentication
                            | ConnectErrorKind::Tls
                            | ConnectErrorKind::ServerParse
                    );
                if fatal || attempt >= settings.connect_attempts.max(1) {
                    return Err(BusError::Connect(format!(
                        "NATS {}: {e} (attempt {attempt})",
                        settings.urls.join(",")
                    )));
                }
                tracing::warn!(error = %e, attempt, "NATS not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
