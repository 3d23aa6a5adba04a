//! Well-known system files on a target: which fact requests gather them and
//! how those facts read back as text or typed values.
//!
//! Every check kind (and any later profile front end) reads accounts,
//! groups, packages and os-release through here, so where a file lives and
//! what "missing" or "too large" means has one owner. Parsing the text is
//! [`crate::system_files`]' job.

use std::collections::BTreeMap;

use crate::facts::{ContentFact, FactRequest, Facts};
use crate::system_files::{parse_apk_installed, parse_dpkg_status, parse_group, parse_passwd};

/// Local accounts.
pub const PASSWD: &str = "/etc/passwd";
/// Password hashes.
pub const SHADOW: &str = "/etc/shadow";
/// Local groups.
pub const GROUP: &str = "/etc/group";
/// Debian's package database.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// Alpine's package database.
pub const APK_INSTALLED: &str = "/lib/apk/db/installed";
const OS_RELEASE: &str = "/etc/os-release";
const OS_RELEASE_FALLBACK: &str = "/usr/lib/os-release";
/// Environment of the main process.
pub const MAIN_ENVIRON: &str = "/proc/1/environ";

/// Text of a small system file, or why it is unavailable.
pub enum Text {
    /// The whole file, decoded lossily.
    Ok(String),
    /// Nothing at that path.
    Missing,
    /// It exists but cannot be used; the message says why.
    Problem(String),
}

/// The whole text of `path`; a file cut at the per-file read cap is a
/// problem, never a silently shortened file.
pub fn text_of(facts: &Facts, path: &str) -> Text {
    match facts.content(path) {
        ContentFact::Data { bytes, total_len } if total_len as usize == bytes.len() => {
            Text::Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        ContentFact::Data { total_len, .. } => Text::Problem(format!(
            "{path} is {total_len} bytes, larger than the per-file read cap"
        )),
        ContentFact::Missing => Text::Missing,
        ContentFact::NotRegular => Text::Problem(format!("{path} is not a regular file")),
        ContentFact::Error(e) => Text::Problem(format!("cannot read {path}: {e}")),
    }
}

/// Fact requests os-release detection needs (also used for the HDF platform).
pub fn os_release_requests() -> [FactRequest; 2] {
    [
        FactRequest::Read(OS_RELEASE.into()),
        FactRequest::Read(OS_RELEASE_FALLBACK.into()),
    ]
}

/// os-release key/values from facts: `/etc/os-release`, else `/usr/lib/os-release`.
pub fn os_release(facts: &Facts) -> Option<BTreeMap<String, String>> {
    for p in [OS_RELEASE, OS_RELEASE_FALLBACK] {
        if let ContentFact::Data { bytes, .. } = facts.content(p) {
            return Some(crate::system_files::parse_os_release(
                &String::from_utf8_lossy(&bytes),
            ));
        }
    }
    None
}

/// The first problem reading os-release, when neither file could be used.
pub fn os_release_problem(facts: &Facts) -> Option<String> {
    [OS_RELEASE, OS_RELEASE_FALLBACK]
        .into_iter()
        .find_map(|p| match text_of(facts, p) {
            Text::Problem(e) => Some(e),
            _ => None,
        })
}

/// Fact requests for every package database the engine reads.
pub fn package_db_requests() -> [FactRequest; 2] {
    [
        FactRequest::Read(DPKG_STATUS.into()),
        FactRequest::Read(APK_INSTALLED.into()),
    ]
}

/// Installed packages from whichever databases exist.
#[derive(Debug, Default)]
pub struct InstalledPackages {
    /// name -> version.
    pub versions: BTreeMap<String, String>,
    /// Whether any package database was found at all.
    pub any_db: bool,
    /// Databases that exist but could not be read.
    pub problems: Vec<String>,
}

/// Reads dpkg and apk databases; a missing one is normal (a distroless
/// image has neither).
pub fn installed_packages(facts: &Facts) -> InstalledPackages {
    let mut out = InstalledPackages::default();
    for (path, parse) in [
        (
            DPKG_STATUS,
            parse_dpkg_status as fn(&str) -> BTreeMap<String, String>,
        ),
        (APK_INSTALLED, parse_apk_installed),
    ] {
        match text_of(facts, path) {
            Text::Ok(t) => {
                out.any_db = true;
                out.versions.extend(parse(&t));
            }
            Text::Missing => {}
            Text::Problem(e) => out.problems.push(e),
        }
    }
    out
}

/// Whether an owner or group spec is a name that needs passwd or group to
/// resolve (a number is used as is).
pub fn is_name(spec: &str) -> bool {
    spec.parse::<u32>().is_err()
}

/// A uid from a number or a user name in passwd.
pub fn resolve_uid(spec: &str, facts: &Facts) -> Result<u32, String> {
    resolve_id(spec, facts, PASSWD, |text, name| {
        parse_passwd(text)
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| e.uid)
    })
}

/// A gid from a number or a group name in group.
pub fn resolve_gid(spec: &str, facts: &Facts) -> Result<u32, String> {
    resolve_id(spec, facts, GROUP, |text, name| {
        parse_group(text)
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| e.gid)
    })
}

fn resolve_id(
    spec: &str,
    facts: &Facts,
    file: &str,
    by_name: fn(&str, &str) -> Option<u32>,
) -> Result<u32, String> {
    if let Ok(n) = spec.parse::<u32>() {
        return Ok(n);
    }
    match text_of(facts, file) {
        Text::Ok(t) => {
            by_name(&t, spec).ok_or_else(|| format!("`{spec}` is not defined in {file}"))
        }
        Text::Missing => Err(format!(
            "{file} does not exist, so `{spec}` cannot be resolved"
        )),
        Text::Problem(p) => Err(p),
    }
}
