//! Making a delta: which NEW frames each part rebuilds, against which OLD
//! frames, and the parts compressed on all threads of the current rayon
//! pool.
//!
//! The frames a delta covers are those the chunk level would fetch: NEW's
//! frames whose compressed bytes OLD lacks. They are grouped so:
//! - a large file (frames of its own) whose old version is found — OLD's
//!   file at the same path, else at the same path with its version numbers
//!   changed, else with the same file name so changed in another directory
//!   (the size closest wins) — gets a part of its own, its missing frames
//!   against the old file (in windows of [`SEGMENT_BYTES`] for huge files);
//! - the rest of each layer (entries frames of tar headers and small files,
//!   large files with no old version, and any file part that did not pay)
//!   goes into solid parts of up to [`SEGMENT_BYTES`], against OLD's
//!   entries frames holding the same small files.
//!
//! A part is kept only if it is smaller than the compressed frames it
//! rebuilds; what no part covers is fetched by ranges as without a delta.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;

use super::format::{compress_part, push_frame, DeltaLookup, IndexPart, Part, Run, MAX_PART_BYTES};
use crate::digest::ChunkId;
use crate::error::{Error, Result};
use crate::layer::index::{ChunkIndex, Frame};
use crate::oci::read::Blob;
use crate::store::view::{ImageView, OpenImage};

/// The most content one part rebuilds when it is made (16 MiB).
pub const SEGMENT_BYTES: u64 = 16 << 20;

/// The most reference one part names when it is made (48 MiB): with its
/// content, at most [`MAX_PART_BYTES`], what a client holds to decode it.
pub const REFERENCE_BYTES: u64 = MAX_PART_BYTES - SEGMENT_BYTES;

/// How a delta is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaConfig {
    /// The zstd level of the parts (1 to 22).
    pub level: i32,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        DeltaConfig { level: 19 }
    }
}

impl DeltaConfig {
    /// An [`Error::Config`] unless the level is 1 to 22.
    pub fn validate(&self) -> Result<()> {
        if !(1..=22).contains(&self.level) {
            return Err(Error::Config(format!(
                "delta zstd level {} is out of range 1..=22",
                self.level
            )));
        }
        Ok(())
    }
}

/// What making a delta found, part by part kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MakeStats {
    /// Frames of NEW that OLD lacks, and their compressed bytes (what the
    /// chunk level fetches of them).
    pub missing_frames: u64,
    /// Their compressed bytes.
    pub missing_bytes: u64,
    /// File parts kept, and how many found their old file by path, by
    /// version numbers, by file name.
    pub file_parts: u64,
    /// Of `file_parts`, by the same path.
    pub by_path: u64,
    /// Of `file_parts`, by the path with version numbers changed.
    pub by_version: u64,
    /// Of `file_parts`, by the file name in another directory.
    pub by_name: u64,
    /// Solid parts kept.
    pub solid_parts: u64,
    /// Parts dropped for not being smaller than the frames they rebuild.
    pub dropped_parts: u64,
    /// Frames the kept parts rebuild.
    pub covered_frames: u64,
    /// The compressed bytes of those frames.
    pub covered_bytes: u64,
    /// The bytes of the kept parts.
    pub part_bytes: u64,
    /// Index parts kept (a NEW layer's chunk index against an OLD one's).
    pub index_parts: u64,
    /// Their bytes.
    pub index_part_bytes: u64,
    /// The bytes of the index frames they replace.
    pub index_bytes: u64,
}

/// `path` with every run of digits (and the `.`, `-`, `+`, `~`, `_`
/// between digits) replaced by `#`: one key for two versions of a file
/// (`libfoo.so.3.0.12`, `python3.11/`, `doc/pkg-1.2/`).
pub fn version_key(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        if path[i].is_ascii_digit() {
            let mut j = i + 1;
            while j < path.len()
                && (path[j].is_ascii_digit()
                    || (b"._-+~".contains(&path[j])
                        && path.get(j + 1).is_some_and(u8::is_ascii_digit)))
            {
                j += 1;
            }
            out.push(b'#');
            i = j;
        } else {
            out.push(path[i]);
            i += 1;
        }
    }
    out
}

