//! Writing into an OCI image layout directory, safely.
//!
//! Blobs are written to temporary files in `blobs/sha256/` and renamed to
//! their digest once complete, so a blob file is never partial. The tag is
//! published last, by replacing `index.json` atomically (write aside, then
//! rename): until then the layout's other images and tags are untouched, and
//! an interrupted run leaves no image behind, only unreferenced blobs.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::types::{Descriptor, Index, INDEX_MEDIA_TYPE, REF_NAME};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::io::{temp_name, write_atomic};

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout opened for writing.
#[derive(Debug)]
pub struct LayoutWriter {
    root: PathBuf,
    blobs: PathBuf,
    /// Blobs are flushed to disk before they are renamed into place.
    durable: bool,
}

/// A blob being written; removed unless [`LayoutWriter::commit`] takes it.
pub struct TempBlob {
    path: PathBuf,
    writer: Option<HashingWriter<BufWriter<File>>>,
}

impl TempBlob {
    /// Where the blob is being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sink for the blob's bytes.
    pub fn writer(&mut self) -> &mut HashingWriter<BufWriter<File>> {
        self.writer
            .as_mut()
            .expect("a temporary blob is written before it is committed")
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl LayoutWriter {
    /// Opens the layout at `root`, creating it if the directory is missing or
    /// empty. A non-empty directory that is not a layout is an error.
    pub fn open(root: &Path) -> Result<Self> {
        let io = |p: &Path, e| Error::io(p, e);
        match fs::read_dir(root) {
            Ok(mut rd) => {
                let empty = rd.next().is_none();
                if !empty && !root.join("oci-layout").exists() {
                    return Err(Error::malformed(
                        root.display(),
                        "exists and is not an OCI image layout (no oci-layout file)",
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(root).map_err(|e| io(root, e))?;
            }
            Err(e) => return Err(io(root, e)),
        }
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|e| io(&blobs, e))?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, OCI_LAYOUT)?;
        }
        Ok(LayoutWriter {
            root: root.to_path_buf(),
            blobs,
            durable: true,
        })
    }

    /// Opens a scratch layout at `root` (as [`LayoutWriter::open`]): one
    /// whose blobs are not flushed to disk when committed, as it is read
    /// back by this run (into an archive, or pushed) and then removed.
    pub fn open_scratch(root: &Path) -> Result<Self> {
        Ok(LayoutWriter {
            durable: false,
            ..Self::open(root)?
        })
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the layout already holds the blob.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blobs.join(digest.hex()).is_file()
    }

    /// Starts a blob in a temporary file of the layout.
    pub fn temp_blob(&self) -> Result<TempBlob> {
        let path = temp_name(&self.blobs);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(TempBlob {
            path,
            writer: Some(HashingWriter::new(BufWriter::with_capacity(1 << 20, file))),
        })
    }

    /// Completes a blob: flushes it to disk and renames it to its digest.
    pub fn commit(&self, mut blob: TempBlob) -> Result<(Digest, u64)> {
        let writer = blob.writer.take().expect("committed once");
        let (buf, digest, size) = writer.finish();
        let file = buf
            .into_inner()
            .map_err(|e| Error::io(&blob.path, e.into_error()))?;
        if self.durable {
            file.sync_all().map_err(|e| Error::io(&blob.path, e))?;
        }
        drop(file);
        let dest = self.blobs.join(digest.hex());
        fs::rename(&blob.path, &dest).map_err(|e| Error::io(&dest, e))?;
        Ok((digest, size))
    }

    /// Completes a blob that must have digest `expected`: a blob with other
    /// content is removed and is an error.
    pub fn commit_expecting(&self, mut blob: TempBlob, expected: &Digest) -> Result<u64> {
        let writer = blob.writer.as_mut().expect("committed once");
        writer.flush().map_err(|e| Error::io(&blob.path, e))?;
        let (digest, size) = writer.peek();
        if digest != *expected {
            return Err(Error::digest_mismatch(
                format!("the blob written to {}", blob.path.display()),
                expected,
                digest,
            ));
        }
        self.commit(blob)?;
        Ok(size)
    }

    /// Removes the blob `digest` if there is one (a failed run taking back
    /// what it added; errors are ignored, the blob is then only unused).
    pub fn remove_blob(&self, digest: &Digest) {
        let _ = fs::remove_file(self.blobs.join(digest.hex()));
    }

    /// Stores `bytes` as a blob and returns its descriptor.
    pub fn put_blob(&self, media_type: &str, bytes: &[u8]) -> Result<Descriptor> {
        let mut blob = self.temp_blob()?;
        blob.writer()
            .write_all(bytes)
            .map_err(|e| Error::io(&blob.path, e))?;
        let (digest, size) = self.commit(blob)?;
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            annotations: Default::default(),
            artifact_type: None,
            platform: None,
        })
    }

