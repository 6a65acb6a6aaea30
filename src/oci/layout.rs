//! Writing into an OCI image layout directory, safely, with other writers.
//!
//! Blobs are written to temporary files in `blobs/sha256/` and renamed to
//! their digest once complete, so a blob file is never partial. The tag is
//! published last, by replacing `index.json` atomically (write aside, then
//! rename): until then the layout's other images and tags are untouched, and
//! an interrupted run leaves no image behind, only unreferenced blobs.
//!
//! Runs of chunkah that write into one layout at once take two advisory
//! locks (`flock(2)`) on files in it (docs/FORMAT.md, "Concurrent writers"):
//! - [`WRITERS_LOCK`], held shared by every writer from opening the layout
//!   to its end. A writer that finds a blob present relies on it staying,
//!   so blobs are removed only by a run that holds this lock exclusively,
//!   that is when no other run writes there.
//! - [`INDEX_LOCK`], held exclusively while `index.json` is read, changed
//!   and replaced, while a new layout's skeleton is made, and while blobs
//!   are removed: no tag is lost to another run's replacement of the index,
//!   and no blob a tag references is removed.
//!
//! The locks are taken in that order (writers, then index), never the other
//! way round.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::types::{Descriptor, Index, INDEX_MEDIA_TYPE, REF_NAME};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::io::{temp_name, write_atomic, FileLock, LockMode};