/// How a file part found its old file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    Path,
    Version,
    Name,
}

/// OLD's files, looked up by path, by version key and by file name key.
struct OldFiles<'a> {
    view: &'a ImageView,
    by_path: HashMap<&'a [u8], (usize, usize)>,
    by_version: HashMap<Vec<u8>, Vec<(usize, usize)>>,
    by_name: HashMap<Vec<u8>, Vec<(usize, usize)>>,
}

impl<'a> OldFiles<'a> {
    fn new(view: &'a ImageView) -> Self {
        let mut files = OldFiles {
            view,
            by_path: HashMap::new(),
            by_version: HashMap::new(),
            by_name: HashMap::new(),
        };
        for (l, layer) in view.layers.iter().enumerate() {
            let Some((_, index)) = &layer.index else {
                continue;
            };
            for (i, f) in index.files.iter().enumerate() {
                let path = f.path.as_os_str().as_bytes();
                files.by_path.entry(path).or_insert((l, i));
                files
                    .by_version
                    .entry(version_key(path))
                    .or_default()
                    .push((l, i));
                files
                    .by_name
                    .entry(version_key(file_name(&f.path)))
                    .or_default()
                    .push((l, i));
            }
        }
        files
    }

    fn index(&self, layer: usize) -> &'a ChunkIndex {
        &self.view.layers[layer]
            .index
            .as_ref()
            .expect("an indexed layer")
            .1
    }

    /// The old version of a file at `path` of `size` bytes, and how it was
    /// found.
    fn find(&self, path: &Path, size: u64) -> Option<((usize, usize), Found)> {
        let bytes = path.as_os_str().as_bytes();
        if let Some(&at) = self.by_path.get(bytes) {
            return Some((at, Found::Path));
        }
        let closest = |c: &Vec<(usize, usize)>| {
            c.iter()
                .min_by_key(|&&(l, i)| {
                    let f = &self.index(l).files[i];
                    (f.size.abs_diff(size), f.path.clone())
                })
                .copied()
        };
        if let Some(at) = self.by_version.get(&version_key(bytes)).and_then(closest) {
            return Some((at, Found::Version));
        }
        let name = self.by_name.get(&version_key(file_name(path)))?;
        closest(name).map(|at| (at, Found::Name))
    }

    /// The frames holding an old file's content: its own, or the entries
    /// frame that holds a small file.
    fn frames(&self, (l, i): (usize, usize)) -> Run {
        let f = &self.index(l).files[i];
        Run {
            layer: l as u32,
            first: f.first_frame as u32,
            count: f.frame_count.max(1) as u32,
        }
    }
}

fn file_name(path: &Path) -> &[u8] {
    path.file_name().map_or(b"", |n| n.as_bytes())
}

/// A part before it is compressed.
#[derive(Clone, Debug)]
struct Candidate {
    reference: Vec<Run>,
    targets: Vec<Run>,
    found: Option<Found>,
}

/// Reads the uncompressed content of frames of one image, checking each.
struct Frames<'a> {
    side: &'a OpenImage,
    blobs: Vec<Option<Blob>>,
}

