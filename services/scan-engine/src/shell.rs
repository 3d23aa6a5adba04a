//! The remote POSIX-shell target: a whole fact plan becomes ONE `sh` script
//! (busybox ash compatible), run in one exec round trip, whose framed stdout
//! is parsed back into facts.
//!
//! Framing: every record starts with `\n<B> ` where `<B>` is a 128-bit random
//! boundary drawn per scan. Content already in the target (file names, file
//! contents, command output) existed before the boundary was chosen, so it
//! cannot contain it and cannot forge a record. File contents additionally
//! carry their length, so a file that changes while it is read is reported as
//! an error instead of being silently misread. stdout, stderr and the exit
//! status stay separate; nothing is parsed out of stderr.
//!
//! This module does no IO: running the script is the [`ScriptExecutor`]'s job
//! (Kubernetes exec in the worker, `chroot DIR /bin/sh` in tests).

use std::collections::BTreeMap;

use rand_core::{OsRng, RngCore};

use crate::facts::{
    CommandFact, ContentFact, FactPlan, FactRequest, FactValue, Facts, FileStat, GatherLimits,
    GatherStats, ProcessInfo, ProcessesFact, StatFact, WalkEntry, WalkFact,
};
use crate::scan::{Target, TargetError};

/// What an executor returns: the three channels, kept apart.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Script stdout (the framed facts).
    pub stdout: Vec<u8>,
    /// Script stderr (diagnostics only; possibly truncated by the executor).
    pub stderr: Vec<u8>,
    /// Exit status, when the transport reports one.
    pub exit_code: Option<i32>,
}

/// Why an executor failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// stdout grew beyond the cap; the executor stopped reading.
    #[error("output exceeded {cap} bytes")]
    OutputCap {
        /// The cap in bytes.
        cap: u64,
    },
    /// The script did not finish within the executor's deadline; the
    /// executor killed it (a hung or hostile target must not hold a worker).
    #[error("the scan script did not finish within {after:?} and was killed")]
    TimedOut {
        /// The deadline that expired.
        after: std::time::Duration,
    },
    /// The script could not be run.
    #[error("{0}")]
    Failed(String),
}

/// The script never touches `/dev` (minimal and distroless roots may have an
/// empty one) and never lets a child read stdin, which is the script itself.
///
/// Runs one script, once, feeding it on stdin (never on a command line, where
/// other processes in the target could read it and learn the boundary).
pub trait ScriptExecutor {
    /// Runs `script` with `sh` and returns its output.
    ///
    /// # Errors
    /// [`ExecError::OutputCap`] when stdout exceeds `max_stdout` bytes (the
    /// executor must stop reading at that point, so memory stays bounded).
    fn execute(&self, script: &[u8], max_stdout: u64) -> Result<ExecOutput, ExecError>;

    /// Names the target for HDF `target_id`.
    fn describe(&self) -> String;
}

/// A target that gathers facts with one shell script.
pub struct ShellTarget<E> {
    executor: E,
    root_prefix: String,
    limits: GatherLimits,
}

impl<E: ScriptExecutor> ShellTarget<E> {
    /// `root_prefix` is prepended to every path (e.g. `/proc/1/root` for the
    /// debug-container and sidecar approaches); empty for a chroot or the
    /// container's own shell.
    pub fn new(executor: E, root_prefix: impl Into<String>, limits: GatherLimits) -> Self {
        Self {
            executor,
            root_prefix: root_prefix.into().trim_end_matches('/').to_string(),
            limits,
        }
    }
}

impl<E: ScriptExecutor> Target for ShellTarget<E> {
    fn gather(&self, plan: &FactPlan) -> Result<Facts, TargetError> {
        let boundary = new_boundary();
        let script = generate_script(plan, &boundary, &self.root_prefix, &self.limits);
        let out = self
            .executor
            .execute(script.as_bytes(), self.limits.max_output_bytes)
            .map_err(|e| match e {
                ExecError::OutputCap { cap } => TargetError::OutputCap { cap },
                ExecError::TimedOut { after } => TargetError::TimedOut { after },
                ExecError::Failed(m) => TargetError::Exec(m),
            })?;
        let values = parse_output(
            &out.stdout,
            &boundary,
            &self.root_prefix,
            plan,
            &self.limits,
        )
        .map_err(|e| {
            let tail = String::from_utf8_lossy(&out.stderr[out.stderr.len().saturating_sub(400)..])
                .into_owned();
            TargetError::Framing(format!(
                "{e} (exit status {:?}; stderr tail: {tail:?})",
                out.exit_code
            ))
        })?;
        Ok(Facts {
            values,
            stats: GatherStats {
                round_trips: 1,
                bytes_transferred: (out.stdout.len() + out.stderr.len()) as u64,
            },
        })
    }

