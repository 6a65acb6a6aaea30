//! Rebuilding a new image from an old one and byte ranges of the new one.
//!
//! Every blob of the new image is obtained as [`super::plan`] says: kept
//! from the old image, fetched whole, or rebuilt frame by frame from old
//! frames and fetched ranges. Every frame is decompressed and checked
//! against its BLAKE3 digest, every blob against its sha256, and every
//! layer's uncompressed tar against the config's diff_id, before the tag is
//! published; a mismatch is an error and no image appears at the
//! destination, nor any blob the failed run added.

use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;

use serde::Serialize;

use super::delta_level::{plan_with_delta, usable_index_part};
use super::rebuild::{rebuild as rebuild_frames, Fallback, ImagePair, Rebuilt};
use super::requests::{
    bounded_runs, request_groups, split_ranges, total_len, RequestOptions, FETCH_WINDOW,
};
use super::{plan, plan_covering, BlobAction, UpdatePlan};
use crate::delta::find::{find, FoundDelta, Lookup};
use crate::delta::format::decompress_part;
use crate::digest::{ChunkId, Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::layer::index::{frame_of_body, Frame, FrameKey, IndexLocation};
use crate::oci::layout::LayoutWriter;
use crate::oci::read::Blob;
use crate::oci::types::{Descriptor, ImageConfig, Manifest};
use crate::store::view::{
    read_index, FrameAt, ImageView, IndexRange, LayerView, OpenImage, ReadIndex,
};
use crate::store::ImageReader;

/// How [`apply`] plans and fetches.
#[derive(Clone, Copy, Debug)]
pub struct ApplyOptions {
    /// How ranges become requests (the same as the plan `diff` shows).
    pub requests: RequestOptions,
    /// At most this many requests to the source at a time.
    pub parallel: usize,
    /// Look for a binary delta from OLD beside NEW and take its parts that
    /// pay.
    pub delta: bool,
}

impl ApplyOptions {
    /// An [`Error::Config`] if an option is out of range.
    pub fn validate(&self) -> Result<()> {
        self.requests.validate()?;
        if self.parallel == 0 {
            return Err(Error::Config("parallel must be at least 1".into()));
        }
        Ok(())
    }
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            requests: RequestOptions::default(),
            parallel: 4,
            delta: true,
        }
    }
}

/// What [`apply`] did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    /// Format of this report.
    pub schema_version: u32,
    /// Bytes read from the source: manifest, config if new, indexes, ranges
    /// and whole blobs (a layout's own `index.json` is not counted: a
    /// registry has none).
    pub bytes_read: u64,
    /// Reads from the source.
    pub requests: u64,
    /// The new image's manifest digest.
    pub manifest: Digest,
    /// The binary delta used, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaUse>,
    /// Parts of the delta (or the whole delta) not used, and why: their
    /// frames were fetched by ranges.
    pub fallbacks: Vec<Fallback>,
    /// The plan that was followed.
    #[serde(skip)]
    pub plan: UpdatePlan,
}

impl ApplyReport {
    /// The `schemaVersion` this build writes.
    pub const SCHEMA_VERSION: u32 = 2;
}

/// The binary delta an apply used.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaUse {
    /// The delta artifact's manifest digest.
    pub manifest: Digest,
    /// Parts taken, and of them those that rebuilt their frames.
    pub parts: usize,
    /// Parts that rebuilt their frames.
    pub parts_used: usize,
    /// Frames rebuilt from the delta.
    pub frames: u64,
    /// Chunk indexes of new layers rebuilt from the delta's index parts.
    pub index_parts: usize,
    /// Bytes read to find the delta (referrers, manifest, lookup), its
    /// parts and its index parts.
    pub bytes_read: u64,
}

/// NEW's source, counting what is read from it.
struct CountingReader<'a> {
    reader: &'a ImageReader,
    bytes: u64,
    requests: u64,
}

impl<'a> CountingReader<'a> {
    fn new(reader: &'a ImageReader) -> Self {
        CountingReader {
            reader,
            bytes: 0,
            requests: 0,
        }
    }

    /// The bytes `range` of the blob `digest` (`size` bytes long).
    fn read(&mut self, digest: &Digest, size: u64, range: Range<u64>) -> Result<Vec<u8>> {
        let length = range.end - range.start;
        let bytes = self.reader.read_range(digest, size, range.start, length)?;
        self.count(length, 1);
        Ok(bytes)
    }

