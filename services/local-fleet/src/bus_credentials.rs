//! The local fleet's bus runs the way production does: TLS to nats-server
//! (a throwaway CA, as kubesim has its own) and one least-privilege nkey
//! per service, granted by the shipped authorization
//! (`deploy/nats/scanfleet-authorization.conf`). The topology is created
//! once by the bootstrap with the admin identity, as `scanfleet bus init`
//! does; no service may create a stream.
//!
//! Everything lives in `DATA_DIR/bus/` and is reused on the next start, so
//! a restarted fleet keeps talking to its own JetStream store.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use scanfleet_bus::identity::AUTHORIZATION_CONF;
use scanfleet_bus::{BusIdentity, NatsAuth, NatsSettings, TopologyConfig, UserNkey};
use scanfleet_scan_intents::ClusterName;

/// The files of `DATA_DIR/bus/`.
pub struct BusCredentials {
    dir: PathBuf,
}

impl BusCredentials {
    /// The credentials in `dir`, as they are (nothing is read or written).
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Uses the credentials in `dir`, creating whatever is missing.
    ///
    /// # Errors
    /// When a file cannot be written or a key cannot be generated.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let this = Self::at(dir);
        if !this.ca().is_file() || !this.server_key().is_file() {
            this.write_pki()?;
        }
        for identity in BusIdentity::ALL {
            let path = this.nkey_file(identity);
            if !path.is_file() {
                write_private(&path, UserNkey::generate().seed.as_bytes())?;
            }
        }
        Ok(this)
    }

    /// The CA that signed nats-server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// The file holding `identity`'s nkey seed (0600).
    pub fn nkey_file(&self, identity: BusIdentity) -> PathBuf {
        self.dir.join(format!("{}.nk", identity.name()))
    }

    /// The flags a service connects as `identity` with (after `--nats-url`).
    pub fn args(&self, identity: BusIdentity) -> Vec<String> {
        vec![
            "--nats-ca".into(),
            self.ca().display().to_string(),
            "--nats-nkey-file".into(),
            self.nkey_file(identity).display().to_string(),
        ]
    }

    /// Writes nats-server's configuration (TLS and the shipped
    /// authorization, with this fleet's public keys) and returns its path.
    /// nats-server's variables do not cross `include`, so the public keys
    /// are defined in the same file, ahead of the authorization block.
    ///
    /// # Errors
    /// When a seed cannot be read or the file cannot be written.
    pub fn write_server_config(&self) -> Result<PathBuf> {
        let mut text = format!(
            "tls {{ cert_file: {:?}, key_file: {:?}, timeout: 5 }}\nmax_payload: 1MB\n",
            self.server_cert(),
            self.server_key()
        );
        for identity in BusIdentity::ALL {
            let seed = std::fs::read_to_string(self.nkey_file(identity))?;
            let public = UserNkey::public_of(&seed).map_err(anyhow::Error::msg)?;
            text.push_str(&format!("{}: {public:?}\n", identity.nkey_variable()));
        }
        text.push_str(AUTHORIZATION_CONF);
        let path = self.server_config();
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Creates the streams, consumers and buckets that are missing, as the
    /// admin identity (`scanfleet bus init`); an existing topology is left
    /// as it is.
    ///
    /// # Errors
    /// When the server refuses the admin or the topology cannot be created.
    pub async fn bootstrap(&self, url: &str) -> Result<()> {
        let seed = std::fs::read_to_string(self.nkey_file(BusIdentity::Admin))?;
        let settings = NatsSettings {
            urls: vec![url.to_owned()],
            auth: NatsAuth::NKey { seed },
            ca: Some(self.ca()),
            client_cert: None,
            connect_attempts: 10,
        };
        let client = scanfleet_bus::connect(&settings, BusIdentity::Admin).await?;
        TopologyConfig {
            clusters: vec![ClusterName::new(crate::fleet_plan::CLUSTER)?],
            ..TopologyConfig::default()
        }
        .ensure(&async_nats::jetstream::new(client))
        .await?;
        Ok(())
    }

    /// nats-server's configuration file ([`BusCredentials::write_server_config`]).
    pub fn server_config(&self) -> PathBuf {
        self.dir.join("nats-server.conf")
    }

    fn write_pki(&self) -> Result<()> {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "scanfleet dev bus CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;
        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?
            .signed_by(&key, &ca)?;
        std::fs::write(self.ca(), ca.pem())?;
        std::fs::write(self.server_cert(), cert.pem())?;
        write_private(&self.server_key(), key.serialize_pem().as_bytes())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
