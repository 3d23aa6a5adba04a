//! InSpec's built-in resources, answered from gathered facts.
//!
//! A resource is constructed cheaply; each attribute reads the facts it
//! needs through [`Interp::fact`], so planning (no facts) records exactly
//! the facts the profile touches, and a missing fact yields
//! [`Value::Unknown`] instead of a guess. Every resource has InSpec's
//! display name (it starts each `code_desc`). Families: `files.rs`
//! (file, directory), `system.rs` (command, bash, os, platform,
//! virtualization, os_env, processes, kernel and mounts, selinux,
//! crontab), `accounts.rs` (users, groups, passwd, shadow), `packages.rs`
//! (package(s), service), `config.rs` (key/value configs, sshd, auditd,
//! limits, login.defs, json, yaml, ini), `nginx.rs`, `certs.rs`
//! (x509_certificate, auditd).

use std::cell::RefCell;
use std::rc::Rc;

use super::interp::{Args, Interp, R};
use super::value::Value;
use crate::facts::{CommandFact, ContentFact, FactRequest, FactValue, StatFact};

mod accounts;
mod certs;
mod config;
mod files;
mod nginx;
mod packages;
mod system;

/// A built-in resource instance.
#[derive(Debug)]
pub struct Resource {
    /// Which resource.
    pub kind: ResKind,
    /// Its main argument (a path, name, command ...) as text.
    pub arg: String,
    /// The first argument as given (a regex for `packages(/x/)`).
    pub value: Value,
    /// Constructor options (`parse_config_file(path, opts)`, `crontab(user: ...)`).
    pub opts: Value,
    /// InSpec's display name (`File /etc/passwd`).
    pub display: String,
    /// Parsed data, computed once per evaluation.
    pub cache: RefCell<Option<Value>>,
}

macro_rules! resource_kinds {
    ($($variant:ident => $name:literal,)+) => {
        /// The built-in resources.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ResKind { $(#[doc = $name] $variant,)+ }

        impl ResKind {
            /// The name profiles call it by.
            pub fn name(self) -> &'static str {
                match self { $(Self::$variant => $name,)+ }
            }

            /// The kind called `name`.
            pub fn by_name(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant),)+ _ => None }
            }
        }

        /// Every built-in resource name, for `docs/profiles.md` and errors.
        pub const RESOURCE_NAMES: &[&str] = &[$($name,)+];
    };
}

resource_kinds! {
    File => "file",
    Directory => "directory",
    Command => "command",
    Bash => "bash",
    Os => "os",
    Platform => "platform",
    Virtualization => "virtualization",
    OsEnv => "os_env",
    Processes => "processes",
    KernelParameter => "kernel_parameter",
    KernelModule => "kernel_module",
    Mount => "mount",
    EtcFstab => "etc_fstab",
    Selinux => "selinux",
    Crontab => "crontab",
    Users => "users",
    User => "user",
    Passwd => "passwd",
    Shadow => "shadow",
    Group => "group",
    Groups => "groups",
    EtcGroup => "etc_group",
    Package => "package",
    Packages => "packages",
    Service => "service",
    SystemdService => "systemd_service",
    ParseConfig => "parse_config",
    ParseConfigFile => "parse_config_file",
    LoginDefs => "login_defs",
    LimitsConf => "limits_conf",
    SshdConfig => "sshd_config",
    SshConfig => "ssh_config",
    SshdActiveConfig => "sshd_active_config",
    AuditdConf => "auditd_conf",
    Json => "json",
    Yaml => "yaml",
    Ini => "ini",
    Nginx => "nginx",
    NginxConf => "nginx_conf",
    X509Certificate => "x509_certificate",
    Auditd => "auditd",
}

/// What a fact lookup found: the fact, or unknown (not gathered; recorded).
pub enum Got<T> {
    /// The fact.
    Ready(T),
    /// Not gathered yet.
    Unknown,
}

/// The lstat (`follow = false`) or stat of `path`.
pub fn stat<'a>(it: &Interp<'a>, path: &str, follow: bool) -> Got<&'a StatFact> {
    let req = if follow {
        FactRequest::StatFollow(path.to_string())
    } else {
        FactRequest::Stat(path.to_string())
    };
    match it.fact(&req) {
        Some(FactValue::Stat(s)) => Got::Ready(s),
        _ => Got::Unknown,
    }
}

/// A file's content fact.
pub fn content<'a>(it: &Interp<'a>, path: &str) -> Got<&'a ContentFact> {
    match it.fact(&FactRequest::Read(path.to_string())) {
        Some(FactValue::Content(c)) => Got::Ready(c),
        _ => Got::Unknown,
    }
}

/// A file's whole text: `Ok(None)` when missing, `Err` when unusable.
pub fn text(it: &Interp<'_>, path: &str) -> Got<Result<Option<String>, String>> {
    match content(it, path) {
        Got::Unknown => Got::Unknown,
        Got::Ready(ContentFact::Data { bytes, total_len })
            if *total_len as usize == bytes.len() =>
        {
            Got::Ready(Ok(Some(String::from_utf8_lossy(bytes).into_owned())))
        }
        Got::Ready(ContentFact::Data { total_len, .. }) => Got::Ready(Err(format!(
            "{path} is {total_len} bytes, larger than the per-file read cap"
        ))),
        Got::Ready(ContentFact::Missing) => Got::Ready(Ok(None)),
        Got::Ready(ContentFact::NotRegular) => {
            Got::Ready(Err(format!("{path} is not a regular file")))
        }
        Got::Ready(ContentFact::Error(e)) => Got::Ready(Err(format!("cannot read {path}: {e}"))),
    }
}

