//! Images: root filesystem trees built from a fixture recipe on top of
//! Debian's static busybox.
//!
//! A recipe names a base (`busybox`: the binary plus a link per applet and a
//! `/bin/sh`; `distroless`: nothing, not even a shell; `scratch`: empty),
//! accounts for `/etc/passwd`, `shadow` and `group`, and files with contents,
//! modes (setuid included), owners and symlinks. The image digest is a hash
//! of the recipe and the busybox binary, so `imageID` changes when either does.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Base layer of an image.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    /// busybox with every applet linked and `/bin/sh`.
    #[default]
    Busybox,
    /// No shell and no applets; files come only from the recipe.
    Distroless,
    /// Nothing at all.
    Scratch,
}

/// An `/etc/passwd` (+ `/etc/shadow`) entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Home directory.
    #[serde(default = "default_home")]
    pub home: String,
    /// Login shell.
    #[serde(default = "default_shell")]
    pub shell: String,
    /// Password hash for `/etc/shadow` (`!` = locked, `""` = empty password).
    #[serde(default = "default_password")]
    pub password: String,
}

fn default_home() -> String {
    "/".into()
}
fn default_shell() -> String {
    "/sbin/nologin".into()
}
fn default_password() -> String {
    "!".into()
}

/// An `/etc/group` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// gid.
    pub gid: u32,
    /// Member logins.
    #[serde(default)]
    pub members: Vec<String>,
}

/// One file, directory or symlink of the recipe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileEntry {
    /// Absolute path inside the image.
    pub path: String,
    /// Text contents (regular file).
    #[serde(default)]
    pub content: Option<String>,
    /// Copy of the busybox binary (e.g. a setuid helper or a non-shell main).
    #[serde(default)]
    pub busybox: bool,
    /// Symlink target.
    #[serde(default)]
    pub symlink: Option<String>,
    /// Directory.
    #[serde(default)]
    pub dir: bool,
    /// Octal mode as a string, e.g. `"4755"`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Owner uid.
    #[serde(default)]
    pub uid: u32,
    /// Owner gid.
    #[serde(default)]
    pub gid: u32,
}

/// An image recipe from a fixture.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageSpec {
    /// Reference pods use, e.g. `kubesim.local/shell:1.0`.
    pub name: String,
    /// Base layer.
    #[serde(default)]
    pub base: Base,
    /// Default entrypoint.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// Default arguments.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// Default `uid[:gid]` (as an image's USER).
    #[serde(default)]
    pub user: Option<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Accounts (root is added when absent).
    #[serde(default)]
    pub users: Vec<UserEntry>,
    /// Groups (root is added when absent).
    #[serde(default)]
    pub groups: Vec<GroupEntry>,
    /// Files.
    #[serde(default)]
    pub files: Vec<FileEntry>,
    /// A prebuilt root filesystem used as the image as-is (base, accounts
    /// and files must then be empty): lets tests run scanners against
    /// trees built by other fixtures, e.g. the scan engine's ground truth.
    #[serde(default)]
    pub root_dir: Option<PathBuf>,
    /// The digest to report for a `rootDir` image (`sha256:` and 64 hex
    /// digits) instead of the recipe's hash: lets a pod run "the image a
    /// registry holds", its root being that image unpacked, so scans of the
    /// pod and of the pushed digest name the same image.
    #[serde(default)]
    pub digest: Option<String>,
}

/// A built image.
#[derive(Debug, Clone)]
pub struct Image {
    /// The recipe.
    pub spec: ImageSpec,
    /// Root directory (the read-only lower layer).
    pub root: PathBuf,
    /// `sha256:<hex>`.
    pub digest: String,
}

impl Image {
    /// `imageID` as the kubelet reports it (`repo@sha256:...`).
    pub fn image_id(&self) -> String {
        let repo = self
            .spec
            .name
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map_or(self.spec.name.as_str(), |(r, _)| r);
        format!("{repo}@{}", self.digest)
    }

    /// Default uid and gid from the recipe's `user`.
    pub fn default_user(&self) -> (u32, u32) {
        let Some(u) = &self.spec.user else {
            return (0, 0);
        };
        let (a, b) = u.split_once(':').unwrap_or((u.as_str(), ""));
        let uid = a
            .parse()
            .ok()
            .or_else(|| self.spec.users.iter().find(|x| x.name == a).map(|x| x.uid));
        let uid = uid.unwrap_or(0);
        let gid = b.parse().ok().unwrap_or_else(|| {
            self.spec
                .users
                .iter()
                .find(|x| x.uid == uid)
                .map_or(uid, |x| x.gid)
        });
        (uid, gid)
    }
}

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A recipe problem.
    #[error("image {image}: {message}")]
    Recipe {
        /// Image name.
        image: String,
        /// What is wrong.
        message: String,
    },
    /// Filesystem failure.
    #[error("image {image}: {path}: {source}")]
    Io {
        /// Image name.
        image: String,
        /// Path involved.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Joins an absolute in-image path under `root`, refusing `..` escapes.
pub fn inside(root: &Path, path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return None;
    }
    let mut out = root.to_path_buf();
    for c in p.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => out.push(n),
            _ => return None,
        }
    }
    Some(out)
}