impl<'a> Frames<'a> {
    fn open(side: &'a OpenImage, layers: impl Fn(usize) -> bool) -> Result<Self> {
        let blobs = side
            .view
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| match layer.index.is_some() && layers(l) {
                true => {
                    let d = &layer.descriptor;
                    side.reader.blob(&d.digest, d.size).map(Some)
                }
                false => Ok(None),
            })
            .collect::<Result<_>>()?;
        Ok(Frames { side, blobs })
    }

    fn frame(&self, layer: usize, frame: usize) -> Option<&Frame> {
        let (_, index) = self.side.view.layers.get(layer)?.index.as_ref()?;
        index.frames.get(frame)
    }

    /// The content of the frames of `runs`, one after the other.
    fn read(&self, runs: &[Run]) -> Result<Vec<u8>> {
        // Its exact length first: a growing vector would briefly hold twice it.
        let len = self.content_len(runs).min(2 * MAX_PART_BYTES);
        let mut out = Vec::with_capacity(len as usize);
        for r in runs {
            for (l, i) in r.frames() {
                let (Some(Some(blob)), Some(f)) = (self.blobs.get(l), self.frame(l, i)) else {
                    return Err(Error::malformed(
                        self.side.reader.reference(),
                        format!("no frame {i} in layer {l}"),
                    ));
                };
                read_frame(blob, f, &mut out)?;
            }
        }
        Ok(out)
    }

    fn content_len(&self, runs: &[Run]) -> u64 {
        runs.iter()
            .flat_map(Run::frames)
            .filter_map(|(l, i)| self.frame(l, i))
            .map(|f| f.tar_len)
            .sum()
    }

    fn blob_len(&self, runs: &[Run]) -> u64 {
        runs.iter()
            .flat_map(Run::frames)
            .filter_map(|(l, i)| self.frame(l, i))
            .map(|f| f.blob_len)
            .sum()
    }
}

/// Appends the uncompressed content of frame `f` of `blob` to `out`,
/// checked against its digest.
pub fn read_frame(blob: &Blob, f: &Frame, out: &mut Vec<u8>) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let mut packed = vec![0u8; f.blob_len as usize];
    blob.file
        .read_exact_at(&mut packed, blob.offset + f.blob_offset)
        .map_err(|e| Error::io(&blob.path, e))?;
    let start = out.len();
    let bad = |why: String| Error::malformed(&blob.name, why);
    let len = usize::try_from(f.tar_len)
        .ok()
        .filter(|&n| n as u64 <= super::format::MAX_PART_BYTES)
        .ok_or_else(|| bad(format!("a frame of {} bytes", f.tar_len)))?;
    out.resize(start + len, 0);
    let n = zstd::zstd_safe::decompress(&mut out[start..], &packed).map_err(|c| {
        bad(format!(
            "a frame does not decompress: {}",
            zstd::zstd_safe::get_error_name(c)
        ))
    })?;
    out.truncate(start + n);
    let got = ChunkId::of(&out[start..]);
    if n as u64 != f.tar_len || got != f.id {
        return Err(Error::digest_mismatch(
            format!("{}: the frame at {}", blob.name, f.blob_offset),
            f.id,
            got,
        ));
    }
    Ok(())
}

/// Makes the delta from `old` to `new`: writes the parts to `out` and
/// returns the lookup (not yet written) and what was found.
/// `progress(done, total)` is called as parts are compressed; an error it
/// returns (a cancelled job) stops the work and is returned.
pub fn make(
    old: &OpenImage,
    new: &OpenImage,
    config: DeltaConfig,
    out: &mut dyn std::io::Write,
    out_path: &Path,
    progress: &(dyn Fn(u64, u64) -> Result<()> + Sync),
) -> Result<(DeltaLookup, MakeStats)> {
    config.validate()?;
    let mut stats = MakeStats::default();
    let missing = missing_frames(&old.view, &new.view, &mut stats);
    let old_files = OldFiles::new(&old.view);
    let old_frames = Frames::open(old, |_| true)?;
    let new_frames = Frames::open(new, |l| missing[l].iter().any(|&m| m))?;
    let mut sink = PartSink {
        out,
        out_path,
        written: 0,
        parts: Vec::new(),
        covered: missing.iter().map(|m| vec![false; m.len()]).collect(),
        stats,
    };
    // File parts first.
    let files = file_candidates(&new.view, &missing, &old_files, &old_frames);
    let total = files.len() as u64;
    let progress_files = |done| progress(done, total);
    encode_all(
        &files,
        &old_frames,
        &new_frames,
        config,
        &mut sink,
        progress_files,
    )?;
    // Then the rest of each layer, solid.
    let rest = solid_candidates(&new.view, &missing, &sink.covered, &old_files, &old_frames);
    let total = total + rest.len() as u64;
    let done_files = files.len() as u64;
    let progress_rest = |done| progress(done_files + done, total);
    encode_all(
        &rest,
        &old_frames,
        &new_frames,
        config,
        &mut sink,
        progress_rest,
    )?;
    let index_parts = index_parts(&old.view, &new.view, &missing, config, &mut sink)?;
    Ok((
        DeltaLookup {
            base: old.view.manifest.digest,
            target: new.view.manifest.digest,
            parts: sink.parts,
            index_parts,
        },
        sink.stats,
    ))
}

