//! OCI archives: an image layout in one tar file (`oci-archive:FILE`).
//!
//! An archive is written from a layout directory with only the blobs its
//! `index.json` reaches, in a fixed order with fixed metadata, so the same
//! layout always gives the same bytes. It is written beside its destination
//! and renamed over it once complete.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::layout::LayoutWriter;
use super::read::LayoutReader;
use super::types::{Descriptor, Index, Manifest, REF_NAME};
use crate::digest::Digest;
use crate::error::{Error, Result};

const INDEX_TYPES: [&str; 2] = [
    super::types::INDEX_MEDIA_TYPE,
    super::types::DOCKER_INDEX_MEDIA_TYPE,
];
const MANIFEST_TYPES: [&str; 2] = [
    super::types::MANIFEST_MEDIA_TYPE,
    super::types::DOCKER_MANIFEST_MEDIA_TYPE,
];

/// The blobs `index` reaches (manifests, their configs and layers, nested
/// indexes), read through `reader`.
pub(crate) fn reachable(reader: &LayoutReader, index: &Index) -> Result<BTreeSet<(Digest, u64)>> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<Descriptor> = index.manifests.clone();
    while let Some(desc) = todo.pop() {
        if !out.insert((desc.digest, desc.size)) {
            continue;
        }
        if INDEX_TYPES.contains(&desc.media_type.as_str()) {
            let nested: Index = reader.json_blob(&desc)?;
            todo.extend(nested.manifests);
        } else if MANIFEST_TYPES.contains(&desc.media_type.as_str()) {
            let m: Manifest = reader.json_blob(&desc)?;
            out.insert((m.config.digest, m.config.size));
            for l in m.layers {
                out.insert((l.digest, l.size));
            }
        }
    }
    Ok(out)
}

/// Copies every image of the archive at `file` (but the one tagged `except`,
/// if any) into `layout` (blobs and tags), so that writing the archive back
/// keeps them.
pub fn import_archive(file: &Path, layout: &LayoutWriter, except: Option<&str>) -> Result<()> {
    let reader = LayoutReader::open_archive(file)?;
    let mut index = reader.index()?;
    if let Some(except) = except {
        index
            .manifests
            .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(except));
    }
    for (digest, size) in reachable(&reader, &index)? {
        if layout.has_blob(&digest) {
            continue;
        }
        let blob = reader.blob(&digest, size)?;
        let mut temp = layout.temp_blob()?;
        let dest = temp.path().to_path_buf();
        std::io::copy(&mut blob.reader(), temp.writer()).map_err(|e| Error::io(&dest, e))?;
        let (got, _) = layout.commit(temp)?;
        if got != digest {
            let _ = layout.remove_unreferenced(&[got]);
            return Err(Error::digest_mismatch(&blob.name, digest, got));
        }
    }
    for m in index.manifests {
        match m.annotations.get(REF_NAME).cloned() {
            Some(tag) => layout.set_tag(&tag, m)?,
            None => layout.add_untagged(m)?,
        }
    }
    Ok(())
}

/// The name of the lock file of the archive `file`: `.NAME.chunkah-lock`
/// beside it.
pub fn archive_lock_path(file: &Path) -> Result<std::path::PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| Error::Config(format!("{} is not a file name", file.display())))?;
    Ok(crate::io::parent_dir(file).join(format!(".{}.chunkah-lock", name.to_string_lossy())))
}

/// The lock that makes runs writing the archive `file` (reading what it
/// holds, adding an image, replacing it) take turns: held until
/// [`ArchiveLock`] is dropped, when its file is removed.
#[derive(Debug)]
pub struct ArchiveLock(crate::io::FileLock);

impl ArchiveLock {
    /// Takes the lock of the archive `file`, waiting for the run holding it.
    pub fn acquire(file: &Path) -> Result<Self> {
        let path = archive_lock_path(file)?;
        crate::io::FileLock::acquire(&path, crate::io::LockMode::Exclusive)
            .map(ArchiveLock)
            .map_err(|source| Error::Lock {
                what: format!("OCI archive {}", file.display()),
                path,
                source,
            })
    }
}

impl Drop for ArchiveLock {
    fn drop(&mut self) {
        // Runs waiting on this file find it gone and take the next one.
        let _ = fs::remove_file(self.0.path());
    }
}

/// Writes the layout at `dir` as an OCI archive at `dest`: beside it first,
/// then renamed over it.
pub fn write_archive(dir: &Path, dest: &Path) -> Result<()> {
    let temp = crate::io::beside(dest, "archive")?;
    let result = (|| -> Result<()> {
        let io = |e| Error::io(&temp, e);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        write_archive_to(dir, &mut out, &temp)?;
        out.flush().map_err(io)?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        fs::rename(&temp, dest).map_err(|e| Error::io(dest, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Writes the layout at `dir` as an OCI archive to `out` (`out_path` names
/// it in errors): `oci-layout`, `index.json`, then the blobs the index
/// reaches, in digest order, with fixed metadata.
pub fn write_archive_to(dir: &Path, out: &mut dyn Write, out_path: &Path) -> Result<()> {
    let reader = LayoutReader::open_layout(dir)?;
    let index_path = dir.join("index.json");
    let index_bytes = fs::read(&index_path).map_err(|e| Error::io(&index_path, e))?;
    let index = reader.index()?;
    let blobs = reachable(&reader, &index)?;
    let io = |e| Error::io(out_path, e);
    let mut tar = tar::Builder::new(out);
    let entry = |path: &str, size: u64, dir: bool| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_size(size);
        h.set_mode(if dir { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_path(path).map(|_| {
            h.set_cksum();
            h
        })
    };
    let oci_layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let h = entry("oci-layout", oci_layout.len() as u64, false).map_err(io)?;
    tar.append(&h, &oci_layout[..]).map_err(io)?;
    let h = entry("index.json", index_bytes.len() as u64, false).map_err(io)?;
    tar.append(&h, index_bytes.as_slice()).map_err(io)?;
    for d in ["blobs/", "blobs/sha256/"] {
        let h = entry(d, 0, true).map_err(io)?;
        tar.append(&h, std::io::empty()).map_err(io)?;
    }
    for (digest, size) in &blobs {
        let blob = reader.blob(digest, *size)?;
        let h = entry(&format!("blobs/sha256/{}", digest.hex()), *size, false).map_err(io)?;
        tar.append(&h, blob.reader()).map_err(io)?;
    }
    tar.into_inner().map_err(io)?.flush().map_err(io)
}
