//! A directory of profiles (`<root>/<name>/inspec.yml`…) that answers "is
//! this the profile, edition and inputs a scan asks for?".
//!
//! Intake asks it before queueing (so a submission naming an unknown
//! profile, another edition or an input the profile does not declare is
//! refused with the field named, instead of failing a scan later) and the
//! worker asks it again before scanning (the bus is not trusted to carry
//! only what intake accepted). One rule for both, here.
//!
//! Profile files are read once per name and kept: profiles are mounted
//! read-only and change with a rollout, not under a running process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::adapters::profile_dir::read_profile_dir;
use crate::profile::{InputOverrides, Profile, ProfileError, ProfileSource, load_profile};

/// Which edition of a profile is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition<'a> {
    /// A released version, compared with `inspec.yml`'s `version`.
    Version(&'a str),
    /// The content digest (`sha256:…` or bare hex) of the profile's files.
    Digest(&'a str),
}

/// Why a profile request cannot be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogError {
    /// No such profile directory, or it cannot be read.
    #[error("profile {name}: {detail}")]
    Unknown {
        /// The profile name.
        name: String,
        /// What reading it said.
        detail: String,
    },
    /// The profile itself does not load (a broken profile, not the caller's
    /// fault).
    #[error("profile {name} does not load: {error}")]
    Broken {
        /// The profile name.
        name: String,
        /// Every problem, with `file:line:col`.
        error: ProfileError,
    },
    /// The catalog holds another edition.
    #[error(
        "profile {name} {wanted} requested; this catalog has version {version}, sha256:{sha256}"
    )]
    OtherEdition {
        /// The profile name.
        name: String,
        /// What was asked for.
        wanted: String,
        /// The version held.
        version: String,
        /// The digest held.
        sha256: String,
    },
    /// The inputs do not fit the profile (unknown names, unusable values).
    #[error("profile {name}: {error}")]
    Inputs {
        /// The profile name.
        name: String,
        /// Every problem.
        error: ProfileError,
    },
}

/// Profiles under one root directory.
#[derive(Debug)]
pub struct ProfileCatalog {
    root: PathBuf,
    sources: Mutex<HashMap<String, Arc<ProfileSource>>>,
}

impl ProfileCatalog {
    /// A catalog over `root`; nothing is read until asked.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// The catalog's directory.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// The profile's files. `name` must already be a plain name (the intent
    /// domain's `ProfileName`): it is joined to the root as one component.
    ///
    /// # Errors
    /// [`CatalogError::Unknown`].
    pub fn source(&self, name: &str) -> Result<Arc<ProfileSource>, CatalogError> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains(['/', '\\'])
            && name != "..";
        if !plain {
            return Err(CatalogError::Unknown {
                name: name.into(),
                detail: "not a plain profile name".into(),
            });
        }
        let mut cache = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cache.get(name) {
            return Ok(s.clone());
        }
        let source = Arc::new(read_profile_dir(&self.root.join(name)).map_err(|e| {
            CatalogError::Unknown {
                name: name.into(),
                detail: e.to_string(),
            }
        })?);
        cache.insert(name.to_owned(), source.clone());
        Ok(source)
    }

    /// Loads `name` with `inputs` and checks it is the `edition` asked for.
    ///
    /// # Errors
    /// [`CatalogError`], telling a broken profile apart from inputs that do
    /// not fit it.
    pub fn load(
        &self,
        name: &str,
        edition: Edition<'_>,
        inputs: &InputOverrides,
    ) -> Result<Profile, CatalogError> {
        let source = self.source(name)?;
        let profile = match load_profile(&source, inputs) {
            Ok(p) => p,
            Err(error) if inputs.is_empty() => {
                return Err(CatalogError::Broken {
                    name: name.into(),
                    error,
                });
            }
            Err(error) => {
                // Without the overrides, is it the profile or the inputs?
                return Err(match load_profile(&source, &InputOverrides::new()) {
                    Ok(_) => CatalogError::Inputs {
                        name: name.into(),
                        error,
                    },
                    Err(error) => CatalogError::Broken {
                        name: name.into(),
                        error,
                    },
                });
            }
        };
        let version = profile.metadata.version.clone().unwrap_or_default();
        let matches = match edition {
            Edition::Version(v) => v == version,
            Edition::Digest(d) => d.strip_prefix("sha256:").unwrap_or(d) == profile.sha256,
        };
        if matches {
            Ok(profile)
        } else {
            Err(CatalogError::OtherEdition {
                name: name.into(),
                wanted: match edition {
                    Edition::Version(v) => format!("version {v}"),
                    Edition::Digest(d) => format!("with digest {d}"),
                },
                version,
                sha256: profile.sha256,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> (tempfile::TempDir, ProfileCatalog) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tiny");
        std::fs::create_dir_all(p.join("controls")).unwrap();
        std::fs::write(
            p.join("inspec.yml"),
            "name: tiny\nversion: 1.2.0\ninputs:\n  - name: max_uid\n    value: '1000'\n",
        )
        .unwrap();
        std::fs::write(
            p.join("controls/c.yml"),
            "controls:\n  - id: c-1\n    impact: 0.5\n    title: passwd exists\n    desc: The account database exists.\n    checks:\n      - file:\n          path: /etc/passwd\n          exists: true\n",
        )
        .unwrap();
        let catalog = ProfileCatalog::new(dir.path().to_path_buf());
        (dir, catalog)
    }

    #[test]
    fn editions_inputs_and_names_are_checked() {
        let (_dir, catalog) = catalog();
        let ok = catalog
            .load("tiny", Edition::Version("1.2.0"), &InputOverrides::new())
            .unwrap();
        let by_digest = format!("sha256:{}", ok.sha256);
        catalog
            .load("tiny", Edition::Digest(&by_digest), &InputOverrides::new())
            .unwrap();
        let other = catalog
            .load("tiny", Edition::Version("9.9.9"), &InputOverrides::new())
            .unwrap_err();
        assert!(
            matches!(other, CatalogError::OtherEdition { .. }),
            "{other}"
        );
        let unknown_input: InputOverrides = [("no_such_input".to_owned(), "v".to_owned())].into();
        let err = catalog
            .load("tiny", Edition::Version("1.2.0"), &unknown_input)
            .unwrap_err();
        assert!(
            matches!(&err, CatalogError::Inputs { .. })
                && err.to_string().contains("no_such_input"),
            "{err}"
        );
        for bad in ["../tiny", ".", "..", "a/b", ""] {
            assert!(
                matches!(catalog.source(bad), Err(CatalogError::Unknown { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            catalog.source("missing"),
            Err(CatalogError::Unknown { .. })
        ));
    }
}
