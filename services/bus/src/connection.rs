//! Connecting to NATS the way every scanfleet service does: explicit auth
//! (a user nkey in production), TLS pinned to a CA when configured (with a
//! client certificate for mutual TLS), replies on the identity's own inbox
//! prefix, bounded retries for an unreachable server, and no retries for
//! refused credentials (retrying a wrong password only hides the
//! misconfiguration). Errors the server sends later (a permissions
//! violation) are logged, since a refused request otherwise only times out.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions};

use crate::BusError;
use crate::identity::BusIdentity;

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
    /// A user nkey seed (`SU…`); never logged.
    NKey {
        /// The seed.
        seed: String,
    },
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => write!(f, "UserPassword({user}, ***)"),
            NatsAuth::Creds(path) => write!(f, "Creds({})", path.display()),
            NatsAuth::NKey { .. } => f.write_str("NKey(***)"),
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
    /// Client certificate and key PEM files, for servers that verify
    /// clients (mutual TLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
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
            client_cert: None,
            connect_attempts: 10,
        }
    }
}

/// Connects as `identity`: the server lists the connection under the
/// identity's client name, and replies arrive below its inbox prefix (the
/// only subjects the server lets it subscribe to).
///
/// # Errors
/// [`BusError::Connect`] with the reason; credential and TLS failures are
/// reported at once, unreachable servers after the bounded retries.
pub async fn connect(
    settings: &NatsSettings,
    identity: BusIdentity,
) -> Result<async_nats::Client, BusError> {
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
            .name(identity.client_name())
            .custom_inbox_prefix(identity.inbox_prefix())
            .connection_timeout(Duration::from_secs(5))
            .event_callback(move |event| async move { log_event(identity, event) });
        options = match &settings.auth {
            NatsAuth::None => options,
            NatsAuth::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
            NatsAuth::Creds(path) => options.credentials_file(path).await.map_err(|e| {
                BusError::Connect(format!("NATS credentials {}: {e}", path.display()))
            })?,
            NatsAuth::NKey { seed } => options.nkey(seed.clone()),
        };
        if let Some(ca) = &settings.ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &settings.client_cert {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
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

/// Server errors after connecting are what a missing grant looks like (the
/// request itself only times out), so they are errors in the log, naming
/// the identity; connection changes are worth a line too.
fn log_event(identity: BusIdentity, event: async_nats::Event) {
    match event {
        async_nats::Event::ServerError(error) => {
            tracing::error!(%identity, %error, "NATS server refused an operation");
        }
        async_nats::Event::Disconnected => tracing::warn!(%identity, "NATS disconnected"),
        async_nats::Event::Connected => tracing::info!(%identity, "NATS connected"),
        other => tracing::debug!(%identity, event = %other, "NATS event"),
    }
}
