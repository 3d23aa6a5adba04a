//! The limits every listener enforces, and the flags that set them.

use std::time::Duration;

/// How long a connection may take and how many may be open, per listener.
///
/// The defaults hold a slow-client flood away from file-descriptor
/// exhaustion on a stock `ulimit -n` of 1,024 to 1,048,576: at most 1,024
/// connections per listener, and a connection that has not finished a
/// request's headers within 10 s is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServingLimits {
    /// Connections open at once per listener; a newcomer beyond it takes
    /// the slot of the oldest idle connection, or waits in the kernel's
    /// backlog when every connection is busy.
    pub max_connections: usize,
    /// Time for a request's headers to arrive, counted from the accept (or,
    /// on HTTP/1 keep-alive, from the end of the previous response).
    pub header_read_timeout: Duration,
    /// Time an HTTP/2 connection (gRPC) may idle between requests.
    pub idle_timeout: Duration,
}

impl Default for ServingLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// The flags and `SCANFLEET_*` variables of [`ServingLimits`], flattened
/// into each service's arguments. Unset values fall back to the YAML file,
/// then to the defaults (see [`crate::configuration`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServingArgs {
    /// Connections open at once on each listener [default: 1024]
    #[arg(long, env = "SCANFLEET_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers [default: 10]
    #[arg(
        long = "header-read-timeout",
        env = "SCANFLEET_HEADER_READ_TIMEOUT",
        value_name = "SECS"
    )]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds an HTTP/2 (gRPC) connection may idle between requests
    /// [default: 300]
    #[arg(
        long = "idle-timeout",
        env = "SCANFLEET_IDLE_TIMEOUT",
        value_name = "SECS"
    )]
    pub idle_timeout_secs: Option<u64>,
}

/// The same settings as YAML keys (`max_connections`,
/// `header_read_timeout_secs`, `idle_timeout_secs`), flattened into each
/// service's file schema.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServingFile {
    /// See [`ServingArgs::max_connections`].
    pub max_connections: Option<usize>,
    /// See [`ServingArgs::header_read_timeout_secs`].
    pub header_read_timeout_secs: Option<u64>,
    /// See [`ServingArgs::idle_timeout_secs`].
    pub idle_timeout_secs: Option<u64>,
}

impl ServingArgs {
    /// Settles flags over the file over the defaults, and checks the
    /// result, appending every problem to `errors`.
    pub fn settle(self, file: ServingFile, errors: &mut Vec<String>) -> ServingLimits {
        use crate::configuration::setting;
        let defaults = ServingLimits::default();
        let max_connections = setting(
            self.max_connections,
            file.max_connections,
            defaults.max_connections,
        );
        let header = setting(
            self.header_read_timeout_secs,
            file.header_read_timeout_secs,
            defaults.header_read_timeout.as_secs(),
        );
        let idle = setting(
            self.idle_timeout_secs,
            file.idle_timeout_secs,
            defaults.idle_timeout.as_secs(),
        );
        if max_connections == 0 || max_connections > 1_000_000 {
            errors.push(format!(
                "max_connections {max_connections}: must be 1 to 1000000"
            ));
        }
        if header == 0 || header > 3600 {
            errors.push(format!(
                "header_read_timeout_secs {header}: must be 1 to 3600"
            ));
        }
        if idle == 0 || idle > 86_400 {
            errors.push(format!("idle_timeout_secs {idle}: must be 1 to 86400"));
        }
        ServingLimits {
            max_connections,
            header_read_timeout: Duration::from_secs(header),
            idle_timeout: Duration::from_secs(idle),
        }
    }
}