/// Which frames of NEW, layer by layer, the chunk level would fetch (none
/// for a layer OLD has or one without an index); counted in `stats`.
fn missing_frames(old: &ImageView, new: &ImageView, stats: &mut MakeStats) -> Vec<Vec<bool>> {
    let old_layers: std::collections::HashSet<_> =
        old.layers.iter().map(|l| l.descriptor.digest).collect();
    let known = old.frames_by_key();
    new.layers
        .iter()
        .map(|l| match &l.index {
            Some((_, index)) if !old_layers.contains(&l.descriptor.digest) => index
                .frames
                .iter()
                .map(|f| {
                    let lacks = !known.contains_key(&index.key(f));
                    if lacks {
                        stats.missing_frames += 1;
                        stats.missing_bytes += f.blob_len;
                    }
                    lacks
                })
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The file parts to try: for each large file of NEW with missing frames
/// whose old version OLD has, its segments against that old file.
fn file_candidates(
    new: &ImageView,
    missing: &[Vec<bool>],
    old_files: &OldFiles<'_>,
    old_frames: &Frames<'_>,
) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    for (l, layer) in new.layers.iter().enumerate() {
        let Some((_, index)) = layer.index.as_ref().filter(|_| !missing[l].is_empty()) else {
            continue;
        };
        for file in index.files.iter().filter(|f| f.frame_count > 0) {
            let frames = file.first_frame..file.first_frame + file.frame_count;
            if !frames.clone().any(|i| missing[l][i]) {
                continue;
            }
            let Some((at, found)) = old_files.find(&file.path, file.size) else {
                continue;
            };
            let run = old_files.frames(at);
            let old_file = OldFile {
                frames: old_frames,
                run,
                len: old_frames.content_len(&[run]),
            };
            let target = NewFile {
                index,
                layer: l,
                frames,
                size: file.size,
            };
            candidates.extend(file_segments(&target, &missing[l], &old_file, found));
        }
    }
    candidates
}

/// The solid parts to try: the missing frames of each layer no file part
/// covers, in segments, against old entries frames holding the same small
/// files.
fn solid_candidates(
    new: &ImageView,
    missing: &[Vec<bool>],
    covered: &[Vec<bool>],
    old_files: &OldFiles<'_>,
    old_frames: &Frames<'_>,
) -> Vec<Candidate> {
    let mut rest = Vec::new();
    for (l, layer) in new.layers.iter().enumerate() {
        let Some((_, index)) = layer.index.as_ref().filter(|_| !missing[l].is_empty()) else {
            continue;
        };
        let wanted = |i: usize| missing[l][i] && !covered[l][i];
        rest.extend(solid_segments(index, l, &wanted, old_files, old_frames));
    }
    for c in &mut rest {
        c.reference.sort();
    }
    rest
}

/// The `wanted` frames of NEW's layer `l` (`index`) in segments of at most
/// [`SEGMENT_BYTES`], each against the old versions of the small files its
/// entries frames hold (at most [`REFERENCE_BYTES`] of them).
fn solid_segments(
    index: &ChunkIndex,
    l: usize,
    wanted: &dyn Fn(usize) -> bool,
    old_files: &OldFiles<'_>,
    old_frames: &Frames<'_>,
) -> Vec<Candidate> {
    let mut small_files: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, f) in index.files.iter().enumerate() {
        if f.frame_count == 0 {
            small_files.entry(f.first_frame).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    let mut targets: Vec<Run> = Vec::new();
    let mut reference: Vec<Run> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let (mut content, mut reference_len) = (0u64, 0u64);
    for (i, f) in index.frames.iter().enumerate() {
        if !wanted(i) {
            continue;
        }
        if content + f.tar_len > SEGMENT_BYTES && !targets.is_empty() {
            out.push(Candidate {
                reference: std::mem::take(&mut reference),
                targets: std::mem::take(&mut targets),
                found: None,
            });
            (content, reference_len) = (0, 0);
            seen.clear();
        }
        push_frame(&mut targets, l, i);
        content += f.tar_len;
        for &fi in small_files.get(&i).into_iter().flatten() {
            let file = &index.files[fi];
            let Some((at, _)) = old_files.find(&file.path, file.size) else {
                continue;
            };
            let run = old_files.frames(at);
            let len = old_frames.content_len(&[run]);
            if reference_len + len <= REFERENCE_BYTES && seen.insert(run) {
                reference.push(run);
                reference_len += len;
            }
        }
    }
    if !targets.is_empty() {
        out.push(Candidate {
            reference,
            targets,
            found: None,
        });
    }
    out
}

/// The delta blob being written: its sink, the parts in it so far, the NEW
/// frames they cover, and what was found.
struct PartSink<'a> {
    out: &'a mut dyn std::io::Write,
    out_path: &'a Path,
    /// Bytes written so far: the next part's offset.
    written: u64,
    parts: Vec<Part>,
    /// By layer and frame: whether a part kept rebuilds it.
    covered: Vec<Vec<bool>>,
    stats: MakeStats,
}

impl PartSink<'_> {
    /// Appends `bytes` to the blob; their offset.
    fn write(&mut self, bytes: &[u8]) -> Result<u64> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(self.out_path, e))?;
        let offset = self.written;
        self.written += bytes.len() as u64;
        Ok(offset)
    }

    /// Keeps the candidate `c`, compressed as `bytes` (of `content_len`
    /// bytes of content), whose frames are `frames_cost` bytes compressed.
    fn keep(
        &mut self,
        c: &Candidate,
        bytes: &[u8],
        content_len: u64,
        frames_cost: u64,
    ) -> Result<()> {
        let offset = self.write(bytes)?;
        let stats = &mut self.stats;
        for (l, i) in c.targets.iter().flat_map(Run::frames) {
            self.covered[l][i] = true;
            stats.covered_frames += 1;
        }
        stats.covered_bytes += frames_cost;
        stats.part_bytes += bytes.len() as u64;
        match c.found {
            None => stats.solid_parts += 1,
            Some(found) => {
                stats.file_parts += 1;
                match found {
                    Found::Path => stats.by_path += 1,
                    Found::Version => stats.by_version += 1,
                    Found::Name => stats.by_name += 1,
                }
            }
        }
        self.parts.push(Part {
            offset,
            length: bytes.len() as u64,
            content_len,
            reference: c.reference.clone(),
            targets: c.targets.clone(),
        });
        Ok(())
    }
}

