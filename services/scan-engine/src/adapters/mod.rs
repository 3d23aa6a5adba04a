//! Adapters: the parts of the engine that touch the outside world.
//!
//! Each depends on the domain modules; nothing in the domain depends on them.

pub mod local_root;
pub mod process_executor;
pub mod profile_catalog;
pub mod profile_dir;
pub mod recorded_metadata;
