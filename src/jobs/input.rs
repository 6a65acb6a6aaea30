//! What a job reads: a root file system directory, a tarball of one, or an
//! image. One type for pack's source and diff's two sides, parsed in one
//! place from the transports [`Transport`] knows.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::{unknown_transport, ImageRef, Transport};

/// A root file system or an image, as `pack` and `diff` take them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A directory (`dir:PATH`).
    Dir(PathBuf),
    /// A tarball, plain, gzip or zstd, as `podman export` writes (`tar:FILE`).
    Tar(PathBuf),
    /// An image (`oci:`, `oci-archive:` or `docker://`).
    Image(ImageRef),
}

impl Input {
    /// Parses `dir:PATH`, `tar:FILE`, an image reference, or a bare path:
    /// a directory, or a tarball when it is a file. A bare path that does
    /// not exist and looks like `foo:bar` is an unknown transport.
    pub fn parse(s: &str) -> Result<Self> {
        match Transport::split(s) {
            Some((Transport::Dir, dir)) => Ok(Input::Dir(dir.into())),
            Some((Transport::Tar, file)) => Ok(Input::Tar(file.into())),
            Some(_) => ImageRef::parse(s).map(Input::Image),
            None => Input::bare_path(s),
        }
    }

    fn bare_path(s: &str) -> Result<Self> {
        let path = Path::new(s);
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Input::Tar(path.into())),
            Ok(_) => Ok(Input::Dir(path.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match unknown_transport(s) {
                Some(transport) => Err(Error::Config(format!(
                    "source {s:?}: unknown transport {transport:?} (expected {})",
                    Transport::expected(&Transport::ALL)
                ))),
                None => Err(Error::io(path, e)),
            },
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Dir(d) => write!(f, "{}{}", Transport::Dir.prefix(), d.display()),
            Input::Tar(t) => write!(f, "{}{}", Transport::Tar.prefix(), t.display()),
            Input::Image(r) => write!(f, "{r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes_and_bare_paths() {
        let dir = std::env::temp_dir();
        assert_eq!(Input::parse("dir:/r").unwrap(), Input::Dir("/r".into()));
        assert_eq!(
            Input::parse("tar:x.tar").unwrap(),
            Input::Tar("x.tar".into())
        );
        assert!(matches!(
            Input::parse("oci:out:v1").unwrap(),
            Input::Image(_)
        ));
        assert_eq!(
            Input::parse(dir.to_str().unwrap()).unwrap(),
            Input::Dir(dir.clone())
        );
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        assert_eq!(Input::parse(file).unwrap(), Input::Tar(file.into()));
        let e = Input::parse("docker-archive:x.tar")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown transport \"docker-archive\""), "{e}");
        assert!(e.contains("tar:FILE"), "{e}");
        assert!(matches!(
            Input::parse("/no/such/path"),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn prints_what_it_parses() {
        for s in ["dir:/r", "tar:x.tar", "oci:out:v1", "oci-archive:a.tar"] {
            assert_eq!(Input::parse(s).unwrap().to_string(), s);
        }
    }
}
