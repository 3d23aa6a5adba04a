//! The one scan script: a whole fact plan as a POSIX `sh` script (busybox
//! ash compatible) that answers every fact in framed records on stdout.
//!
//! Each fact becomes one line calling a small shell function (`st`, `rd`,
//! `wk`, `pr`, `cm`); every path and command is single-quoted, so nothing a
//! profile or a target names is ever interpreted by the shell except a
//! `command:` check's own text.

use rand_core::{OsRng, RngCore};

use crate::facts::{FactPlan, FactRequest, GatherLimits};

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
/// `XO i` + stdout then `X i status` + stderr; finally `END`.
pub fn generate_script(
    plan: &FactPlan,
    boundary: &str,
    root_prefix: &str,
    limits: &GatherLimits,
) -> String {
    let cap = limits.max_file_bytes;
    let mut s = String::new();
    s.push_str("LC_ALL=C; export LC_ALL\nexec 3>&1\n");
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
sf() {
  p=$2; n=0
  while [ -L "$R$p" ] && [ "$n" -lt 40 ]; do
    t=$(readlink -- "$R$p") || break
    n=$((n+1))
    case $t in /*) p=$t;; *) p=${p%/*}/$t;; esac
  done
  if [ -e "$R$p" ]; then
    if s=$(stat -L -c '%f %u %g %s' -- "$R$p"); then h S "$1" = $s; printf '%s' "$p"
    else h S "$1" '!' "stat exited with status $?"; fi
  else h S "$1" -; fi
}
cm() {
  h XO "$1"
  e=$( { o=$( (eval "$2") <&- 2>&4 4>&-; printf 'x%s' "$?" ); printf '%s' "${o%x*}" >&3; printf 'x%s' "${o##*x}"; } 4>&1 )
  r=${e##*x}; e=${e%x*}
  h X "$1" "$r"; printf '%s' "$e"
}
"#,
    );
    for (i, req) in plan.requests.iter().enumerate() {
        let line = match req {
            FactRequest::Stat(p) => format!("st {i} \"$R\"{}", q(p)),
            FactRequest::StatFollow(p) => format!("sf {i} {}", q(p)),
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

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "SF0123456789abcdef0123456789abcdef";

    #[test]
    fn script_quotes_hostile_paths() {
        let p = FactPlan {
            requests: [FactRequest::Stat("/a'b $(reboot)".into())].into(),
        };
        let s = generate_script(&p, B, "", &GatherLimits::default());
        assert!(s.contains(r#"st 0 "$R"'/a'\''b $(reboot)'"#), "{s}");
    }
}
