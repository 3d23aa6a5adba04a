//! The fleet's signing key, kept in the data directory.
//!
//! Results signed but not yet stored when the fleet stops wait on the
//! `SCAN_RESULTS` stream; the next start's collector must still trust their
//! key, or it quarantines them as `unknown_key` (their intents were already
//! acknowledged, so they would be lost). So one key is made once and reused
//! on every start with the same `--data-dir`, and when it is rotated the
//! previous public halves stay trusted:
//!
//! ```text
//! keys/                  0700
//!   signing.pem          0600  the current private key (workers sign with it)
//!   signing.pub.pem            its public half (for `scanfleet results export --key`)
//!   trusted/<key-id>.pub.pem   every public key this fleet signed with; the
//!                              collector trusts them all
//! ```

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use scanfleet_trust::{PublicKey, SigningKey, TrustedKeys};
use zeroize::Zeroizing;

/// Largest key file read.
const MAX_KEY_BYTES: u64 = 64 * 1024;
/// Most trusted public keys kept; more means something is wrong.
const MAX_TRUSTED_KEYS: usize = 100;

/// The keys one start of the fleet uses.
pub struct SigningKeys {
    /// The current private key file, for the workers.
    pub private_key: PathBuf,
    /// The current key's id.
    pub key_id: String,
    /// Whether this start made the key (first start, or `--rotate-signing-key`).
    pub created: bool,
    /// Every trusted public key file, for the collector.
    pub trusted_files: Vec<PathBuf>,
    /// The same keys, to verify results independently of the collector.
    pub trusted: TrustedKeys,
}

/// Reuses the key in `dir`, or makes one (also when `rotate` is set, the
/// previous public half staying trusted).
///
/// # Errors
/// When a key file is unreadable, readable by others, or malformed.
pub fn load_or_create(dir: &Path, rotate: bool) -> Result<SigningKeys> {
    let trusted_dir = dir.join("trusted");
    std::fs::create_dir_all(&trusted_dir)
        .with_context(|| format!("creating {}", trusted_dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))?;
    let private_key = dir.join("signing.pem");
    let existing = if private_key.exists() {
        let key = read_private(&private_key)?;
        trust(&trusted_dir, key.public_key())?;
        Some(key)
    } else {
        None
    };
    let (key, created) = match existing {
        Some(key) if !rotate => (key, false),
        _ => {
            let key = SigningKey::generate();
            write_private(&private_key, &key)?;
            (key, true)
        }
    };
    let public = dir.join("signing.pub.pem");
    std::fs::write(&public, key.public_key().to_spki_pem())
        .with_context(|| format!("writing {}", public.display()))?;
    trust(&trusted_dir, key.public_key())?;
    let (trusted_files, trusted) = read_trusted(&trusted_dir)?;
    Ok(SigningKeys {
        private_key,
        key_id: key.key_id().as_str().to_owned(),
        created,
        trusted_files,
        trusted,
    })
}

fn read_bounded(path: &Path) -> Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .take(MAX_KEY_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    if text.len() as u64 > MAX_KEY_BYTES {
        bail!("{}: over {MAX_KEY_BYTES} bytes, not a key", path.display());
    }
    Ok(text)
}

fn read_private(path: &Path) -> Result<SigningKey> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by others (mode {:o}); run `chmod 600` on it, or remove it to make a new key",
            path.display(),
            mode & 0o777
        );
    }
    SigningKey::from_pkcs8_pem(&read_bounded(path)?)
        .with_context(|| format!("{}: not a usable signing key", path.display()))
}

/// Writes the new key beside the old one and renames it into place, so a
/// crash never leaves a half-written key.
fn write_private(path: &Path, key: &SigningKey) -> Result<()> {
    let fresh = path.with_extension("pem.new");
    let _ = std::fs::remove_file(&fresh);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&fresh)
        .with_context(|| format!("creating {}", fresh.display()))?;
    file.write_all(key.to_pkcs8_pem().as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", fresh.display()))?;
    std::fs::rename(&fresh, path).with_context(|| format!("replacing {}", path.display()))
}

fn trust(trusted_dir: &Path, key: &PublicKey) -> Result<()> {
    let path = trusted_dir.join(format!("{}.pub.pem", key.key_id().as_str()));
    if !path.exists() {
        std::fs::write(&path, key.to_spki_pem())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn read_trusted(trusted_dir: &Path) -> Result<(Vec<PathBuf>, TrustedKeys)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(trusted_dir)
        .with_context(|| format!("listing {}", trusted_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".pub.pem"))
        .collect();
    if files.len() > MAX_TRUSTED_KEYS {
        bail!(
            "{} holds {} keys, over the limit of {MAX_TRUSTED_KEYS}; remove the ones no result in flight needs",
            trusted_dir.display(),
            files.len()
        );
    }
    files.sort();
    let mut trusted = TrustedKeys::new();
    for file in &files {
        let key = PublicKey::from_spki_pem(&read_bounded(file)?)
            .with_context(|| format!("{}: not a public key", file.display()))?;
        trusted.insert(key);
    }
    Ok((files, trusted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_key_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let first = load_or_create(&keys, false).unwrap();
        assert!(first.created);
        assert_eq!(mode(&first.private_key), 0o600);
        assert_eq!(mode(&keys), 0o700);
        let again = load_or_create(&keys, false).unwrap();
        assert!(!again.created);
        assert_eq!(again.key_id, first.key_id);
        assert_eq!(again.trusted_files.len(), 1);
        assert_eq!(again.trusted.len(), 1);
    }

    #[test]
    fn a_rotation_keeps_the_previous_public_key_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), false).unwrap();
        let rotated = load_or_create(dir.path(), true).unwrap();
        assert!(rotated.created);
        assert_ne!(rotated.key_id, first.key_id);
        assert_eq!(rotated.trusted.len(), 2);
        let names: Vec<String> = rotated
            .trusted_files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&format!("{}.pub.pem", first.key_id)));
        assert!(names.contains(&format!("{}.pub.pem", rotated.key_id)));
        assert_eq!(mode(&rotated.private_key), 0o600);
    }

    #[test]
    fn a_private_key_readable_by_others_or_malformed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = load_or_create(dir.path(), false).unwrap();
        std::fs::set_permissions(&keys.private_key, std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let error = format!("{:#}", load_or_create(dir.path(), false).err().unwrap());
        assert!(
            error.contains("signing.pem is readable by others (mode 644)"),
            "{error}"
        );
        std::fs::set_permissions(&keys.private_key, std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::fs::write(&keys.private_key, "not a key").unwrap();
        let error = format!("{:#}", load_or_create(dir.path(), false).err().unwrap());
        assert!(
            error.contains("signing.pem: not a usable signing key"),
            "{error}"
        );
    }
}