/// The index parts: for each NEW layer the chunk level rebuilds, its index
/// body against the body of the OLD layer whose index shares the most frame
/// digests with it, kept if smaller than the index frame it replaces.
fn index_parts(
    old: &ImageView,
    new: &ImageView,
    missing: &[Vec<bool>],
    config: DeltaConfig,
    sink: &mut PartSink<'_>,
) -> Result<Vec<IndexPart>> {
    let out_path = sink.out_path;
    let packed: Vec<(usize, usize, Vec<u8>, u64)> = index_references(old, new, missing)
        .par_iter()
        .map(|&(l, o)| {
            let body = new.layers[l].index.as_ref().expect("an index").1.body();
            let reference = old.layers[o].index.as_ref().expect("an index").1.body();
            let bytes = compress_part(config.level, &reference, &body)
                .map_err(|e| Error::io(out_path, e))?;
            Ok((l, o, bytes, body.len() as u64))
        })
        .collect::<Result<_>>()?;
    let mut parts = Vec::new();
    for (l, o, bytes, content_len) in packed {
        let (range, _) = new.layers[l].index.as_ref().expect("an index");
        if bytes.len() as u64 >= range.length || content_len > MAX_PART_BYTES {
            continue;
        }
        let offset = sink.write(&bytes)?;
        sink.stats.index_parts += 1;
        sink.stats.index_part_bytes += bytes.len() as u64;
        sink.stats.index_bytes += range.length;
        parts.push(IndexPart {
            offset,
            length: bytes.len() as u64,
            content_len,
            old_layer: o as u32,
            new_layer: l as u32,
        });
    }
    Ok(parts)
}

