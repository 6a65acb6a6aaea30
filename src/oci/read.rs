//! Reading images from an OCI image layout or an OCI archive.
//!
//! Every JSON document is checked against the digest and size its
//! descriptor gives before it is parsed, and is refused above
//! [`MAX_JSON_BYTES`]. Blobs are handed out as regions of a file (a layout's
//! blob file, or a member of the archive read in place), so layers are never
//! copied to be read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;

use super::types::{
    is_index, is_manifest, pick_platform, Descriptor, ImageConfig, Index, Manifest, MAX_JSON_BYTES,
    REF_NAME,
};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::io::RegionReader;

/// The tag used when a reference names none.
pub const DEFAULT_TAG: &str = "latest";

/// A blob's bytes: `size` bytes at `offset` in `file`.
#[derive(Debug)]
pub struct Blob {
    /// The file holding the blob.
    pub file: File,
    /// Where that file is: a layout's blob file, an archive, or the scratch
    /// directory of a nameless download (for I/O errors).
    pub path: PathBuf,
    /// The blob as named in messages (`oci:DIR blob sha256:…`,
    /// `ARCHIVE:blobs/sha256/…`).
    pub name: String,
    /// Where the blob starts in it.
    pub offset: u64,
    /// The blob's size.
    pub size: u64,
}

impl Blob {
    /// A reader over the blob's bytes.
    pub fn reader(&self) -> RegionReader<'_> {
        RegionReader::new(&self.file, self.offset, self.size)
    }
}

/// An image: its manifest and config.
#[derive(Clone, Debug)]
pub struct Image {
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The config.
    pub config: ImageConfig,
}

/// A layout directory or an archive opened for reading.
#[derive(Debug)]
pub struct LayoutReader {
    kind: Kind,
    /// Bytes read through [`LayoutReader::read_range`] and the JSON readers.
    bytes_read: AtomicU64,
}

#[derive(Debug)]
enum Kind {
    Layout(PathBuf),
    Archive {
        file: File,
        path: PathBuf,
        /// Member name (`index.json`, `blobs/sha256/HEX`) -> (offset, size).
        members: HashMap<String, (u64, u64)>,
    },
}

