//! Writing an image wherever it goes.

use std::path::PathBuf;

use serde::Serialize;

use super::{ImageRef, StoreConfig};
use crate::digest::Digest;
#[cfg(feature = "registry")]
use crate::error::Error;
use crate::error::Result;
use crate::io::beside;
use crate::oci::archive::{import_archive, write_archive, ArchiveLock};
use crate::oci::layout::LayoutWriter;
#[cfg(feature = "registry")]
use crate::oci::read::LayoutReader;
#[cfg(feature = "registry")]
use crate::registry::{Client, ClientConfig, PushOutcome, Target};

/// An image being written to an [`ImageRef`].
///
/// Blobs, the config and the manifest go into [`ImageWriter::layout`], and
/// the tag is set there; [`ImageWriter::finish`] then publishes: nothing to
/// do for a layout, the archive written beside its destination and renamed
/// over it, or the image pushed to the registry (blobs it lacks, then the
/// manifest). Dropped without `finish` (a failed run), the writer removes
/// what it made: the scratch layout, and a destination layout directory
/// that did not exist before, if no other run has written an image there.
///
/// Other runs may write into the same layout or archive at the same time:
/// a layout is changed under its locks ([`LayoutWriter`]); an archive is
/// read, added to and replaced while its lock ([`ArchiveLock`]) is held.
#[derive(Debug)]
pub struct ImageWriter {
    dest: ImageRef,
    layout: LayoutWriter,
    tag: String,
    /// The destination layout was created by this run: it goes unless the
    /// write is finished (or another run has written an image there).
    created: bool,
    /// A scratch layout to remove in any case.
    scratch: Option<PathBuf>,
    #[cfg(feature = "registry")]
    registry: Option<ClientConfig>,
    /// The tag names an index of referrers, not an image: the annotations
    /// by which a new entry replaces an old one (see
    /// [`super::merge_referrer`]).
    referrers: Option<Vec<String>>,
    /// Held while an archive is rewritten; declared last, so let go last.
    _archive_lock: Option<ArchiveLock>,
}

/// What [`ImageWriter::finish`] did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteOutcome {
    /// The image written, with its tag (`oci:DIR:TAG`, `docker://…`).
    pub reference: String,
    /// What a push to a registry did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<PushReport>,
}

/// What a push did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushReport {
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the repository had already.
    pub skipped: usize,
    /// Bytes of blobs uploaded.
    pub uploaded_bytes: u64,
}

impl ImageWriter {
    /// Opens `dest` for writing the image tagged as `dest` says (or
    /// [`crate::oci::DEFAULT_TAG`]). An archive's other images are kept; a
    /// registry image is written into a scratch layout in the config's
    /// scratch directory first and pushed with its registry settings.
    pub fn open(dest: &ImageRef, config: &StoreConfig) -> Result<Self> {
        Self::open_for(dest, config, None)
    }

    fn open_for(
        dest: &ImageRef,
        config: &StoreConfig,
        referrers: Option<Vec<String>>,
    ) -> Result<Self> {
        #[cfg(not(feature = "registry"))]
        let _ = config;
        let tag = dest.tag_or_default().to_string();
        let (dir, scratch) = match dest {
            ImageRef::Layout { dir, .. } => (dir.clone(), false),
            ImageRef::Archive { file, .. } => (beside(file, "layout")?, true),
            #[cfg(feature = "registry")]
            ImageRef::Registry(_) => {
                let scratch_dir = config.scratch_dir.as_deref().ok_or_else(|| {
                    Error::Config(format!("pushing to {dest} needs a scratch directory"))
                })?;
                static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (
                    scratch_dir.join(format!("chunkah-push-{}-{n}", std::process::id())),
                    true,
                )
            }
        };
        // Other runs writing the archive wait until this one has replaced it.
        let archive_lock = match dest {
            ImageRef::Archive { file, .. } => Some(ArchiveLock::acquire(file)?),
            _ => None,
        };
        // A scratch layout goes in any case; a destination layout only if
        // this run creates it.
        let created = !scratch && !dir.exists();
        let writer = ImageWriter {
            dest: dest.clone(),
            layout: match scratch {
                false => LayoutWriter::open(&dir)?,
                true => LayoutWriter::open_scratch(&dir)?,
            },
            tag,
            created,
            scratch: scratch.then(|| dir.clone()),
            #[cfg(feature = "registry")]
            registry: dest.is_registry().then(|| config.registry.clone()),
            referrers,
            _archive_lock: archive_lock,
        };
        if let ImageRef::Archive { file, .. } = dest {
            if file.exists() {
                // The index of referrers is added to, an image replaced.
                let except = writer.referrers.is_none().then_some(writer.tag.as_str());
                import_archive(file, &writer.layout, except)?;
            }
        }
        Ok(writer)
    }

