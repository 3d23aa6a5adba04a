//! `scanfleet envelope`: DSSE signing and verification, age encryption.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use scanfleet_trust::{
    AgeIdentities, AgeRecipient, DEFAULT_MAX_ENVELOPE_BYTES, Envelope, TrustedKeys, VerifyError,
    encryption,
};

use super::{EXIT_OK, exit_rejected, keys};
use crate::files;

#[derive(Debug, Subcommand)]
pub enum EnvelopeCommand {
    #[command(after_help = super::examples::ENVELOPE_SIGN)]
    /// Sign FILE's bytes into a DSSE envelope and print its JSON.
    Sign {
        /// PKCS#8 PEM private key (from `scanfleet keys generate`).
        #[arg(long)]
        key: PathBuf,
        /// The payload's media type, covered by the signature
        /// (in-toto statements: application/vnd.in-toto+json).
        #[arg(long)]
        payload_type: String,
        /// The payload file, or - for standard input.
        file: PathBuf,
        /// Write the envelope here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Refuse payloads larger than this many bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_ENVELOPE_BYTES)]
        max_bytes: usize,
    },
    #[command(after_help = super::examples::ENVELOPE_VERIFY)]
    /// Verify a DSSE envelope against trusted public keys. Exits 0 when a
    /// signature by one of them verifies, 1 when the envelope is rejected,
    /// 2 when it cannot be read.
    Verify {
        /// A trusted SPKI PEM public key; repeat for key rotation.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// The envelope JSON file, or - for standard input.
        file: PathBuf,
        /// Also require this payload type.
        #[arg(long)]
        payload_type: Option<String>,
        /// Write the verified payload here.
        #[arg(long)]
        payload_out: Option<PathBuf>,
        /// Refuse envelopes larger than this many bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_ENVELOPE_BYTES)]
        max_bytes: usize,
    },
    #[command(after_help = super::examples::ENVELOPE_ENCRYPT)]
    /// Encrypt FILE with age to one or more X25519 recipients.
    Encrypt {
        /// An age1… recipient; repeat to let any of several keys decrypt.
        #[arg(long = "recipient", required = true)]
        recipients: Vec<String>,
        /// The file to encrypt, or - for standard input.
        file: PathBuf,
        /// ASCII-armored output (safe for terminals and text channels).
        #[arg(long, short = 'a')]
        armor: bool,
        /// Write here instead of standard output.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Refuse inputs larger than this many bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_ENVELOPE_BYTES)]
        max_bytes: usize,
    },
    #[command(after_help = super::examples::ENVELOPE_DECRYPT)]
    /// Decrypt an age file (binary or armored) with identity files.
    Decrypt {
        /// An age identity file (age-keygen format); may be repeated.
        #[arg(long = "identity", short = 'i', required = true)]
        identities: Vec<PathBuf>,
        /// The encrypted file, or - for standard input.
        file: PathBuf,
        /// Write here instead of standard output.
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// Refuse inputs and plaintexts larger than this many bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_ENVELOPE_BYTES)]
        max_bytes: usize,
    },
}

pub fn run(cmd: EnvelopeCommand) -> Result<ExitCode> {
    match cmd {
        EnvelopeCommand::Sign {
            key,
            payload_type,
            file,
            out,
            max_bytes,
        } => {
            let key = keys::load_signing_key(&key)?;
            let payload = files::read_bounded(&file, max_bytes)?;
            let mut json = Envelope::sign(&payload_type, &payload, &key).to_json();
            json.push('\n');
            files::write_output(out.as_deref(), json.as_bytes())?;
            Ok(EXIT_OK)
        }
        EnvelopeCommand::Verify {
            keys: key_paths,
            file,
            payload_type,
            payload_out,
            max_bytes,
        } => {
            let trusted: TrustedKeys = key_paths
                .iter()
                .map(|p| keys::load_public_key(p))
                .collect::<Result<_>>()?;
            let bytes = files::read_bounded(&file, max_bytes)?;
            match trusted.verify_json(&bytes, max_bytes, payload_type.as_deref()) {
                Ok(verified) => {
                    println!(
                        "verified: signed by trusted key {} (payload type {})",
                        verified.key_id, verified.payload_type
                    );
                    if let Some(path) = payload_out {
                        files::write_output(Some(&path), &verified.payload)?;
                    }
                    Ok(EXIT_OK)
                }
                Err(VerifyError::Malformed(e)) => Err(anyhow!("{}: {e}", file.display())),
                Err(rejection) => {
                    eprintln!("rejected: {}: {rejection}", file.display());
                    Ok(exit_rejected())
                }
            }
        }
        EnvelopeCommand::Encrypt {
            recipients,
            file,
            armor,
            out,
            max_bytes,
        } => {
            if out.is_none() && !armor && std::io::stdout().is_terminal() {
                bail!("refusing to write binary ciphertext to a terminal; use --armor or --out");
            }
            let recipients = recipients
                .iter()
                .enumerate()
                .map(|(i, r)| AgeRecipient::parse(r, i))
                .collect::<Result<Vec<_>, _>>()?;
            let plaintext = files::read_bounded(&file, max_bytes)?;
            let ciphertext = encryption::encrypt(&plaintext, &recipients, armor)?;
            files::write_output(out.as_deref(), &ciphertext)?;
            Ok(EXIT_OK)
        }
        EnvelopeCommand::Decrypt {
            identities,
            file,
            out,
            max_bytes,
        } => {
            let mut text = zeroize::Zeroizing::new(String::new());
            for path in &identities {
                files::warn_if_exposed(path);
                let content = files::read_secret(path, keys::MAX_KEY_FILE_BYTES)?;
                AgeIdentities::parse(&content).map_err(|e| anyhow!("{}: {e}", path.display()))?;
                text.push_str(&content);
                text.push('\n');
            }
            let identities = AgeIdentities::parse(&text)?;
            let ciphertext = files::read_bounded(&file, max_bytes)?;
            let plaintext = encryption::decrypt(&ciphertext, &identities, max_bytes)
                .map_err(|e| anyhow!("{}: {e}", file.display()))?;
            files::write_output(out.as_deref(), &plaintext)?;
            Ok(EXIT_OK)
        }
    }
}
