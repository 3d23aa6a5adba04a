//! The rules one layer entry must pass before anything touches the disk.
//!
//! A layer is untrusted input: its tar headers decide paths, link targets
//! and sizes. Every header is turned into an [`EntryPlan`] here (or refused
//! with an [`EntryRefusal`] naming the problem) with no IO, so the rules
//! are one table that unit tests cover without a filesystem. The unpacker
//! (`adapters::layer_unpack`) only carries plans out, and never follows a
//! symlink while doing so.

use std::fmt;

/// Caps on what one image may unpack to. Every cap is configurable because
/// a huge but honest image and a hostile one differ only in intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Entries over all layers.
    pub max_entries: u64,
    /// Bytes of one regular file.
    pub max_entry_bytes: u64,
    /// Bytes of all regular files over all layers (a gzip bomb stops here).
    pub max_total_bytes: u64,
    /// Bytes of one entry's path or link target.
    pub max_path_bytes: usize,
    /// Layers in one image.
    pub max_layers: usize,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_entries: 500_000,
            max_entry_bytes: 2 << 30,
            max_total_bytes: 8 << 30,
            max_path_bytes: 4096,
            max_layers: 256,
        }
    }
}

/// A normalised path inside the image root: components only, never empty,
/// never `.` or `..`, no NUL or `/` inside a component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InnerPath(Vec<Vec<u8>>);

impl InnerPath {
    /// The components, outermost first.
    pub fn components(&self) -> &[Vec<u8>] {
        &self.0
    }

    /// The parent directory's components (empty for a top-level entry).
    pub fn parent(&self) -> &[Vec<u8>] {
        &self.0[..self.0.len() - 1]
    }

    /// `/a/b`: the key recorded metadata uses.
    pub fn absolute(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for c in &self.0 {
            out.push(b'/');
            out.extend_from_slice(c);
        }
        out
    }

    /// From components already known to be single normalised names (a
    /// planned path's prefix, a directory listing's entry).
    pub(crate) fn from_components(comps: Vec<Vec<u8>>) -> Self {
        Self(comps)
    }

    fn child(parent: &[Vec<u8>], name: &[u8]) -> Self {
        let mut v = parent.to_vec();
        v.push(name.to_vec());
        Self(v)
    }
}

impl fmt::Display for InnerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from_utf8_lossy(&self.absolute()))
    }
}

/// A tar header's type, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file of this many bytes.
    File(u64),
    /// A directory.
    Dir,
    /// A symbolic link to this target.
    Symlink(Vec<u8>),
    /// A hard link to this archive path.
    Hardlink(Vec<u8>),
    /// A character or block device.
    Device,
    /// A FIFO.
    Fifo,
    /// Any other type byte (sparse files, GNU extensions…).
    Other(u8),
}

/// One tar header, as read from the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// The archive path, raw.
    pub path: Vec<u8>,
    /// What it is.
    pub kind: EntryKind,
    /// `st_mode` permission and special bits (no type bits).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
}

/// What the unpacker must do with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryPlan {
    /// The archive's root itself (`./`): nothing to create.
    Root,
    /// `.wh.NAME`: delete `NAME` (and everything below it) from lower layers.
    Whiteout(InnerPath),
    /// `.wh..wh..opq`: hide everything lower layers put in this directory
    /// (empty components = the root).
    Opaque(Vec<Vec<u8>>),
    /// Create this node at this path.
    Create(InnerPath, Node),
}