    /// Opens a scratch layout at `dir` for an image tagged `tag`, which the
    /// caller reads back (into an archive stream, say) and removes:
    /// [`ImageWriter::finish`] leaves it in place, blobs are not flushed to
    /// disk.
    pub fn open_scratch_layout(dir: &std::path::Path, tag: &str) -> Result<Self> {
        Ok(ImageWriter {
            dest: ImageRef::Layout {
                dir: dir.to_path_buf(),
                tag: Some(tag.to_string()),
            },
            layout: LayoutWriter::open_scratch(dir)?,
            tag: tag.to_string(),
            created: false,
            scratch: None,
            #[cfg(feature = "registry")]
            registry: None,
            referrers: None,
            _archive_lock: None,
        })
    }

    /// Opens `dest` for writing artifacts that refer to the manifest
    /// `subject`, and the index of its referrers under the referrers tag
    /// schema ([`super::referrers_tag`]); [`ImageWriter::finish`] pushes
    /// each artifact of the index the layout holds, then merges them into
    /// the registry's index as it is then, an entry replacing one with the
    /// same values of `same_annotations` (see [`super::merge_referrer`]),
    /// and reads it back until they are there: runs pushing referrers of
    /// one subject at once keep each other's.
    pub fn open_referrers(
        dest: &ImageRef,
        subject: &Digest,
        same_annotations: &[&str],
        config: &StoreConfig,
    ) -> Result<Self> {
        let tag = super::referrers_tag(subject);
        let dest = match dest {
            #[cfg(feature = "registry")]
            ImageRef::Registry(r) => {
                let mut r = r.clone();
                r.target = Target::Tag(tag);
                ImageRef::Registry(r)
            }
            _ => dest.with_tag(&tag),
        };
        let keys = same_annotations.iter().map(|k| k.to_string()).collect();
        Self::open_for(&dest, config, Some(keys))
    }

    /// The layout the image is written into.
    pub fn layout(&self) -> &LayoutWriter {
        &self.layout
    }

    /// The tag the image is written under.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Publishes the image written into [`ImageWriter::layout`] under
    /// [`ImageWriter::tag`].
    pub fn finish(mut self) -> Result<WriteOutcome> {
        #[cfg_attr(not(feature = "registry"), allow(unused_mut))]
        let mut pushed = None;
        match &self.dest {
            ImageRef::Layout { .. } => {}
            ImageRef::Archive { file, .. } => write_archive(self.layout.root(), file)?,
            #[cfg(feature = "registry")]
            ImageRef::Registry(r) => {
                let config = self.registry.clone().unwrap_or_default();
                let client = Client::for_ref(r, config)?;
                let reader = LayoutReader::open_layout(self.layout.root())?;
                pushed = Some(match &self.referrers {
                    None => push(&reader, &self.tag, &client, &r.target)?,
                    Some(keys) => push_referrers(&reader, &self.tag, keys, &client)?,
                });
            }
        }
        self.created = false;
        Ok(WriteOutcome {
            reference: match self.referrers {
                None => self.dest.with_tag(&self.tag).to_string(),
                Some(_) => self.dest.to_string(),
            },
            pushed,
        })
    }
}

