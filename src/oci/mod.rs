//! OCI images on this machine: JSON types, reading and writing image layouts
//! and archives, and applying an image's layers into a tree.
//!
//! This module knows files, not references or registries: the `store`
//! module resolves `oci:`, `oci-archive:` and `docker://` references and
//! dispatches to it or to the registry client.

pub mod archive;
pub mod flatten;
pub mod layout;
pub mod read;
pub mod types;

pub use read::{Blob, Image, LayoutReader, DEFAULT_TAG};
