//! Reading the scan script's framed stdout back into facts.
//!
//! Every record starts with `\n<B> ` where `<B>` is the scan's random
//! boundary; the header line names the record kind and the fact it answers,
//! and the rest of the frame is its payload. Anything that does not fit
//! (bytes outside frames, unknown or misplaced records, answers for facts
//! never asked, a missing `END`) fails the whole parse: a target must never
//! be able to make us read a fact it did not answer honestly.

use std::collections::BTreeMap;
use std::slice::Split;

use crate::facts::{
    CommandFact, ContentFact, FactPlan, FactRequest, FactValue, FileStat, GatherLimits,
    ProcessInfo, ProcessesFact, S_IFLNK, S_IFMT, StatFact, WalkEntry, WalkFact,
};
use crate::system_files::{parse_proc_status, split_cmdline};

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
    let mut parser = Parser {
        index: plan.requests.iter().collect(),
        root_prefix,
        limits,
        values: BTreeMap::new(),
        walks: BTreeMap::new(),
        procs: BTreeMap::new(),
        stdouts: BTreeMap::new(),
        self_pid: None,
        ended: false,
    };
    for (n, body) in frames(stdout, boundary)?.into_iter().enumerate() {
        if parser.ended {
            return Err("records after END".into());
        }
        parser.record(Record::new(n, body))?;
    }
    parser.finish()
}

/// The body of every frame (what follows `\n<B> `), in order.
fn frames<'o>(stdout: &'o [u8], boundary: &str) -> Result<Vec<&'o [u8]>, String> {
    let marker = format!("\n{boundary} ");
    let positions: Vec<usize> = memchr::memmem::find_iter(stdout, marker.as_bytes()).collect();
    match positions.first() {
        None => return Err("no framed output at all".into()),
        Some(&0) => {}
        Some(&p) => return Err(format!("{p} unexpected bytes before the first frame")),
    }
    Ok(positions
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = positions.get(n + 1).copied().unwrap_or(stdout.len());
            &stdout[start + marker.len()..end]
        })
        .collect())
}

/// `(status, cmdline)` bytes of one process.
type ProcFiles = (Vec<u8>, Vec<u8>);

/// What the records read so far have established.
struct Parser<'a> {
    /// Planned requests by the index the script numbers them with.
    index: Vec<&'a FactRequest>,
    root_prefix: &'a str,
    limits: &'a GatherLimits,
    values: BTreeMap<FactRequest, FactValue>,
    /// Walk entries per fact index until its `WE` record, and whether the
    /// entry cap cut them.
    walks: BTreeMap<usize, (Vec<WalkEntry>, bool)>,
    /// Process files per fact index and pid until its `PE` record.
    procs: BTreeMap<usize, BTreeMap<u32, ProcFiles>>,
    /// Command stdouts (`XO`) waiting for their status record (`X`).
    stdouts: BTreeMap<usize, Vec<u8>>,
    /// The scan shell's own pid, hidden from the process list.
    self_pid: Option<u32>,
    ended: bool,
}

/// One frame: its header split into tokens, and its payload.
struct Record<'b> {
    n: usize,
    kind: &'b [u8],
    tok: Split<'b, u8, fn(&u8) -> bool>,
    header: &'b [u8],
    payload: &'b [u8],
    body: &'b [u8],
}

fn is_space(b: &u8) -> bool {
    *b == b' '
}

impl<'b> Record<'b> {
    fn new(n: usize, body: &'b [u8]) -> Self {
        let (header, payload) = match memchr::memchr(b'\n', body) {
            Some(p) => (&body[..p], &body[p + 1..]),
            None => (body, &body[body.len()..]),
        };
        let mut tok = header.split(is_space as fn(&u8) -> bool);
        let kind = tok.next().unwrap_or_default();
        Self {
            n,
            kind,
            tok,
            header,
            payload,
            body,
        }
    }

    /// `e`, naming the record it is about.
    fn ctx(&self, e: String) -> String {
        format!(
            "record {} ({}): {e}",
            self.n,
            String::from_utf8_lossy(self.kind)
        )
    }