    /// Counts what was read from the source by other means.
    fn count(&mut self, bytes: u64, requests: u64) {
        self.bytes += bytes;
        self.requests += requests;
    }
}

/// Rebuilds the image `source` names (its tag, for `architecture`) into
/// `dest` under `tag`, from the old image and as few bytes of `source` as
/// the plan allows, with at most `parallel` requests at a time.
/// `progress(done, total)` is called as the new image's blobs are in place
/// (the config first, then each layer); an error it returns (a cancelled
/// job) stops the work: the tag is not set and the blobs added are taken
/// away.
pub fn apply(
    old: &OpenImage,
    source: &ImageReader,
    architecture: &str,
    dest: &LayoutWriter,
    tag: &str,
    options: ApplyOptions,
    progress: &dyn Fn(usize, usize) -> Result<()>,
) -> Result<ApplyReport> {
    let pool = fetch_pool(options.parallel)?;
    let mut src = CountingReader::new(source);
    let image = NewImage::read(&mut src, old, architecture)?;
    let mut fallbacks = Vec::new();
    let found = match options.delta {
        true => find_delta(&mut src, &image, &old.view, &mut fallbacks),
        false => None,
    };
    let indexes = NewIndexes::read(
        &mut src,
        &old.view,
        &image,
        found.as_deref(),
        &mut fallbacks,
    )?;
    let new = indexes.view(&image);
    let planned = plan_and_take_delta(
        old,
        &mut src,
        &new,
        found.as_deref(),
        options,
        dest.root(),
        &pool,
    )?;
    fallbacks.extend(planned.fallbacks);
    let delta = indexes.delta_use(planned.delta, found.as_deref());
    let mut writer = BlobWriter {
        src: &mut src,
        old,
        old_frames: old.view.frames_by_key(),
        rebuilt: planned.rebuilt.as_ref(),
        dest,
        pool: &pool,
        per_request: options.requests.ranges_per_request,
    };
    writer.publish(&image, &indexes.layers, &planned.plan, tag, progress)?;
    Ok(ApplyReport {
        schema_version: ApplyReport::SCHEMA_VERSION,
        bytes_read: src.bytes,
        requests: src.requests,
        manifest: image.manifest_desc.digest,
        delta,
        fallbacks,
        plan: planned.plan,
    })
}

/// The pool the fetches of one apply run on.
fn fetch_pool(parallel: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(parallel.max(1))
        .build()
        .map_err(|e| Error::Config(format!("starting {parallel} fetch threads: {e}")))
}

/// NEW's manifest and config, as read (and checked) before anything else.
struct NewImage {
    manifest_desc: Descriptor,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    config: ImageConfig,
    config_bytes: Vec<u8>,
}

impl NewImage {
    /// Reads NEW's manifest for `architecture`, and its config (from the
    /// old image when it has it), checking the config against its digest
    /// and the layers against the config.
    fn read(src: &mut CountingReader<'_>, old: &OpenImage, architecture: &str) -> Result<Self> {
        let (manifest_desc, manifest, manifest_bytes) = src.reader.manifest(architecture)?;
        src.count(manifest_desc.size, 1);
        let c = &manifest.config;
        let config_bytes = match old_blob(&old.reader, &old.view, c)? {
            Some(bytes) => bytes,
            None => src.read(&c.digest, c.size, 0..c.size)?,
        };
        check_digest(&config_bytes, c, "the config")?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
            Error::malformed(
                format!("{} config {}", src.reader.reference(), c.digest),
                format!("bad JSON: {e}"),
            )
        })?;
        crate::oci::read::check_layers(&manifest_desc, &manifest, &config)?;
        Ok(NewImage {
            manifest_desc,
            manifest,
            manifest_bytes,
            config,
            config_bytes,
        })
    }
}

