//! Image references resolved to where the image is: an OCI layout, an OCI
//! archive or a registry. The one module that knows all three.
//!
//! [`ImageRef`] parses `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` and
//! `docker://HOST[:PORT]/REPO(:TAG|@sha256:HEX)`; [`ImageReader`] reads any
//! of them (manifests, configs, byte ranges and whole blobs); [`ImageWriter`]
//! writes an image into any of them: into a layout directly, into an archive
//! through a layout beside it, into a registry through a scratch layout that
//! is pushed.

mod reader;
mod referrers;
mod transport;
pub mod view;
mod writer;

use std::path::PathBuf;

pub use reader::{ImageReader, StoreConfig};
pub use referrers::{merge_referrer, referrers_tag};
pub use transport::{unknown_transport, Transport};
pub use view::{ImageView, OpenImage};
#[cfg(feature = "registry")]
pub use writer::push;
pub use writer::{ImageWriter, PushReport, WriteOutcome};

use crate::error::{Error, Result};
use crate::oci::types::valid_tag;
use crate::oci::DEFAULT_TAG;
#[cfg(feature = "registry")]
use crate::registry::{RegistryRef, Target};

/// Where an image is read from or written to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageRef {
    /// An OCI image layout directory and a tag (`oci:DIR[:TAG]`).
    Layout {
        /// The layout's directory.
        dir: PathBuf,
        /// The `org.opencontainers.image.ref.name` of the image, if given.
        tag: Option<String>,
    },
    /// An OCI image layout in a tar file (`oci-archive:FILE[:TAG]`).
    Archive {
        /// The tar file.
        file: PathBuf,
        /// The `org.opencontainers.image.ref.name` of the image, if given.
        tag: Option<String>,
    },
    /// An image in a registry (`docker://HOST[:PORT]/REPO:TAG` or `@sha256:…`).
    #[cfg(feature = "registry")]
    Registry(RegistryRef),
}