/// Resolves `path` inside `root`, following symlinks as the container would.
/// Returns the host path of the final target, if it exists.
pub fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let mut parts: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(str::to_string)
        .collect();
    parts.reverse();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = parts.pop() {
        if part == ".." {
            cur.pop();
            continue;
        }
        cur.push(part);
        let host = root.join(cur.join("/"));
        let meta = std::fs::symlink_metadata(&host).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&host).ok()?;
            let t = target.to_string_lossy().to_string();
            cur.pop();
            if t.starts_with('/') {
                cur.clear();
            }
            for p in t.split('/').filter(|s| !s.is_empty() && *s != ".").rev() {
                parts.push(p.to_string());
            }
        }
    }
    let host = root.join(cur.join("/"));
    host.exists().then_some(host)
}

fn io(image: &str, path: &Path) -> impl FnOnce(std::io::Error) -> ImageError {
    let image = image.to_string();
    let path = path.display().to_string();
    move |source| ImageError::Io {
        image,
        path,
        source,
    }
}

/// Builds `spec` under `dir` (which must not exist yet).
pub fn build(spec: &ImageSpec, dir: &Path, applets: &[String]) -> Result<Image, ImageError> {
    let name = spec.name.as_str();
    let recipe = |message: String| ImageError::Recipe {
        image: name.to_string(),
        message,
    };
    if let Some(root) = &spec.root_dir {
        if !spec.users.is_empty() || !spec.groups.is_empty() || !spec.files.is_empty() {
            return Err(recipe(
                "rootDir images take no users, groups or files".into(),
            ));
        }
        if !root.join("proc").is_dir() {
            return Err(recipe(format!(
                "rootDir {} has no /proc directory to mount on",
                root.display()
            )));
        }
        let digest = match &spec.digest {
            Some(d) => {
                let hex = d.strip_prefix("sha256:").unwrap_or_default();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(recipe(format!(
                        "digest {d:?} is not sha256: and 64 hex digits"
                    )));
                }
                d.to_ascii_lowercase()
            }
            None => {
                let mut hasher = Sha256::new();
                hasher.update(serde_json::to_vec(spec).unwrap_or_default());
                format!("sha256:{}", hex::encode(hasher.finalize()))
            }
        };
        return Ok(Image {
            spec: spec.clone(),
            root: root.clone(),
            digest,
        });
    }
    if spec.digest.is_some() {
        return Err(recipe("digest is only for rootDir images".into()));
    }
    std::fs::create_dir_all(dir).map_err(io(name, dir))?;
    for d in [
        "proc", "dev", "tmp", "etc", "root", "bin", "sbin", "usr/bin", "usr/sbin",
    ] {
        if spec.base == Base::Scratch && d != "proc" && d != "dev" {
            continue;
        }
        let p = dir.join(d);
        std::fs::create_dir_all(&p).map_err(io(name, &p))?;
    }
    let tmp = dir.join("tmp");
    if tmp.exists() {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
            .map_err(io(name, &tmp))?;
    }
    let busybox = std::fs::read(BUSYBOX).map_err(io(name, Path::new(BUSYBOX)))?;
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(spec).unwrap_or_default());
    hasher.update(Sha256::digest(&busybox));
    if spec.base == Base::Busybox {
        let bb = dir.join("bin/busybox");
        std::fs::write(&bb, &busybox).map_err(io(name, &bb))?;
        std::fs::set_permissions(&bb, std::fs::Permissions::from_mode(0o755))
            .map_err(io(name, &bb))?;
        for a in applets {
            let link = dir.join("bin").join(a);
            if !link.exists() {
                std::os::unix::fs::symlink("busybox", &link).map_err(io(name, &link))?;
            }
        }
    }
    if spec.base != Base::Scratch {
        let mut users = spec.users.clone();
        if !users.iter().any(|u| u.uid == 0) {
            let shell = if spec.base == Base::Busybox {
                "/bin/sh"
            } else {
                "/sbin/nologin"
            };
            users.insert(
                0,
                UserEntry {
                    name: "root".into(),
                    uid: 0,
                    gid: 0,
                    home: "/root".into(),
                    shell: shell.into(),
                    password: "*".into(),
                },
            );
        }
        let mut groups = spec.groups.clone();
        if !groups.iter().any(|g| g.gid == 0) {
            groups.insert(
                0,
                GroupEntry {
                    name: "root".into(),
                    gid: 0,
                    members: vec![],
                },
            );
        }
        let passwd: String = users
            .iter()
            .map(|u| {
                format!(
                    "{}:x:{}:{}:{}:{}:{}\n",
                    u.name, u.uid, u.gid, u.name, u.home, u.shell
                )
            })
            .collect();
        let shadow: String = users
            .iter()
            .map(|u| format!("{}:{}:19000:0:99999:7:::\n", u.name, u.password))
            .collect();
        let group: String = groups
            .iter()
            .map(|g| format!("{}:x:{}:{}\n", g.name, g.gid, g.members.join(",")))
            .collect();
        for (file, text, mode) in [
            ("etc/passwd", passwd, 0o644),
            ("etc/shadow", shadow, 0o640),
            ("etc/group", group, 0o644),
        ] {
            let p = dir.join(file);
            std::fs::write(&p, text).map_err(io(name, &p))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                .map_err(io(name, &p))?;
        }
    }
    for f in &spec.files {
        let target = inside(dir, &f.path).ok_or_else(|| {
            recipe(format!(
                "file path {:?} must be absolute without '..'",
                f.path
            ))
        })?;
        let kinds = [f.content.is_some(), f.busybox, f.symlink.is_some(), f.dir]
            .iter()
            .filter(|x| **x)
            .count();
        if kinds > 1 {
            return Err(recipe(format!(
                "file {:?}: set only one of content, busybox, symlink, dir",
                f.path
            )));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(name, parent))?;
        }
        if target.symlink_metadata().is_ok() && !target.is_dir() {
            std::fs::remove_file(&target).map_err(io(name, &target))?;
        }
        if let Some(link) = &f.symlink {
            std::os::unix::fs::symlink(link, &target).map_err(io(name, &target))?;
            std::os::unix::fs::lchown(&target, Some(f.uid), Some(f.gid))
                .map_err(io(name, &target))?;
            continue;
        }
        let default_mode = if f.dir || f.busybox { 0o755 } else { 0o644 };
        if f.dir {
            std::fs::create_dir_all(&target).map_err(io(name, &target))?;
        } else if f.busybox {
            std::fs::write(&target, &busybox).map_err(io(name, &target))?;
        } else {
            std::fs::write(&target, f.content.as_deref().unwrap_or(""))
                .map_err(io(name, &target))?;
        }
        let mode = match &f.mode {
            Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .map_err(|_| recipe(format!("file {:?}: mode {m:?} is not octal", f.path)))?,
            None => default_mode,
        };
        // chown first: it clears setuid bits, so the mode goes on last.
        std::os::unix::fs::chown(&target, Some(f.uid), Some(f.gid)).map_err(io(name, &target))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
            .map_err(io(name, &target))?;
    }
    Ok(Image {
        spec: spec.clone(),
        root: dir.to_path_buf(),
        digest: format!("sha256:{}", hex::encode(hasher.finalize())),
    })
}

