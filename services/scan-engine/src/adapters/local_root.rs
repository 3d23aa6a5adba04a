//! The local-root target: gathers facts by reading a directory tree (an
//! unpacked image, a chroot) directly, with no shell.
//!
//! Paths resolve *inside* the root the way they would in a chroot: absolute
//! symlinks point back into the root, never at the scanning host. That keeps
//! the semantics identical to the shell target run through `chroot`.
//!
//! A tree unpacked from an image may come with [`RecordedMetadata`]: the
//! ownership and mode bits the image claims, which the files on disk do not
//! carry (see that module). Stats and walks then report the recorded values.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::recorded_metadata::{RecordedEntry, RecordedMetadata};

use crate::facts::{
    CommandFact, ContentFact, FactPlan, FactRequest, FactValue, Facts, FileStat, GatherLimits,
    GatherStats, ProcessInfo, ProcessesFact, StatFact, WalkEntry, WalkFact,
};
use crate::scan::{Target, TargetError};
use crate::system_files::{parse_proc_status, split_cmdline};

/// Symlink hops allowed while resolving one path (Linux uses 40 too).
const MAX_HOPS: usize = 40;

/// Reads facts from a directory tree.
#[derive(Debug, Clone)]
pub struct LocalRoot {
    root: PathBuf,
    limits: GatherLimits,
    recorded: Option<Arc<RecordedMetadata>>,
}