/// For each NEW layer with missing frames (and an index), the OLD layer
/// whose index shares the most frame digests with its own (the first of
/// equal ones): (new layer, old layer).
fn index_references(
    old: &ImageView,
    new: &ImageView,
    missing: &[Vec<bool>],
) -> Vec<(usize, usize)> {
    let old_ids: Vec<Option<std::collections::HashSet<ChunkId>>> = old
        .layers
        .iter()
        .map(|l| {
            l.index
                .as_ref()
                .map(|(_, i)| i.frames.iter().map(|f| f.id).collect())
        })
        .collect();
    new.layers
        .iter()
        .enumerate()
        .filter(|(l, _)| !missing[*l].is_empty())
        .filter_map(|(l, layer)| {
            let (_, index) = layer.index.as_ref()?;
            let best = old_ids
                .iter()
                .enumerate()
                .filter_map(|(o, ids)| {
                    let ids = ids.as_ref()?;
                    let shared = index.frames.iter().filter(|f| ids.contains(&f.id)).count();
                    Some((shared, std::cmp::Reverse(o)))
                })
                .max()?;
            Some((l, best.1 .0))
        })
        .collect()
}

/// A large file of NEW: its layer's index, the layer, its frames and size.
struct NewFile<'a> {
    index: &'a ChunkIndex,
    layer: usize,
    frames: std::ops::Range<usize>,
    size: u64,
}

/// The old version of a file: OLD's frames, its run of them and its length.
struct OldFile<'a> {
    frames: &'a Frames<'a>,
    run: Run,
    len: u64,
}

impl OldFile<'_> {
    /// The reference for NEW's content `[from, to)` of a file `new_len`
    /// bytes long: the whole old file, or for files above
    /// [`REFERENCE_BYTES`] its frames around the same relative position.
    fn reference(&self, from: u64, to: u64, new_len: u64) -> Vec<Run> {
        if self.len <= REFERENCE_BYTES {
            return vec![self.run];
        }
        // The old frames around [from, to) scaled to the old size.
        let scale = |x: u64| (x as u128 * self.len as u128 / new_len.max(1) as u128) as u64;
        let margin = (REFERENCE_BYTES - (to - from).min(REFERENCE_BYTES)) / 2;
        let (lo, hi) = (scale(from).saturating_sub(margin), scale(to) + margin);
        let mut runs = Vec::new();
        let mut at = 0u64;
        let mut len = 0u64;
        for (l, i) in self.run.frames() {
            let f = self.frames.frame(l, i).expect("a frame of the old file");
            if at + f.tar_len > lo && at < hi && len + f.tar_len <= REFERENCE_BYTES {
                push_frame(&mut runs, l, i);
                len += f.tar_len;
            }
            at += f.tar_len;
        }
        runs
    }
}

