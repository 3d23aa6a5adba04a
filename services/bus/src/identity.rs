//! Who is on the bus: one NATS identity per service, each allowed only its
//! part, plus the admin that creates the topology.
//!
//! The grants themselves live in the nats-server configuration
//! `deploy/nats/scanfleet-authorization.conf` (embedded here as
//! [`AUTHORIZATION_CONF`], so the local fleet and the tests run the file that
//! ships), and `tests/bus_identities.rs` proves them against a real server.
//! This module holds what the code must agree on with that file: the
//! identities, the server variable that carries each one's public nkey, and
//! the inbox prefix each one receives replies on. Separate inbox prefixes are
//! what keep one identity from subscribing to another's replies (a worker
//! could otherwise read the results the collector pulls).

use crate::topology::{
    ADVISORIES_STREAM, API_BUDGETS_BUCKET, COLLECTOR_CONSUMER, DLQ_FORWARDER_CONSUMER, DLQ_STREAM,
    IDEMPOTENCY_BUCKET, INTENTS_STREAM, QUARANTINE_STREAM, REPORTS_BUCKET, RESULTS_STREAM,
    STATUS_BUCKET,
};

/// The shipped authorization block of the nats-server configuration: every
/// identity's subject permissions. Public nkeys come from the server's
/// environment (`SCANFLEET_<IDENTITY>_NKEY`, see [`BusIdentity::nkey_variable`]).
pub const AUTHORIZATION_CONF: &str =
    include_str!("../../../deploy/nats/scanfleet-authorization.conf");

/// The file name the authorization block is included by.
pub const AUTHORIZATION_CONF_NAME: &str = "scanfleet-authorization.conf";

/// A NATS identity of the fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BusIdentity {
    /// Creates streams, consumers and buckets (`scanfleet bus init`); no
    /// service runs with it.
    Admin,
    /// Publishes intents, records status, forwards dead letters.
    Intake,
    /// Consumes intents, publishes results, reports, status, dead letters.
    Worker,
    /// Consumes results, reads reports, publishes quarantined results.
    Collector,
}

/// A stream, consumer or bucket a service cannot run without.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Required {
    /// A stream, by name.
    Stream(&'static str),
    /// A durable consumer: (stream, consumer).
    Consumer(&'static str, &'static str),
    /// A key-value bucket, by bucket name.
    KeyValue(&'static str),
    /// An object store bucket, by bucket name.
    ObjectStore(&'static str),
}

impl Required {
    /// The stream that holds it (KV and object buckets are streams too).
    pub fn stream(self) -> String {
        match self {
            Required::Stream(s) | Required::Consumer(s, _) => s.to_owned(),
            Required::KeyValue(b) => format!("KV_{b}"),
            Required::ObjectStore(b) => format!("OBJ_{b}"),
        }
    }
}

impl std::fmt::Display for Required {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Required::Stream(s) => write!(f, "stream {s}"),
            Required::Consumer(s, c) => write!(f, "consumer {s}/{c}"),
            Required::KeyValue(b) => write!(f, "key-value bucket {b}"),
            Required::ObjectStore(b) => write!(f, "object store {b}"),
        }
    }
}

const INTAKE_NEEDS: &[Required] = &[
    Required::Stream(INTENTS_STREAM),
    Required::Stream(DLQ_STREAM),
    Required::Stream(ADVISORIES_STREAM),
    Required::Consumer(ADVISORIES_STREAM, DLQ_FORWARDER_CONSUMER),
    Required::KeyValue(STATUS_BUCKET),
    Required::KeyValue(IDEMPOTENCY_BUCKET),
    Required::KeyValue(API_BUDGETS_BUCKET),
];

/// Besides these, a worker needs the intent consumers of each cluster it
/// serves (`check_cluster_consumers`).
const WORKER_NEEDS: &[Required] = &[
    Required::Stream(INTENTS_STREAM),
    Required::Stream(RESULTS_STREAM),
    Required::Stream(DLQ_STREAM),
    Required::KeyValue(STATUS_BUCKET),
    Required::KeyValue(API_BUDGETS_BUCKET),
    Required::ObjectStore(REPORTS_BUCKET),
];

const COLLECTOR_NEEDS: &[Required] = &[
    Required::Stream(RESULTS_STREAM),
    Required::Consumer(RESULTS_STREAM, COLLECTOR_CONSUMER),
    Required::Stream(QUARANTINE_STREAM),
    Required::ObjectStore(REPORTS_BUCKET),
];

/// Besides these, the intent consumers of every configured cluster.
const EVERYTHING: &[Required] = &[
    Required::Stream(INTENTS_STREAM),
    Required::Stream(RESULTS_STREAM),
    Required::Consumer(RESULTS_STREAM, COLLECTOR_CONSUMER),
    Required::Stream(DLQ_STREAM),
    Required::Stream(QUARANTINE_STREAM),
    Required::Stream(ADVISORIES_STREAM),
    Required::Consumer(ADVISORIES_STREAM, DLQ_FORWARDER_CONSUMER),
    Required::KeyValue(STATUS_BUCKET),
    Required::KeyValue(IDEMPOTENCY_BUCKET),
    Required::KeyValue(API_BUDGETS_BUCKET),
    Required::ObjectStore(REPORTS_BUCKET),
];

