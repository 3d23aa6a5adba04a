//! Facts: what a target observed, and the plan saying which facts to gather.
//!
//! A fact is deliberately primitive (an `lstat`, a file's bytes, a directory
//! walk, the process list, one command's output) so every target can produce
//! it with identical meaning; all interpretation happens in the check kinds
//! (`checks/*.rs`), which read system files through `checks::system_facts`.

use std::collections::{BTreeMap, BTreeSet};

/// One thing to observe on the target. Paths are absolute inside the target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FactRequest {
    /// `lstat` of a path, plus its link target when it is a symlink.
    Stat(String),
    /// `stat` of a path with symlinks followed inside the target (InSpec's
    /// `file` resource reports what a link points to); its `link_target`
    /// is the path the links resolved to.
    StatFollow(String),
    /// Bytes of a regular file (symlinks followed inside the target).
    Read(String),
    /// Every entry under a directory on the same filesystem, symlinks not followed.
    Walk(String),
    /// `/proc/<pid>/{status,cmdline}` of every visible process.
    Processes,
    /// A shell command's exit status and stdout (shell-capable targets only).
    Command(String),
}

/// The deduplicated set of facts a profile needs: gathered in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactPlan {
    /// Requests in a stable order, so scripts and results are reproducible.
    pub requests: BTreeSet<FactRequest>,
}

/// Result of an `lstat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatFact {
    /// Nothing at that path.
    Missing,
    /// The entry's metadata.
    Present(FileStat),
    /// The target could not stat it (e.g. a permission problem).
    Error(String),
}

/// Metadata of one entry as `lstat` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// `st_mode`, type bits included.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Raw link target, for symlinks.
    pub link_target: Option<Vec<u8>>,
}

/// File type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170_000;
/// Regular file.
pub const S_IFREG: u32 = 0o100_000;
/// Directory.
pub const S_IFDIR: u32 = 0o040_000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120_000;

/// Human name of the type bits, as profile authors write it.
pub fn file_type_name(mode: u32) -> &'static str {
    match mode & S_IFMT {
        S_IFREG => "file",
        S_IFDIR => "directory",
        S_IFLNK => "symlink",
        0o010_000 => "fifo",
        0o020_000 => "character_device",
        0o060_000 => "block_device",
        0o140_000 => "socket",
        _ => "unknown",
    }
}

/// Result of reading a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentFact {
    /// Nothing at that path (a dangling symlink counts as missing).
    Missing,
    /// Exists but is not a regular file, so it was not opened (a FIFO would block).
    NotRegular,
    /// The first `bytes.len()` bytes of a `total_len`-byte file.
    Data {
        /// Content, at most the configured per-file cap.
        bytes: Vec<u8>,
        /// Full length; larger than `bytes.len()` when truncated.
        total_len: u64,
    },
    /// Reading failed.
    Error(String),
}

/// One entry found by a walk.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WalkEntry {
    /// Absolute path inside the target, raw bytes.
    pub path: Vec<u8>,
    /// `st_mode`, type bits included.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
}

/// Result of walking a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkFact {
    /// The start path is missing or not a directory.
    Missing,
    /// Entries sorted by path.
    Entries {
        /// What was found, the start directory included.
        entries: Vec<WalkEntry>,
        /// False when some directory could not be read.
        complete: bool,
        /// True when the entry cap stopped the walk.
        truncated: bool,
    },
    /// The walk failed outright.
    Error(String),
}

/// One visible process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Pid as seen from the target's `/proc`.
    pub pid: u32,
    /// Real uid from `status`, if readable.
    pub uid: Option<u32>,
    /// `cmdline` split on NUL.
    pub cmdline: Vec<Vec<u8>>,
}

/// Result of listing processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessesFact {
    /// Processes sorted by pid; empty when `/proc` shows none.
    Listed(Vec<ProcessInfo>),
    /// Listing failed.
    Error(String),
}

