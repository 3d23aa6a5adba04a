//! The scanfleet scan engine: declarative compliance profiles evaluated in Rust
//! over facts gathered from a target in one go, with HDF output and SAF
//! threshold gates.
//!
//! Data flow: a [`profile::Profile`] (loaded from `inspec.yml` +
//! `controls/*.yml`) holds compiled [`checks::Check`]s; [`scan::plan`] merges
//! the facts they need into one [`facts::FactPlan`]; a [`scan::Target`]
//! gathers every planned fact at once; each check evaluates the facts into
//! results; [`hdf`] renders them; [`threshold`] gates them.
//!
//! Domain modules do no IO. The [`adapters`] module holds the parts that do:
//! reading a profile directory, the local-root target (reads a directory tree)
//! and the process executor for the remote-shell target. The remote shell
//! target itself ([`shell`]) only generates a POSIX `sh` script and parses its
//! framed output; *how* the script runs (Kubernetes exec, `chroot`, ...) is a
//! [`shell::ScriptExecutor`] supplied by the caller.
//!
//! Not here: Kubernetes, NATS, signing, storage.

pub mod adapters;
pub mod checks;
pub mod drift;
pub mod facts;
pub mod hdf;
pub mod inspec;
pub mod profile;
pub mod scan;
pub mod shell;
pub mod system_files;
pub mod threshold;
