//! Ownership and mode bits a tree *claims*, kept beside the files when the
//! files on disk cannot carry them.
//!
//! An unpacked image is the case this exists for: an unprivileged unpacker
//! cannot `chown` to the image's uids, and setuid/setgid bits are kept as
//! data, never set on the scanning host (a setuid-root binary from an
//! untrusted image must not become executable as root there). Controls
//! about ownership and setuid files must still see what the image says, so
//! the local-root target reads mode, uid and gid from here when a path has
//! a record, and from `lstat` otherwise.

use std::collections::BTreeMap;

/// The metadata one path claims: `st_mode` (type bits included), uid, gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedEntry {
    /// `st_mode`, type bits included, special bits (setuid…) as claimed.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
}

/// Recorded metadata by absolute path inside the tree (`/` is the root,
/// `/etc/passwd` a file), as raw bytes because names need not be UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedMetadata {
    entries: BTreeMap<Vec<u8>, RecordedEntry>,
}

impl RecordedMetadata {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records (or replaces) `path`'s metadata.
    pub fn insert(&mut self, path: &[u8], entry: RecordedEntry) {
        self.entries.insert(path.to_vec(), entry);
    }

    /// What `path` claims, if recorded.
    pub fn get(&self, path: &[u8]) -> Option<&RecordedEntry> {
        self.entries.get(path)
    }

    /// Forgets `path` and everything below it (a deleted subtree).
    pub fn remove_tree(&mut self, path: &[u8]) {
        self.entries.remove(path);
        for k in self.descendants(path) {
            self.entries.remove(&k);
        }
    }

    /// Recorded paths strictly below `path`, in order.
    pub fn descendants(&self, path: &[u8]) -> Vec<Vec<u8>> {
        let prefix = descendants_prefix(path);
        self.entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.as_slice() != path)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Number of recorded paths.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// `path` with one trailing `/`: every descendant's key starts with it.
fn descendants_prefix(path: &[u8]) -> Vec<u8> {
    let mut prefix = path.to_vec();
    if !prefix.ends_with(b"/") {
        prefix.push(b'/');
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: u32) -> RecordedEntry {
        RecordedEntry {
            mode,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn a_subtree_goes_with_its_root_and_nothing_else_does() {
        let mut m = RecordedMetadata::new();
        for p in ["/", "/a", "/a/b", "/a/b/c", "/ab", "/a-", "/b"] {
            m.insert(p.as_bytes(), entry(0o40755));
        }
        assert_eq!(
            m.descendants(b"/a"),
            vec![b"/a/b".to_vec(), b"/a/b/c".to_vec()]
        );
        m.remove_tree(b"/a");
        let left: Vec<&[u8]> = ["/", "/a-", "/ab", "/b"]
            .iter()
            .map(|s| s.as_bytes())
            .collect();
        assert_eq!(
            m.entries.keys().map(Vec::as_slice).collect::<Vec<_>>(),
            left
        );
        assert_eq!(m.descendants(b"/").len(), 3);
    }
}