/// A delta from OLD beside NEW, if one is listed and usable (what finding
/// it read is counted; an unusable one is a fallback).
fn find_delta(
    src: &mut CountingReader<'_>,
    image: &NewImage,
    old: &ImageView,
    fallbacks: &mut Vec<Fallback>,
) -> Option<Box<FoundDelta>> {
    match find(
        src.reader,
        &image.manifest_desc.digest,
        &old.manifest.digest,
    ) {
        Lookup::None {
            bytes_read,
            requests,
        } => {
            src.count(bytes_read, requests);
            None
        }
        Lookup::Unusable {
            reason,
            bytes_read,
            requests,
        } => {
            src.count(bytes_read, requests);
            fallbacks.push(Fallback {
                part: None,
                frames: 0,
                reason,
            });
            None
        }
        Lookup::Found(found) => {
            src.count(found.bytes_read, found.requests);
            Some(found)
        }
    }
}

/// NEW's layers with the indexes of those the old image lacks: rebuilt
/// from the delta's index parts, or read from the source; and what the
/// index parts taken cost.
struct NewIndexes {
    layers: Vec<NewLayer>,
    /// Index parts taken.
    parts: usize,
    /// Bytes read for them (those that failed too).
    part_bytes: u64,
}

impl NewIndexes {
    /// Reads the indexes of the layers of `image` the old image lacks
    /// (counted in `src`); the others are kept whole.
    fn read(
        src: &mut CountingReader<'_>,
        old: &ImageView,
        image: &NewImage,
        found: Option<&FoundDelta>,
        fallbacks: &mut Vec<Fallback>,
    ) -> Result<Self> {
        let old_layers: std::collections::HashSet<Digest> =
            old.layers.iter().map(|l| l.descriptor.digest).collect();
        let mut out = NewIndexes {
            layers: Vec::new(),
            parts: 0,
            part_bytes: 0,
        };
        for (at, d) in image.manifest.layers.iter().enumerate() {
            if old_layers.contains(&d.digest) {
                out.layers.push(NewLayer {
                    descriptor: d.clone(),
                    index: None,
                });
                continue;
            }
            let read_before = src.bytes;
            let from_delta = match found {
                Some(found) => index_from_delta(found, old, src, at, d, fallbacks)?,
                None => None,
            };
            out.part_bytes += src.bytes - read_before;
            let index = match from_delta {
                Some(index) => {
                    out.parts += 1;
                    Some(index)
                }
                None => {
                    let index = read_index(src.reader, d)?;
                    if let Some(read) = &index {
                        src.count(read.range.length, 1);
                    }
                    index
                }
            };
            out.layers.push(NewLayer {
                descriptor: d.clone(),
                index,
            });
        }
        Ok(out)
    }

    /// NEW as planning sees it.
    fn view(&self, image: &NewImage) -> ImageView {
        ImageView {
            manifest: image.manifest_desc.clone(),
            config: image.manifest.config.clone(),
            layers: self
                .layers
                .iter()
                .map(|l| LayerView {
                    descriptor: l.descriptor.clone(),
                    index: l
                        .index
                        .as_ref()
                        .map(|read| (read.range, read.index.clone())),
                })
                .collect(),
        }
    }

    /// The delta's use with the index parts counted: a delta whose index
    /// parts alone were taken was used too.
    fn delta_use(
        &self,
        parts_use: Option<DeltaUse>,
        found: Option<&FoundDelta>,
    ) -> Option<DeltaUse> {
        match (parts_use, found) {
            (None, Some(found)) if self.parts > 0 => Some(DeltaUse {
                manifest: found.manifest,
                parts: 0,
                parts_used: 0,
                frames: 0,
                index_parts: 0,
                bytes_read: found.bytes_read,
            }),
            (parts_use, _) => parts_use,
        }
        .map(|d| DeltaUse {
            index_parts: self.parts,
            bytes_read: d.bytes_read + self.part_bytes,
            ..d
        })
    }
}

/// The plan an apply follows, and the frames a delta rebuilt.
struct Planned {
    plan: UpdatePlan,
    rebuilt: Option<Rebuilt>,
    delta: Option<DeltaUse>,
    fallbacks: Vec<Fallback>,
}