impl LayoutReader {
    /// Opens the image layout directory `dir`.
    pub fn open_layout(dir: &Path) -> Result<Self> {
        let marker = dir.join("oci-layout");
        match std::fs::metadata(&marker) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
                return Err(Error::malformed(
                    dir.display(),
                    "is not an OCI image layout (no oci-layout file)",
                ));
            }
            Err(e) => return Err(Error::io(marker, e)),
        }
        Ok(LayoutReader {
            kind: Kind::Layout(dir.to_path_buf()),
            bytes_read: AtomicU64::new(0),
        })
    }

    /// Opens the OCI archive (a tar of an image layout) `path`, listing its
    /// members.
    pub fn open_archive(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut members = HashMap::new();
        {
            let mut archive = tar::Archive::new(BufReader::new(&file));
            let bad = |e: std::io::Error| {
                Error::malformed(path.display(), format!("not a tar archive: {e}"))
            };
            for entry in archive.entries_with_seek().map_err(bad)? {
                let entry = entry.map_err(bad)?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let raw = entry.path_bytes();
                let name = String::from_utf8_lossy(&raw);
                let name = name.trim_start_matches("./").trim_start_matches('/');
                let wanted = name == "index.json"
                    || name == "oci-layout"
                    || name
                        .strip_prefix("blobs/sha256/")
                        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
                if wanted {
                    members.insert(name.to_string(), (entry.raw_file_position(), entry.size()));
                }
            }
        }
        if !members.contains_key("oci-layout") {
            return Err(Error::malformed(
                path.display(),
                "is not an OCI archive (no oci-layout member)",
            ));
        }
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if let Some((name, _)) = members
            .iter()
            .find(|(_, &(o, s))| o.checked_add(s).is_none_or(|end| end > len))
        {
            return Err(Error::malformed(
                path.display(),
                format!("is truncated inside {name}"),
            ));
        }
        Ok(LayoutReader {
            kind: Kind::Archive {
                file,
                path: path.to_path_buf(),
                members,
            },
            bytes_read: AtomicU64::new(0),
        })
    }

    /// Bytes read so far by [`LayoutReader::read_range`] and the manifest,
    /// index and config readers (not by readers of whole blobs).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    fn count(&self, n: u64) {
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
    }

    /// The name of a member (`index.json`, `blobs/sha256/HEX`), for errors:
    /// its path, or `ARCHIVE:MEMBER`.
    pub fn member_path(&self, member: &str) -> PathBuf {
        match &self.kind {
            Kind::Layout(dir) => dir.join(member),
            Kind::Archive { path, .. } => PathBuf::from(format!("{}:{member}", path.display())),
        }
    }

    /// A member's bytes as a region of a file.
    fn member(&self, member: &str) -> Result<Blob> {
        match &self.kind {
            Kind::Layout(dir) => {
                let path = dir.join(member);
                let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
                if !meta.is_file() {
                    return Err(Error::malformed(path.display(), "is not a regular file"));
                }
                Ok(Blob {
                    file,
                    name: path.display().to_string(),
                    path,
                    offset: 0,
                    size: meta.len(),
                })
            }
            Kind::Archive {
                file,
                path,
                members,
            } => {
                let &(offset, size) = members.get(member).ok_or_else(|| {
                    Error::malformed(self.member_path(member).display(), "not in the archive")
                })?;
                Ok(Blob {
                    file: file.try_clone().map_err(|e| Error::io(path, e))?,
                    path: path.clone(),
                    name: self.member_path(member).display().to_string(),
                    offset,
                    size,
                })
            }
        }
    }

    /// The blob `digest`, checked to be `size` bytes long (its content is
    /// checked by whoever reads it).
    pub fn blob(&self, digest: &Digest, size: u64) -> Result<Blob> {
        let blob = self.member(&format!("blobs/sha256/{}", digest.hex()))?;
        if blob.size != size {
            return Err(Error::malformed(
                &blob.name,
                format!("is {} bytes long, its descriptor says {size}", blob.size),
            ));
        }
        Ok(blob)
    }

    /// `length` bytes at `offset` of the blob `digest` (`size` bytes long).
    pub fn read_range(
        &self,
        digest: &Digest,
        size: u64,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>> {
        let blob = self.blob(digest, size)?;
        if offset.checked_add(length).is_none_or(|end| end > size) {
            return Err(Error::malformed(
                &blob.name,
                format!(
                    "has no bytes {offset}..{} (it is {size} long)",
                    offset.saturating_add(length)
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(length.min(MAX_JSON_BYTES) as usize);
        RegionReader::new(&blob.file, blob.offset + offset, length)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&blob.path, e))?;
        self.count(length);
        Ok(bytes)
    }

    /// Reads a small member whole, at most [`MAX_JSON_BYTES`].
    fn read_small(&self, blob: &Blob) -> Result<Vec<u8>> {
        if blob.size > MAX_JSON_BYTES {
            return Err(Error::malformed(
                &blob.name,
                format!(
                    "is {} bytes long, more than a JSON document may be",
                    blob.size
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(blob.size as usize);
        blob.reader()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&blob.path, e))?;
        self.count(blob.size);
        Ok(bytes)
    }

    /// Reads and parses the JSON blob `desc` names, checking its digest.
    pub fn json_blob<T: DeserializeOwned>(&self, desc: &Descriptor) -> Result<T> {
        self.json_blob_bytes(desc).map(|(t, _)| t)
    }

    /// [`LayoutReader::json_blob`], and the blob's bytes.
    pub fn json_blob_bytes<T: DeserializeOwned>(&self, desc: &Descriptor) -> Result<(T, Vec<u8>)> {
        let blob = self.blob(&desc.digest, desc.size)?;
        let bytes = self.read_small(&blob)?;
        let got = Digest::of(&bytes);
        if got != desc.digest {
            return Err(Error::digest_mismatch(&blob.name, desc.digest, got));
        }
        let t = serde_json::from_slice(&bytes)
            .map_err(|e| Error::malformed(&blob.name, format!("bad JSON: {e}")))?;
        Ok((t, bytes))
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<Index> {
        self.read_index(true)
    }

    /// The descriptor tagged `tag` in `index.json`, if there is one. The
    /// read is not counted in [`LayoutReader::bytes_read`]: it stands for
    /// asking a registry for a tag, which costs the document it names.
    pub fn tagged(&self, tag: &str) -> Result<Option<Descriptor>> {
        Ok(self
            .read_index(false)?
            .manifests
            .into_iter()
            .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(tag)))
    }

    fn read_index(&self, count: bool) -> Result<Index> {
        let blob = self.member("index.json")?;
        let bytes = self.read_small(&blob)?;
        if !count {
            self.bytes_read.fetch_sub(blob.size, Ordering::Relaxed);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::malformed(&blob.name, format!("bad JSON: {e}")))
    }

    /// The manifest of the image tagged `tag`, or without a tag `latest` or
    /// the only image there is, its descriptor and bytes. An image index in
    /// between is resolved to the manifest for `architecture` on linux.
    pub fn manifest(
        &self,
        tag: Option<&str>,
        architecture: &str,
    ) -> Result<(Descriptor, Manifest, Vec<u8>)> {
        let index = self.index()?;
        let index_path = self.member_path("index.json");
        let tag_of = |m: &Descriptor| m.annotations.get(REF_NAME).cloned();
        let tags: Vec<String> = index.manifests.iter().filter_map(tag_of).collect();
        let found = match tag {
            Some(t) => index
                .manifests
                .iter()
                .find(|m| tag_of(m).as_deref() == Some(t)),
            None => index
                .manifests
                .iter()
                .find(|m| tag_of(m).as_deref() == Some(DEFAULT_TAG))
                .or(match index.manifests.as_slice() {
                    [only] => Some(only),
                    _ => None,
                }),
        };
        let desc = found.ok_or_else(|| {
            let which = tag.map_or_else(
                || {
                    format!(
                        "no image tagged {DEFAULT_TAG:?} and {} images",
                        index.manifests.len()
                    )
                },
                |t| format!("no image tagged {t:?}"),
            );
            Error::malformed(
                index_path.display(),
                format!("{which} (tags: {})", tags.join(", ")),
            )
        })?;
        let desc = self.resolve_index(desc.clone(), architecture)?;
        let (manifest, bytes): (Manifest, Vec<u8>) = self.json_blob_bytes(&desc)?;
        let path = self.member_path(&format!("blobs/sha256/{}", desc.digest.hex()));
        check_manifest_type(&manifest, &path.display().to_string())?;
        Ok((desc, manifest, bytes))
    }

    /// Follows image indexes (at most [`MAX_INDEX_DEPTH`] nested) to a
    /// manifest for linux on `architecture`.
    fn resolve_index(&self, mut desc: Descriptor, architecture: &str) -> Result<Descriptor> {
        for _ in 0..MANIFEST_LOOKUPS {
            if !is_index(&desc.media_type) {
                return Ok(desc);
            }
            let index: Index = self.json_blob(&desc)?;
            let next = pick_platform(&index, architecture).ok_or_else(|| {
                Error::malformed(
                    self.member_path(&format!("blobs/sha256/{}", desc.digest.hex()))
                        .display(),
                    format!("an image index with no image for linux/{architecture}"),
                )
            })?;
            desc = next.clone();
        }
        Err(Error::malformed(
            self.member_path("index.json").display(),
            "image indexes nested too deep",
        ))
    }
}

/// How many image indexes deep a manifest is looked for: at most this many
/// nested indexes are followed, in a layout, an archive or a registry.
pub const MAX_INDEX_DEPTH: usize = 4;

/// Descriptors read on the way to a manifest, at most: the indexes, then
/// the manifest. Every reader of images loops this many times.
pub const MANIFEST_LOOKUPS: usize = MAX_INDEX_DEPTH + 1;

/// An error unless `manifest` is an image manifest (or says nothing of its
/// media type).
pub fn check_manifest_type(manifest: &Manifest, name: &str) -> Result<()> {
    if !manifest.media_type.is_empty() && !is_manifest(&manifest.media_type) {
        return Err(Error::malformed(
            name,
            format!(
                "has media type {:?}: not an image manifest",
                manifest.media_type
            ),
        ));
    }
    Ok(())
}

/// An error unless the config lists as many diff_ids as the manifest layers.
pub fn check_layers(
    descriptor: &Descriptor,
    manifest: &Manifest,
    config: &ImageConfig,
) -> Result<()> {
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(Error::malformed(
            format!("manifest {}", descriptor.digest),
            format!(
                "lists {} layers and its config {} diff_ids",
                manifest.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        ));
    }
    Ok(())
}
