//! The image a container starts from, as the read-only layers of its rootfs
//! (top first) and the run configuration it carries.
//!
//! `-image` names one of three things:
//! - a directory: the one layer, used in place;
//! - an OCI image layout (`oci-layout` and `index.json`): the manifest for
//!   this platform (or the one `-image-ref` tags), every blob checked against
//!   its digest, each layer unpacked once into the [`cache`] and stacked as
//!   its own lower directory, never flattened; the config's Env, Entrypoint,
//!   Cmd, WorkingDir and User go under the user's flags;
//! - a root file system tarball (as `docker export` writes): unpacked once
//!   into the same cache, keyed by its own digest.

mod cache;
mod digest;
mod file;
mod layers;
mod oci;
mod open;
#[cfg(test)]
mod raw_tar;
mod unpack;

pub use cache::Cache;
pub use layers::Layers;
pub use open::{open, Image, ImageConfig, ImageError, ImageHealthcheck, Options};