/// NEW's layer `at` (descriptor `d`) index rebuilt from the delta's index
/// part for it, checked against the layer's index annotation; `None` when
/// the delta has no such part, or when it fails (a fallback: the index is
/// then read from the source). What is read is counted in `src`.
fn index_from_delta(
    found: &FoundDelta,
    old: &ImageView,
    src: &mut CountingReader<'_>,
    at: usize,
    d: &Descriptor,
    fallbacks: &mut Vec<Fallback>,
) -> Result<Option<ReadIndex>> {
    let what = format!("{} layer {}", src.reader.reference(), d.digest);
    let Some(location) = IndexLocation::from_annotations(&d.annotations, d.size, &what)? else {
        return Ok(None);
    };
    let Some(part) = usable_index_part(&found.lookup, old, at, location.length) else {
        return Ok(None);
    };
    let part_range = part.offset..part.offset + part.length;
    let bytes = match src.read(&found.blob.digest, found.blob.size, part_range) {
        Ok(bytes) => bytes,
        Err(e) => {
            fallbacks.push(Fallback {
                part: None,
                frames: 0,
                reason: format!("the index part for layer {at} could not be read: {e}"),
            });
            return Ok(None);
        }
    };
    let reference = old.layers[part.old_layer as usize]
        .index
        .as_ref()
        .expect("a usable index part's old layer has an index")
        .1
        .body();
    let rebuilt = decompress_part(&reference, &bytes, part.content_len, &what).and_then(|body| {
        let frame = frame_of_body(&body);
        let index = location.decode(&frame, &format!("{what} chunk index"))?;
        Ok((index, frame))
    });
    match rebuilt {
        Ok((index, frame)) => Ok(Some(ReadIndex {
            range: IndexRange::from(&location),
            index,
            bytes: frame,
        })),
        Err(e) => {
            fallbacks.push(Fallback {
                part: None,
                frames: 0,
                reason: format!("the index part for layer {at}: {e}"),
            });
            Ok(None)
        }
    }
}

/// Plans from `old` to `new`: with a delta `found`, rebuilds the frames of
/// its parts that pay (spilled in `scratch`), and plans ranges for every
/// other frame; without one, the chunk plan. What is read is counted in
/// `src`.
fn plan_and_take_delta(
    old: &OpenImage,
    src: &mut CountingReader<'_>,
    new: &ImageView,
    found: Option<&FoundDelta>,
    options: ApplyOptions,
    scratch: &std::path::Path,
    pool: &rayon::ThreadPool,
) -> Result<Planned> {
    let Some(found) = found else {
        return Ok(Planned {
            plan: plan(&old.view, new, options.requests),
            rebuilt: None,
            delta: None,
            fallbacks: Vec::new(),
        });
    };
    let (with, choice) = plan_with_delta(&old.view, new, options.requests, found);
    if choice.parts.is_empty() {
        return Ok(Planned {
            plan: with,
            rebuilt: None,
            delta: None,
            fallbacks: Vec::new(),
        });
    }
    let images = ImagePair {
        old_reader: &old.reader,
        old: &old.view,
        new_reader: src.reader,
        new,
    };
    let rebuilt =
        pool.install(|| rebuild_frames(found, &choice.parts, images, options.requests, scratch))?;
    src.count(rebuilt.bytes_read, rebuilt.requests);
    let covered = rebuilt.covered();
    let delta = DeltaUse {
        manifest: found.manifest,
        parts: choice.parts.len(),
        parts_used: choice.parts.len() - rebuilt.fallbacks.len(),
        frames: covered.len() as u64,
        index_parts: 0,
        bytes_read: found.bytes_read + rebuilt.bytes_read,
    };
    // Ranges for every frame no part rebuilt (those of failed parts too).
    let mut followed = plan_covering(&old.view, new, options.requests, &covered);
    followed.levels = with.levels;
    Ok(Planned {
        plan: followed,
        fallbacks: rebuilt.fallbacks.clone(),
        rebuilt: Some(rebuilt),
        delta: Some(delta),
    })
}

/// A layer of the new image, with its index as read from the source when
/// the old image lacks the layer: where it lies, decoded, and its bytes.
struct NewLayer {
    descriptor: Descriptor,
    index: Option<ReadIndex>,
}

/// Writes NEW's blobs to the destination: what they are read from, and
/// where they go.
struct BlobWriter<'a, 'r> {
    src: &'a mut CountingReader<'r>,
    old: &'a OpenImage,
    /// OLD's frames by key.
    old_frames: HashMap<FrameKey, FrameAt>,
    /// The frames a delta rebuilt.
    rebuilt: Option<&'a Rebuilt>,
    dest: &'a LayoutWriter,
    pool: &'a rayon::ThreadPool,
    /// Ranges asked for in one request.
    per_request: usize,
}

