//! `scanfleet keys`: create signing keys and show key ids.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;
use scanfleet_trust::{PublicKey, SigningKey};

use super::EXIT_OK;
use crate::files;

/// PEM keys are tiny; anything larger is not a key.
pub const MAX_KEY_FILE_BYTES: usize = 64 * 1024;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    #[command(after_help = super::examples::KEYS_GENERATE)]
    /// Create a new key pair: DIR/signing.pem (mode 0600) and
    /// DIR/signing.pub.pem, and print the key id.
    Generate {
        /// Directory for the key files; created with mode 0700 if missing.
        #[arg(long)]
        out_dir: PathBuf,
    },
    #[command(after_help = super::examples::KEYS_ID)]
    /// Print the key id of a public or private key file.
    Id {
        /// A PUBLIC KEY or PRIVATE KEY PEM file.
        key: PathBuf,
    },
}

pub fn run(cmd: KeysCommand) -> Result<ExitCode> {
    match cmd {
        KeysCommand::Generate { out_dir } => generate(out_dir),
        KeysCommand::Id { key } => {
            let text = files::read_secret(&key, MAX_KEY_FILE_BYTES)?;
            let id = if text.contains("PRIVATE KEY-----") {
                files::warn_if_exposed(&key);
                load_signing_key_text(&text, &key)?.key_id().clone()
            } else {
                PublicKey::from_spki_pem(&text)
                    .map_err(|e| anyhow!("{}: {e}", key.display()))?
                    .key_id()
                    .clone()
            };
            println!("{id}");
            Ok(EXIT_OK)
        }
    }
}

fn generate(out_dir: PathBuf) -> Result<ExitCode> {
    if !out_dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&out_dir)
            .with_context(|| format!("creating {}", out_dir.display()))?;
    }
    let private_path = out_dir.join("signing.pem");
    let public_path = out_dir.join("signing.pub.pem");
    for path in [&private_path, &public_path] {
        if path.exists() {
            anyhow::bail!(
                "{} already exists; refusing to overwrite a key",
                path.display()
            );
        }
    }
    let key = SigningKey::generate();
    files::write_private(&private_path, key.to_pkcs8_pem().as_bytes())?;
    if let Err(e) = files::write_public(&public_path, key.public_key().to_spki_pem().as_bytes()) {
        // Leave no half-made key pair behind.
        let _ = fs::remove_file(&private_path);
        return Err(e);
    }
    println!("{}", key.key_id());
    eprintln!(
        "wrote {} (private, mode 0600) and {}",
        private_path.display(),
        public_path.display()
    );
    Ok(EXIT_OK)
}

/// Loads a signing key file, warning if its permissions expose it.
pub fn load_signing_key(path: &std::path::Path) -> Result<SigningKey> {
    let text = files::read_secret(path, MAX_KEY_FILE_BYTES)?;
    files::warn_if_exposed(path);
    load_signing_key_text(&text, path)
}

fn load_signing_key_text(text: &str, path: &std::path::Path) -> Result<SigningKey> {
    SigningKey::from_pkcs8_pem(text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Loads a public key file.
pub fn load_public_key(path: &std::path::Path) -> Result<PublicKey> {
    let text = files::read_text(path, MAX_KEY_FILE_BYTES)?;
    PublicKey::from_spki_pem(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}