impl Drop for ImageWriter {
    fn drop(&mut self) {
        if self.created {
            let _ = self.layout.remove_if_unused();
        }
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Pushes the image tagged `tag` in `source` to `client` under `target`:
/// blobs first (those the repository has are not sent again), the manifest
/// last, so the tag never names an incomplete image.
#[cfg(feature = "registry")]
pub fn push(
    source: &LayoutReader,
    tag: &str,
    client: &Client,
    target: &Target,
) -> Result<PushReport> {
    let architecture = crate::oci::types::host_architecture();
    let (desc, manifest, bytes) = source.manifest(Some(tag), architecture)?;
    let mut report = PushReport::default();
    push_blobs(source, &manifest, client, &mut report)?;
    client.put_manifest(target, &desc.media_type, &bytes)?;
    Ok(report)
}

/// Pushes the config and layers of `manifest` the repository lacks.
#[cfg(feature = "registry")]
fn push_blobs(
    source: &LayoutReader,
    manifest: &crate::oci::types::Manifest,
    client: &Client,
    report: &mut PushReport,
) -> Result<()> {
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let b = source.blob(&blob.digest, blob.size)?;
        let outcome = if b.offset == 0 {
            let mut file = b.file.try_clone().map_err(|e| Error::io(&b.path, e))?;
            client.put_blob(&blob.digest, blob.size, &mut file)?
        } else {
            // A member of an archive: read it out first.
            let mut region = std::io::Cursor::new(Vec::new());
            std::io::copy(&mut b.reader(), region.get_mut()).map_err(|e| Error::io(&b.path, e))?;
            client.put_blob(&blob.digest, blob.size, &mut region)?
        };
        match outcome {
            PushOutcome::Skipped => report.skipped += 1,
            PushOutcome::Uploaded => {
                report.uploaded += 1;
                report.uploaded_bytes += blob.size;
            }
        }
    }
    Ok(())
}

/// How many times the index of referrers is written before a run gives up
/// (each time another run replaced it between this one's read and write).
#[cfg(feature = "registry")]
const REFERRERS_ATTEMPTS: u32 = 8;

/// Pushes the artifacts listed in the index tagged `tag` in `source` that
/// `source` holds (blobs, then each manifest by digest), then merges them
/// into the registry's index under `tag` as it is now (`keys`: see
/// [`super::merge_referrer`]), and reads it back after a pause, merging
/// again while one of them is missing: the tag schema has no atomic
/// update, so another run may have replaced the index in between.
#[cfg(feature = "registry")]
fn push_referrers(
    source: &LayoutReader,
    tag: &str,
    keys: &[String],
    client: &Client,
) -> Result<PushReport> {
    let (tagged, index) = tagged_index(source, tag)?;
    let mut report = PushReport::default();
    let ours = push_artifacts(source, &index, client, &mut report)?;
    if ours.is_empty() {
        return Ok(report);
    }
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let merge = ReferrersMerge {
        client,
        target: Target::Tag(tag.to_string()),
        media_type: &tagged.media_type,
        ours: &ours,
        keys: &keys,
    };
    merge.until_listed()?;
    Ok(report)
}

/// The index tagged `tag` in `source`: its descriptor and content.
#[cfg(feature = "registry")]
fn tagged_index(
    source: &LayoutReader,
    tag: &str,
) -> Result<(crate::oci::types::Descriptor, crate::oci::types::Index)> {
    use crate::oci::types::{Index, REF_NAME};
    let index_path = source.member_path("index.json");
    let tagged = source
        .index()?
        .manifests
        .into_iter()
        .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
        .ok_or_else(|| {
            Error::malformed(index_path.display(), format!("no index tagged {tag:?}"))
        })?;
    let (index, _): (Index, Vec<u8>) = source.json_blob_bytes(&tagged)?;
    Ok((tagged, index))
}

/// Pushes the artifacts `index` lists that `source` holds and the registry
/// lacks (their blobs, then their manifests by digest); the entries of
/// those `source` holds.
#[cfg(feature = "registry")]
fn push_artifacts(
    source: &LayoutReader,
    index: &crate::oci::types::Index,
    client: &Client,
    report: &mut PushReport,
) -> Result<Vec<crate::oci::types::Descriptor>> {
    let mut ours = Vec::new();
    for m in &index.manifests {
        // Entries merged from the registry's own index are there already.
        let Ok((manifest, bytes)) = source.json_blob_bytes::<crate::oci::types::Manifest>(m) else {
            continue;
        };
        // Only what the registry lacks: distribution 2.8 was seen refusing
        // an index (MANIFEST_BLOB_UNKNOWN) that listed a manifest another run
        // was putting again at that moment.
        if !client.manifest_exists(&m.digest)? {
            push_blobs(source, &manifest, client, report)?;
            client.put_manifest(&Target::Digest(m.digest), &m.media_type, &bytes)?;
        }
        ours.push(m.clone());
    }
    Ok(ours)
}

/// Merging this run's artifacts into a registry's index of referrers.
#[cfg(feature = "registry")]
struct ReferrersMerge<'a> {
    client: &'a Client,
    /// The index's tag.
    target: Target,
    /// The index's media type.
    media_type: &'a str,
    /// This run's entries.
    ours: &'a [crate::oci::types::Descriptor],
    /// See [`super::merge_referrer`].
    keys: &'a [&'a str],
}