    /// The next header token as a number.
    fn num<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, String> {
        let t = self.tok.next();
        num(t, what).map_err(|e| self.ctx(e))
    }

    /// The next header token as a hex `st_mode`.
    fn hex_mode(&mut self) -> Result<u32, String> {
        let t = self.tok.next();
        hex_mode(t).map_err(|e| self.ctx(e))
    }
}

impl<'a> Parser<'a> {
    fn record(&mut self, mut r: Record<'_>) -> Result<(), String> {
        match r.kind {
            b"END" => self.ended = true,
            b"SELF" => self.self_pid = Some(r.num("pid")?),
            b"S" => self.stat(&mut r)?,
            b"C" => self.content(&mut r)?,
            b"W" => self.walk_entry(&mut r)?,
            b"WE" => self.walk_end(&mut r)?,
            b"P" => self.process_file(&mut r)?,
            b"PE" => self.processes_end(&mut r)?,
            b"XO" => self.command_stdout(&mut r)?,
            b"X" => self.command(&mut r)?,
            other => {
                return Err(format!(
                    "unknown record kind {:?}",
                    String::from_utf8_lossy(&other[..other.len().min(16)])
                ));
            }
        }
        Ok(())
    }

    /// The planned request the script numbered `i`.
    fn fact(&self, i: usize) -> Result<&'a FactRequest, String> {
        self.index
            .get(i)
            .copied()
            .ok_or_else(|| format!("record for unknown fact #{i}"))
    }

    /// The request a record answers, which must be of the expected kind.
    fn answered(
        &self,
        r: &mut Record<'_>,
        is_kind: fn(&FactRequest) -> bool,
        kind: &str,
    ) -> Result<(usize, &'a FactRequest), String> {
        let i: usize = r.num("index")?;
        let req = self.fact(i)?;
        if !is_kind(req) {
            return Err(r.ctx(format!("fact #{i} is not {kind}")));
        }
        Ok((i, req))
    }

    fn insert_once(&mut self, req: &FactRequest, v: FactValue) -> Result<(), String> {
        if self.values.insert(req.clone(), v).is_some() {
            return Err(format!("duplicate answer for {req:?}"));
        }
        Ok(())
    }

    /// `S i = mode uid gid size` + link target | `S i -` | `S i ! msg`.
    fn stat(&mut self, r: &mut Record<'_>) -> Result<(), String> {
        let (_, req) = self.answered(
            r,
            |q| matches!(q, FactRequest::Stat(_) | FactRequest::StatFollow(_)),
            "a stat",
        )?;
        let followed = matches!(req, FactRequest::StatFollow(_));
        let v = match r.tok.next() {
            Some(b"-") => StatFact::Missing,
            Some(b"!") => StatFact::Error(rest_text(r.header, 3)),
            Some(b"=") => {
                let mode = r.hex_mode()?;
                let uid = r.num("uid")?;
                let gid = r.num("gid")?;
                let size = r.num("size")?;
                let is_link = mode & S_IFMT == S_IFLNK;
                StatFact::Present(FileStat {
                    mode,
                    uid,
                    gid,
                    size,
                    // A followed stat carries the path the links resolved to.
                    link_target: (is_link || followed).then(|| strip_one_nl(r.payload).to_vec()),
                })
            }
            _ => return Err(r.ctx("bad stat status".into())),
        };
        self.insert_once(req, FactValue::Stat(v))
    }

    /// `C i = total sent` + bytes | `C i -` | `C i N` | `C i ! msg`.
    fn content(&mut self, r: &mut Record<'_>) -> Result<(), String> {
        let (_, req) = self.answered(r, |q| matches!(q, FactRequest::Read(_)), "a read")?;
        let v = match r.tok.next() {
            Some(b"-") => ContentFact::Missing,
            Some(b"N") => ContentFact::NotRegular,
            Some(b"!") => ContentFact::Error(rest_text(r.header, 3)),
            Some(b"=") => {
                let total: u64 = r.num("length")?;
                let sent: u64 = r.num("length")?;
                if sent > self.limits.max_file_bytes || sent > total {
                    return Err(r.ctx(format!("length {sent} exceeds the per-file cap")));
                }
                if r.payload.len() as u64 != sent {
                    ContentFact::Error(format!(
                        "file changed while it was read (announced {sent} bytes, received {})",
                        r.payload.len()
                    ))
                } else {
                    ContentFact::Data {
                        bytes: r.payload.to_vec(),
                        total_len: total,
                    }
                }
            }
            _ => return Err(r.ctx("bad content status".into())),
        };
        self.insert_once(req, FactValue::Content(v))
    }

    /// `W i mode uid gid path`: one walk entry; the path is the rest of the
    /// whole frame, since file names may contain newlines.
    fn walk_entry(&mut self, r: &mut Record<'_>) -> Result<(), String> {
        let (i, _) = self.answered(r, |q| matches!(q, FactRequest::Walk(_)), "a walk")?;
        let body = strip_one_nl(r.body);
        let mut fields = body.splitn(6, |b| *b == b' ');
        let _ = (fields.next(), fields.next());
        let mode = hex_mode(fields.next()).map_err(|e| r.ctx(e))?;
        let uid = num(fields.next(), "uid").map_err(|e| r.ctx(e))?;
        let gid = num(fields.next(), "gid").map_err(|e| r.ctx(e))?;
        let raw_path = fields.next().ok_or_else(|| r.ctx("missing path".into()))?;
        let path = raw_path
            .strip_prefix(self.root_prefix.as_bytes())
            .filter(|p| p.starts_with(b"/"))
            .ok_or_else(|| r.ctx("path outside the scanned root".into()))?;
        let entry = self.walks.entry(i).or_default();
        if entry.0.len() >= self.limits.max_walk_entries {
            entry.1 = true;
        } else {
            entry.0.push(WalkEntry {
                path: path.to_vec(),
                mode,
                uid,
                gid,
            });
        }
        Ok(())
    }

    /// `WE i rc` (the walk's entries are complete) or `WE i -` (no such directory).
    fn walk_end(&mut self, r: &mut Record<'_>) -> Result<(), String> {
        let (i, req) = self.answered(r, |q| matches!(q, FactRequest::Walk(_)), "a walk")?;
        let v = match r.tok.next() {
            Some(b"-") => WalkFact::Missing,
            rc => {
                let rc: i32 = num(rc, "status").map_err(|e| r.ctx(e))?;
                let (mut entries, truncated) = self.walks.remove(&i).unwrap_or_default();
                entries.sort();
                WalkFact::Entries {
                    entries,
                    complete: rc == 0,
                    truncated,
                }
            }
        };
        self.insert_once(req, FactValue::Walk(v))
    }

    /// `P i pid status|cmdline` + the file's bytes.
    fn process_file(&mut self, r: &mut Record<'_>) -> Result<(), String> {
        let is_list = |q: &FactRequest| matches!(q, FactRequest::Processes);
        let (i, _) = self.answered(r, is_list, "a process list")?;
        let pid: u32 = r.num("pid")?;
        let slot = self.procs.entry(i).or_default().entry(pid).or_default();
        match r.tok.next() {
            Some(b"status") => slot.0 = r.payload.to_vec(),
            Some(b"cmdline") => slot.1 = r.payload.to_vec(),
            _ => return Err(r.ctx("bad process file".into())),
        }
        Ok(())
    }

    /// `PE i`: the process list is complete.
    fn processes_end(&mut self, r: &mut Record<'_>) -> Result<(), String> {
        let i: usize = r.num("index")?;
        let req = self.fact(i)?;
        let list = self.procs.remove(&i).unwrap_or_default();
        let mut out = Vec::new();
        for (pid, (status, cmd)) in list {
            let (uid, ppid) = parse_proc_status(&status);
            // Hide the scan shell and the tools it spawned.
            if Some(pid) == self.self_pid || (ppid.is_some() && ppid == self.self_pid) {
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
        self.insert_once(req, FactValue::Processes(ProcessesFact::Listed(out)))
    }

    /// `XO i` + the command's stdout; must be followed by its `X` record.
    fn command_stdout(&mut self, r: &mut Record<'_>) -> Result<(), String> {
        let i: usize = r.num("index")?;
        let req = self.fact(i)?;
        if !matches!(req, FactRequest::Command(_))
            || self.stdouts.insert(i, r.payload.to_vec()).is_some()
        {
            return Err(r.ctx("stdout for a fact that is not a pending command".into()));
        }
        Ok(())
    }

    /// `X i status` + the command's stderr, after its `XO` record.
    fn command(&mut self, r: &mut Record<'_>) -> Result<(), String> {
        let i: usize = r.num("index")?;
        let req = self.fact(i)?;
        let rc: i32 = r.num("status")?;
        let Some(stdout) = self.stdouts.remove(&i) else {
            return Err(r.ctx("command status without its stdout".into()));
        };
        let ran = CommandFact::Ran {
            exit_status: rc,
            stdout,
            stderr: r.payload.to_vec(),
        };
        self.insert_once(req, FactValue::Command(ran))
    }

    /// Every planned fact, once `END` was seen and each was answered.
    fn finish(self) -> Result<BTreeMap<FactRequest, FactValue>, String> {
        if !self.ended {
            return Err("output ended before the END frame (the script was cut short)".into());
        }
        if let Some(missing) = self.index.iter().find(|r| !self.values.contains_key(r)) {
            return Err(format!("no answer for {missing:?}"));
        }
        Ok(self.values)
    }
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

fn rest_text(header: &[u8], skip: usize) -> String {
    let parts: Vec<&[u8]> = header.splitn(skip + 1, |b| *b == b' ').collect();
    parts
        .get(skip)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default()
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
    fn framing_violations_name_the_problem() {
        let p = plan(&[FactRequest::Read("/x".into())]);
        for (out, needle) in [
            (String::new(), "no framed output at all"),
            (format!("\n{B} END\n\n{B} END\n"), "records after END"),
            (
                format!("\n{B} C 1 -\n\n{B} END\n"),
                "record for unknown fact #1",
            ),
            (
                format!("\n{B} S 0 -\n\n{B} END\n"),
                "record 0 (S): fact #0 is not a stat",
            ),
            (
                format!("\n{B} C 0 -\n\n{B} C 0 -\n\n{B} END\n"),
                "duplicate answer",
            ),
            (format!("\n{B} END\n"), "no answer for Read(\"/x\")"),
            (
                format!("\n{B} C 0 = 9 99999999999\n\n{B} END\n"),
                "exceeds the per-file cap",
            ),
            (
                format!("\n{B} C 0 ?\n\n{B} END\n"),
                "record 0 (C): bad content status",
            ),
            (format!("\n{B} C x\n"), "record 0 (C): bad index field"),
        ] {
            let e = parse_output(out.as_bytes(), B, "", &p, &GatherLimits::default()).unwrap_err();
            assert!(e.contains(needle), "{out:?}: {e}");
        }
    }

    #[test]
    fn walk_paths_stay_inside_the_root() {
        let p = plan(&[FactRequest::Walk("/d".into())]);
        let out = format!("\n{B} W 0 41ed 0 0 /elsewhere/d\n\n{B} WE 0 0\n\n{B} END\n");
        let e = parse_output(out.as_bytes(), B, "/root", &p, &GatherLimits::default()).unwrap_err();
        assert!(e.contains("path outside the scanned root"), "{e}");
    }

    #[test]
    fn the_scan_shell_and_its_children_are_hidden() {
        let p = plan(&[FactRequest::Processes]);
        let out = format!(
            "\n{B} SELF 10\n\n{B} P 0 1 status\nUid:\t5\t5\t5\t5\nPPid:\t0\n{B} P 0 1 cmdline\ninit\0-v\0\n{B} P 0 10 status\nPPid:\t1\n{B} P 0 11 status\nUid:\t0\nPPid:\t10\n{B} P 0 12 status\n\n{B} PE 0\n\n{B} END\n"
        );
        let v = parse_output(out.as_bytes(), B, "", &p, &GatherLimits::default()).expect("parses");
        assert_eq!(
            v[&FactRequest::Processes],
            FactValue::Processes(ProcessesFact::Listed(vec![ProcessInfo {
                pid: 1,
                uid: Some(5),
                cmdline: vec![b"init".to_vec(), b"-v".to_vec()],
            }]))
        );
    }
}
