//! OCI images: references, JSON types, reading, and writing layouts and
//! archives.

pub mod archive;
pub mod flatten;
pub mod layout;
pub mod read;
pub mod types;

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Where an image is read from or written to.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    Registry(crate::registry::RegistryRef),
}

/// The tag used when a reference names none.
pub const DEFAULT_TAG: &str = "latest";

impl ImageRef {
    /// Parses `oci:DIR[:TAG]` or `oci-archive:FILE[:TAG]`. A `:` after the
    /// last `/` starts the tag.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("image reference {s:?}: {why}"));
        if s.starts_with(crate::registry::DOCKER_SCHEME) {
            return Ok(ImageRef::Registry(crate::registry::RegistryRef::parse(s)?));
        }
        let (archive, rest) = if let Some(rest) = s.strip_prefix("oci:") {
            (false, rest)
        } else if let Some(rest) = s.strip_prefix("oci-archive:") {
            (true, rest)
        } else {
            return Err(bad(
                "expected oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://HOST/REPO:TAG",
            ));
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
            ImageRef::Registry(r) => match &r.target {
                crate::registry::Target::Tag(t) => Some(t),
                crate::registry::Target::Digest(_) => None,
            },
        }
    }

    /// The tag an image is written under: the one given, or [`DEFAULT_TAG`].
    pub fn tag_or_default(&self) -> &str {
        self.tag().unwrap_or(DEFAULT_TAG)
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (scheme, path) = match self {
            ImageRef::Layout { dir, .. } => ("oci", dir),
            ImageRef::Archive { file, .. } => ("oci-archive", file),
            ImageRef::Registry(r) => return write!(f, "{r}"),
        };
        write!(f, "{scheme}:{}", path.display())?;
        if let Some(tag) = self.tag() {
            write!(f, ":{tag}")?;
        }
        Ok(())
    }
}

/// A tag: 1 to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
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
        assert_eq!(
            r("docker://127.0.0.1:5000/a/b:v1").to_string(),
            "docker://127.0.0.1:5000/a/b:v1"
        );
        assert_eq!(r("docker://localhost/a:v1").tag(), Some("v1"));
        for bad in [
            "out",
            "oci:",
            "oci::x",
            "oci:out:",
            "oci:out:-x",
            "oci-archive:",
            "oci-archive::t",
            "docker://x/y:z",
            "docker://localhost/Upper:t",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