/// The lock file every run writing into a layout holds shared.
pub const WRITERS_LOCK: &str = ".chunkah-writers.lock";
/// The lock file held exclusively around changes of `index.json`.
pub const INDEX_LOCK: &str = ".chunkah-index.lock";

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout opened for writing.
#[derive(Debug)]
pub struct LayoutWriter {
    root: PathBuf,
    blobs: PathBuf,
    /// Blobs are flushed to disk before they are renamed into place.
    durable: bool,
    /// [`WRITERS_LOCK`], held shared.
    writers: FileLock,
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
    /// empty (other runs may be creating it at the same time). A non-empty
    /// directory that is not a layout is an error.
    pub fn open(root: &Path) -> Result<Self> {
        // A failed run that created the layout removes it when no one else
        // writes there; one waiting for the lock then starts again.
        // Refused before any lock file is made in a directory that is not
        // a layout (checked again under the lock).
        // Another run may be making the layout: its marker comes before
        // anything else, so a foreign entry counts only if the marker is
        // still missing after it was seen.
        let marker = root.join("oci-layout");
        if !marker.exists() && has_foreign_entries(root)? && !marker.exists() {
            return Err(not_a_layout(root));
        }
        let mut attempts = 0;
        loop {
            fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
            match Self::open_existing(root) {
                Err(Error::Lock { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && attempts < 100 =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn open_existing(root: &Path) -> Result<Self> {
        let writers = lock(root, WRITERS_LOCK, LockMode::Shared)?;
        let _index = lock(root, INDEX_LOCK, LockMode::Exclusive)?;
        let blobs = root.join("blobs").join("sha256");
        let marker = root.join("oci-layout");
        if !marker.exists() {
            if has_foreign_entries(root)? {
                return Err(not_a_layout(root));
            }
            // The marker first: a run checking without the lock then sees
            // a layout, or a directory holding only what runs make.
            write_atomic(&marker, OCI_LAYOUT)?;
            fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        } else {
            fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        }
        Ok(LayoutWriter {
            root: root.to_path_buf(),
            blobs,
            durable: true,
            writers,
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
        self.open_temp(HashingWriter::new)
    }

    /// A new temporary blob whose bytes are counted but not hashed: its
    /// writer computes the digest (see [`LayoutWriter::commit_known`]).
    pub fn temp_blob_unhashed(&self) -> Result<TempBlob> {
        self.open_temp(HashingWriter::counting)
    }

    fn open_temp(
        &self,
        sink: fn(BufWriter<File>) -> HashingWriter<BufWriter<File>>,
    ) -> Result<TempBlob> {
        let path = temp_name(&self.blobs);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(TempBlob {
            path,
            writer: Some(sink(BufWriter::with_capacity(1 << 20, file))),
        })
    }

    /// Completes a blob: flushes it to disk and renames it to its digest.
    pub fn commit(&self, mut blob: TempBlob) -> Result<(Digest, u64)> {
        let writer = blob.writer.take().expect("committed once");
        let (buf, digest, size) = writer.finish();
        self.rename_into_place(&blob.path, buf, &digest)?;
        Ok((digest, size))
    }

    /// Completes a blob of [`LayoutWriter::temp_blob_unhashed`] whose
    /// writer computed its `digest` over the `size` bytes written.
    pub fn commit_known(&self, mut blob: TempBlob, digest: &Digest, size: u64) -> Result<()> {
        let writer = blob.writer.take().expect("committed once");
        let (buf, written) = writer.finish_counted();
        if written != size {
            return Err(Error::malformed(
                blob.path.display(),
                format!("{written} bytes written, {size} expected"),
            ));
        }
        self.rename_into_place(&blob.path, buf, digest)
    }

    /// Flushes `buf` (writing `path`) to disk and renames it to `digest`.
    fn rename_into_place(&self, path: &Path, buf: BufWriter<File>, digest: &Digest) -> Result<()> {
        let file = buf
            .into_inner()
            .map_err(|e| Error::io(path, e.into_error()))?;
        if self.durable {
            file.sync_all().map_err(|e| Error::io(path, e))?;
        }
        drop(file);
        let dest = self.blobs.join(digest.hex());
        fs::rename(path, &dest).map_err(|e| Error::io(&dest, e))?;
        Ok(())
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

    /// Removes those of `digests` (blobs a failed run added) that no image
    /// of the layout references, if no other run is writing into the layout
    /// (one may have found them present and be about to reference them):
    /// then they stay, unreferenced. Returns how many were removed.
    pub fn remove_unreferenced(&self, digests: &[Digest]) -> Result<usize> {
        if digests.is_empty() {
            return Ok(0);
        }
        let locked = |e| lock_error(&self.root, self.writers.path(), e);
        let alone = self.writers.try_exclusive().map_err(locked)?;
        let removed = match alone {
            true => self.remove_unreachable(digests),
            false => Ok(0),
        };
        self.writers.relock(LockMode::Shared).map_err(locked)?;
        removed
    }

    /// Removes those of `digests` that `index.json` does not reach; the
    /// caller holds [`WRITERS_LOCK`] exclusively.
    fn remove_unreachable(&self, digests: &[Digest]) -> Result<usize> {
        let _index = lock(&self.root, INDEX_LOCK, LockMode::Exclusive)?;
        let reader = super::read::LayoutReader::open_layout(&self.root)?;
        let reachable: BTreeSet<Digest> = super::archive::reachable(&reader, &reader.index()?)?
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        let mut removed = 0;
        for d in digests.iter().filter(|d| !reachable.contains(d)) {
            let path = self.blobs.join(d.hex());
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok(removed)
    }

    /// Removes the whole layout if it lists no image and no other run is
    /// writing into it (a failed run taking back the layout it created);
    /// returns whether it did.
    pub fn remove_if_unused(&self) -> Result<bool> {
        let locked = |e| lock_error(&self.root, self.writers.path(), e);
        if !self.writers.try_exclusive().map_err(locked)? {
            self.writers.relock(LockMode::Shared).map_err(locked)?;
            return Ok(false);
        }
        let empty = {
            let _index = lock(&self.root, INDEX_LOCK, LockMode::Exclusive)?;
            let empty = match fs::read(self.root.join("index.json")) {
                Ok(bytes) => serde_json::from_slice::<Index>(&bytes)
                    .map(|i| i.manifests.is_empty())
                    .unwrap_or(false),
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            };
            if empty {
                // Runs waiting for a lock find its file gone and start over.
                fs::remove_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
            }
            empty
        };
        if !empty {
            self.writers.relock(LockMode::Shared).map_err(locked)?;
        }
        Ok(empty)
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
            Ok(())
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
            Ok(())
        })
    }

    /// Lists `manifest` in `index.json` without a tag (unless it is there).
    pub fn add_untagged(&self, manifest: Descriptor) -> Result<()> {
        self.update_index(|index| {
            if !index.manifests.contains(&manifest) {
                index.manifests.push(manifest);
            }
            Ok(())
        })
    }

    /// Points `tag` at the descriptor `make` returns from the one `tag`
    /// points at now (if any), with no other run changing `index.json`
    /// meanwhile: `make` may read the layout and store blobs.
    pub fn update_tag(
        &self,
        tag: &str,
        make: impl FnOnce(Option<&Descriptor>) -> Result<Descriptor>,
    ) -> Result<Descriptor> {
        self.update_index(|index| {
            let current = index
                .manifests
                .iter()
                .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(tag));
            let mut desc = make(current)?;
            index
                .manifests
                .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(tag));
            desc.annotations
                .insert(REF_NAME.to_string(), tag.to_string());
            index.manifests.push(desc.clone());
            Ok(desc)
        })
    }

    /// Reads `index.json` (an empty index if there is none), changes it and
    /// replaces it atomically, holding [`INDEX_LOCK`] throughout.
    fn update_index<R>(&self, change: impl FnOnce(&mut Index) -> Result<R>) -> Result<R> {
        let _index = lock(&self.root, INDEX_LOCK, LockMode::Exclusive)?;
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
        let out = change(&mut index)?;
        let json = serde_json::to_vec(&index).expect("an index serialises");
        write_atomic(&path, &json)?;
        Ok(out)
    }
}

/// Whether the directory `root` (if there is one) holds anything but the
/// lock files and a run's temporary files (`.tmp-chunkah-…`, the
/// `oci-layout` being written): a directory with other content and no
/// `oci-layout` is not a layout, and is not made one.
fn has_foreign_entries(root: &Path) -> Result<bool> {
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(root, e)),
    };
    for entry in rd {
        let name = entry.map_err(|e| Error::io(root, e))?.file_name();
        let temporary = name.as_encoded_bytes().starts_with(b".tmp-chunkah-");
        if name != WRITERS_LOCK && name != INDEX_LOCK && !temporary {
            return Ok(true);
        }
    }
    Ok(false)
}

fn not_a_layout(root: &Path) -> Error {
    Error::malformed(
        root.display(),
        "exists and is not an OCI image layout (no oci-layout file)",
    )
}

/// Takes the lock file `name` of the layout at `root` in `mode`.
fn lock(root: &Path, name: &str, mode: LockMode) -> Result<FileLock> {
    let path = root.join(name);
    FileLock::acquire(&path, mode).map_err(|e| lock_error(root, &path, e))
}

/// The error of a lock file `path` of the layout at `root` that could not
/// be taken.
fn lock_error(root: &Path, path: &Path, source: std::io::Error) -> Error {
    Error::Lock {
        what: format!("image layout {}", root.display()),
        path: path.to_path_buf(),
        source,
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
        // ... and left as it was: no lock file is made in it.
        assert!(!other.join(WRITERS_LOCK).exists() && !other.join(INDEX_LOCK).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("chunkah-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn tags(dir: &Path) -> Vec<String> {
        let index: Index =
            serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        let mut tags: Vec<String> = index
            .manifests
            .iter()
            .filter_map(|m| m.annotations.get(REF_NAME).cloned())
            .collect();
        tags.sort();
        tags
    }

    #[test]
    fn writers_creating_and_tagging_at_once_lose_nothing() {
        for round in 0..10 {
            let dir = scratch(&format!("layout-race-{round}"));
            std::thread::scope(|s| {
                for i in 0..8 {
                    let dir = &dir;
                    s.spawn(move || {
                        let w = LayoutWriter::open(dir).unwrap();
                        let d = w.put_blob("application/octet-stream", b"same").unwrap();
                        w.set_tag(&format!("t{i}"), d).unwrap();
                    });
                }
            });
            assert_eq!(
                tags(&dir),
                (0..8).map(|i| format!("t{i}")).collect::<Vec<_>>()
            );
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn blobs_go_only_when_no_one_else_writes_and_no_tag_needs_them() {
        let dir = scratch("layout-remove");
        let a = LayoutWriter::open(&dir).unwrap();
        let x = a.put_blob("application/octet-stream", b"x").unwrap();
        let y = a.put_blob("application/octet-stream", b"y").unwrap();
        // Another run finds x present and will reference it.
        let b = LayoutWriter::open(&dir).unwrap();
        assert!(b.has_blob(&x.digest));
        assert_eq!(a.remove_unreferenced(&[x.digest, y.digest]).unwrap(), 0);
        assert!(a.has_blob(&x.digest) && a.has_blob(&y.digest));
        b.set_tag("b", x.clone()).unwrap();
        drop(b);
        // Alone now: y goes, x stays (tagged).
        assert_eq!(a.remove_unreferenced(&[x.digest, y.digest]).unwrap(), 1);
        assert!(a.has_blob(&x.digest) && !a.has_blob(&y.digest));
        // The lock is held shared again: a new writer still opens, and a
        // layout with an image is not removed.
        let c = LayoutWriter::open(&dir).unwrap();
        assert!(!c.remove_if_unused().unwrap());
        drop(c);
        assert!(!a.remove_if_unused().unwrap());
        a.untag("b").unwrap();
        let d = LayoutWriter::open(&dir).unwrap();
        let index_entries = || {
            serde_json::from_slice::<Index>(&fs::read(dir.join("index.json")).unwrap())
                .unwrap()
                .manifests
                .len()
        };
        assert_eq!(index_entries(), 1);
        drop(d);
        drop(a);
        // An empty layout created by a failed run goes when it is alone.
        let e = scratch("layout-remove-empty");
        let w = LayoutWriter::open(&e).unwrap();
        let other = LayoutWriter::open(&e).unwrap();
        assert!(!w.remove_if_unused().unwrap());
        drop(other);
        assert!(w.remove_if_unused().unwrap());
        assert!(!e.exists());
        drop(w);
        // And a run that was opening it starts over on a new one.
        let again = LayoutWriter::open(&e).unwrap();
        again
            .set_tag("t", again.put_blob("a/b", b"z").unwrap())
            .unwrap();
        assert_eq!(tags(&e), ["t"]);
        fs::remove_dir_all(&e).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