/// The applet names busybox offers (`busybox --list`).
pub fn applets() -> std::io::Result<Vec<String>> {
    let out = std::process::Command::new(BUSYBOX).arg("--list").output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_relative_and_absolute_links_inside_root() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        std::fs::create_dir_all(root.join("bin")).expect("mkdir");
        std::fs::write(root.join("bin/busybox"), b"x").expect("write");
        std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("link");
        std::os::unix::fs::symlink("/bin/sh", root.join("bin/ash")).expect("link");
        assert_eq!(resolve(root, "/bin/ash"), Some(root.join("bin/busybox")));
        assert_eq!(resolve(root, "/bin/nope"), None);
        assert!(inside(root, "/../etc").is_none());
    }

    #[test]
    fn a_root_dir_image_reports_the_digest_it_is_given() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("proc")).expect("mkdir");
        let spec = |digest: Option<&str>, root: bool| -> ImageSpec {
            serde_json::from_value(serde_json::json!({
                "name": "registry.test/web:v1",
                "rootDir": root.then(|| d.path()),
                "digest": digest,
            }))
            .expect("spec")
        };
        let pushed = format!("sha256:{}", "AB".repeat(32));
        let image = build(&spec(Some(&pushed), true), &d.path().join("x"), &[]).expect("build");
        assert_eq!(image.digest, pushed.to_ascii_lowercase());
        assert_eq!(
            image.image_id(),
            format!("registry.test/web@sha256:{}", "ab".repeat(32))
        );
        let bad = build(&spec(Some("sha256:abc"), true), &d.path().join("y"), &[]);
        assert!(bad.unwrap_err().to_string().contains("64 hex digits"));
        let no_root = build(&spec(Some(&pushed), false), &d.path().join("z"), &[]);
        assert!(
            no_root
                .unwrap_err()
                .to_string()
                .contains("only for rootDir images")
        );
    }
}
