//! Applies layers, streamed, into a private root: the only code that
//! writes an image's files.
//!
//! Every entry is planned by [`crate::layer_entry::plan`] first; this
//! module only carries plans out, and resolves every parent directory with
//! `lstat`, never through a symlink, so no entry can write outside the
//! root whatever earlier entries created (a directory found real is not
//! walked again until something is removed). Files are created with
//! `O_EXCL | O_NOFOLLOW`; special bits and ownership go to the recorded
//! metadata, never to the disk. Tar extension records (GNU long names, PAX)
//! are read here with caps instead of by the tar crate, which would read
//! them whole into memory whatever their size.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use scanfleet_scan_engine::adapters::recorded_metadata::{RecordedEntry, RecordedMetadata};
use tar::EntryType;

use crate::layer_entry::{
    EntryHeader, EntryKind, EntryPlan, EntryRefusal, InnerPath, Node, UnpackBudget, UnpackLimits,
    disk_mode, plan,
};
use crate::manifest::Compression;

/// Longest PAX extension record accepted.
const MAX_PAX_BYTES: u64 = 64 * 1024;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// Why a layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The entry's header broke a rule.
    #[error("entry {path:?}: {refusal}")]
    Refused {
        /// The archive path.
        path: String,
        /// Which rule.
        refusal: EntryRefusal,
    },
    /// Writing the entry would go through a symlink.
    #[error(
        "entry {path:?}: parent {parent:?} is a symlink; writing through it could escape the image root"
    )]
    ThroughSymlink {
        /// The archive path.
        path: String,
        /// The symlink in its way.
        parent: String,
    },
    /// Something on disk was not what the entry needs.
    #[error("entry {path:?}: {problem}")]
    Conflict {
        /// The archive path.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The stream ended early or is not a tar (gzip) stream.
    #[error("layer stream is truncated or corrupt: {0}")]
    Corrupt(String),
    /// The disk refused.
    #[error("writing {path:?}: {error}")]
    Io {
        /// The archive path.
        path: String,
        /// The error.
        error: io::Error,
    },
}

/// Applies layers in order into one root, keeping the claimed metadata.
pub struct Unpacker {
    root: PathBuf,
    limits: UnpackLimits,
    budget: UnpackBudget,
    recorded: RecordedMetadata,
    /// Parent directories already walked with `lstat` and found (or made)
    /// real directories. Only this unpacker writes under the root, and
    /// everything that could turn one into something else removes first,
    /// which empties this; so a hit needs no second walk.
    known_dirs: HashSet<Vec<Vec<u8>>>,
}

