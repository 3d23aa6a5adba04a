//! IO: registries, archives, the disk.

pub mod image_archive;
pub mod image_pull;
pub mod layer_unpack;
pub mod registry_client;