impl BlobWriter<'_, '_> {
    /// Writes the config, the layers and the manifest of `image` as `plan`
    /// says, and tags the manifest `tag`. A failed run takes away the blobs
    /// it added: the destination keeps only what it had, and the blobs of
    /// images it lists.
    fn publish(
        &mut self,
        image: &NewImage,
        layers: &[NewLayer],
        plan: &UpdatePlan,
        tag: &str,
        progress: &dyn Fn(usize, usize) -> Result<()>,
    ) -> Result<()> {
        let m = &image.manifest;
        let written: Vec<Digest> = std::iter::once(&m.config)
            .chain(&m.layers)
            .map(|d| d.digest)
            .chain(std::iter::once(image.manifest_desc.digest))
            .filter(|d| !self.dest.has_blob(d))
            .collect();
        let result = self
            .write_blobs(image, layers, plan, progress)
            .and_then(|()| self.tag_manifest(image, tag));
        if result.is_err() {
            // What no image references goes, unless another run writes there.
            let _ = self.dest.remove_unreferenced(&written);
        }
        result
    }

    /// Writes the config and every layer of the new image.
    fn write_blobs(
        &mut self,
        image: &NewImage,
        layers: &[NewLayer],
        plan: &UpdatePlan,
        progress: &dyn Fn(usize, usize) -> Result<()>,
    ) -> Result<()> {
        let total = 1 + layers.len();
        progress(0, total)?;
        self.dest
            .put_blob(&image.manifest.config.media_type, &image.config_bytes)?;
        progress(1, total)?;
        for (
            at,
            (
                NewLayer {
                    descriptor: d,
                    index,
                },
                (blob_plan, diff_id),
            ),
        ) in layers
            .iter()
            .zip(plan.blobs[1..].iter().zip(&image.config.rootfs.diff_ids))
            .enumerate()
        {
            match &blob_plan.action {
                BlobAction::Keep => copy_old(&self.old.reader, &self.old.view, d, self.dest)?,
                BlobAction::Fetch => self.fetch_whole(d)?,
                BlobAction::Rebuild { ranges, .. } => {
                    let index = index.as_ref().expect("a rebuilt layer has an index");
                    self.rebuild(at, d, index, ranges, diff_id)?;
                }
            }
            progress(2 + at, total)?;
        }
        Ok(())
    }

    /// The manifest, byte for byte as the source has it, tagged `tag`.
    fn tag_manifest(&self, image: &NewImage, tag: &str) -> Result<()> {
        let desc = &image.manifest_desc;
        check_digest(&image.manifest_bytes, desc, "the manifest")?;
        let stored = self
            .dest
            .put_blob(&desc.media_type, &image.manifest_bytes)?;
        debug_assert_eq!(stored.digest, desc.digest);
        let mut tagged = desc.clone();
        tagged.annotations.clear();
        self.dest.set_tag(tag, tagged)
    }

    /// Fetches the layer `d` whole, streamed: it may be of any size.
    fn fetch_whole(&mut self, d: &Descriptor) -> Result<()> {
        let from = self.src.reader.blob(&d.digest, d.size)?;
        self.src.count(d.size, 1);
        let mut blob = self.dest.temp_blob()?;
        let path = blob.path().to_path_buf();
        std::io::copy(&mut from.reader(), blob.writer()).map_err(|e| Error::io(&path, e))?;
        self.dest.commit_expecting(blob, &d.digest)?;
        Ok(())
    }