/// A node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file of this many bytes.
    File(u64),
    /// A symlink; the target is kept verbatim (absolute targets resolve
    /// inside the root when scanned, like in a chroot).
    Symlink(Vec<u8>),
    /// A hard link to an entry already unpacked.
    Hardlink(InnerPath),
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryRefusal {
    /// An absolute archive path.
    #[error("absolute path; layer paths must be relative to the image root")]
    Absolute,
    /// A `..` component.
    #[error("path climbs out of the image root with \"..\"")]
    DotDot,
    /// Path or link target over the cap.
    #[error("path or link target is {0} bytes, over the limit of {1}")]
    PathTooLong(usize, usize),
    /// A relative symlink whose target climbs above the root.
    #[error("symlink target {0:?} climbs above the image root")]
    SymlinkEscape(String),
    /// A hard link to something outside the root.
    #[error("hard link target {0:?} is outside the image root")]
    HardlinkEscape(String),
    /// A device node.
    #[error("device nodes are refused in image layers")]
    Device,
    /// A FIFO.
    #[error("FIFOs are refused in image layers")]
    Fifo,
    /// An unsupported tar entry type.
    #[error("unsupported tar entry type {0:?}")]
    Unsupported(char),
    /// A whiteout that names nothing valid.
    #[error("whiteout names no valid entry")]
    BadWhiteout,
    /// One file over the cap.
    #[error("file is {0} bytes, over the per-entry limit of {1}")]
    EntryTooBig(u64, u64),
    /// Too many entries.
    #[error("more than {0} entries in the image")]
    TooManyEntries(u64),
    /// Too many bytes in total.
    #[error("image unpacks to more than {0} bytes")]
    TooManyBytes(u64),
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// Splits and normalises an archive path: leading `./` and `/`-runs are
/// tolerated only as `./`; `..` and absolute paths are refused.
pub fn normalise(path: &[u8], limits: &UnpackLimits) -> Result<Vec<Vec<u8>>, EntryRefusal> {
    if path.len() > limits.max_path_bytes {
        return Err(EntryRefusal::PathTooLong(path.len(), limits.max_path_bytes));
    }
    if path.first() == Some(&b'/') {
        return Err(EntryRefusal::Absolute);
    }
    let mut out = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(EntryRefusal::DotDot),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

/// Plans one entry. The running [`LayerBudget`] is charged here too, so
/// the caps hold however the entries are spread over layers.
pub fn plan(
    h: &EntryHeader,
    limits: &UnpackLimits,
    budget: &mut UnpackBudget,
) -> Result<EntryPlan, EntryRefusal> {
    budget.entries += 1;
    if budget.entries > limits.max_entries {
        return Err(EntryRefusal::TooManyEntries(limits.max_entries));
    }
    let comps = normalise(&h.path, limits)?;
    let Some((name, parent)) = comps.split_last() else {
        return match h.kind {
            EntryKind::Dir => Ok(EntryPlan::Root),
            _ => Err(EntryRefusal::Absolute),
        };
    };
    if name.as_slice() == OPAQUE_MARKER {
        return Ok(EntryPlan::Opaque(parent.to_vec()));
    }
    if let Some(victim) = name.strip_prefix(WHITEOUT_PREFIX) {
        if victim.is_empty() || victim == b"." || victim == b".." {
            return Err(EntryRefusal::BadWhiteout);
        }
        return Ok(EntryPlan::Whiteout(InnerPath::child(parent, victim)));
    }
    let path = InnerPath::child(parent, name);
    let node = match &h.kind {
        EntryKind::Dir => Node::Dir,
        EntryKind::File(size) => {
            if *size > limits.max_entry_bytes {
                return Err(EntryRefusal::EntryTooBig(*size, limits.max_entry_bytes));
            }
            budget.bytes = budget.bytes.saturating_add(*size);
            if budget.bytes > limits.max_total_bytes {
                return Err(EntryRefusal::TooManyBytes(limits.max_total_bytes));
            }
            Node::File(*size)
        }
        EntryKind::Symlink(target) => {
            check_symlink(parent, target, limits)?;
            Node::Symlink(target.clone())
        }
        EntryKind::Hardlink(target) => {
            let lossy = || String::from_utf8_lossy(target).into_owned();
            let comps = normalise(target, limits).map_err(|e| match e {
                EntryRefusal::PathTooLong(..) => e,
                _ => EntryRefusal::HardlinkEscape(lossy()),
            })?;
            if comps.is_empty() {
                return Err(EntryRefusal::HardlinkEscape(lossy()));
            }
            Node::Hardlink(InnerPath(comps))
        }
        EntryKind::Device => return Err(EntryRefusal::Device),
        EntryKind::Fifo => return Err(EntryRefusal::Fifo),
        EntryKind::Other(t) => return Err(EntryRefusal::Unsupported(char::from(*t))),
    };
    Ok(EntryPlan::Create(path, node))
}

/// A relative target is resolved lexically from the link's directory and
/// must stay inside the root; an absolute one always does (chroot rules).
fn check_symlink(
    parent: &[Vec<u8>],
    target: &[u8],
    limits: &UnpackLimits,
) -> Result<(), EntryRefusal> {
    if target.len() > limits.max_path_bytes {
        return Err(EntryRefusal::PathTooLong(
            target.len(),
            limits.max_path_bytes,
        ));
    }
    if target.first() == Some(&b'/') {
        return Ok(());
    }
    let mut depth = parent.len();
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if depth == 0 => {
                return Err(EntryRefusal::SymlinkEscape(
                    String::from_utf8_lossy(target).into_owned(),
                ));
            }
            b".." => depth -= 1,
            _ => depth += 1,
        }
    }
    Ok(())
}

/// What the image has used of its caps so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackBudget {
    /// Entries planned.
    pub entries: u64,
    /// Regular-file bytes planned.
    pub bytes: u64,
}

