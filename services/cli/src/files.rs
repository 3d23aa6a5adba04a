//! File access with the two rules every command needs: untrusted inputs are
//! read with a size bound (never unbounded memory), and secrets are written
//! only with owner-only permissions.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Reads a file (or stdin for `-`), refusing more than `limit` bytes.
pub fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(limit as u64 + 1)
            .read_to_end(&mut buf)
            .context("reading standard input")?
    } else {
        let file = fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            bail!("{}: is a directory, expected a file", path.display());
        }
        if meta.len() > limit as u64 {
            bail!(
                "{}: {} bytes is over the {limit}-byte limit (--max-bytes raises it)",
                path.display(),
                meta.len()
            );
        }
        file.take(limit as u64 + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("{}", path.display()))?
    };
    if read > limit {
        bail!(
            "{}: input is over the {limit}-byte limit (--max-bytes raises it)",
            path.display()
        );
    }
    Ok(buf)
}

/// Reads a small text file such as a PEM key, as UTF-8.
pub fn read_text(path: &Path, limit: usize) -> Result<String> {
    let bytes = read_bounded(path, limit)?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))
}

/// Reads a secret text file (a private key or age identity); the copy in
/// memory is wiped when dropped.
pub fn read_secret(path: &Path, limit: usize) -> Result<zeroize::Zeroizing<String>> {
    let bytes = zeroize::Zeroizing::new(read_bounded(path, limit)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))?;
    Ok(zeroize::Zeroizing::new(text.to_owned()))
}

/// Warns when a secret file is readable by anyone but its owner; the key is
/// still used, because refusing would break read-only secret mounts that set
/// group bits, but the operator learns about the exposure.
pub fn warn_if_exposed(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} is accessible by group or others (mode {mode:03o}); chmod 600 it",
                path.display()
            );
        }
    }
}

/// Creates `path` with mode 0600, refusing to replace an existing file so a
/// key is never silently overwritten.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", path.display()))
}

/// Creates `path` (mode 0644), refusing to replace an existing file.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes command output to a file or stdout.
pub fn write_output(out: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match out {
        Some(path) => fs::write(path, bytes).with_context(|| format!("writing {}", path.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes).context("writing standard output")?;
            stdout.flush().context("writing standard output")
        }
    }
}
