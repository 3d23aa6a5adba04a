//! IO: registries, archives, the disk.

pub mod layer_unpack;
