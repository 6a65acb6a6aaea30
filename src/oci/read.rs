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

use serde::de::DeserializeOwned;

use super::types::{
    Descriptor, ImageConfig, Index, Manifest, DOCKER_INDEX_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE,
    INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, REF_NAME,
};
use super::{ImageRef, DEFAULT_TAG};
use crate::digest::Digest;
use crate::error::{Error, Result};
pub use crate::walk::RegionReader;

/// The largest manifest, index or config read, in bytes.
pub const MAX_JSON_BYTES: u64 = 64 << 20;

/// An image source opened for reading.
#[derive(Debug)]
pub struct ImageReader {
    reference: ImageRef,
    store: Store,
    /// Bytes read through [`ImageReader::read_range`] and the JSON readers.
    bytes_read: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
enum Store {
    Layout(PathBuf),
    Registry(Box<crate::registry::Client>),
    Archive {
        file: File,
        path: PathBuf,
        /// Member name (`index.json`, `blobs/sha256/HEX`) -> (offset, size).
        members: HashMap<String, (u64, u64)>,
    },
}

/// A blob's bytes: `size` bytes at `offset` in `file`.
#[derive(Debug)]
pub struct Blob {
    /// The file holding the blob.
    pub file: File,
    /// Its name, for error messages.
    pub path: PathBuf,
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

fn invalid(path: impl Into<PathBuf>, why: String) -> Error {
    Error::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, why),
    )
}

impl ImageReader {
    /// Opens the layout or archive `reference` names (a registry with the
    /// default [`crate::registry::ClientConfig`]: TLS, no credentials).
    pub fn open(reference: &ImageRef) -> Result<Self> {
        Self::open_with(reference, &crate::registry::ClientConfig::default())
    }