    fn target_id(&self) -> String {
        self.executor.describe()
    }
}

/// A fresh 128-bit boundary in hex.
pub fn new_boundary() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    format!("SF{}", hex::encode(b))
}

/// Single-quotes a string for POSIX sh.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Builds the script for a plan. Record kinds (after `\n<B> `):
/// `S i = mode uid gid size` + link target | `S i -` | `S i ! msg`;
/// `C i = total sent` + bytes | `C i -` | `C i N` | `C i ! msg`;
/// `W i mode uid gid path` per walk entry, then `WE i rc` or `WE i -`;
/// `SELF pid`, `P i pid status|cmdline` + bytes, `PE i`;
/// `X i status` + stdout; finally `END`.
pub fn generate_script(
    plan: &FactPlan,
    boundary: &str,
    root_prefix: &str,
    limits: &GatherLimits,
) -> String {
    let cap = limits.max_file_bytes;
    let mut s = String::new();
    s.push_str("LC_ALL=C; export LC_ALL\n");
    s.push_str(&format!(
        "B={}\nR={}\nNL='\n'\n",
        q(boundary),
        q(root_prefix)
    ));
    s.push_str(
        r#"h() { printf '\n%s %s\n' "$B" "$*"; }
st() {
  if [ -e "$2" ] || [ -L "$2" ]; then
    if s=$(stat -c '%f %u %g %s' -- "$2"); then
      h S "$1" = $s
      if [ -L "$2" ]; then readlink -- "$2"; fi
    else h S "$1" '!' "stat exited with status $?"; fi
  else h S "$1" -; fi
}
rd() {
  if [ ! -e "$2" ]; then h $1 -; return; fi
  if [ ! -f "$2" ]; then h $1 N; return; fi
  if n=$(wc -c < "$2"); then :; else h $1 '!' "cannot read (status $?)"; return; fi
  n=$((n+0)); m=$n
"#,
    );
    s.push_str(&format!("  if [ \"$m\" -gt {cap} ]; then m={cap}; fi\n"));
    s.push_str(
        r#"  h $1 = "$n" "$m"
  head -c "$m" -- "$2"
}
wk() {
  if [ -d "$2" ] && [ ! -L "$2" ]; then
    find "$2" -xdev -exec stat -c "$NL$B W $1 %f %u %g %n" -- {} +
    h WE "$1" $?
  else h WE "$1" -; fi
}
pr() {
  h SELF $$
  for d in "$R"/proc/[0-9]*; do
    [ -d "$d" ] || continue
    p=${d##*/}
    case $p in *[!0-9]*) continue;; esac
    h P "$1" "$p" status; cat -- "$d/status"
    h P "$1" "$p" cmdline; cat -- "$d/cmdline"
  done
  h PE "$1"
}
cm() {
  o=$( (eval "$2") <&-; printf 'x%s' "$?" )
  r=${o##*x}; o=${o%x*}
  h X "$1" "$r"; printf '%s' "$o"
}
"#,
    );
    for (i, req) in plan.requests.iter().enumerate() {
        let line = match req {
            FactRequest::Stat(p) => format!("st {i} \"$R\"{}", q(p)),
            FactRequest::Read(p) => format!("rd 'C {i}' \"$R\"{}", q(p)),
            FactRequest::Walk(p) => format!("wk {i} \"$R\"{}", q(p)),
            FactRequest::Processes => format!("pr {i}"),
            FactRequest::Command(c) => format!("cm {i} {}", q(c)),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str("h END\nexit 0\n");
    s
}

fn num<T: std::str::FromStr>(tok: Option<&[u8]>, what: &str) -> Result<T, String> {
    tok.and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| format!("bad {what} field"))
}

fn hex_mode(tok: Option<&[u8]>) -> Result<u32, String> {
    tok.and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| u32::from_str_radix(t, 16).ok())
        .ok_or_else(|| "bad mode field".to_string())
}

fn strip_one_nl(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}

/// Parses framed script output back into facts for `plan`.
///
/// # Errors
/// Any framing violation: bytes outside frames, unknown or misplaced records,
/// a missing `END` (the script was cut short) or unanswered facts.
pub fn parse_output(
    stdout: &[u8],
    boundary: &str,
    root_prefix: &str,
    plan: &FactPlan,
    limits: &GatherLimits,
) -> Result<BTreeMap<FactRequest, FactValue>, String> {
    let index: Vec<&FactRequest> = plan.requests.iter().collect();
    let marker = format!("\n{boundary} ");
    let positions: Vec<usize> = memchr::memmem::find_iter(stdout, marker.as_bytes()).collect();
    match positions.first() {
        None => return Err("no framed output at all".into()),
        Some(&0) => {}
        Some(&p) => return Err(format!("{p} unexpected bytes before the first frame")),
    }
    let mut values: BTreeMap<FactRequest, FactValue> = BTreeMap::new();
    let mut walks: BTreeMap<usize, (Vec<WalkEntry>, bool)> = BTreeMap::new();
    let mut procs: BTreeMap<usize, BTreeMap<u32, ProcFiles>> = BTreeMap::new();
    let mut self_pid: Option<u32> = None;
    let mut ended = false;
    let fact = |i: usize| -> Result<&FactRequest, String> {
        index
            .get(i)
            .copied()
            .ok_or_else(|| format!("record for unknown fact #{i}"))
    };
    for (n, &start) in positions.iter().enumerate() {
        let body_start = start + marker.len();
        let end = positions.get(n + 1).copied().unwrap_or(stdout.len());
        let body = &stdout[body_start..end];
        if ended {
            return Err("records after END".into());
        }
        let (header, payload) = match memchr::memchr(b'\n', body) {
            Some(p) => (&body[..p], &body[p + 1..]),
            None => (body, &body[body.len()..]),
        };
        let mut tok = header.split(|b| *b == b' ');
        let kind = tok.next().unwrap_or_default();
        let ctx = |e: String| format!("record {n} ({}): {e}", String::from_utf8_lossy(kind));
        match kind {
            b"END" => ended = true,
            b"SELF" => self_pid = Some(num(tok.next(), "pid").map_err(ctx)?),
            b"S" => {
                let i: usize = num(tok.next(), "index").map_err(ctx)?;
                let req = fact(i)?;
                if !matches!(req, FactRequest::Stat(_)) {
                    return Err(ctx(format!("fact #{i} is not a stat")));
                }
                let v = match tok.next() {
                    Some(b"-") => StatFact::Missing,
                    Some(b"!") => StatFact::Error(rest_text(header, 3)),
                    Some(b"=") => {
                        let mode = hex_mode(tok.next()).map_err(ctx)?;
                        let uid = num(tok.next(), "uid").map_err(ctx)?;
                        let gid = num(tok.next(), "gid").map_err(ctx)?;
                        let size = num(tok.next(), "size").map_err(ctx)?;
                        let is_link = mode & crate::facts::S_IFMT == crate::facts::S_IFLNK;
                        StatFact::Present(FileStat {
                            mode,
                            uid,
                            gid,
                            size,
                            link_target: is_link.then(|| strip_one_nl(payload).to_vec()),
                        })
                    }
                    _ => return Err(ctx("bad stat status".into())),
                };
                insert_once(&mut values, req, FactValue::Stat(v))?;
            }
            b"C" => {
                let i: usize = num(tok.next(), "index").map_err(ctx)?;
                let req = fact(i)?;
                if !matches!(req, FactRequest::Read(_)) {
                    return Err(ctx(format!("fact #{i} is not a read")));
                }
                let v = match tok.next() {
                    Some(b"-") => ContentFact::Missing,
                    Some(b"N") => ContentFact::NotRegular,
                    Some(b"!") => ContentFact::Error(rest_text(header, 3)),
                    Some(b"=") => {
                        let total: u64 = num(tok.next(), "length").map_err(ctx)?;
                        let sent: u64 = num(tok.next(), "length").map_err(ctx)?;
                        if sent > limits.max_file_bytes || sent > total {
                            return Err(ctx(format!("length {sent} exceeds the per-file cap")));
                        }
                        if payload.len() as u64 != sent {
                            ContentFact::Error(format!(
                                "file changed while it was read (announced {sent} bytes, received {})",
                                payload.len()
                            ))
                        } else {
                            ContentFact::Data {
                                bytes: payload.to_vec(),
                                total_len: total,
                            }
                        }
                    }
                    _ => return Err(ctx("bad content status".into())),
                };
                insert_once(&mut values, req, FactValue::Content(v))?;
            }
            b"W" => {
                let i: usize = num(tok.next(), "index").map_err(ctx)?;
                if !matches!(fact(i)?, FactRequest::Walk(_)) {
                    return Err(ctx(format!("fact #{i} is not a walk")));
                }
                // The path is the rest of the whole body (it may contain newlines).
                let body = strip_one_nl(body);
                let mut fields = body.splitn(6, |b| *b == b' ');
                let _ = (fields.next(), fields.next());
                let mode = hex_mode(fields.next()).map_err(ctx)?;
                let uid = num(fields.next(), "uid").map_err(ctx)?;
                let gid = num(fields.next(), "gid").map_err(ctx)?;
                let raw_path = fields.next().ok_or_else(|| ctx("missing path".into()))?;
                let path = raw_path
                    .strip_prefix(root_prefix.as_bytes())
                    .filter(|p| p.starts_with(b"/"))
                    .ok_or_else(|| ctx("path outside the scanned root".into()))?;
                let entry = walks.entry(i).or_default();
                if entry.0.len() >= limits.max_walk_entries {
                    entry.1 = true;
                } else {
                    entry.0.push(WalkEntry {
                        path: path.to_vec(),
                        mode,
                        uid,
                        gid,
                    });
                }
            }
            b"WE" => {
                let i: usize = num(tok.next(), "index").map_err(ctx)?;
                let req = fact(i)?;
                if !matches!(req, FactRequest::Walk(_)) {
                    return Err(ctx(format!("fact #{i} is not a walk")));
                }
                let v = match tok.next() {
                    Some(b"-") => WalkFact::Missing,
                    rc => {
                        let rc: i32 = num(rc, "status").map_err(ctx)?;
                        let (mut entries, truncated) = walks.remove(&i).unwrap_or_default();
                        entries.sort();
                        WalkFact::Entries {
                            entries,
                            complete: rc == 0,
                            truncated,
                        }
                    }
                };
                insert_once(&mut values, req, FactValue::Walk(v))?;
            }
            b"P" => {
                let i: usize = num(tok.next(), "index").map_err(ctx)?;
                if !matches!(fact(i)?, FactRequest::Processes) {
                    return Err(ctx(format!("fact #{i} is not a process list")));
                }
                let pid: u32 = num(tok.next(), "pid").map_err(ctx)?;
                let slot = procs.entry(i).or_default().entry(pid).or_default();
                match tok.next() {
                    Some(b"status") => slot.0 = payload.to_vec(),
                    Some(b"cmdline") => slot.1 = payload.to_vec(),
                    _ => return Err(ctx("bad process file".into())),
                }
            }
            b"PE" => {
                let i: usize = num(tok.next(), "index").map_err(ctx)?;
                let req = fact(i)?;
                let list = procs.remove(&i).unwrap_or_default();
                let mut out = Vec::new();
                for (pid, (status, cmd)) in list {
                    let (uid, ppid) = parse_proc_status(&status);
                    // Hide the scan shell and the tools it spawned.
                    if Some(pid) == self_pid || (ppid.is_some() && ppid == self_pid) {
                        continue;
                    }
                    // Exited between listing and reading: gone, as for the local target.
                    if status.is_empty() && cmd.is_empty() {
                        continue;
                    }
                    out.push(ProcessInfo {
                        pid,
                        uid,
                        cmdline: split_cmdline(&cmd),
                    });
                }
                insert_once(
                    &mut values,
                    req,
                    FactValue::Processes(ProcessesFact::Listed(out)),
                )?;
            }
            b"X" => {
                let i: usize = num(tok.next(), "index").map_err(ctx)?;
                let req = fact(i)?;
                let rc: i32 = num(tok.next(), "status").map_err(ctx)?;
                insert_once(
                    &mut values,
                    req,
                    FactValue::Command(CommandFact::Ran {
                        exit_status: rc,
                        stdout: payload.to_vec(),
                    }),
                )?;
            }
            other => {
                return Err(format!(
                    "unknown record kind {:?}",
                    String::from_utf8_lossy(&other[..other.len().min(16)])
                ));
            }
        }
    }
    if !ended {
        return Err("output ended before the END frame (the script was cut short)".into());
    }
    if let Some(missing) = index.iter().find(|r| !values.contains_key(r)) {
        return Err(format!("no answer for {missing:?}"));
    }
    Ok(values)
}

/// `(status, cmdline)` bytes of one process.
type ProcFiles = (Vec<u8>, Vec<u8>);

fn insert_once(
    values: &mut BTreeMap<FactRequest, FactValue>,
    req: &FactRequest,
    v: FactValue,
) -> Result<(), String> {
    if values.insert(req.clone(), v).is_some() {
        return Err(format!("duplicate answer for {req:?}"));
    }
    Ok(())
}

fn rest_text(header: &[u8], skip: usize) -> String {
    let parts: Vec<&[u8]> = header.splitn(skip + 1, |b| *b == b' ').collect();
    parts
        .get(skip)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default()
}

/// Real uid and parent pid from `/proc/<pid>/status`.
pub fn parse_proc_status(status: &[u8]) -> (Option<u32>, Option<u32>) {
    let text = String::from_utf8_lossy(status);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    (field("Uid:"), field("PPid:"))
}

/// `cmdline` split on NUL, without the trailing empty element.
pub fn split_cmdline(cmd: &[u8]) -> Vec<Vec<u8>> {
    let cmd = cmd.strip_suffix(b"\0").unwrap_or(cmd);
    if cmd.is_empty() {
        return Vec::new();
    }
    cmd.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(reqs: &[FactRequest]) -> FactPlan {
        FactPlan {
            requests: reqs.iter().cloned().collect(),
        }
    }

    const B: &str = "SF0123456789abcdef0123456789abcdef";

    #[test]
    fn content_with_fake_frames_is_data_not_records() {
        let p = plan(&[FactRequest::Read("/x".into())]);
        // The file contains a boundary-looking line with a *different* boundary.
        let content = b"a\nSFdeadbeef C 0 = 1 1\nb\0\xff";
        let mut out = format!("\n{B} C 0 = {} {}\n", content.len(), content.len()).into_bytes();
        out.extend_from_slice(content);
        out.extend_from_slice(format!("\n{B} END\n").as_bytes());
        let v = parse_output(&out, B, "", &p, &GatherLimits::default()).expect("parses");
        assert_eq!(
            v[&FactRequest::Read("/x".into())],
            FactValue::Content(ContentFact::Data {
                bytes: content.to_vec(),
                total_len: content.len() as u64
            })
        );
    }

    #[test]
    fn length_mismatch_is_a_fact_error() {
        let p = plan(&[FactRequest::Read("/x".into())]);
        let out = format!("\n{B} C 0 = 5 5\nabc\n{B} END\n");
        let v = parse_output(out.as_bytes(), B, "", &p, &GatherLimits::default()).expect("parses");
        assert!(matches!(
            v[&FactRequest::Read("/x".into())],
            FactValue::Content(ContentFact::Error(_))
        ));
    }

    #[test]
    fn truncated_output_is_rejected() {
        let p = plan(&[FactRequest::Read("/x".into())]);
        let out = format!("\n{B} C 0 = 3 3\nabc");
        let e = parse_output(out.as_bytes(), B, "", &p, &GatherLimits::default()).unwrap_err();
        assert!(e.contains("END"), "{e}");
    }

    #[test]
    fn preamble_and_unknown_records_are_rejected() {
        let p = plan(&[]);
        let e = parse_output(
            format!("junk\n{B} END\n").as_bytes(),
            B,
            "",
            &p,
            &GatherLimits::default(),
        )
        .unwrap_err();
        assert!(e.contains("before the first frame"), "{e}");
        let e = parse_output(
            format!("\n{B} ZZ 1\n\n{B} END\n").as_bytes(),
            B,
            "",
            &p,
            &GatherLimits::default(),
        )
        .unwrap_err();
        assert!(e.contains("unknown record"), "{e}");
    }

    #[test]
    fn walk_names_with_newlines_survive() {
        let p = plan(&[FactRequest::Walk("/d".into())]);
        let out = format!(
            "\n{B} W 0 41ed 0 0 /d\n\n{B} W 0 81a4 0 0 /d/new\nline\n\n{B} WE 0 0\n\n{B} END\n"
        );
        let v = parse_output(out.as_bytes(), B, "", &p, &GatherLimits::default()).expect("parses");
        let FactValue::Walk(WalkFact::Entries { entries, .. }) =
            &v[&FactRequest::Walk("/d".into())]
        else {
            panic!("walk expected")
        };
        assert_eq!(entries[1].path, b"/d/new\nline".to_vec());
    }

    #[test]
    fn script_quotes_hostile_paths() {
        let p = plan(&[FactRequest::Stat("/a'b $(reboot)".into())]);
        let s = generate_script(&p, B, "", &GatherLimits::default());
        assert!(s.contains(r#"st 0 "$R"'/a'\''b $(reboot)'"#), "{s}");
    }
}