#[cfg(feature = "registry")]
impl ReferrersMerge<'_> {
    /// Merges into the index as it is, pauses, reads it back, and again
    /// while an entry of this run is missing, at most
    /// [`REFERRERS_ATTEMPTS`] times.
    fn until_listed(&self) -> Result<()> {
        use crate::error::RegistryErrorCode;
        for attempt in 0..=REFERRERS_ATTEMPTS {
            let current =
                super::referrers::registry_index(self.client, &self.target)?.map(|(i, _)| i);
            if attempt > 0 && self.lists_ours(&current) {
                return Ok(());
            }
            if attempt == REFERRERS_ATTEMPTS {
                break;
            }
            let merged = self.ours.iter().fold(current, |index, entry| {
                Some(super::merge_referrer(index, entry.clone(), self.keys))
            });
            let bytes = serde_json::to_vec(&merged).expect("an index serialises");
            match self
                .client
                .put_manifest(&self.target, self.media_type, &bytes)
            {
                Ok(_) => {}
                // A manifest the index lists is not there for the registry:
                // one that another run is writing (again). Read and merge
                // again.
                Err(Error::Registry {
                    status: Some(400),
                    codes,
                    ..
                }) if codes.contains(&RegistryErrorCode::ManifestBlobUnknown)
                    && attempt + 1 < REFERRERS_ATTEMPTS => {}
                Err(e) => return Err(e),
            }
            pause_before_reading_back(attempt);
        }
        Err(Error::registry(
            self.client
                .url(&format!("manifests/{}", self.target.as_url_part())),
            None,
            format!(
                "the index of referrers was replaced by other runs {REFERRERS_ATTEMPTS} times \
                 before it listed this run's artifacts; push again"
            ),
        ))
    }

    /// Whether `index` lists every entry of this run, or one that replaced
    /// it (another run's delta from the same base, written since): that
    /// run's is as good.
    fn lists_ours(&self, index: &Option<crate::oci::types::Index>) -> bool {
        let listed = |o: &crate::oci::types::Descriptor| {
            index.iter().any(|i| {
                i.manifests
                    .iter()
                    .any(|m| super::referrers::same_referrer(m, o, self.keys))
            })
        };
        self.ours.iter().all(listed)
    }
}

/// Long enough for a run that read the index before this write to write
/// its own, so that the read back sees it; a little longer each attempt,
/// and not the same for two runs.
#[cfg(feature = "registry")]
fn pause_before_reading_back(attempt: u32) {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 100);
    std::thread::sleep(std::time::Duration::from_millis(
        150 * u64::from(attempt + 1) + u64::from(jitter),
    ));
}