/// Extension records waiting for the entry they describe.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Unpacker {
    /// An unpacker into `root`, an existing empty private directory.
    pub fn new(root: &Path, limits: UnpackLimits) -> Self {
        Self {
            root: root.to_path_buf(),
            limits,
            budget: UnpackBudget::default(),
            recorded: RecordedMetadata::new(),
            known_dirs: HashSet::new(),
        }
    }

    /// What the image used of its caps.
    pub fn budget(&self) -> UnpackBudget {
        self.budget
    }

    /// The claimed metadata of everything unpacked.
    pub fn into_recorded(self) -> RecordedMetadata {
        self.recorded
    }

    /// Applies one layer read from `reader`.
    ///
    /// # Errors
    /// [`LayerError`] for the first entry that cannot be applied; the root
    /// is then half-written and must be discarded.
    pub fn apply<R: Read>(
        &mut self,
        reader: R,
        compression: Compression,
    ) -> Result<(), LayerError> {
        let reader: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(reader),
            Compression::Gzip => Box::new(GzDecoder::new(reader)),
        };
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(corrupt)?.raw(true);
        let mut created = HashSet::new();
        let mut pending = Pending::default();
        for entry in entries {
            let mut entry = entry.map_err(corrupt)?;
            let kind = entry.header().entry_type();
            let size = entry.header().entry_size().map_err(corrupt)?;
            let path = || String::from_utf8_lossy(&entry_path_raw(&entry)).into_owned();
            match kind {
                EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader => {
                    let cap = if kind == EntryType::XHeader {
                        MAX_PAX_BYTES
                    } else {
                        self.limits.max_path_bytes as u64 + 1
                    };
                    if size > cap {
                        return Err(LayerError::Refused {
                            path: path(),
                            refusal: EntryRefusal::PathTooLong(size as usize, cap as usize),
                        });
                    }
                    let mut data = Vec::with_capacity(size as usize);
                    entry.read_to_end(&mut data).map_err(corrupt)?;
                    if (data.len() as u64) < size {
                        return Err(LayerError::Corrupt("extension record cut short".into()));
                    }
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    match kind {
                        EntryType::GNULongName => pending.long_name = Some(data),
                        EntryType::GNULongLink => pending.long_link = Some(data),
                        _ => pending.pax = Some(data),
                    }
                    continue;
                }
                EntryType::XGlobalHeader => continue,
                _ => {}
            }
            let header = header_of(&entry, std::mem::take(&mut pending))?;
            let shown = String::from_utf8_lossy(&header.path).into_owned();
            let step = plan(&header, &self.limits, &mut self.budget).map_err(|refusal| {
                LayerError::Refused {
                    path: shown.clone(),
                    refusal,
                }
            })?;
            self.carry_out(step, &header, &mut entry, &mut created)
                .map_err(|e| e.at(&shown))?;
        }
        Ok(())
    }

    fn carry_out(
        &mut self,
        step: EntryPlan,
        header: &EntryHeader,
        data: &mut impl Read,
        created: &mut HashSet<InnerPath>,
    ) -> Result<(), Failure> {
        match step {
            EntryPlan::Root => Ok(()),
            EntryPlan::Whiteout(victim) => {
                if let Some(dir) = self.existing_dir(victim.parent())? {
                    self.remove(&dir.join(host_name(victim.components().last())))?;
                }
                self.recorded.remove_tree(&victim.absolute());
                Ok(())
            }
            EntryPlan::Opaque(dir_comps) => {
                let Some(dir) = self.existing_dir(&dir_comps)? else {
                    return Ok(());
                };
                for child in fs::read_dir(&dir).map_err(Failure::Io)? {
                    let child = child.map_err(Failure::Io)?;
                    let mut comps = dir_comps.clone();
                    comps.push(child.file_name().as_bytes().to_vec());
                    let inner = inner(comps);
                    if !created.contains(&inner) {
                        self.remove(&child.path())?;
                        self.recorded.remove_tree(&inner.absolute());
                    }
                }
                Ok(())
            }
            EntryPlan::Create(path, node) => {
                self.create(&path, &node, header, data)?;
                created.insert(path);
                Ok(())
            }
        }
    }

    fn create(
        &mut self,
        path: &InnerPath,
        node: &Node,
        h: &EntryHeader,
        data: &mut impl Read,
    ) -> Result<(), Failure> {
        let dir = self.make_parents(path.parent())?;
        let host = dir.join(host_name(path.components().last()));
        let claimed = h.mode & 0o7777;
        let mut record = RecordedEntry {
            mode: claimed,
            uid: h.uid,
            gid: h.gid,
        };
        // A regular file is created first and anything in its way removed
        // only when the create says so: one syscall for the usual case.
        if !matches!(node, Node::File(_)) {
            match fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() && matches!(node, Node::Dir) => {}
                Ok(_) => self.replace(&host, path)?,
                Err(_) => {}
            }
        }
        match node {
            Node::Dir => {
                if !host.is_dir() {
                    fs::create_dir(&host).map_err(Failure::Io)?;
                }
                fs::set_permissions(&host, fs::Permissions::from_mode(disk_mode(node, claimed)))
                    .map_err(Failure::Io)?;
                record.mode |= S_IFDIR;
            }
            Node::File(size) => {
                let mut f = match new_file(&host) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        self.replace(&host, path)?;
                        new_file(&host)
                    }
                    other => other,
                }
                .map_err(Failure::Io)?;
                let copied = io::copy(data, &mut f).map_err(|e| Failure::Corrupt(e.to_string()))?;
                if copied != *size {
                    return Err(Failure::Corrupt(format!(
                        "file data ends after {copied} of {size} bytes"
                    )));
                }
                f.set_permissions(fs::Permissions::from_mode(disk_mode(node, claimed)))
                    .map_err(Failure::Io)?;
                record.mode |= S_IFREG;
            }
            Node::Symlink(target) => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &host)
                    .map_err(Failure::Io)?;
                record.mode |= S_IFLNK;
            }
            Node::Hardlink(target) => {
                let source = self.existing_file(target)?;
                fs::hard_link(&source, &host).map_err(Failure::Io)?;
                record = self
                    .recorded
                    .get(&target.absolute())
                    .copied()
                    .unwrap_or(RecordedEntry {
                        mode: S_IFREG | claimed,
                        ..record
                    });
            }
        }
        self.recorded.insert(&path.absolute(), record);
        Ok(())
    }

    /// Removes what is at `host` (the entry `path`) and forgets its
    /// recorded metadata, so the entry can take its place.
    fn replace(&mut self, host: &Path, path: &InnerPath) -> Result<(), Failure> {
        self.remove(host)?;
        self.recorded.remove_tree(&path.absolute());
        Ok(())
    }

    /// Removes a file, symlink or whole directory without following
    /// symlinks; the directories known so far are walked again after it.
    fn remove(&mut self, host: &Path) -> Result<(), Failure> {
        self.known_dirs.clear();
        match fs::symlink_metadata(host) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(host).map_err(Failure::Io),
            Ok(_) => fs::remove_file(host).map_err(Failure::Io),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Failure::Io(e)),
        }
    }

    /// The host directory for `comps`, created (mode 0755, recorded as
    /// root's) where missing; never through a symlink.
    fn make_parents(&mut self, comps: &[Vec<u8>]) -> Result<PathBuf, Failure> {
        self.walk(comps, Missing::Create)?
            .ok_or_else(|| Failure::Conflict(format!("parent {:?} is missing", shown(comps))))
    }

    /// The host directory for `comps` if it exists; never through a symlink.
    fn existing_dir(&mut self, comps: &[Vec<u8>]) -> Result<Option<PathBuf>, Failure> {
        self.walk(comps, Missing::Absent)
    }

    /// Walks `comps` from the root with `lstat`: a symlink on the way is
    /// refused; a missing directory is made or reported as `missing` says.
    fn walk(&mut self, comps: &[Vec<u8>], missing: Missing) -> Result<Option<PathBuf>, Failure> {
        let mut host = self.root.clone();
        if self.known_dirs.contains(comps) {
            comps.iter().for_each(|c| host.push(host_name(Some(c))));
            return Ok(Some(host));
        }
        for (i, c) in comps.iter().enumerate() {
            host.push(host_name(Some(c)));
            match (fs::symlink_metadata(&host), missing) {
                (Ok(m), _) if m.file_type().is_symlink() => {
                    return Err(Failure::ThroughSymlink(shown(&comps[..=i])));
                }
                (Ok(m), _) if m.is_dir() => {}
                (Ok(_), Missing::Create) => {
                    return Err(Failure::Conflict(format!(
                        "parent {:?} is not a directory",
                        shown(&comps[..=i])
                    )));
                }
                (Err(e), Missing::Create) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&host).map_err(Failure::Io)?;
                    self.recorded.insert(
                        &inner(comps[..=i].to_vec()).absolute(),
                        RecordedEntry {
                            mode: S_IFDIR | 0o755,
                            uid: 0,
                            gid: 0,
                        },
                    );
                }
                (Err(e), Missing::Create) => return Err(Failure::Io(e)),
                (_, Missing::Absent) => return Ok(None),
            }
        }
        self.known_dirs.insert(comps.to_vec());
        Ok(Some(host))
    }

    /// The host path of an already unpacked regular file.
    fn existing_file(&mut self, target: &InnerPath) -> Result<PathBuf, Failure> {
        let missing = || {
            Failure::Conflict(format!(
                "hard link target {target} is not a regular file unpacked before it"
            ))
        };
        let dir = self.existing_dir(target.parent())?.ok_or_else(missing)?;
        let host = dir.join(host_name(target.components().last()));
        match fs::symlink_metadata(&host) {
            Ok(m) if m.is_file() => Ok(host),
            _ => Err(missing()),
        }
    }
}