    /// Points `tag` at `manifest` in `index.json`, keeping every other entry.
    pub fn set_tag(&self, tag: &str, mut manifest: Descriptor) -> Result<()> {
        self.update_index(|index| {
            index
                .manifests
                .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(tag));
            manifest
                .annotations
                .insert(REF_NAME.to_string(), tag.to_string());
            index.manifests.push(manifest);
        })
    }

    /// Takes the tag `tag` off its manifest, which stays listed untagged.
    pub fn untag(&self, tag: &str) -> Result<()> {
        self.update_index(|index| {
            for m in &mut index.manifests {
                if m.annotations.get(REF_NAME).map(String::as_str) == Some(tag) {
                    m.annotations.remove(REF_NAME);
                }
            }
        })
    }

    /// Lists `manifest` in `index.json` without a tag (unless it is there).
    pub fn add_untagged(&self, manifest: Descriptor) -> Result<()> {
        self.update_index(|index| {
            if !index.manifests.contains(&manifest) {
                index.manifests.push(manifest);
            }
        })
    }

    /// Reads `index.json` (an empty index if there is none), changes it and
    /// replaces it atomically.
    fn update_index(&self, change: impl FnOnce(&mut Index)) -> Result<()> {
        let path = self.root.join("index.json");
        let mut index = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Index>(&bytes)
                .map_err(|e| Error::malformed(path.display(), format!("bad JSON: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index {
                schema_version: 2,
                media_type: Some(INDEX_MEDIA_TYPE.to_string()),
                manifests: Vec::new(),
                annotations: Default::default(),
            },
            Err(e) => return Err(Error::io(&path, e)),
        };
        change(&mut index);
        let json = serde_json::to_vec(&index).expect("an index serialises");
        write_atomic(&path, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_replace_only_their_own_entry() {
        let dir = std::env::temp_dir().join(format!("chunkah-layout-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let w = LayoutWriter::open(&dir).unwrap();
        let a = w.put_blob("application/octet-stream", b"a").unwrap();
        let b = w.put_blob("application/octet-stream", b"b").unwrap();
        assert!(w.has_blob(&a.digest));
        assert_eq!(
            fs::read(dir.join("blobs/sha256").join(a.digest.hex())).unwrap(),
            b"a"
        );
        w.set_tag("one", a.clone()).unwrap();
        w.set_tag("two", a.clone()).unwrap();
        w.set_tag("one", b.clone()).unwrap();
        let index: Index =
            serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        let tags: Vec<(&str, Digest)> = index
            .manifests
            .iter()
            .map(|m| (m.annotations[REF_NAME].as_str(), m.digest))
            .collect();
        assert_eq!(tags, vec![("two", a.digest), ("one", b.digest)]);
        // A dropped temporary blob leaves nothing behind.
        drop(w.temp_blob().unwrap());
        let leftovers = fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
        // A directory with other content is refused.
        let other = dir.join("blobs");
        assert!(LayoutWriter::open(&other)
            .unwrap_err()
            .to_string()
            .contains("not an OCI image layout"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
