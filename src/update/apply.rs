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

use serde::Serialize;

use super::delta_level::{plan_with_delta, usable_index_part};
use super::rebuild::{rebuild as rebuild_frames, Fallback, Rebuilt};
use super::requests::{bounded_runs, request_groups, split_ranges, RequestOptions, FETCH_WINDOW};
use super::{plan, plan_covering, BlobAction, UpdatePlan};
use crate::delta::find::{find, FoundDelta, Lookup};
use crate::delta::format::decompress_part;
use crate::digest::{ChunkId, Digest, HashingWriter};
use crate::error::{Error, Result};
use crate::layer::index::{frame_of_body, ChunkIndex, FrameKey, IndexLocation};
use crate::oci::layout::LayoutWriter;
use crate::oci::read::Blob;
use crate::oci::types::{Descriptor, ImageConfig};
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

/// Counts what is read from the source.
struct Source<'a> {
    reader: &'a ImageReader,
    bytes: u64,
    requests: u64,
}

impl Source<'_> {
    fn read(&mut self, digest: &Digest, size: u64, offset: u64, length: u64) -> Result<Vec<u8>> {
        let bytes = self.reader.read_range(digest, size, offset, length)?;
        self.bytes += length;
        self.requests += 1;
        Ok(bytes)
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
    (dest, tag): (&LayoutWriter, &str),
    options: ApplyOptions,
    progress: &dyn Fn(usize, usize) -> Result<()>,
) -> Result<ApplyReport> {
    let parallel = options.parallel;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(parallel.max(1))
        .build()
        .map_err(|e| Error::Config(format!("starting {parallel} fetch threads: {e}")))?;
    let (old_reader, old) = (&old.reader, &old.view);
    let mut src = Source {
        reader: source,
        bytes: 0,
        requests: 0,
    };
    let (manifest_desc, manifest, manifest_bytes) = source.manifest(architecture)?;
    src.bytes += manifest_desc.size;
    src.requests += 1;
    // The config: from the old image when it has it.
    let config_bytes = match old_blob(old_reader, old, &manifest.config)? {
        Some(bytes) => bytes,
        None => src.read(
            &manifest.config.digest,
            manifest.config.size,
            0,
            manifest.config.size,
        )?,
    };
    check_digest(&config_bytes, &manifest.config, "the config")?;
    let config: ImageConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
        Error::malformed(
            format!("{} config {}", source.reference(), manifest.config.digest),
            format!("bad JSON: {e}"),
        )
    })?;
    crate::oci::read::check_layers(&manifest_desc, &manifest, &config)?;
    // A delta from OLD beside NEW, if one is listed.
    let mut fallbacks = Vec::new();
    let found = match options.delta {
        false => None,
        true => match find(source, &manifest_desc.digest, &old.manifest.digest) {
            Lookup::None {
                bytes_read,
                requests,
            } => {
                src.bytes += bytes_read;
                src.requests += requests;
                None
            }
            Lookup::Unusable {
                reason,
                bytes_read,
                requests,
            } => {
                src.bytes += bytes_read;
                src.requests += requests;
                fallbacks.push(Fallback {
                    part: None,
                    frames: 0,
                    reason,
                });
                None
            }
            Lookup::Found(found) => {
                src.bytes += found.bytes_read;
                src.requests += found.requests;
                Some(found)
            }
        },
    };
    // The indexes of the new image's layers the old one lacks: rebuilt
    // from the delta's index parts, or read from the source (counted); the
    // others are kept whole.
    let old_layers: std::collections::HashSet<Digest> =
        old.layers.iter().map(|l| l.descriptor.digest).collect();
    let mut layers = Vec::new();
    // What the index parts taken cost, for the delta's own count.
    let (mut index_parts, mut index_part_bytes) = (0, 0);
    for (at, d) in manifest.layers.iter().enumerate() {
        if old_layers.contains(&d.digest) {
            layers.push((d.clone(), None));
            continue;
        }
        let read_before = src.bytes;
        let from_delta = match found.as_deref() {
            Some(found) => index_from_delta(found, old, &mut src, at, d, &mut fallbacks)?,
            None => None,
        };
        index_part_bytes += src.bytes - read_before;
        let index = match from_delta {
            Some(index) => {
                index_parts += 1;
                Some(index)
            }
            None => {
                let index = read_index(source, d)?;
                if let Some(read) = &index {
                    src.bytes += read.range.length;
                    src.requests += 1;
                }
                index
            }
        };
        layers.push((d.clone(), index));
    }
    let new = ImageView {
        manifest: manifest_desc.clone(),
        config: manifest.config.clone(),
        layers: layers
            .iter()
            .map(|(d, i)| LayerView {
                descriptor: d.clone(),
                index: i.as_ref().map(|read| (read.range, read.index.clone())),
            })
            .collect(),
    };
    let Planned {
        plan: the_plan,
        rebuilt,
        delta: delta_use,
        fallbacks: part_fallbacks,
    } = plan_and_take_delta(
        (old_reader, old),
        (&mut src, &new),
        found.as_deref(),
        options,
        dest.root(),
        &pool,
    )?;
    fallbacks.extend(part_fallbacks);
    // A delta whose index parts alone were taken was used too.
    let delta_use = match (delta_use, found.as_deref()) {
        (None, Some(found)) if index_parts > 0 => Some(DeltaUse {
            manifest: found.manifest,
            parts: 0,
            parts_used: 0,
            frames: 0,
            index_parts: 0,
            bytes_read: found.bytes_read,
        }),
        (delta_use, _) => delta_use,
    }
    .map(|d| DeltaUse {
        index_parts,
        bytes_read: d.bytes_read + index_part_bytes,
        ..d
    });
    // A failed run takes away the blobs it added: the destination keeps
    // only what it had, and the blobs of images it lists.
    let written: Vec<Digest> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .map(|d| d.digest)
        .chain(std::iter::once(manifest_desc.digest))
        .filter(|d| !dest.has_blob(d))
        .collect();
    let result = (|| {
        write_blobs(
            &mut src,
            old_reader,
            old,
            &layers,
            &the_plan,
            &config,
            (&manifest.config, &config_bytes),
            rebuilt.as_ref(),
            dest,
            (&pool, options.requests.ranges_per_request),
            progress,
        )?;
        // The manifest, byte for byte as the source has it.
        check_digest(&manifest_bytes, &manifest_desc, "the manifest")?;
        let stored = dest.put_blob(&manifest_desc.media_type, &manifest_bytes)?;
        debug_assert_eq!(stored.digest, manifest_desc.digest);
        let mut tagged = manifest_desc.clone();
        tagged.annotations.clear();
        dest.set_tag(tag, tagged)
    })();
    if let Err(e) = result {
        // What no image references goes, unless another run writes there.
        let _ = dest.remove_unreferenced(&written);
        return Err(e);
    }
    Ok(ApplyReport {
        schema_version: ApplyReport::SCHEMA_VERSION,
        bytes_read: src.bytes,
        requests: src.requests,
        manifest: manifest_desc.digest,
        delta: delta_use,
        fallbacks,
        plan: the_plan,
    })
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
    src: &mut Source<'_>,
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
    let bytes = match src.read(
        &found.blob.digest,
        found.blob.size,
        part.offset,
        part.length,
    ) {
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
    (old_reader, old): (&ImageReader, &ImageView),
    (src, new): (&mut Source<'_>, &ImageView),
    found: Option<&FoundDelta>,
    options: ApplyOptions,
    scratch: &std::path::Path,
    pool: &rayon::ThreadPool,
) -> Result<Planned> {
    let Some(found) = found else {
        return Ok(Planned {
            plan: plan(old, new, options.requests),
            rebuilt: None,
            delta: None,
            fallbacks: Vec::new(),
        });
    };
    let (with, choice) = plan_with_delta(old, new, options.requests, found);
    if choice.parts.is_empty() {
        return Ok(Planned {
            plan: with,
            rebuilt: None,
            delta: None,
            fallbacks: Vec::new(),
        });
    }
    let rebuilt = pool.install(|| {
        rebuild_frames(
            found,
            &choice.parts,
            (old_reader, old),
            (src.reader, new),
            (options.requests.gap, options.requests.ranges_per_request),
            scratch,
        )
    })?;
    src.bytes += rebuilt.bytes_read;
    src.requests += rebuilt.requests;
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
    let mut followed = plan_covering(old, new, options.requests, &covered);
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
type NewLayer = (Descriptor, Option<ReadIndex>);

/// Writes the config and every layer of the new image to `dest`.
#[allow(clippy::too_many_arguments)]
fn write_blobs(
    src: &mut Source<'_>,
    old_reader: &ImageReader,
    old: &ImageView,
    layers: &[NewLayer],
    the_plan: &UpdatePlan,
    config: &ImageConfig,
    (config_desc, config_bytes): (&Descriptor, &[u8]),
    rebuilt: Option<&Rebuilt>,
    dest: &LayoutWriter,
    (pool, per_request): (&rayon::ThreadPool, usize),
    progress: &dyn Fn(usize, usize) -> Result<()>,
) -> Result<()> {
    let frames = old.frames_by_key();
    let total = 1 + layers.len();
    progress(0, total)?;
    dest.put_blob(&config_desc.media_type, config_bytes)?;
    progress(1, total)?;
    for (at, ((d, index), (blob_plan, diff_id))) in layers
        .iter()
        .zip(the_plan.blobs[1..].iter().zip(&config.rootfs.diff_ids))
        .enumerate()
    {
        match &blob_plan.action {
            BlobAction::Keep => copy_old(old_reader, old, d, dest)?,
            BlobAction::Fetch => {
                // Streamed: a layer fetched whole may be of any size.
                let from = src.reader.blob(&d.digest, d.size)?;
                src.bytes += d.size;
                src.requests += 1;
                let mut blob = dest.temp_blob()?;
                let path = blob.path().to_path_buf();
                std::io::copy(&mut from.reader(), blob.writer())
                    .map_err(|e| Error::io(&path, e))?;
                dest.commit_expecting(blob, &d.digest)?;
            }
            BlobAction::Rebuild { ranges, .. } => {
                let ReadIndex {
                    index,
                    bytes: index_bytes,
                    ..
                } = index.as_ref().expect("a rebuilt layer has an index");
                rebuild(
                    src,
                    old_reader,
                    old,
                    &frames,
                    d,
                    index,
                    index_bytes,
                    (ranges, per_request),
                    diff_id,
                    rebuilt.map(|r| (r, at)),
                    dest,
                    pool,
                )?;
            }
        }
        progress(2 + at, total)?;
    }
    Ok(())
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

/// Rebuilds one layer blob: frames from the old image or the fetched
/// ranges, each checked, then the index; blob digest and diff_id checked.
#[allow(clippy::too_many_arguments)]
fn rebuild(
    src: &mut Source<'_>,
    old_reader: &ImageReader,
    old: &ImageView,
    frames: &HashMap<FrameKey, FrameAt>,
    d: &Descriptor,
    index: &ChunkIndex,
    index_bytes: &[u8],
    (ranges, per_request): (&[(u64, u64)], usize),
    diff_id: &Digest,
    rebuilt: Option<(&Rebuilt, usize)>,
    dest: &LayoutWriter,
    pool: &rayon::ThreadPool,
) -> Result<()> {
    let name = format!("{} layer {}", src.reader.reference(), d.digest);
    let mut blob = dest.temp_blob()?;
    let path = blob.path().to_path_buf();
    let mut tar_hash = HashingWriter::new(std::io::sink());
    let mut old_blobs: HashMap<usize, Blob> = HashMap::new();
    // The planned ranges, a window at a time.
    let mut windows = RangeWindows::new(src.reader, d, ranges, per_request, &name);
    src.bytes += ranges.iter().map(|r| r.1 - r.0).sum::<u64>();
    src.requests += windows.requests();
    for (i, f) in index.frames.iter().enumerate() {
        let key = index.key(f);
        let (start, end) = (f.blob_offset, f.blob_offset + f.blob_len);
        let from_delta = match rebuilt {
            Some((r, layer)) if !frames.contains_key(&key) => r.frame(layer, i)?,
            _ => None,
        };
        let bytes: Vec<u8> = match (from_delta, frames.get(&key)) {
            (Some(bytes), _) => bytes,
            (None, Some(of)) => {
                let l = &old.layers[of.layer].descriptor;
                let b = match old_blobs.entry(of.layer) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(old_reader.blob(&l.digest, l.size)?)
                    }
                };
                let mut v = vec![0u8; f.blob_len as usize];
                std::os::unix::fs::FileExt::read_exact_at(&b.file, &mut v, b.offset + of.offset)
                    .map_err(|e| Error::io(&b.path, e))?;
                v
            }
            (None, None) => windows.bytes(start, end, pool)?,
        };
        let plain = zstd::bulk::decompress(&bytes, f.tar_len as usize)
            .map_err(|e| Error::malformed(&name, format!("frame {i} does not decompress: {e}")))?;
        let got = ChunkId::of(&plain);
        if plain.len() as u64 != f.tar_len || got != f.id {
            return Err(Error::digest_mismatch(
                format!("{name}: frame {i}"),
                f.id,
                got,
            ));
        }
        tar_hash
            .write_all(&plain)
            .map_err(|e| Error::io(&path, e))?;
        blob.writer()
            .write_all(&bytes)
            .map_err(|e| Error::io(&path, e))?;
    }
    blob.writer()
        .write_all(index_bytes)
        .map_err(|e| Error::io(&path, e))?;
    let (_, got, _) = tar_hash.finish();
    if got != *diff_id {
        return Err(Error::digest_mismatch(
            format!("{name}: the rebuilt tar (its diff_id)"),
            diff_id,
            got,
        ));
    }
    dest.commit_expecting(blob, &d.digest)?;
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
    pieces: Vec<(u64, u64)>,
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
        ranges: &[(u64, u64)],
        per_request: usize,
        name: &'a str,
    ) -> Self {
        let pieces = split_ranges(ranges, FETCH_WINDOW);
        let groups = request_groups(&pieces, per_request, FETCH_WINDOW);
        let group_bytes = groups
            .iter()
            .map(|g| pieces[g.clone()].iter().map(|r| r.1 - r.0).sum());
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

    /// Bytes `[start, end)` of the blob, which planned ranges must hold;
    /// windows are fetched forward only (frames are read in blob order).
    fn bytes(&mut self, start: u64, end: u64, pool: &rayon::ThreadPool) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut at = start;
        while at < end {
            let p = self.pieces.partition_point(|r| r.1 <= at);
            let r = self
                .pieces
                .get(p)
                .copied()
                .filter(|r| r.0 <= at)
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
            let to = end.min(r.1);
            out.extend_from_slice(&data[(at - r.0) as usize..(to - r.0) as usize]);
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
                .all(|(v, r)| v.len() as u64 == r.1 - r.0);
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