impl LocalRoot {
    /// A target rooted at `root`.
    ///
    /// # Errors
    /// When `root` is not a directory.
    pub fn new(root: impl Into<PathBuf>, limits: GatherLimits) -> Result<Self, TargetError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(TargetError::Root(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        Ok(Self {
            root,
            limits,
            recorded: None,
        })
    }

    /// The same target, reporting `recorded` mode, uid and gid for every
    /// path that has a record (an unpacked image's claimed metadata).
    pub fn with_recorded_metadata(mut self, recorded: Arc<RecordedMetadata>) -> Self {
        self.recorded = Some(recorded);
        self
    }

    /// What the tree claims for the entry at host path `host`, when a record
    /// exists: looked up by its absolute path inside the root.
    fn recorded(&self, host: &Path) -> Option<RecordedEntry> {
        let recorded = self.recorded.as_ref()?;
        let rel = host.strip_prefix(&self.root).ok()?;
        let mut key = Vec::with_capacity(rel.as_os_str().len() + 1);
        for c in rel.components() {
            key.push(b'/');
            key.extend_from_slice(c.as_os_str().as_bytes());
        }
        if key.is_empty() {
            key.push(b'/');
        }
        recorded.get(&key).copied()
    }

    /// (mode, uid, gid) of `host`: the record when there is one, else `m`.
    fn claimed(&self, host: &Path, m: &std::fs::Metadata) -> (u32, u32, u32) {
        match self.recorded(host) {
            Some(r) => (r.mode, r.uid, r.gid),
            None => (m.mode(), m.uid(), m.gid()),
        }
    }

    /// Resolves `path` inside the root. `Ok(None)` when it does not exist.
    fn resolve(&self, path: &str, follow_last: bool) -> std::io::Result<Option<PathBuf>> {
        let mut cur: Vec<OsString> = Vec::new();
        let mut todo: VecDeque<OsString> = comps(Path::new(path));
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                cur.pop();
                continue;
            }
            let mut cand = self.root.clone();
            cand.extend(cur.iter());
            cand.push(&c);
            let is_last = todo.is_empty();
            let meta = match std::fs::symlink_metadata(&cand) {
                Ok(m) => m,
                Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(20) => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            if meta.file_type().is_symlink() && (!is_last || follow_last) {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(std::io::Error::other("too many levels of symbolic links"));
                }
                let target = std::fs::read_link(&cand)?;
                if target.is_absolute() {
                    cur.clear();
                }
                let mut next = comps(&target);
                next.extend(todo.drain(..));
                todo = next;
                continue;
            }
            if !is_last && !meta.is_dir() {
                return Ok(None);
            }
            cur.push(c);
        }
        let mut out = self.root.clone();
        out.extend(cur.iter());
        Ok(Some(out))
    }

    /// `lstat`, except that the root itself is followed: it may be a magic
    /// link such as `/proc/PID/root`, which is still the tree's top directory.
    fn lstat(&self, p: &Path) -> std::io::Result<std::fs::Metadata> {
        if p == self.root {
            std::fs::metadata(p)
        } else {
            std::fs::symlink_metadata(p)
        }
    }

    fn stat(&self, path: &str) -> StatFact {
        let p = match self.resolve(path, false) {
            Ok(Some(p)) => p,
            Ok(None) => return StatFact::Missing,
            Err(e) => return StatFact::Error(e.to_string()),
        };
        match self.lstat(&p) {
            Ok(m) => StatFact::Present({
                let (mode, uid, gid) = self.claimed(&p, &m);
                FileStat {
                    mode,
                    uid,
                    gid,
                    size: m.size(),
                    link_target: if m.file_type().is_symlink() {
                        std::fs::read_link(&p)
                            .ok()
                            .map(|t| t.as_os_str().as_bytes().to_vec())
                    } else {
                        None
                    },
                }
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => StatFact::Missing,
            Err(e) => StatFact::Error(e.to_string()),
        }
    }

    /// `stat` with symlinks followed inside the root (missing when dangling).
    fn stat_follow(&self, path: &str) -> StatFact {
        match self.resolve(path, true) {
            Ok(Some(p)) => match std::fs::metadata(&p) {
                Ok(m) => StatFact::Present(FileStat {
                    mode: m.mode(),
                    uid: m.uid(),
                    gid: m.gid(),
                    size: m.size(),
                    // The path inside the target the links resolved to.
                    link_target: p.strip_prefix(&self.root).ok().map(|rel| {
                        let mut v = b"/".to_vec();
                        v.extend_from_slice(rel.as_os_str().as_bytes());
                        v
                    }),
                }),
                Err(e) if e.kind() == ErrorKind::NotFound => StatFact::Missing,
                Err(e) => StatFact::Error(e.to_string()),
            },
            Ok(None) => StatFact::Missing,
            Err(e) => StatFact::Error(e.to_string()),
        }
    }

    fn read(&self, path: &str, counted: &mut u64) -> ContentFact {
        let p = match self.resolve(path, true) {
            Ok(Some(p)) => p,
            Ok(None) => return ContentFact::Missing,
            Err(e) => return ContentFact::Error(e.to_string()),
        };
        match self.lstat(&p) {
            Ok(m) if !m.is_file() => return ContentFact::NotRegular,
            Ok(_) => {}
            Err(e) => return ContentFact::Error(e.to_string()),
        }
        let mut f = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) => return ContentFact::Error(e.to_string()),
        };
        let cap = self.limits.max_file_bytes as usize;
        let mut kept = Vec::new();
        let mut total: u64 = 0;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    total += n as u64;
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return ContentFact::Error(e.to_string()),
            }
        }
        *counted += kept.len() as u64;
        ContentFact::Data {
            bytes: kept,
            total_len: total,
        }
    }

    fn walk(&self, path: &str) -> WalkFact {
        let start = match self.resolve(path, false) {
            Ok(Some(p)) => p,
            Ok(None) => return WalkFact::Missing,
            Err(e) => return WalkFact::Error(e.to_string()),
        };
        let meta = match self.lstat(&start) {
            Ok(m) if m.is_dir() => m,
            Ok(_) => return WalkFact::Missing,
            Err(e) => return WalkFact::Error(e.to_string()),
        };
        let dev = meta.dev();
        let cap = self.limits.max_walk_entries;
        let mut entries = Vec::new();
        let mut complete = true;
        let mut truncated = false;
        // (host path, path as the target names it)
        let mut stack: Vec<(PathBuf, Vec<u8>, std::fs::Metadata)> =
            vec![(start, path.as_bytes().to_vec(), meta)];
        while let Some((host, name, m)) = stack.pop() {
            if entries.len() >= cap {
                truncated = true;
                break;
            }
            let (mode, uid, gid) = self.claimed(&host, &m);
            entries.push(WalkEntry {
                path: name.clone(),
                mode,
                uid,
                gid,
            });
            if !m.is_dir() || m.dev() != dev {
                continue;
            }
            let rd = match std::fs::read_dir(&host) {
                Ok(rd) => rd,
                Err(_) => {
                    complete = false;
                    continue;
                }
            };
            for child in rd {
                let Ok(child) = child else {
                    complete = false;
                    continue;
                };
                let cm = match std::fs::symlink_metadata(child.path()) {
                    Ok(cm) => cm,
                    Err(_) => {
                        complete = false;
                        continue;
                    }
                };
                let mut cname = name.clone();
                if !cname.ends_with(b"/") {
                    cname.push(b'/');
                }
                cname.extend_from_slice(child.file_name().as_bytes());
                stack.push((child.path(), cname, cm));
            }
        }
        entries.sort();
        WalkFact::Entries {
            entries,
            complete,
            truncated,
        }
    }

    fn processes(&self, counted: &mut u64) -> ProcessesFact {
        let proc_dir = match self.resolve("/proc", true) {
            Ok(Some(p)) => p,
            Ok(None) => return ProcessesFact::Listed(Vec::new()),
            Err(e) => return ProcessesFact::Error(e.to_string()),
        };
        let rd = match std::fs::read_dir(&proc_dir) {
            Ok(rd) => rd,
            Err(e) => return ProcessesFact::Error(e.to_string()),
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let status = std::fs::read(e.path().join("status")).unwrap_or_default();
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            *counted += (status.len() + cmd.len()) as u64;
            if status.is_empty() && cmd.is_empty() {
                continue;
            }
            out.push(ProcessInfo {
                pid,
                uid: parse_proc_status(&status).0,
                cmdline: split_cmdline(&cmd),
            });
        }
        out.sort_by_key(|p| p.pid);
        ProcessesFact::Listed(out)
    }
}