/// What a walk does at a missing directory.
#[derive(Clone, Copy)]
enum Missing {
    /// Makes it (the parents of a new entry).
    Create,
    /// Stops: the path is absent (a whiteout's victim, a link's target).
    Absent,
}

/// A failure before its entry's path is attached.
enum Failure {
    ThroughSymlink(String),
    Conflict(String),
    Corrupt(String),
    Io(io::Error),
}

impl Failure {
    fn at(self, path: &str) -> LayerError {
        let path = path.to_owned();
        match self {
            Failure::ThroughSymlink(parent) => LayerError::ThroughSymlink { path, parent },
            Failure::Conflict(problem) => LayerError::Conflict { path, problem },
            Failure::Corrupt(e) => LayerError::Corrupt(format!("entry {path:?}: {e}")),
            Failure::Io(error) => LayerError::Io { path, error },
        }
    }
}

fn corrupt(e: io::Error) -> LayerError {
    LayerError::Corrupt(e.to_string())
}

/// Components that are already single, normalised names (from a planned
/// path or a directory listing).
fn inner(comps: Vec<Vec<u8>>) -> InnerPath {
    InnerPath::from_components(comps)
}

fn host_name(c: Option<&Vec<u8>>) -> &std::ffi::OsStr {
    std::ffi::OsStr::from_bytes(c.map_or(&[][..], Vec::as_slice))
}