    /// Rebuilds NEW's layer `at` (`d`, with its `index`): each frame from
    /// the delta, the old image or the planned `ranges`, checked, then the
    /// index; the blob's digest and `diff_id` checked.
    fn rebuild(
        &mut self,
        at: usize,
        d: &Descriptor,
        index: &ReadIndex,
        ranges: &[Range<u64>],
        diff_id: &Digest,
    ) -> Result<()> {
        let name = format!("{} layer {}", self.src.reader.reference(), d.digest);
        let mut blob = self.dest.temp_blob()?;
        let path = blob.path().to_path_buf();
        let mut tar_hash = HashingWriter::new(std::io::sink());
        let mut old_blobs = OldBlobs::new(self.old);
        // The planned ranges, a window at a time.
        let mut windows = RangeWindows::new(self.src.reader, d, ranges, self.per_request, &name);
        self.src.count(total_len(ranges), windows.requests());
        let chunk_index = &index.index;
        for (i, f) in chunk_index.frames.iter().enumerate() {
            let key = chunk_index.key(f);
            let from_delta = match self.rebuilt {
                Some(r) if !self.old_frames.contains_key(&key) => r.frame(at, i)?,
                _ => None,
            };
            let bytes: Vec<u8> = match (from_delta, self.old_frames.get(&key)) {
                (Some(bytes), _) => bytes,
                (None, Some(of)) => old_blobs.frame(of, f.blob_len)?,
                (None, None) => {
                    let frame = f.blob_offset..f.blob_offset + f.blob_len;
                    windows.bytes(frame, self.pool)?
                }
            };
            let plain = check_frame(&bytes, f, i, &name)?;
            tar_hash
                .write_all(&plain)
                .map_err(|e| Error::io(&path, e))?;
            blob.writer()
                .write_all(&bytes)
                .map_err(|e| Error::io(&path, e))?;
        }
        blob.writer()
            .write_all(&index.bytes)
            .map_err(|e| Error::io(&path, e))?;
        let (_, got, _) = tar_hash.finish();
        if got != *diff_id {
            return Err(Error::digest_mismatch(
                format!("{name}: the rebuilt tar (its diff_id)"),
                diff_id,
                got,
            ));
        }
        self.dest.commit_expecting(blob, &d.digest)?;
        Ok(())
    }
}

/// Frame `i` (`f`) of the layer `name`, `bytes` as compressed: decompressed
/// and checked against its length and BLAKE3 digest.
fn check_frame(bytes: &[u8], f: &Frame, i: usize, name: &str) -> Result<Vec<u8>> {
    let plain = zstd::bulk::decompress(bytes, f.tar_len as usize)
        .map_err(|e| Error::malformed(name, format!("frame {i} does not decompress: {e}")))?;
    let got = ChunkId::of(&plain);
    if plain.len() as u64 != f.tar_len || got != f.id {
        return Err(Error::digest_mismatch(
            format!("{name}: frame {i}"),
            f.id,
            got,
        ));
    }
    Ok(plain)
}

/// OLD's layer blobs, each opened once when a frame of it is first read.
struct OldBlobs<'a> {
    old: &'a OpenImage,
    open: HashMap<usize, Blob>,
}

impl<'a> OldBlobs<'a> {
    fn new(old: &'a OpenImage) -> Self {
        OldBlobs {
            old,
            open: HashMap::new(),
        }
    }

    /// The `len` compressed bytes of the old frame `of`.
    fn frame(&mut self, of: &FrameAt, len: u64) -> Result<Vec<u8>> {
        let b = match self.open.entry(of.layer) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let l = &self.old.view.layers[of.layer].descriptor;
                e.insert(self.old.reader.blob(&l.digest, l.size)?)
            }
        };
        let mut v = vec![0u8; len as usize];
        std::os::unix::fs::FileExt::read_exact_at(&b.file, &mut v, b.offset + of.offset)
            .map_err(|e| Error::io(&b.path, e))?;
        Ok(v)
    }
}

fn check_digest(bytes: &[u8], d: &Descriptor, what: &str) -> Result<()> {
    let got = Digest::of(bytes);
    if bytes.len() as u64 != d.size || got != d.digest {
        return Err(Error::digest_mismatch(
            format!("{what} ({} bytes read, {} expected)", bytes.len(), d.size),
            d.digest,
            got,
        ));
    }
    Ok(())
}

/// The bytes of a small blob the old image holds (its config), if it does.
fn old_blob(reader: &ImageReader, old: &ImageView, d: &Descriptor) -> Result<Option<Vec<u8>>> {
    if old.config.digest != d.digest {
        return Ok(None);
    }
    Ok(Some(reader.read_range(&d.digest, d.size, 0, d.size)?))
}

/// Copies a layer the old image holds into `dest`, checking its digest.
fn copy_old(
    reader: &ImageReader,
    old: &ImageView,
    d: &Descriptor,
    dest: &LayoutWriter,
) -> Result<()> {
    if dest.has_blob(&d.digest) {
        return Ok(());
    }
    debug_assert!(old.layers.iter().any(|l| l.descriptor.digest == d.digest));
    let blob = reader.blob(&d.digest, d.size)?;
    let mut temp = dest.temp_blob()?;
    let path = temp.path().to_path_buf();
    std::io::copy(&mut blob.reader(), temp.writer()).map_err(|e| Error::io(&path, e))?;
    dest.commit_expecting(temp, &d.digest)?;
    Ok(())
}

