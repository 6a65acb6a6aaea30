//! OCI images: references, JSON types, and the image-layout writer.

pub mod layout;
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
        /// The `org.opencontainers.image.ref.name` of the image.
        tag: String,
    },
}

/// The tag used when a reference names none.
pub const DEFAULT_TAG: &str = "latest";

impl ImageRef {
    /// Parses `oci:DIR[:TAG]`. A `:` after the last `/` starts the tag.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("image reference {s:?}: {why}"));
        let Some(rest) = s.strip_prefix("oci:") else {
            return Err(bad(
                "expected oci:DIR[:TAG] (oci-archive: and docker:// are not supported yet)",
            ));
        };
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (dir, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], &rest[slash + i + 1..]),
            None => (rest, DEFAULT_TAG),
        };
        if dir.is_empty() {
            return Err(bad("the directory is empty"));
        }
        if !valid_tag(tag) {
            return Err(bad(
                "a tag is 1 to 128 characters of [A-Za-z0-9_.-], not starting with . or -",
            ));
        }
        Ok(ImageRef::Layout {
            dir: dir.into(),
            tag: tag.to_string(),
        })
    }
}

fn valid_tag(tag: &str) -> bool {
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
    fn parses_layout_references() {
        let r = |s| ImageRef::parse(s).unwrap();
        assert_eq!(
            r("oci:out"),
            ImageRef::Layout {
                dir: "out".into(),
                tag: "latest".into()
            }
        );
        assert_eq!(
            r("oci:out:v2"),
            ImageRef::Layout {
                dir: "out".into(),
                tag: "v2".into()
            }
        );
        assert_eq!(
            r("oci:/a:b/c:t"),
            ImageRef::Layout {
                dir: "/a:b/c".into(),
                tag: "t".into()
            }
        );
        assert_eq!(
            r("oci:/a:b/c"),
            ImageRef::Layout {
                dir: "/a:b/c".into(),
                tag: "latest".into()
            }
        );
        for bad in [
            "out",
            "oci:",
            "oci::x",
            "oci:out:",
            "oci:out:-x",
            "docker://x/y:z",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