/// Result of running a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandFact {
    /// It ran.
    Ran {
        /// Exit status.
        exit_status: i32,
        /// Stdout, byte for byte except NUL bytes (a shell variable cannot hold them).
        stdout: Vec<u8>,
        /// Stderr, kept apart from stdout.
        stderr: Vec<u8>,
    },
    /// The target cannot run commands; the reason is shown as a skip message.
    Unsupported(String),
    /// Running failed.
    Error(String),
}

/// Any fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactValue {
    /// See [`StatFact`].
    Stat(StatFact),
    /// See [`ContentFact`].
    Content(ContentFact),
    /// See [`WalkFact`].
    Walk(WalkFact),
    /// See [`ProcessesFact`].
    Processes(ProcessesFact),
    /// See [`CommandFact`].
    Command(CommandFact),
}

/// Counters every target reports, for the benchmark and scan metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatherStats {
    /// Exec round trips to the target (0 for the local target).
    pub round_trips: u32,
    /// Bytes moved from the target (stdout + stderr, or bytes read locally).
    pub bytes_transferred: u64,
}

/// What the caller declared about the target beyond what it observed
/// (a scan option): InSpec's `virtualization` answers `docker` for a
/// target declared a container, whatever its files say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declarations {
    /// `Some(true)`: the target is a container.
    pub container: Option<bool>,
    /// Commands run in the scanner's own container (a debug container or
    /// sidecar reaching the target's files through `/proc/PID/root`), not
    /// in the target: set by the target that gathered the facts.
    pub commands_outside_target: bool,
}

/// The facts a target returned for a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// One value per planned request.
    pub values: BTreeMap<FactRequest, FactValue>,
    /// Transport counters.
    pub stats: GatherStats,
    /// Declared by the caller, not gathered.
    pub declared: Declarations,
}

impl Facts {
    /// The stat fact for a path; a planning bug shows up as an error result, not a panic.
    pub fn stat(&self, path: &str) -> StatFact {
        match self.values.get(&FactRequest::Stat(path.to_string())) {
            Some(FactValue::Stat(s)) => s.clone(),
            _ => StatFact::Error(format!("internal: stat of {path} was not gathered")),
        }
    }

    /// The content fact for a path.
    pub fn content(&self, path: &str) -> ContentFact {
        match self.values.get(&FactRequest::Read(path.to_string())) {
            Some(FactValue::Content(c)) => c.clone(),
            _ => ContentFact::Error(format!("internal: {path} was not read")),
        }
    }

    /// The walk fact for a directory.
    pub fn walk(&self, path: &str) -> Option<&WalkFact> {
        match self.values.get(&FactRequest::Walk(path.to_string())) {
            Some(FactValue::Walk(w)) => Some(w),
            _ => None,
        }
    }

    /// The process list.
    pub fn processes(&self) -> ProcessesFact {
        match self.values.get(&FactRequest::Processes) {
            Some(FactValue::Processes(p)) => p.clone(),
            _ => ProcessesFact::Error("internal: processes were not listed".into()),
        }
    }

    /// A command's result.
    pub fn command(&self, cmd: &str) -> CommandFact {
        match self.values.get(&FactRequest::Command(cmd.to_string())) {
            Some(FactValue::Command(c)) => c.clone(),
            _ => CommandFact::Error("internal: command was not run".into()),
        }
    }
}

/// Bounds on what a gather may hold in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatherLimits {
    /// Bytes kept per read file; longer files are reported truncated.
    pub max_file_bytes: u64,
    /// Entries a walk may return before it is reported truncated.
    pub max_walk_entries: usize,
    /// Total bytes a remote target may send (stdout); beyond it the scan fails.
    pub max_output_bytes: u64,
}

impl Default for GatherLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 4 << 20,
            max_walk_entries: 500_000,
            max_output_bytes: 256 << 20,
        }
    }
}