/// The planned ranges of one layer, fetched a window at a time: each range
/// in pieces of at most [`FETCH_WINDOW`] bytes, pieces grouped into
/// requests ([`request_groups`]), and as many requests at once (on the
/// fetch pool) as fit in [`FETCH_WINDOW`] bytes; so a layer's rebuild holds
/// at most that much of it, whatever its size.
struct RangeWindows<'a> {
    reader: &'a ImageReader,
    digest: Digest,
    size: u64,
    name: &'a str,
    pieces: Vec<Range<u64>>,
    /// Requests (ranges of `pieces`), by window.
    waves: Vec<Vec<std::ops::Range<usize>>>,
    next_wave: usize,
    /// The pieces held, and their bytes.
    held: std::ops::Range<usize>,
    data: Vec<Vec<u8>>,
}

impl<'a> RangeWindows<'a> {
    fn new(
        reader: &'a ImageReader,
        d: &Descriptor,
        ranges: &[Range<u64>],
        per_request: usize,
        name: &'a str,
    ) -> Self {
        let pieces = split_ranges(ranges, FETCH_WINDOW);
        let groups = request_groups(&pieces, per_request, FETCH_WINDOW);
        let group_bytes = groups.iter().map(|g| total_len(&pieces[g.clone()]));
        let waves = bounded_runs(group_bytes, usize::MAX, FETCH_WINDOW)
            .into_iter()
            .map(|w| groups[w].to_vec())
            .collect();
        RangeWindows {
            reader,
            digest: d.digest,
            size: d.size,
            name,
            pieces,
            waves,
            next_wave: 0,
            held: 0..0,
            data: Vec::new(),
        }
    }

    /// The requests all windows make.
    fn requests(&self) -> u64 {
        self.waves.iter().map(Vec::len).sum::<usize>() as u64
    }

    /// Bytes `wanted` of the blob, which planned ranges must hold;
    /// windows are fetched forward only (frames are read in blob order).
    fn bytes(&mut self, wanted: Range<u64>, pool: &rayon::ThreadPool) -> Result<Vec<u8>> {
        let end = wanted.end;
        let mut out = Vec::with_capacity((end - wanted.start) as usize);
        let mut at = wanted.start;
        while at < end {
            let p = self.pieces.partition_point(|r| r.end <= at);
            let r = self
                .pieces
                .get(p)
                .cloned()
                .filter(|r| r.start <= at)
                .ok_or_else(|| {
                    Error::malformed(self.name, format!("byte {at} is in no planned range"))
                })?;
            while !self.held.contains(&p) {
                if p < self.held.start || self.next_wave == self.waves.len() {
                    return Err(Error::malformed(
                        self.name,
                        "planned ranges read out of order",
                    ));
                }
                self.fetch_wave(pool)?;
            }
            let data = &self.data[p - self.held.start];
            let to = end.min(r.end);
            out.extend_from_slice(&data[(at - r.start) as usize..(to - r.start) as usize]);
            at = to;
        }
        Ok(out)
    }

    fn fetch_wave(&mut self, pool: &rayon::ThreadPool) -> Result<()> {
        use rayon::prelude::*;
        let wave = &self.waves[self.next_wave];
        self.data.clear();
        let (reader, pieces) = (self.reader, &self.pieces);
        let (digest, size) = (&self.digest, self.size);
        let groups: Vec<Vec<Vec<u8>>> = pool.install(|| {
            wave.par_iter()
                .map(|g| reader.read_ranges(digest, size, &pieces[g.clone()]))
                .collect::<Result<_>>()
        })?;
        let first = wave[0].start;
        let last = wave[wave.len() - 1].end;
        let data: Vec<Vec<u8>> = groups.into_iter().flatten().collect();
        let sent_right = data.len() == last - first
            && data
                .iter()
                .zip(&self.pieces[first..last])
                .all(|(v, r)| v.len() as u64 == r.end - r.start);
        if !sent_right {
            return Err(Error::malformed(
                self.name,
                "the source sent other ranges than asked for",
            ));
        }
        self.data = data;
        self.held = first..last;
        self.next_wave += 1;
        Ok(())
    }
}