    /// Opens `reference`; a registry is spoken to as `registry` says.
    pub fn open_with(
        reference: &ImageRef,
        registry: &crate::registry::ClientConfig,
    ) -> Result<Self> {
        let store = match reference {
            ImageRef::Registry(r) => Store::Registry(Box::new(crate::registry::Client::for_ref(
                r,
                registry.clone(),
            )?)),
            ImageRef::Layout { dir, .. } => {
                let marker = dir.join("oci-layout");
                match std::fs::metadata(&marker) {
                    Ok(_) => Store::Layout(dir.clone()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
                        return Err(invalid(
                            dir,
                            "is not an OCI image layout (no oci-layout file)".into(),
                        ));
                    }
                    Err(e) => return Err(Error::io(marker, e)),
                }
            }
            ImageRef::Archive { file, .. } => open_archive(file)?,
        };
        Ok(ImageReader {
            reference: reference.clone(),
            store,
            bytes_read: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Bytes read so far by [`ImageReader::read_range`], the manifest, index
    /// and config readers (not by readers of whole blobs).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `length` bytes at `offset` of the blob `digest` (`size` bytes long).
    pub fn read_range(
        &self,
        digest: &Digest,
        size: u64,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>> {
        if let Store::Registry(client) = &self.store {
            let mut parts = client.get_ranges(digest, size, &[(offset, offset + length)])?;
            self.bytes_read
                .fetch_add(length, std::sync::atomic::Ordering::Relaxed);
            return Ok(parts.pop().unwrap_or_default());
        }
        let blob = self.blob(digest, size)?;
        if offset.checked_add(length).is_none_or(|end| end > size) {
            return Err(invalid(
                &blob.path,
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
        self.bytes_read
            .fetch_add(length, std::sync::atomic::Ordering::Relaxed);
        Ok(bytes)
    }

    /// The byte ranges `(start, end)` of the blob `digest` (`size` bytes
    /// long), sorted and apart, as one request: from a registry a
    /// multi-range request (the client falls back as the registry needs).
    pub fn read_ranges(
        &self,
        digest: &Digest,
        size: u64,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<Vec<u8>>> {
        if let Store::Registry(client) = &self.store {
            let parts = client.get_ranges(digest, size, ranges)?;
            let total: u64 = ranges.iter().map(|(s, e)| e - s).sum();
            self.bytes_read
                .fetch_add(total, std::sync::atomic::Ordering::Relaxed);
            return Ok(parts);
        }
        ranges
            .iter()
            .map(|&(start, end)| self.read_range(digest, size, start, end.saturating_sub(start)))
            .collect()
    }

    /// What the registry client did, for a registry source.
    pub fn registry_stats(&self) -> Option<crate::registry::Stats> {
        match &self.store {
            Store::Registry(client) => Some(client.stats()),
            _ => None,
        }
    }

    /// The reference this reader was opened with.
    pub fn reference(&self) -> &ImageRef {
        &self.reference
    }

    /// The name of a member (`index.json`, `blobs/sha256/HEX`), for errors.
    fn member_path(&self, member: &str) -> PathBuf {
        match &self.store {
            Store::Layout(dir) => dir.join(member),
            Store::Archive { path, .. } => PathBuf::from(format!("{}:{member}", path.display())),
            Store::Registry(_) => PathBuf::from(format!("{}: {member}", self.reference)),
        }
    }

    /// A member's bytes as a region of a file.
    fn member(&self, member: &str) -> Result<Blob> {
        match &self.store {
            Store::Registry(_) => Err(Error::io(
                self.member_path(member),
                std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "a registry holds no such file (only manifests and blobs)",
                ),
            )),
            Store::Layout(dir) => {
                let path = dir.join(member);
                let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
                if !meta.is_file() {
                    return Err(invalid(&path, "is not a regular file".into()));
                }
                Ok(Blob {
                    file,
                    path,
                    offset: 0,
                    size: meta.len(),
                })
            }
            Store::Archive {
                file,
                path,
                members,
            } => {
                let &(offset, size) = members.get(member).ok_or_else(|| {
                    Error::io(
                        self.member_path(member),
                        std::io::Error::new(std::io::ErrorKind::NotFound, "not in the archive"),
                    )
                })?;
                Ok(Blob {
                    file: file.try_clone().map_err(|e| Error::io(path, e))?,
                    path: self.member_path(member),
                    offset,
                    size,
                })
            }
        }
    }

    /// The blob `digest`, checked to be `size` bytes long (its content is
    /// checked by whoever reads it).
    ///
    /// From a registry the blob is downloaded whole (resumed if the transfer
    /// breaks, its sha256 checked) into a nameless scratch file in
    /// `$TMPDIR`, gone when the [`Blob`] is dropped.
    pub fn blob(&self, digest: &Digest, size: u64) -> Result<Blob> {
        if let Store::Registry(client) = &self.store {
            let path = self.member_path(&format!("blobs/sha256/{}", digest.hex()));
            let scratch = std::env::temp_dir();
            let mut file = crate::walk::anonymous_file(&scratch)?;
            {
                let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut file);
                client.get_blob_to(digest, size, &mut out)?;
                std::io::Write::flush(&mut out).map_err(|e| Error::io(&scratch, e))?;
            }
            self.bytes_read
                .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
            return Ok(Blob {
                file,
                path,
                offset: 0,
                size,
            });
        }
        let blob = self.member(&format!("blobs/sha256/{}", digest.hex()))?;
        if blob.size != size {
            return Err(invalid(
                &blob.path,
                format!("is {} bytes long, its descriptor says {size}", blob.size),
            ));
        }
        Ok(blob)
    }

    /// Reads a small member whole, at most [`MAX_JSON_BYTES`].
    fn read_small(&self, blob: &Blob) -> Result<Vec<u8>> {
        if blob.size > MAX_JSON_BYTES {
            return Err(invalid(
                &blob.path,
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
        self.bytes_read
            .fetch_add(blob.size, std::sync::atomic::Ordering::Relaxed);
        Ok(bytes)
    }

    /// Reads and parses the JSON blob `desc` names, checking its digest.
    pub fn json_blob<T: DeserializeOwned>(&self, desc: &Descriptor) -> Result<T> {
        self.json_blob_bytes(desc).map(|(t, _)| t)
    }

    /// [`ImageReader::json_blob`], and the blob's bytes.
    pub fn json_blob_bytes<T: DeserializeOwned>(&self, desc: &Descriptor) -> Result<(T, Vec<u8>)> {
        if let Store::Registry(client) = &self.store {
            if desc.size > MAX_JSON_BYTES {
                return Err(invalid(
                    self.member_path(&desc.digest.to_string()),
                    "too large for a JSON document".into(),
                ));
            }
            let bytes = client.get_blob(&desc.digest, desc.size)?;
            self.bytes_read
                .fetch_add(desc.size, std::sync::atomic::Ordering::Relaxed);
            let t = serde_json::from_slice(&bytes).map_err(|e| {
                invalid(
                    self.member_path(&desc.digest.to_string()),
                    format!("bad JSON: {e}"),
                )
            })?;
            return Ok((t, bytes));
        }
        let blob = self.blob(&desc.digest, desc.size)?;
        let bytes = self.read_small(&blob)?;
        if Digest::of(&bytes) != desc.digest {
            return Err(invalid(
                &blob.path,
                format!("does not match its digest {}", desc.digest),
            ));
        }
        let t = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(&blob.path, format!("bad JSON: {e}")))?;
        Ok((t, bytes))
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<Index> {
        let blob = self.member("index.json")?;
        let bytes = self.read_small(&blob)?;
        serde_json::from_slice(&bytes).map_err(|e| invalid(&blob.path, format!("bad JSON: {e}")))
    }

    /// The image the reference's tag names: that tag, or without one
    /// `latest`, or the only image there is. An image index in between is
    /// resolved to the manifest for `architecture` on linux.
    pub fn image(&self, architecture: &str) -> Result<Image> {
        let (desc, manifest, _) = self.manifest(architecture)?;
        let config: ImageConfig = self.json_blob(&manifest.config)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(invalid(
                self.member_path(&format!("blobs/sha256/{}", desc.digest.hex())),
                format!(
                    "lists {} layers and its config {} diff_ids",
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            ));
        }
        Ok(Image {
            descriptor: desc,
            manifest,
            config,
        })
    }

    /// The manifest [`ImageReader::image`] reads, its descriptor and bytes.
    pub fn manifest(&self, architecture: &str) -> Result<(Descriptor, Manifest, Vec<u8>)> {
        if let (Store::Registry(client), ImageRef::Registry(r)) = (&self.store, &self.reference) {
            return self.registry_manifest(client, &r.target, architecture, 0);
        }
        let index = self.index()?;
        let index_path = self.member_path("index.json");
        let tag_of = |m: &Descriptor| m.annotations.get(REF_NAME).cloned();
        let tags: Vec<String> = index.manifests.iter().filter_map(tag_of).collect();
        let wanted = self.reference.tag();
        let found = match wanted {
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
            let which = wanted.map_or_else(
                || {
                    format!(
                        "no image tagged {DEFAULT_TAG:?} and {} images",
                        index.manifests.len()
                    )
                },
                |t| format!("no image tagged {t:?}"),
            );
            invalid(&index_path, format!("{which} (tags: {})", tags.join(", ")))
        })?;
        let desc = self.resolve_index(desc.clone(), architecture)?;
        let (manifest, bytes): (Manifest, Vec<u8>) = self.json_blob_bytes(&desc)?;
        let path = self.member_path(&format!("blobs/sha256/{}", desc.digest.hex()));
        if !manifest.media_type.is_empty()
            && manifest.media_type != MANIFEST_MEDIA_TYPE
            && manifest.media_type != DOCKER_MANIFEST_MEDIA_TYPE
        {
            return Err(invalid(
                path,
                format!(
                    "has media type {:?}: not an image manifest",
                    manifest.media_type
                ),
            ));
        }
        Ok((desc, manifest, bytes))
    }

    /// The manifest `target` names in the registry, through image indexes
    /// (at most a few deep) to the one for linux on `architecture`.
    fn registry_manifest(
        &self,
        client: &crate::registry::Client,
        target: &crate::registry::Target,
        architecture: &str,
        depth: usize,
    ) -> Result<(Descriptor, Manifest, Vec<u8>)> {
        let m = client.get_manifest(target)?;
        self.bytes_read
            .fetch_add(m.size, std::sync::atomic::Ordering::Relaxed);
        let path = self.member_path(&m.digest.to_string());
        if m.media_type == INDEX_MEDIA_TYPE || m.media_type == DOCKER_INDEX_MEDIA_TYPE {
            if depth >= 4 {
                return Err(invalid(path, "image indexes nested too deep".into()));
            }
            let index: Index = serde_json::from_slice(&m.bytes)
                .map_err(|e| invalid(&path, format!("bad JSON: {e}")))?;
            let next = pick_platform(&index, architecture).ok_or_else(|| {
                invalid(
                    &path,
                    format!("an image index with no image for linux/{architecture}"),
                )
            })?;
            return self.registry_manifest(
                client,
                &crate::registry::Target::Digest(next.digest),
                architecture,
                depth + 1,
            );
        }
        let manifest: Manifest = serde_json::from_slice(&m.bytes)
            .map_err(|e| invalid(&path, format!("bad JSON: {e}")))?;
        let desc = Descriptor {
            media_type: m.media_type,
            digest: m.digest,
            size: m.size,
            annotations: Default::default(),
            platform: None,
        };
        Ok((desc, manifest, m.bytes))
    }

    /// Follows image indexes (at most a few deep) to a manifest for linux
    /// on `architecture`.
    fn resolve_index(&self, mut desc: Descriptor, architecture: &str) -> Result<Descriptor> {
        for _ in 0..4 {
            if desc.media_type != INDEX_MEDIA_TYPE && desc.media_type != DOCKER_INDEX_MEDIA_TYPE {
                return Ok(desc);
            }
            let index: Index = self.json_blob(&desc)?;
            let next = pick_platform(&index, architecture).ok_or_else(|| {
                invalid(
                    self.member_path(&format!("blobs/sha256/{}", desc.digest.hex())),
                    format!("an image index with no image for linux/{architecture}"),
                )
            })?;
            desc = next.clone();
        }
        Err(invalid(
            self.member_path("index.json"),
            "image indexes nested too deep".into(),
        ))
    }
}

/// The manifest of an image index for linux on `architecture`, or its only
/// manifest.
fn pick_platform<'a>(index: &'a Index, architecture: &str) -> Option<&'a Descriptor> {
    index
        .manifests
        .iter()
        .find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == architecture)
        })
        .or(match index.manifests.as_slice() {
            [only] => Some(only),
            _ => None,
        })
}

/// Lists the members of an OCI archive (a tar of an image layout).
fn open_archive(path: &Path) -> Result<Store> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut members = HashMap::new();
    {
        let mut archive = tar::Archive::new(BufReader::new(&file));
        let bad = |e: std::io::Error| invalid(path, format!("not a tar archive: {e}"));
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
        return Err(invalid(
            path,
            "is not an OCI archive (no oci-layout member)".into(),
        ));
    }
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if let Some((name, _)) = members
        .iter()
        .find(|(_, &(o, s))| o.checked_add(s).is_none_or(|end| end > len))
    {
        return Err(invalid(path, format!("is truncated inside {name}")));
    }
    Ok(Store::Archive {
        file,
        path: path.to_path_buf(),
        members,
    })
}
