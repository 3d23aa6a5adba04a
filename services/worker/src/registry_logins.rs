//! Where an image scan's registry login comes from: nowhere (anonymous
//! pulls), or a pull secret in Docker's `dockerconfigjson` format, read
//! once from a file at start-up. The login is chosen by the intent's
//! registry host; a registry the secret does not name is pulled
//! anonymously.

use std::sync::Arc;

use scanfleet_image_fetch::pull_secret::{PullSecret, RegistryLogin};

/// The source of registry logins.
#[derive(Debug, Clone, Default)]
pub enum RegistryLogins {
    /// Anonymous pulls only.
    #[default]
    Anonymous,
    /// A pull secret read at start-up.
    Fixed(Arc<PullSecret>),
}

impl RegistryLogins {
    /// The login for `registry`, if any; the error says why the logins
    /// could not be read and whether that is permanent.
    pub async fn login_for(&self, registry: &str) -> Result<Option<RegistryLogin>, (String, bool)> {
        match self {
            Self::Anonymous => Ok(None),
            Self::Fixed(secret) => Ok(secret.login_for(registry).cloned()),
        }
    }
}
