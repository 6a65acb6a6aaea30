//! Reading an image wherever it is.

use std::ops::Range;
use std::path::PathBuf;
#[cfg(feature = "registry")]
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;

use super::ImageRef;
use crate::digest::Digest;
#[cfg(feature = "registry")]
use crate::error::Error;
use crate::error::Result;
use crate::oci::read::{check_layers, Blob, Image, LayoutReader};
use crate::oci::types::{Descriptor, ImageConfig, Manifest};
#[cfg(feature = "registry")]
use crate::registry::{Client, ClientConfig, Stats, Target};

/// How images are reached and where scratch files go.
#[derive(Clone, Debug, Default)]
pub struct StoreConfig {
    /// How a registry is spoken to.
    #[cfg(feature = "registry")]
    pub registry: ClientConfig,
    /// Scratch space: where whole blobs of a registry are downloaded to
    /// (nameless files, gone when dropped), and where an image pushed to a
    /// registry is laid out first. Without one, a registry's blobs can be
    /// read by range only, and no image can be pushed.
    pub scratch_dir: Option<PathBuf>,
}

/// An image source opened for reading: a layout, an archive or a registry.
#[derive(Debug)]
pub struct ImageReader {
    reference: ImageRef,
    pub(super) backend: Backend,
    #[cfg_attr(not(feature = "registry"), allow(dead_code))]
    scratch_dir: Option<PathBuf>,
}

/// Where an [`ImageReader`] reads from.
#[derive(Debug)]
pub(super) enum Backend {
    Local(LayoutReader),
    #[cfg(feature = "registry")]
    Registry {
        client: Box<Client>,
        target: Target,
        /// Bytes of manifests, configs and ranges read.
        bytes_read: AtomicU64,
    },
}

impl ImageReader {
    /// Opens the layout or archive `reference` names (a registry with the
    /// default [`StoreConfig`]: TLS, no credentials, no scratch directory).
    pub fn open(reference: &ImageRef) -> Result<Self> {
        Self::open_with(reference, &StoreConfig::default())
    }

    /// Opens `reference`; a registry is spoken to as `config` says.
    pub fn open_with(reference: &ImageRef, config: &StoreConfig) -> Result<Self> {
        let backend = match reference {
            ImageRef::Layout { dir, .. } => Backend::Local(LayoutReader::open_layout(dir)?),
            ImageRef::Archive { file, .. } => Backend::Local(LayoutReader::open_archive(file)?),
            #[cfg(feature = "registry")]
            ImageRef::Registry(r) => Backend::Registry {
                client: Box::new(Client::for_ref(r, config.registry.clone())?),
                target: r.target.clone(),
                bytes_read: AtomicU64::new(0),
            },
        };
        Ok(ImageReader {
            reference: reference.clone(),
            backend,
            scratch_dir: config.scratch_dir.clone(),
        })
    }

    /// The reference this reader was opened with.
    pub fn reference(&self) -> &ImageRef {
        &self.reference
    }

    /// Bytes read so far by [`ImageReader::read_range`], the manifest,
    /// index and config readers (not by readers of whole local blobs).
    pub fn bytes_read(&self) -> u64 {
        match &self.backend {
            Backend::Local(l) => l.bytes_read(),
            #[cfg(feature = "registry")]
            Backend::Registry { bytes_read, .. } => bytes_read.load(Ordering::Relaxed),
        }
    }

    /// What the registry client did, for a registry source.
    #[cfg(feature = "registry")]
    pub fn registry_stats(&self) -> Option<Stats> {
        match &self.backend {
            Backend::Registry { client, .. } => Some(client.stats()),
            Backend::Local(_) => None,
        }
    }

