//! Images by digest, from a registry or an archive, verified and unpacked
//! into a private root that the local-root scan target reads.
//!
//! The domain (no IO): [`manifest`] (which manifest, config and layers an
//! image is), [`layer_entry`] (the rules every layer entry passes before
//! anything is written), [`auth_challenge`] (what a registry asks for) and
//! [`pull_secret`] (logins from a `dockerconfigjson` Secret).
//! The adapters do the IO: [`adapters::registry_client`] speaks the
//! distribution API over HTTPS, [`adapters::image_archive`] reads OCI
//! layouts and docker-save archives, [`adapters::layer_unpack`] writes
//! layers, and [`adapters::image_pull`] drives them: every blob is checked
//! against its digest and size before a byte of it is unpacked.

pub mod adapters;
pub mod auth_challenge;
pub mod layer_entry;
pub mod manifest;
pub mod pull_secret;