impl BusIdentity {
    /// Every identity, admin first.
    pub const ALL: [BusIdentity; 4] = [
        BusIdentity::Admin,
        BusIdentity::Intake,
        BusIdentity::Worker,
        BusIdentity::Collector,
    ];

    /// The three service identities.
    pub const SERVICES: [BusIdentity; 3] = [
        BusIdentity::Intake,
        BusIdentity::Worker,
        BusIdentity::Collector,
    ];

    /// Short lowercase name (`intake`), used in file names and inboxes.
    pub fn name(self) -> &'static str {
        match self {
            BusIdentity::Admin => "admin",
            BusIdentity::Intake => "intake",
            BusIdentity::Worker => "worker",
            BusIdentity::Collector => "collector",
        }
    }

    /// The connection name the server lists (`scanfleet-intake`).
    pub fn client_name(self) -> &'static str {
        match self {
            BusIdentity::Admin => "scanfleet-admin",
            BusIdentity::Intake => "scanfleet-intake",
            BusIdentity::Worker => "scanfleet-worker",
            BusIdentity::Collector => "scanfleet-collector",
        }
    }

    /// The subject prefix this identity's replies arrive on; the server
    /// configuration lets each identity subscribe only below its own.
    pub fn inbox_prefix(self) -> &'static str {
        match self {
            BusIdentity::Admin => "_INBOX.admin",
            BusIdentity::Intake => "_INBOX.intake",
            BusIdentity::Worker => "_INBOX.worker",
            BusIdentity::Collector => "_INBOX.collector",
        }
    }

    /// The server configuration variable (read from nats-server's
    /// environment) that holds this identity's public user nkey.
    pub fn nkey_variable(self) -> &'static str {
        match self {
            BusIdentity::Admin => "SCANFLEET_ADMIN_NKEY",
            BusIdentity::Intake => "SCANFLEET_INTAKE_NKEY",
            BusIdentity::Worker => "SCANFLEET_WORKER_NKEY",
            BusIdentity::Collector => "SCANFLEET_COLLECTOR_NKEY",
        }
    }

    /// What must exist before this identity's service can run; checked at
    /// start-up by [`crate::check_topology`], created by
    /// [`crate::TopologyConfig::ensure`].
    pub fn requires(self) -> &'static [Required] {
        match self {
            BusIdentity::Admin => EVERYTHING,
            BusIdentity::Intake => INTAKE_NEEDS,
            BusIdentity::Worker => WORKER_NEEDS,
            BusIdentity::Collector => COLLECTOR_NEEDS,
        }
    }
}

impl std::fmt::Display for BusIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A freshly generated user nkey: the seed the service keeps secret and the
/// public key the server configuration names.
pub struct UserNkey {
    /// The seed (`SU…`); never logged.
    pub seed: String,
    /// The public key (`U…`).
    pub public: String,
}

impl std::fmt::Debug for UserNkey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserNkey({}, seed ***)", self.public)
    }
}

impl UserNkey {
    /// A new random user key pair.
    ///
    /// # Panics
    /// Never in practice: a fresh key pair always has a seed.
    pub fn generate() -> Self {
        let pair = nkeys::KeyPair::new_user();
        Self {
            seed: pair.seed().expect("a generated key pair has a seed"),
            public: pair.public_key(),
        }
    }

    /// The public key of a user seed.
    ///
    /// # Errors
    /// A message saying why the text is not a user seed (without the seed).
    pub fn public_of(seed: &str) -> Result<String, String> {
        let pair = nkeys::KeyPair::from_seed(seed.trim())
            .map_err(|e| format!("not an nkey seed ({e})"))?;
        if pair.key_pair_type() != nkeys::KeyPairType::User {
            return Err("not a user nkey seed (it must start with SU)".into());
        }
        Ok(pair.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_names_every_identity_and_inbox() {
        for identity in BusIdentity::ALL {
            assert!(
                AUTHORIZATION_CONF.contains(&format!("${}", identity.nkey_variable())),
                "{identity}"
            );
            if identity != BusIdentity::Admin {
                assert!(
                    AUTHORIZATION_CONF.contains(&format!("\"{}.>\"", identity.inbox_prefix())),
                    "{identity}"
                );
            }
        }
    }

    #[test]
    fn generated_keys_are_user_keys_and_round_trip() {
        let key = UserNkey::generate();
        assert!(key.seed.starts_with("SU"));
        assert_eq!(UserNkey::public_of(&key.seed).unwrap(), key.public);
        assert!(!format!("{key:?}").contains(&key.seed));
        let account = nkeys::KeyPair::new_account().seed().unwrap();
        assert!(UserNkey::public_of(&account).unwrap_err().contains("SU"));
        assert!(UserNkey::public_of("hunter2").is_err());
    }
}