impl ImageRef {
    /// Parses `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or
    /// `docker://HOST[:PORT]/REPO(:TAG|@sha256:HEX)`. In a path reference, a
    /// `:` after the last `/` starts the tag.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("image reference {s:?}: {why}"));
        let expected = || Transport::expected(&Transport::IMAGES);
        let (archive, rest) = match Transport::split(s) {
            Some((Transport::Docker, _)) => return registry_ref(s),
            Some((Transport::Oci, rest)) => (false, rest),
            Some((Transport::OciArchive, rest)) => (true, rest),
            Some((t @ (Transport::Dir | Transport::Tar), _)) => {
                return Err(bad(&format!(
                    "{} names a root file system, not an image: expected {}",
                    t.prefix(),
                    expected()
                )))
            }
            None => {
                let why = match unknown_transport(s) {
                    Some(transport) => format!("unknown transport {transport:?}: "),
                    None => String::new(),
                };
                return Err(bad(&format!("{why}expected {}", expected())));
            }
        };
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(bad(if archive {
                "the file name is empty"
            } else {
                "the directory is empty"
            }));
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(bad(
                    "a tag is 1 to 128 characters of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        let tag = tag.map(str::to_string);
        Ok(if archive {
            ImageRef::Archive {
                file: path.into(),
                tag,
            }
        } else {
            ImageRef::Layout {
                dir: path.into(),
                tag,
            }
        })
    }

    /// The tag given, if any.
    pub fn tag(&self) -> Option<&str> {
        match self {
            ImageRef::Layout { tag, .. } | ImageRef::Archive { tag, .. } => tag.as_deref(),
            #[cfg(feature = "registry")]
            ImageRef::Registry(r) => match &r.target {
                Target::Tag(t) => Some(t),
                Target::Digest(_) => None,
            },
        }
    }

    /// The tag an image is written under: the one given, or [`DEFAULT_TAG`].
    pub fn tag_or_default(&self) -> &str {
        self.tag().unwrap_or(DEFAULT_TAG)
    }

    /// This reference with `tag` (a registry reference is kept as it is).
    pub fn with_tag(&self, tag: &str) -> ImageRef {
        match self {
            ImageRef::Layout { dir, .. } => ImageRef::Layout {
                dir: dir.clone(),
                tag: Some(tag.to_string()),
            },
            ImageRef::Archive { file, .. } => ImageRef::Archive {
                file: file.clone(),
                tag: Some(tag.to_string()),
            },
            #[cfg(feature = "registry")]
            ImageRef::Registry(r) => ImageRef::Registry(r.clone()),
        }
    }

    /// Whether this is a `docker://` reference.
    pub fn is_registry(&self) -> bool {
        match self {
            ImageRef::Layout { .. } | ImageRef::Archive { .. } => false,
            #[cfg(feature = "registry")]
            ImageRef::Registry(_) => true,
        }
    }
}

/// `docker://…` as a registry reference (an error in a build without the
/// registry client).
fn registry_ref(s: &str) -> Result<ImageRef> {
    #[cfg(feature = "registry")]
    return Ok(ImageRef::Registry(RegistryRef::parse(s)?));
    #[cfg(not(feature = "registry"))]
    return Err(Error::unsupported(
        s,
        "this build of chunkah has no registry client (the `registry` feature)",
    ));
}

impl std::str::FromStr for ImageRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ImageRef::parse(s)
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (transport, path) = match self {
            ImageRef::Layout { dir, .. } => (Transport::Oci, dir),
            ImageRef::Archive { file, .. } => (Transport::OciArchive, file),
            #[cfg(feature = "registry")]
            ImageRef::Registry(r) => return write!(f, "{r}"),
        };
        write!(f, "{}{}", transport.prefix(), path.display())?;
        if let Some(tag) = self.tag() {
            write!(f, ":{tag}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_layout_and_archive_references() {
        let r = |s| ImageRef::parse(s).unwrap();
        let layout = |d: &str, t: Option<&str>| ImageRef::Layout {
            dir: d.into(),
            tag: t.map(str::to_string),
        };
        assert_eq!(r("oci:out"), layout("out", None));
        assert_eq!(r("oci:out").tag_or_default(), "latest");
        assert_eq!(r("oci:out:v2"), layout("out", Some("v2")));
        assert_eq!(r("oci:/a:b/c:t"), layout("/a:b/c", Some("t")));
        assert_eq!(r("oci:/a:b/c"), layout("/a:b/c", None));
        assert_eq!(
            r("oci-archive:x.tar:v1"),
            ImageRef::Archive {
                file: "x.tar".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            r("oci-archive:d/x.tar:v1").to_string(),
            "oci-archive:d/x.tar:v1"
        );
        assert_eq!(r("oci:out").to_string(), "oci:out");
        assert_eq!(r("oci:out").with_tag("v3").to_string(), "oci:out:v3");
        for bad in [
            "out",
            "oci:",
            "oci::x",
            "oci:out:",
            "oci:out:-x",
            "oci-archive:",
            "oci-archive::t",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
        let e = ImageRef::parse("docker-archive:x.tar").unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown transport \"docker-archive\""),
            "{e}"
        );
        let e = ImageRef::parse("/tmp/x").unwrap_err();
        assert!(!e.to_string().contains("transport"), "{e}");
    }

    #[cfg(feature = "registry")]
    #[test]
    fn parses_registry_references() {
        let r = |s| ImageRef::parse(s).unwrap();
        assert_eq!(
            r("docker://127.0.0.1:5000/a/b:v1").to_string(),
            "docker://127.0.0.1:5000/a/b:v1"
        );
        assert_eq!(r("docker://localhost/a:v1").tag(), Some("v1"));
        assert!(r("docker://localhost/a:v1").is_registry());
        for bad in ["docker://x/y:z", "docker://localhost/Upper:t"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
