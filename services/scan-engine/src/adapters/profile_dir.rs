//! Reads a profile directory (`inspec.yml` + `controls/*.yml`) into a
//! [`ProfileSource`] for the pure loader.

use std::path::Path;

use crate::profile::{InputOverrides, Profile, ProfileError, ProfileSource, load_profile};

/// Reads the profile's files.
///
/// # Errors
/// When `inspec.yml` or the `controls` directory cannot be read.
pub fn read_profile_dir(dir: &Path) -> Result<ProfileSource, ProfileError> {
    let err = |what: String| ProfileError {
        problems: vec![crate::profile::ProfileProblem {
            location: None,
            message: what,
        }],
    };
    let metadata = std::fs::read_to_string(dir.join("inspec.yml"))
        .map_err(|e| err(format!("{}: cannot read inspec.yml: {e}", dir.display())))?;
    let controls_dir = dir.join("controls");
    let mut control_files = Vec::new();
    let entries = std::fs::read_dir(&controls_dir)
        .map_err(|e| err(format!("{}: cannot read: {e}", controls_dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| err(format!("{}: {e}", controls_dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())
            .map_err(|e| err(format!("{}: {e}", entry.path().display())))?;
        control_files.push((format!("controls/{name}"), text));
    }
    Ok(ProfileSource {
        metadata,
        control_files,
    })
}

/// Reads and loads a profile directory.
///
/// # Errors
/// IO problems and every validation problem, with `file:line:col`.
pub fn load_profile_dir(dir: &Path, overrides: &InputOverrides) -> Result<Profile, ProfileError> {
    load_profile(&read_profile_dir(dir)?, overrides)
}