/// The bits an unpacked node gets on disk: never setuid, setgid or sticky
/// (kept as recorded data instead), and always owner-writable directories
/// so the unpacker can fill and remove them.
pub fn disk_mode(node: &Node, claimed: u32) -> u32 {
    match node {
        Node::Dir => (claimed & 0o777) | 0o700,
        _ => (claimed & 0o777) | 0o600,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(path: &str, kind: EntryKind) -> EntryHeader {
        EntryHeader {
            path: path.as_bytes().to_vec(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    fn try_plan(path: &str, kind: EntryKind) -> Result<EntryPlan, EntryRefusal> {
        plan(
            &header(path, kind),
            &UnpackLimits::default(),
            &mut UnpackBudget::default(),
        )
    }

    fn p(s: &str) -> InnerPath {
        InnerPath(s.split('/').map(|c| c.as_bytes().to_vec()).collect())
    }

    #[test]
    fn entry_table() {
        use EntryKind::*;
        let ok = [
            (
                "./etc/passwd",
                File(3),
                EntryPlan::Create(p("etc/passwd"), Node::File(3)),
            ),
            (
                "etc//x/./y",
                Dir,
                EntryPlan::Create(p("etc/x/y"), Node::Dir),
            ),
            ("./", Dir, EntryPlan::Root),
            (
                "etc/.wh.shadow",
                File(0),
                EntryPlan::Whiteout(p("etc/shadow")),
            ),
            (
                "etc/.wh..wh..opq",
                File(0),
                EntryPlan::Opaque(vec![b"etc".to_vec()]),
            ),
            (".wh..wh..opq", File(0), EntryPlan::Opaque(vec![])),
            (
                "bin/sh",
                Symlink(b"/bin/busybox".to_vec()),
                EntryPlan::Create(p("bin/sh"), Node::Symlink(b"/bin/busybox".to_vec())),
            ),
            (
                "usr/lib/x",
                Symlink(b"../../lib/x".to_vec()),
                EntryPlan::Create(p("usr/lib/x"), Node::Symlink(b"../../lib/x".to_vec())),
            ),
            (
                "bin/a",
                Hardlink(b"./bin/b".to_vec()),
                EntryPlan::Create(p("bin/a"), Node::Hardlink(p("bin/b"))),
            ),
        ];
        for (path, kind, want) in ok {
            assert_eq!(try_plan(path, kind).unwrap(), want, "{path}");
        }
        let refused = [
            (
                "/etc/passwd",
                File(1),
                "absolute path; layer paths must be relative to the image root",
            ),
            (
                "a/../../x",
                File(1),
                "path climbs out of the image root with \"..\"",
            ),
            (
                "usr/x",
                Symlink(b"../../etc".to_vec()),
                "symlink target \"../../etc\" climbs above the image root",
            ),
            (
                "a",
                Hardlink(b"../outside".to_vec()),
                "hard link target \"../outside\" is outside the image root",
            ),
            (
                "a",
                Hardlink(b"/etc/passwd".to_vec()),
                "hard link target \"/etc/passwd\" is outside the image root",
            ),
            (
                "dev/sda",
                Device,
                "device nodes are refused in image layers",
            ),
            ("p", Fifo, "FIFOs are refused in image layers"),
            ("s", Other(b'S'), "unsupported tar entry type 'S'"),
            ("etc/.wh...", File(0), "whiteout names no valid entry"),
        ];
        for (path, kind, want) in refused {
            assert_eq!(
                try_plan(path, kind).unwrap_err().to_string(),
                want,
                "{path}"
            );
        }
    }

    #[test]
    fn caps_hold_over_the_whole_image() {
        let limits = UnpackLimits {
            max_entries: 3,
            max_entry_bytes: 10,
            max_total_bytes: 15,
            max_path_bytes: 8,
            max_layers: 1,
        };
        let mut b = UnpackBudget::default();
        let f = |n| header("f", EntryKind::File(n));
        assert!(plan(&f(10), &limits, &mut b).is_ok());
        assert_eq!(
            plan(&f(11), &limits, &mut b).unwrap_err(),
            EntryRefusal::EntryTooBig(11, 10)
        );
        assert_eq!(
            plan(&f(6), &limits, &mut b).unwrap_err(),
            EntryRefusal::TooManyBytes(15)
        );
        assert_eq!(
            plan(&f(0), &limits, &mut b).unwrap_err(),
            EntryRefusal::TooManyEntries(3)
        );
        assert_eq!(
            plan(
                &header("123456789", EntryKind::Dir),
                &limits,
                &mut UnpackBudget::default()
            )
            .unwrap_err(),
            EntryRefusal::PathTooLong(9, 8)
        );
    }

    #[test]
    fn special_bits_never_reach_the_disk() {
        assert_eq!(disk_mode(&Node::File(0), 0o4755), 0o755);
        assert_eq!(disk_mode(&Node::Dir, 0o1777), 0o777);
        assert_eq!(disk_mode(&Node::Dir, 0o555), 0o755);
    }
}
