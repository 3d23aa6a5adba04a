//! Reads a profile directory into a [`ProfileSource`] for the pure loader:
//! `inspec.yml` plus `controls/*.yml` (a YAML profile) or `controls/*.rb`
//! and `libraries/*.rb` (an InSpec profile, run unchanged).

use std::path::Path;

use crate::profile::{
    InputOverrides, Profile, ProfileError, ProfileProblem, ProfileSource, load_profile,
};

/// The largest profile file read (a profile is code, not data).
const MAX_FILE_BYTES: u64 = 4 << 20;

fn err(what: String) -> ProfileError {
    ProfileError {
        problems: vec![ProfileProblem {
            location: None,
            message: what,
        }],
    }
}

fn read_text(path: &Path) -> Result<String, ProfileError> {
    let meta = std::fs::metadata(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!(
            "{}: {} bytes, larger than the {MAX_FILE_BYTES}-byte limit for a profile file",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| err(format!("{}: {e}", path.display())))
}

/// `(relative path, text)` of the files in `dir/sub` whose names end in one of `exts`.
fn files_in(
    dir: &Path,
    sub: &str,
    exts: &[&str],
    required: bool,
) -> Result<Vec<(String, String)>, ProfileError> {
    let d = dir.join(sub);
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(format!("{}: cannot read: {e}", d.display()))),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| err(format!("{}: {e}", d.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !exts.iter().any(|x| name.ends_with(x)) {
            continue;
        }
        out.push((format!("{sub}/{name}"), read_text(&entry.path())?));
    }
    Ok(out)
}

/// Reads the profile's files.
///
/// # Errors
/// When `inspec.yml` or the `controls` directory cannot be read, or a file
/// is larger than 4 MiB.
pub fn read_profile_dir(dir: &Path) -> Result<ProfileSource, ProfileError> {
    let metadata = read_text(&dir.join("inspec.yml"))
        .map_err(|e| err(format!("{}: cannot read inspec.yml: {e}", dir.display())))?;
    Ok(ProfileSource {
        metadata,
        control_files: files_in(dir, "controls", &[".yml", ".yaml", ".rb"], true)?,
        library_files: files_in(dir, "libraries", &[".rb"], false)?,
    })
}

/// Reads and loads a profile directory (YAML or InSpec).
///
/// # Errors
/// IO problems and every validation problem, with `file:line:col`.
pub fn load_profile_dir(dir: &Path, overrides: &InputOverrides) -> Result<Profile, ProfileError> {
    load_profile(&read_profile_dir(dir)?, overrides)
}