/// The file parts of one new large file: its `missing` frames in segments
/// of at most [`SEGMENT_BYTES`], each against the old file (or, for files
/// above [`REFERENCE_BYTES`], the window of it around the same relative
/// position).
fn file_segments(
    file: &NewFile<'_>,
    missing: &[bool],
    old: &OldFile<'_>,
    found: Found,
) -> Vec<Candidate> {
    let index = file.index;
    let start = index.frames[file.frames.start].tar_offset;
    let mut out = Vec::new();
    let mut segment: Vec<Run> = Vec::new();
    let (mut seg_start, mut seg_len) = (0u64, 0u64);
    let mut flush = |segment: Vec<Run>, from: u64, to: u64| {
        out.push(Candidate {
            reference: old.reference(from, to, file.size),
            targets: segment,
            found: Some(found),
        });
    };
    for i in file.frames.clone() {
        let f = &index.frames[i];
        if !missing[i] {
            continue;
        }
        let at = f.tar_offset - start;
        if seg_len + f.tar_len > SEGMENT_BYTES && !segment.is_empty() {
            flush(std::mem::take(&mut segment), seg_start, at);
            seg_len = 0;
        }
        if segment.is_empty() {
            seg_start = at;
        }
        push_frame(&mut segment, file.layer, i);
        seg_len += f.tar_len;
    }
    if !segment.is_empty() {
        let end = seg_start + seg_len;
        flush(segment, seg_start, end.max(seg_start));
    }
    out
}

/// Parts compressed at a time: their outputs wait in memory to be written
/// in order.
const BATCH: usize = 32;

/// Compresses `candidates` (references read from `old`, content from
/// `new`) in batches on the current rayon pool and keeps in `sink` those
/// that pay.
fn encode_all(
    candidates: &[Candidate],
    old: &Frames<'_>,
    new: &Frames<'_>,
    config: DeltaConfig,
    sink: &mut PartSink<'_>,
    progress: impl Fn(u64) -> Result<()>,
) -> Result<()> {
    let out_path = sink.out_path;
    let mut done = 0u64;
    for batch in candidates.chunks(BATCH) {
        let packed: Vec<Option<(Vec<u8>, u64)>> = batch
            .par_iter()
            .map(|c| {
                let frames_cost = new.blob_len(&c.targets);
                let reference = old.read(&c.reference)?;
                let content = new.read(&c.targets)?;
                let bytes = compress_part(config.level, &reference, &content)
                    .map_err(|e| Error::io(out_path, e))?;
                Ok((bytes.len() as u64) < frames_cost)
                    .map(|pays| pays.then_some((bytes, content.len() as u64)))
            })
            .collect::<Result<_>>()?;
        for (c, p) in batch.iter().zip(packed) {
            done += 1;
            match p {
                Some((bytes, content_len)) => {
                    sink.keep(c, &bytes, content_len, new.blob_len(&c.targets))?
                }
                None => sink.stats.dropped_parts += 1,
            }
        }
        progress(done)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn version_keys_match_versions_of_one_file() {
        let k = |s: &str| String::from_utf8(version_key(s.as_bytes())).unwrap();
        assert_eq!(k("usr/lib/libfoo.so.3.0.12"), k("usr/lib/libfoo.so.3.0.15"));
        assert_eq!(k("usr/lib/python3.11/os.py"), k("usr/lib/python3.13/os.py"));
        assert_eq!(
            k("lib/modules/6.1.0-18-amd64/kernel/x.ko"),
            k("lib/modules/6.1.0-21-amd64/kernel/x.ko")
        );
        assert_eq!(
            k("usr/share/doc/pkg-1.2/README"),
            "usr/share/doc/pkg-#/README"
        );
        assert_ne!(k("usr/bin/a"), k("usr/bin/b"));
        assert_eq!(k("x1.y"), "x#.y");
        assert_eq!(k("v."), "v.");
    }
}