    /// `length` bytes at `offset` of the blob `digest` (`size` bytes long).
    pub fn read_range(
        &self,
        digest: &Digest,
        size: u64,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>> {
        match &self.backend {
            Backend::Local(l) => l.read_range(digest, size, offset, length),
            #[cfg(feature = "registry")]
            Backend::Registry {
                client, bytes_read, ..
            } => {
                let range = offset..offset + length;
                let mut parts = client.get_ranges(digest, size, std::slice::from_ref(&range))?;
                bytes_read.fetch_add(length, Ordering::Relaxed);
                Ok(parts.pop().unwrap_or_default())
            }
        }
    }

    /// The byte `ranges` of the blob `digest` (`size` bytes long), sorted
    /// and apart, as one request: from a registry a multi-range request
    /// (the client falls back as the registry needs).
    pub fn read_ranges(
        &self,
        digest: &Digest,
        size: u64,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Vec<u8>>> {
        match &self.backend {
            Backend::Local(l) => ranges
                .iter()
                .map(|r| l.read_range(digest, size, r.start, r.end.saturating_sub(r.start)))
                .collect(),
            #[cfg(feature = "registry")]
            Backend::Registry {
                client, bytes_read, ..
            } => {
                let parts = client.get_ranges(digest, size, ranges)?;
                let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
                bytes_read.fetch_add(total, Ordering::Relaxed);
                Ok(parts)
            }
        }
    }

    /// The blob `digest`, checked to be `size` bytes long (its content is
    /// checked by whoever reads it).
    ///
    /// From a registry the blob is downloaded whole (resumed if the transfer
    /// breaks, its sha256 checked) into a nameless file in the scratch
    /// directory, gone when the [`Blob`] is dropped.
    pub fn blob(&self, digest: &Digest, size: u64) -> Result<Blob> {
        match &self.backend {
            Backend::Local(l) => l.blob(digest, size),
            #[cfg(feature = "registry")]
            Backend::Registry {
                client, bytes_read, ..
            } => {
                let scratch = self.scratch_dir.as_deref().ok_or_else(|| {
                    Error::Config(format!(
                        "reading a whole blob of {} needs a scratch directory",
                        self.reference
                    ))
                })?;
                let mut file = crate::io::anonymous_file(scratch)?;
                {
                    let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut file);
                    client.get_blob_to(digest, size, &mut out)?;
                    std::io::Write::flush(&mut out).map_err(|e| Error::io(scratch, e))?;
                }
                bytes_read.fetch_add(size, Ordering::Relaxed);
                Ok(Blob {
                    file,
                    path: scratch.to_path_buf(),
                    name: format!("{} blob {digest}", self.reference),
                    offset: 0,
                    size,
                })
            }
        }
    }

    /// Reads and parses the JSON blob `desc` names, checking its digest.
    pub fn json_blob<T: DeserializeOwned>(&self, desc: &Descriptor) -> Result<T> {
        self.json_blob_bytes(desc).map(|(t, _)| t)
    }

    /// [`ImageReader::json_blob`], and the blob's bytes.
    pub fn json_blob_bytes<T: DeserializeOwned>(&self, desc: &Descriptor) -> Result<(T, Vec<u8>)> {
        match &self.backend {
            Backend::Local(l) => l.json_blob_bytes(desc),
            #[cfg(feature = "registry")]
            Backend::Registry {
                client, bytes_read, ..
            } => {
                let what = format!("{} blob {}", self.reference, desc.digest);
                if desc.size > crate::oci::types::MAX_JSON_BYTES {
                    return Err(Error::malformed(what, "too large for a JSON document"));
                }
                let bytes = client.get_blob(&desc.digest, desc.size)?;
                bytes_read.fetch_add(desc.size, Ordering::Relaxed);
                let t = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::malformed(what, format!("bad JSON: {e}")))?;
                Ok((t, bytes))
            }
        }
    }

    /// The image the reference names: its tag, or without one `latest` or
    /// the only image there is (a registry reference always names one). An
    /// image index in between is resolved to the manifest for
    /// `architecture` on linux.
    pub fn image(&self, architecture: &str) -> Result<Image> {
        let (descriptor, manifest, _) = self.manifest(architecture)?;
        let config: ImageConfig = self.json_blob(&manifest.config)?;
        check_layers(&descriptor, &manifest, &config)?;
        Ok(Image {
            descriptor,
            manifest,
            config,
        })
    }

    /// The manifest [`ImageReader::image`] reads, its descriptor and bytes.
    pub fn manifest(&self, architecture: &str) -> Result<(Descriptor, Manifest, Vec<u8>)> {
        match &self.backend {
            Backend::Local(l) => l.manifest(self.reference.tag(), architecture),
            #[cfg(feature = "registry")]
            Backend::Registry {
                client,
                target,
                bytes_read,
            } => {
                let mut target = target.clone();
                for _ in 0..crate::oci::read::MANIFEST_LOOKUPS {
                    let m = client.get_manifest(&target)?;
                    bytes_read.fetch_add(m.size, Ordering::Relaxed);
                    let what = format!("{} manifest {}", self.reference, m.digest);
                    let bad_json =
                        |e: serde_json::Error| Error::malformed(&what, format!("bad JSON: {e}"));
                    if crate::oci::types::is_index(&m.media_type) {
                        let index: crate::oci::types::Index =
                            serde_json::from_slice(&m.bytes).map_err(bad_json)?;
                        let next = crate::oci::types::pick_platform(&index, architecture)
                            .ok_or_else(|| {
                                Error::malformed(
                                    &what,
                                    format!(
                                        "an image index with no image for linux/{architecture}"
                                    ),
                                )
                            })?;
                        target = Target::Digest(next.digest);
                        continue;
                    }
                    let manifest: Manifest = serde_json::from_slice(&m.bytes).map_err(bad_json)?;
                    crate::oci::read::check_manifest_type(&manifest, &what)?;
                    let desc = Descriptor {
                        media_type: m.media_type,
                        digest: m.digest,
                        size: m.size,
                        annotations: Default::default(),
                        artifact_type: None,
                        platform: None,
                    };
                    return Ok((desc, manifest, m.bytes));
                }
                Err(Error::malformed(
                    &self.reference,
                    "image indexes nested too deep",
                ))
            }
        }
    }
}
