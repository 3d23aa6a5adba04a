//! The sidecar approach: a scanner container that shares the pod's process
//! namespace finds the target container's main process and scans its root
//! as `/proc/<pid>/root`.
//!
//! Kubernetes does not tell a container which PIDs belong to its siblings,
//! so the sidecar looks: a container's main process is one whose mount
//! namespace differs from the sidecar's and from its parent's (the top of
//! another container), excluding PID 1 (the pod sandbox). When the pod runs
//! several other containers, the target's spec `command` picks among them;
//! anything still ambiguous is refused rather than guessed, because scanning
//! the wrong container would sign a false statement.
//!
//! What the sidecar prints is untrusted: it is parsed strictly, as numbers
//! and hex only.

use k8s_openapi::api::core::v1::Pod;

/// Lists candidate processes, one `C <pid> <hex cmdline>` line each.
pub const DISCOVERY_SCRIPT: &str = r#"m=$(readlink /proc/self/ns/mnt)
for d in /proc/[0-9]*; do
  p=${d##*/}
  case $p in *[!0-9]*|1) continue;; esac
  n=$(readlink "$d/ns/mnt" 2>&-) || continue
  [ -n "$n" ] && [ "$n" != "$m" ] || continue
  pp=$(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>&-)
  [ "$(readlink "/proc/$pp/ns/mnt" 2>&-)" = "$n" ] && continue
  printf 'C %s ' "$p"
  head -c 4096 "$d/cmdline" 2>&- | od -An -v -tx1 | tr -d ' \n'
  printf '\n'
done
exit 0
"#;

/// A process at the top of another container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its PID in the shared namespace.
    pub pid: u32,
    /// Its argv.
    pub argv: Vec<String>,
}

/// Why the target's process could not be identified.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SidecarError {
    /// Output that is not what the discovery script prints.
    #[error("sidecar discovery output line {line}: {reason}")]
    Malformed {
        /// 1-based line.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// Nothing visible.
    #[error(
        "the sidecar sees no process of another container (is shareProcessNamespace on, and may the sidecar read /proc/<pid>/ns?)"
    )]
    NoneVisible,
    /// Several containers and nothing to tell them apart.
    #[error(
        "cannot tell container {container:?}'s process among {count} candidates; give the container an explicit command"
    )]
    Ambiguous {
        /// The target container.
        container: String,
        /// How many candidates.
        count: usize,
    },
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses the discovery output.
///
/// # Errors
/// [`SidecarError::Malformed`] for anything unexpected.
pub fn parse_candidates(stdout: &[u8]) -> Result<Vec<Candidate>, SidecarError> {
    let text = std::str::from_utf8(stdout).map_err(|_| SidecarError::Malformed {
        line: 0,
        reason: "not UTF-8".into(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |reason: &str| SidecarError::Malformed {
            line: i + 1,
            reason: reason.into(),
        };
        let mut parts = line.split(' ');
        if parts.next() != Some("C") {
            return Err(bad("expected a candidate line"));
        }
        let pid = parts
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .ok_or_else(|| bad("bad pid"))?;
        let raw = hex_decode(parts.next().unwrap_or("")).ok_or_else(|| bad("bad cmdline"))?;
        if parts.next().is_some() {
            return Err(bad("trailing fields"));
        }
        let argv = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        out.push(Candidate { pid, argv });
    }
    Ok(out)
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Picks the target container's main process.
///
/// # Errors
/// [`SidecarError`] when none or several fit.
pub fn pick_target(
    candidates: &[Candidate],
    pod: &Pod,
    container: &str,
) -> Result<u32, SidecarError> {
    match candidates {
        [] => Err(SidecarError::NoneVisible),
        [only] => Ok(only.pid),
        many => {
            let spec = pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.iter().find(|c| c.name == container));
            let command: Vec<String> = spec
                .map(|c| {
                    c.command
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .chain(c.args.clone().unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default();
            let ambiguous = || SidecarError::Ambiguous {
                container: container.into(),
                count: many.len(),
            };
            let Some(first) = command.first() else {
                return Err(ambiguous());
            };
            let exact: Vec<&Candidate> = many.iter().filter(|c| c.argv == command).collect();
            if let [one] = exact.as_slice() {
                return Ok(one.pid);
            }
            let by_name: Vec<&Candidate> = many
                .iter()
                .filter(|c| c.argv.first().map(|a| basename(a)) == Some(basename(first)))
                .collect();
            match by_name.as_slice() {
                [one] => Ok(one.pid),
                _ => Err(ambiguous()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &[u8]) -> String {
        s.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn candidates_parse_and_hostile_lines_are_refused() {
        let out = format!(
            "C 12 {}\nC 40 {}\n",
            hex(b"sleep\0infinity\0"),
            hex(b"nginx\0")
        );
        let c = parse_candidates(out.as_bytes()).unwrap();
        assert_eq!(c[0].pid, 12);
        assert_eq!(c[0].argv, ["sleep", "infinity"]);
        for bad in [
            "C x 00\n",
            "C 1 0\n",
            "X 1 00\n",
            "C 1 00 extra\n",
            "C 1 zz\n",
        ] {
            assert!(parse_candidates(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_single_candidate_is_the_target_and_several_need_a_command() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "spec": {"containers": [
                {"name": "app", "image": "x", "command": ["/usr/bin/nginx"]},
                {"name": "other", "image": "y"}]}
        }))
        .unwrap();
        let a = Candidate {
            pid: 7,
            argv: vec!["sleep".into()],
        };
        let b = Candidate {
            pid: 9,
            argv: vec!["nginx".into(), "-g".into()],
        };
        assert_eq!(pick_target(std::slice::from_ref(&a), &pod, "app"), Ok(7));
        assert_eq!(pick_target(&[a.clone(), b.clone()], &pod, "app"), Ok(9));
        assert!(matches!(
            pick_target(&[a.clone(), b], &pod, "other"),
            Err(SidecarError::Ambiguous { .. })
        ));
        assert_eq!(
            pick_target(&[], &pod, "app"),
            Err(SidecarError::NoneVisible)
        );
    }
}