/// A command's fact.
pub fn command<'a>(it: &Interp<'a>, cmd: &str) -> Got<&'a CommandFact> {
    match it.fact(&FactRequest::Command(cmd.to_string())) {
        Some(FactValue::Command(c)) => Got::Ready(c),
        _ => Got::Unknown,
    }
}

/// Constructs a built-in resource; `None` when `name` is not one.
///
/// # Errors
/// ArgumentError for bad arguments (a relative path, a missing name).
pub fn construct(it: &Interp<'_>, name: &str, args: &Args) -> R<Option<Value>> {
    let Some(kind) = ResKind::by_name(name) else {
        return Ok(None);
    };
    if args.any_unknown() {
        it.dynamic_call(format!("{name}(...)"));
        return Ok(Some(Value::Unknown));
    }
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    let opts = args
        .pos
        .last()
        .filter(|v| matches!(v, Value::Hash(_)))
        .cloned()
        .unwrap_or(Value::Nil);
    let arg = match &a0 {
        Value::Hash(_) | Value::Nil => String::new(),
        Value::Regex(r) => r.inspect(),
        other => it.to_s_value(other)?,
    };
    let opts_for = opts.clone();
    let (arg, display) = match kind {
        ResKind::File | ResKind::Directory => files::display(it, kind, arg)?,
        ResKind::Command
        | ResKind::Bash
        | ResKind::Os
        | ResKind::Platform
        | ResKind::Virtualization
        | ResKind::OsEnv
        | ResKind::Processes
        | ResKind::KernelParameter
        | ResKind::KernelModule
        | ResKind::Mount
        | ResKind::EtcFstab
        | ResKind::Selinux
        | ResKind::Crontab => system::display(kind, arg, &opts),
        ResKind::Users
        | ResKind::User
        | ResKind::Passwd
        | ResKind::Shadow
        | ResKind::Group
        | ResKind::Groups
        | ResKind::EtcGroup => accounts::display(kind, arg),
        ResKind::Package | ResKind::Packages | ResKind::Service | ResKind::SystemdService => {
            packages::display(kind, arg, &a0)
        }
        ResKind::Nginx | ResKind::NginxConf => nginx::display(kind, arg),
        ResKind::X509Certificate | ResKind::Auditd => certs::display(kind, arg),
        _ => config::display(kind, arg, &opts),
    };
    Ok(Some(Value::Resource(Rc::new(Resource {
        kind,
        arg,
        value: a0,
        opts: opts_for,
        display,
        cache: RefCell::new(None),
    }))))
}

/// Calls a resource member; `None` when the resource has no such member.
///
/// # Errors
/// As the member (ArgumentError on bad arguments).
pub fn call(it: &Interp<'_>, r: &Rc<Resource>, name: &str, args: &Args) -> R<Option<Value>> {
    match name {
        "to_s" => return Ok(Some(Value::str(&r.display))),
        "resource_id" => return Ok(Some(Value::str(&r.arg))),
        "resource_skipped?" => return Ok(Some(Value::Bool(unavailable(it, r).is_some()))),
        "resource_failed?" => return Ok(Some(Value::Bool(false))),
        "resource_exception_message" => {
            return Ok(Some(unavailable(it, r).map_or(Value::Nil, Value::str)));
        }
        _ => {}
    }
    match r.kind {
        ResKind::File | ResKind::Directory => files::call(it, r, name, args),
        ResKind::Command
        | ResKind::Bash
        | ResKind::Os
        | ResKind::Platform
        | ResKind::Virtualization
        | ResKind::OsEnv
        | ResKind::Processes
        | ResKind::KernelParameter
        | ResKind::KernelModule
        | ResKind::Mount
        | ResKind::EtcFstab
        | ResKind::Selinux
        | ResKind::Crontab => system::call(it, r, name, args),
        ResKind::Users
        | ResKind::User
        | ResKind::Passwd
        | ResKind::Shadow
        | ResKind::Group
        | ResKind::Groups
        | ResKind::EtcGroup => accounts::call(it, r, name, args),
        ResKind::Package | ResKind::Packages | ResKind::Service | ResKind::SystemdService => {
            packages::call(it, r, name, args)
        }
        ResKind::Nginx | ResKind::NginxConf => nginx::call(it, r, name, args),
        ResKind::X509Certificate | ResKind::Auditd => certs::call(it, r, name, args),
        _ => config::call(it, r, name, args),
    }
}

/// Whether the resource answers `name` (for `respond_to?`): resources
/// answer their documented attributes; this is a best effort.
pub fn responds(_r: &Resource, name: &str) -> bool {
    !name.is_empty()
}

/// Why a described resource is skipped on this target, if it is.
pub fn unavailable(it: &Interp<'_>, r: &Rc<Resource>) -> Option<String> {
    match r.kind {
        ResKind::Command | ResKind::Bash => system::command_unavailable(it, r),
        _ => None,
    }
}

/// The cached parsed data of a resource, computing it once.
///
/// # Errors
/// As `compute`.
pub fn cached(r: &Resource, compute: impl FnOnce() -> R<Value>) -> R<Value> {
    if let Some(v) = r.cache.borrow().clone() {
        return Ok(v);
    }
    let v = compute()?;
    if !v.is_unknown() {
        *r.cache.borrow_mut() = Some(v.clone());
    }
    Ok(v)
}
