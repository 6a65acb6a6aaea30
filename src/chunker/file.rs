//! Memory-mapped input files: chunked in place, without a copy.

use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A regular file mapped read-only into memory.
pub struct MappedFile {
    path: PathBuf,
    /// `None` for an empty file, which cannot be mapped.
    map: Option<memmap2::Mmap>,
}

impl MappedFile {
    /// Maps the regular file at `path`; other file types are an error.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        let map = if meta.len() == 0 {
            None
        } else {
            // SAFETY: the mapping is private and read-only. If another process
            // truncates the file while it is mapped, reading the lost pages
            // faults (SIGBUS), as with every mmap-based reader; chunkah's callers
            // read trees that are not being modified.
            Some(unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?)
        };
        Ok(MappedFile {
            path: path.to_path_buf(),
            map,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Deref for MappedFile {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_files_and_names_failures() {
        let dir = std::env::temp_dir().join(format!("chunkah-map-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let full = dir.join("full");
        std::fs::write(&full, b"abc").unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(&*MappedFile::open(&full).unwrap(), b"abc");
        assert!(MappedFile::open(&empty).unwrap().is_empty());
        let err = MappedFile::open(dir.join("missing"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("missing"), "{err}");
        let err = MappedFile::open(&dir).err().unwrap().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