fn shown(comps: &[Vec<u8>]) -> String {
    let mut s = String::new();
    for c in comps {
        s.push('/');
        s.push_str(&String::from_utf8_lossy(c));
    }
    s
}

/// Creates a regular file only if nothing is at `host`, never following a
/// symlink there; private until its mode is set.
fn new_file(host: &Path) -> io::Result<fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(host)
}

fn entry_path_raw<R: Read>(entry: &tar::Entry<'_, R>) -> Vec<u8> {
    entry.header().path_bytes().into_owned()
}

/// The entry's header with its extension records applied.
fn header_of<R: Read>(
    entry: &tar::Entry<'_, R>,
    pending: Pending,
) -> Result<EntryHeader, LayerError> {
    let h = entry.header();
    let mut path = pending
        .long_name
        .unwrap_or_else(|| h.path_bytes().into_owned());
    let mut link = pending
        .long_link
        .or_else(|| h.link_name_bytes().map(|l| l.into_owned()))
        .unwrap_or_default();
    let mut uid = h.uid().map_err(corrupt)?;
    let mut gid = h.gid().map_err(corrupt)?;
    if let Some(pax) = &pending.pax {
        for ext in tar::PaxExtensions::new(pax) {
            let ext = ext.map_err(corrupt)?;
            let number = || {
                std::str::from_utf8(ext.value_bytes())
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| LayerError::Corrupt("PAX record is not a number".into()))
            };
            match ext.key_bytes() {
                b"path" => path = ext.value_bytes().to_vec(),
                b"linkpath" => link = ext.value_bytes().to_vec(),
                b"uid" => uid = number()?,
                b"gid" => gid = number()?,
                b"size" if number()? != h.entry_size().map_err(corrupt)? => {
                    return Err(LayerError::Corrupt(
                        "PAX size record disagrees with the header (sizes over 8 GiB are not read)"
                            .into(),
                    ));
                }
                _ => {}
            }
        }
    }
    let size = h.entry_size().map_err(corrupt)?;
    let kind = match h.entry_type() {
        EntryType::Regular | EntryType::Continuous => EntryKind::File(size),
        EntryType::Directory => EntryKind::Dir,
        EntryType::Symlink => EntryKind::Symlink(link),
        EntryType::Link => EntryKind::Hardlink(link),
        EntryType::Char | EntryType::Block => EntryKind::Device,
        EntryType::Fifo => EntryKind::Fifo,
        other => EntryKind::Other(other.as_byte()),
    };
    let id = |v: u64| {
        u32::try_from(v).map_err(|_| LayerError::Corrupt(format!("uid/gid {v} out of range")))
    };
    Ok(EntryHeader {
        path,
        kind,
        mode: h.mode().map_err(corrupt)?,
        uid: id(uid)?,
        gid: id(gid)?,
    })
}
