//! One Deployment's container as its process sees it: the files its
//! volumes mount, its arguments and its variables, under a temporary root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use crate::{OperatorObjects, RenderedOverlay};

/// Paths inside the image rather than in a volume, and where the
/// checkout holds the same files (scripts/lib/oci-image.sh copies them).
const IMAGE_FILES: &[(&str, &str)] = &[("/usr/share/scanfleet/profiles", "profiles")];

/// The value the pod's `metadata.name` field reference gives.
const POD_NAME: &str = "scanfleet-worker-6c9f7d8b5-x2x4z";

/// A container laid out under a temporary root.
pub struct PodView {
    root: TempDir,
    /// Absolute paths in the pod, longest first, and where they are here.
    paths: Vec<(String, PathBuf)>,
    /// The container's command and arguments, paths rewritten.
    pub args: Vec<String>,
    /// The container's variables, paths rewritten.
    pub env: Vec<(String, String)>,
}

impl PodView {
    /// Lays out the first container of the Deployment `name`.
    ///
    /// # Panics
    /// When the Deployment is missing, or a volume mounts an object that
    /// neither the overlay nor the operator (docs/install.md) provides, or
    /// uses a form this test does not model (it says which).
    pub fn lay_out(overlay: &RenderedOverlay, name: &str, operator: &OperatorObjects) -> Self {
        let deployment = overlay
            .object("Deployment", name)
            .unwrap_or_else(|| panic!("overlay {} renders no Deployment {name}", overlay.name));
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let root = tempfile::tempdir().expect("temp dir");
        let mut view = Self {
            paths: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            root,
        };
        let mut contents = Vec::new();
        for mount in array(&container["volumeMounts"]) {
            let at = text(&mount["mountPath"]);
            assert!(
                mount.get("subPath").is_none(),
                "{name}: subPath mounts are not modelled"
            );
            let volume = array(&pod["volumes"])
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap_or_else(|| panic!("{name}: no volume {}", mount["name"]));
            contents.push((at.to_owned(), volume_files(overlay, operator, name, volume)));
            view.paths.push((at.to_owned(), view.under_root(at)));
        }
        let checkout = scanfleet_test_harness::repo_root();
        for (at, local) in IMAGE_FILES {
            view.paths.push(((*at).to_owned(), checkout.join(local)));
        }
        view.paths
            .sort_by_key(|(at, _)| std::cmp::Reverse(at.len()));
        for (at, files) in contents {
            view.write_volume(&at, files);
        }
        let argv = array(&container["command"])
            .iter()
            .chain(array(&container["args"]))
            .map(|a| view.rewrite(text(a)))
            .collect();
        view.args = argv;
        view.env = array(&container["env"])
            .iter()
            .map(|e| {
                (
                    text(&e["name"]).to_owned(),
                    view.rewrite(&variable(name, e)),
                )
            })
            .collect();
        view
    }

    /// The temporary root the pod's paths are under.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `text` with every pod path replaced by where it is here, in one
    /// pass (a replaced path may contain another mount's path).
    pub fn rewrite(&self, text: &str) -> String {
        let mut marked = text.to_owned();
        for (i, (at, _)) in self.paths.iter().enumerate() {
            marked = marked.replace(at.as_str(), &format!("\u{0}{i}\u{0}"));
        }
        for (i, (_, here)) in self.paths.iter().enumerate() {
            marked = marked.replace(&format!("\u{0}{i}\u{0}"), &here.display().to_string());
        }
        marked
    }

    fn under_root(&self, at: &str) -> PathBuf {
        self.root.path().join(at.trim_start_matches('/'))
    }

    fn write_volume(&self, at: &str, files: Option<Volume>) {
        let dir = self.under_root(at);
        std::fs::create_dir_all(&dir).expect("mount point");
        let Some(volume) = files else { return };
        for (key, bytes) in volume.files {
            let path = dir.join(&key);
            std::fs::create_dir_all(path.parent().expect("a file in the volume")).unwrap();
            let bytes = if volume.is_configuration {
                self.rewrite(&String::from_utf8(bytes).expect("ConfigMap data is text"))
                    .into_bytes()
            } else {
                bytes
            };
            scanfleet_test_harness::write_private(&path, &bytes);
        }
    }
}

/// The files a volume shows, by path inside the volume.
struct Volume {
    files: BTreeMap<String, Vec<u8>>,
    /// The overlay's own ConfigMap (configuration whose paths are the pod's).
    is_configuration: bool,
}

fn volume_files(
    overlay: &RenderedOverlay,
    operator: &OperatorObjects,
    deployment: &str,
    volume: &Value,
) -> Option<Volume> {
    if volume.get("emptyDir").is_some() || volume.get("persistentVolumeClaim").is_some() {
        return None;
    }
    let (source, object) = if let Some(map) = volume.get("configMap") {
        (map, text(&map["name"]))
    } else if let Some(secret) = volume.get("secret") {
        (secret, text(&secret["secretName"]))
    } else {
        panic!(
            "{deployment}: volume {} has a source this test does not model",
            volume["name"]
        );
    };
    let (mut files, is_configuration) = match overlay.object("ConfigMap", object) {
        Some(map) => (config_map_files(map), true),
        None => match operator.get(object) {
            Some(files) => (files.clone(), false),
            None => panic!(
                "{deployment}: volume {} mounts {object}, which neither the overlay nor docs/install.md creates",
                volume["name"]
            ),
        },
    };
    if let Some(items) = source.get("items") {
        files = array(items)
            .iter()
            .map(|item| {
                let key = text(&item["key"]);
                let bytes = files
                    .get(key)
                    .unwrap_or_else(|| panic!("{deployment}: {object} has no key {key}"));
                (text(&item["path"]).to_owned(), bytes.clone())
            })
            .collect();
    }
    Some(Volume {
        files,
        is_configuration,
    })
}

fn config_map_files(map: &Value) -> BTreeMap<String, Vec<u8>> {
    map["data"]
        .as_object()
        .map(|data| {
            data.iter()
                .map(|(k, v)| (k.clone(), text(v).as_bytes().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

fn variable(deployment: &str, env: &Value) -> String {
    if let Some(value) = env.get("value") {
        return text(value).to_owned();
    }
    match env["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
        Some("metadata.name") => POD_NAME.to_owned(),
        _ => panic!(
            "{deployment}: variable {} has a source this test does not model",
            env["name"]
        ),
    }
}

/// The long flags that the variables `env` set, for a parser built from
/// `command` (clap reads the variables from the process; a test must not
/// change its own environment, so each becomes its flag).
///
/// # Errors
/// Each variable no argument of `command` reads.
pub fn flags_for_variables(
    command: &clap::Command,
    env: &[(String, String)],
) -> Result<Vec<String>, Vec<String>> {
    let mut flags = Vec::new();
    let mut unread = Vec::new();
    for (name, value) in env {
        let arg = command
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == name.as_str()));
        match arg.and_then(|a| a.get_long()) {
            Some(long) => flags.push(format!("--{long}={value}")),
            None => unread.push(format!(
                "{name} is set, but {} reads no such variable",
                command.get_name()
            )),
        }
    }
    if unread.is_empty() {
        Ok(flags)
    } else {
        Err(unread)
    }
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, found {value}"))
}