fn comps(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsStr::new("..").to_os_string()),
            _ => None,
        })
        .collect()
}

impl Target for LocalRoot {
    fn gather(&self, plan: &FactPlan) -> Result<Facts, TargetError> {
        let mut counted = 0u64;
        let mut values = std::collections::BTreeMap::new();
        for req in &plan.requests {
            let v = match req {
                FactRequest::Stat(p) => FactValue::Stat(self.stat(p)),
                FactRequest::StatFollow(p) => FactValue::Stat(self.stat_follow(p)),
                FactRequest::Read(p) => FactValue::Content(self.read(p, &mut counted)),
                FactRequest::Walk(p) => {
                    let w = self.walk(p);
                    if let WalkFact::Entries { entries, .. } = &w {
                        counted += entries.iter().map(|e| e.path.len() as u64 + 16).sum::<u64>();
                    }
                    FactValue::Walk(w)
                }
                FactRequest::Processes => FactValue::Processes(self.processes(&mut counted)),
                FactRequest::Command(_) => FactValue::Command(CommandFact::Unsupported(
                    "the local-root target reads files only and cannot run commands; use a shell-capable target".into(),
                )),
            };
            values.insert(req.clone(), v);
        }
        Ok(Facts {
            values,
            stats: GatherStats {
                round_trips: 0,
                bytes_transferred: counted,
            },
            declared: Default::default(),
        })
    }

    fn target_id(&self) -> String {
        format!("local-root:{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FactPlan, FactRequest, FactValue, StatFact, WalkFact};

    #[test]
    fn recorded_metadata_wins_over_the_files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/su"), b"x").unwrap();
        std::fs::write(dir.path().join("bin/plain"), b"y").unwrap();
        let mut recorded = RecordedMetadata::new();
        let su = RecordedEntry {
            mode: 0o104_755,
            uid: 0,
            gid: 4242,
        };
        recorded.insert(b"/bin/su", su);
        let target = LocalRoot::new(dir.path(), GatherLimits::default())
            .unwrap()
            .with_recorded_metadata(Arc::new(recorded));
        let plan = FactPlan {
            requests: [
                FactRequest::Stat("/bin/su".into()),
                FactRequest::Walk("/bin".into()),
            ]
            .into(),
        };
        let facts = target.gather(&plan).unwrap();
        let Some(FactValue::Stat(StatFact::Present(stat))) =
            facts.values.get(&FactRequest::Stat("/bin/su".into()))
        else {
            panic!("no stat: {facts:?}");
        };
        assert_eq!((stat.mode, stat.uid, stat.gid), (su.mode, su.uid, su.gid));
        let Some(FactValue::Walk(WalkFact::Entries { entries, .. })) =
            facts.values.get(&FactRequest::Walk("/bin".into()))
        else {
            panic!("no walk: {facts:?}");
        };
        let su_entry = entries.iter().find(|e| e.path == b"/bin/su").unwrap();
        assert_eq!((su_entry.mode, su_entry.gid), (su.mode, 4242));
        let plain = entries.iter().find(|e| e.path == b"/bin/plain").unwrap();
        let on_disk = std::fs::symlink_metadata(dir.path().join("bin/plain")).unwrap();
        assert_eq!(
            (plain.mode, plain.uid),
            (on_disk.mode(), on_disk.uid()),
            "a path without a record reports what lstat says"
        );
    }
}
