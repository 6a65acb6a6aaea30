//! Rebuilding NEW's frames from the parts of a delta: each part fetched by
//! range, its reference read from OLD's frames, decompressed, cut into
//! NEW's frames, each checked against NEW's chunk index, compressed again
//! as NEW's layer compressed it and checked to have the same length. The
//! compressed frames go to a spill file, so memory holds one part at a
//! time. A part that fails any check is a [`Fallback`]: its frames are
//! fetched by ranges instead; the blob's sha256 is checked at the end in
//! any case.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::requests::{bounded_runs, request_groups, RequestOptions, FETCH_WINDOW};
use super::Coverage;
use crate::delta::find::FoundDelta;
use crate::delta::format::{decompress_part, Part, Run, MAX_PART_BYTES};
use crate::delta::make::read_frame;
use crate::digest::ChunkId;
use crate::error::{Error, Result};
use crate::oci::read::Blob;
use crate::store::view::ImageView;
use crate::store::ImageReader;

/// A part of a delta that was not used, and why: its frames were fetched
/// by ranges instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    /// The part's position in the lookup (`None`: the whole delta).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<usize>,
    /// The NEW frames it was to rebuild.
    pub frames: u64,
    /// Why it was not used.
    pub reason: String,
}

/// NEW's frames rebuilt from a delta, compressed, in a spill file.
#[derive(Debug)]
pub struct Rebuilt {
    spill: File,
    spill_path: PathBuf,
    /// (layer, frame) → its bytes in the spill file.
    at: HashMap<(usize, usize), Range<u64>>,
    /// Bytes of the delta read (parts).
    pub bytes_read: u64,
    /// Requests made for them.
    pub requests: u64,
    /// The parts that failed.
    pub fallbacks: Vec<Fallback>,
}

impl Rebuilt {
    /// The frames rebuilt.
    pub fn covered(&self) -> Coverage {
        self.at.keys().copied().collect()
    }

    /// The compressed bytes of frame `i` of layer `layer`, if rebuilt.
    pub fn frame(&self, layer: usize, i: usize) -> Result<Option<Vec<u8>>> {
        let Some(at) = self.at.get(&(layer, i)) else {
            return Ok(None);
        };
        let mut v = vec![0u8; (at.end - at.start) as usize];
        self.spill
            .read_exact_at(&mut v, at.start)
            .map_err(|e| Error::io(&self.spill_path, e))?;
        Ok(Some(v))
    }
}

/// Parts decoded at a time, at most (each holds its reference and content).
const DECODE_AT_ONCE: usize = 2;

/// The reference and content bytes of the parts decoded at a time, at most:
/// what bounds a client's memory. A part above it is not decoded at all
/// (`chunkah delta` makes none).
const DECODE_BUDGET: u64 = MAX_PART_BYTES;

/// The length of a part's reference: the content of its OLD frames.
fn reference_len(part: &Part, old: &ImageView) -> u64 {
    part.reference
        .iter()
        .flat_map(Run::frames)
        .filter_map(|(l, i)| old.layers.get(l)?.index.as_ref()?.1.frames.get(i))
        .map(|f| f.tar_len)
        .sum()
}

/// Splits `parts` into runs decoded together: at most [`DECODE_AT_ONCE`]
/// parts, at most [`DECODE_BUDGET`] bytes of reference and content.
fn decode_groups(parts: &[&Part], old: &ImageView) -> Vec<std::ops::Range<usize>> {
    bounded_runs(
        parts.iter().map(|p| reference_len(p, old) + p.content_len),
        DECODE_AT_ONCE,
        DECODE_BUDGET,
    )
}

/// The two images a delta's parts are rebuilt between: OLD (read for the
/// parts' references) and NEW (whose source holds the delta blob, and
/// whose index the rebuilt frames are checked against).
#[derive(Clone, Copy)]
pub struct ImagePair<'a> {
    /// Reads OLD's blobs.
    pub old_reader: &'a ImageReader,
    /// OLD as planning sees it.
    pub old: &'a ImageView,
    /// Reads NEW's blobs and the delta blob.
    pub new_reader: &'a ImageReader,
    /// NEW as planning sees it.
    pub new: &'a ImageView,
}

/// Rebuilds the frames of the parts `chosen` of `found` (read from NEW's
/// source by the ranges [`super::delta_level::part_ranges`] gives, as many
/// to a request as `requests` says), against OLD's frames. The spill file
/// is a nameless file in `scratch`.
pub fn rebuild(
    found: &FoundDelta,
    chosen: &[usize],
    images: ImagePair<'_>,
    requests: RequestOptions,
    scratch: &Path,
) -> Result<Rebuilt> {
    let mut rebuilder = PartRebuilder {
        found,
        images,
        scratch,
        old_blobs: HashMap::new(),
        spilled: 0,
        out: Rebuilt {
            spill: crate::io::anonymous_file(scratch)?,
            spill_path: scratch.to_path_buf(),
            at: HashMap::new(),
            bytes_read: 0,
            requests: 0,
            fallbacks: Vec::new(),
        },
    };
    let parts: Vec<&Part> = chosen.iter().map(|&p| &found.lookup.parts[p]).collect();
    let ranges = super::delta_level::part_ranges(&parts, requests.gap);
    // The parts each request's ranges hold (both in blob order).
    let mut next = 0;
    for g in request_groups(&ranges, requests.ranges_per_request, FETCH_WINDOW) {
        let group = &ranges[g];
        let held = parts[next..]
            .iter()
            .take_while(|p| p.offset + p.length <= group[group.len() - 1].end)
            .count();
        let batch = next..next + held;
        rebuilder.rebuild_batch(group, &chosen[batch.clone()], &parts[batch])?;
        next += held;
    }
    Ok(rebuilder.out)
}

/// What rebuilding the parts of one delta shares: the images, OLD's blobs
/// opened so far, and the spill file being written.
struct PartRebuilder<'a> {
    found: &'a FoundDelta,
    images: ImagePair<'a>,
    scratch: &'a Path,
    old_blobs: HashMap<usize, Blob>,
    /// Bytes written to the spill file so far.
    spilled: u64,
    out: Rebuilt,
}

impl PartRebuilder<'_> {
    /// Fetches the ranges `group` (one request), which hold the parts
    /// `parts` (positions `batch` in the lookup), and rebuilds them; parts
    /// that cannot be had or fail a check are fallbacks.
    fn rebuild_batch(
        &mut self,
        group: &[Range<u64>],
        batch: &[usize],
        parts: &[&Part],
    ) -> Result<()> {
        let blob = &self.found.blob;
        let fetched = match self
            .images
            .new_reader
            .read_ranges(&blob.digest, blob.size, group)
        {
            Ok(f) if f.len() == group.len() => f,
            Ok(_) | Err(_) => {
                // The parts cannot be had: their frames come by ranges.
                for (&p, part) in batch.iter().zip(parts) {
                    self.out.fallbacks.push(Fallback {
                        part: Some(p),
                        frames: frames_of(part),
                        reason: "the delta blob could not be read".into(),
                    });
                }
                return Ok(());
            }
        };
        self.out.bytes_read += group.iter().map(|r| r.end - r.start).sum::<u64>();
        self.out.requests += 1;
        let data = part_bytes(group, &fetched, parts);
        self.open_old_blobs(parts)?;
        for g in decode_groups(parts, self.images.old) {
            self.decode_and_spill(&batch[g.clone()], &parts[g.clone()], &data[g])?;
        }
        Ok(())
    }

    /// Opens, once, the old blobs the references of `parts` need.
    fn open_old_blobs(&mut self, parts: &[&Part]) -> Result<()> {
        for part in parts {
            for (l, _) in part.reference.iter().flat_map(Run::frames) {
                if let std::collections::hash_map::Entry::Vacant(e) = self.old_blobs.entry(l) {
                    let d = &self.images.old.layers[l].descriptor;
                    e.insert(self.images.old_reader.blob(&d.digest, d.size)?);
                }
            }
        }
        Ok(())
    }

    /// Decodes `parts` (positions `batch`, bytes `data`) in parallel and
    /// writes the frames of those that pass every check to the spill file.
    fn decode_and_spill(&mut self, batch: &[usize], parts: &[&Part], data: &[&[u8]]) -> Result<()> {
        let decoded: Vec<Decoded> = {
            use rayon::prelude::*;
            let (old_blobs, old, new) = (&self.old_blobs, self.images.old, self.images.new);
            parts
                .par_iter()
                .zip(data.par_iter())
                .zip(batch.par_iter())
                .map(|((part, bytes), p)| {
                    decode(part, bytes, old_blobs, old, new, &format!("delta part {p}"))
                })
                .collect()
        };
        for ((&p, part), result) in batch.iter().zip(parts).zip(decoded) {
            match result {
                Ok(frames) => {
                    for (at, bytes) in frames {
                        self.spill(at, &bytes)?;
                    }
                }
                Err(reason) => self.out.fallbacks.push(Fallback {
                    part: Some(p),
                    frames: frames_of(part),
                    reason,
                }),
            }
        }
        Ok(())
    }

    /// Writes the compressed frame `at` (layer, frame) to the spill file.
    fn spill(&mut self, at: (usize, usize), bytes: &[u8]) -> Result<()> {
        self.out
            .spill
            .write_all_at(bytes, self.spilled)
            .map_err(|e| Error::io(self.scratch, e))?;
        let end = self.spilled + bytes.len() as u64;
        self.out.at.insert(at, self.spilled..end);
        self.spilled = end;
        Ok(())
    }
}

/// Each part's bytes within the ranges `group` fetched as `fetched`.
fn part_bytes<'d>(group: &[Range<u64>], fetched: &'d [Vec<u8>], parts: &[&Part]) -> Vec<&'d [u8]> {
    parts
        .iter()
        .map(|p| {
            let r = group
                .iter()
                .position(|r| r.start <= p.offset && p.offset + p.length <= r.end)
                .expect("a range holds each part");
            let start = (p.offset - group[r].start) as usize;
            &fetched[r][start..start + p.length as usize]
        })
        .collect()
}

/// A part's frames, compressed, by (layer, frame); or why the part
/// cannot be used.
type Decoded = std::result::Result<Vec<((usize, usize), Vec<u8>)>, String>;

fn frames_of(part: &Part) -> u64 {
    part.targets.iter().map(|r| u64::from(r.count)).sum()
}

/// Decodes one part into NEW's compressed frames, or says why it cannot.
fn decode(
    part: &Part,
    bytes: &[u8],
    old_blobs: &HashMap<usize, Blob>,
    old: &ImageView,
    new: &ImageView,
    what: &str,
) -> Decoded {
    let reference = read_reference(part, old_blobs, old, what)?;
    let content =
        decompress_part(&reference, bytes, part.content_len, what).map_err(|e| e.to_string())?;
    drop(reference);
    compress_targets(part, &content, new, what)
}

/// The reference of `part`: the content of its OLD frames, within the
/// decode budget.
fn read_reference(
    part: &Part,
    old_blobs: &HashMap<usize, Blob>,
    old: &ImageView,
    what: &str,
) -> std::result::Result<Vec<u8>, String> {
    // Its exact length first: a growing vector would briefly hold twice it.
    let reference_len = reference_len(part, old);
    if reference_len + part.content_len > DECODE_BUDGET {
        return Err(format!(
            "{what}: its reference and content ({} bytes) are above the part limit ({DECODE_BUDGET})",
            reference_len + part.content_len
        ));
    }
    let mut reference = Vec::with_capacity(reference_len as usize);
    for (l, i) in part.reference.iter().flat_map(Run::frames) {
        let f = old.layers[l]
            .index
            .as_ref()
            .and_then(|(_, x)| x.frames.get(i))
            .ok_or("a reference frame OLD does not have")?;
        read_frame(&old_blobs[&l], f, &mut reference).map_err(|e| e.to_string())?;
        if reference.len() as u64 > reference_len {
            return Err(format!(
                "{what}: its reference is longer than OLD's index gives"
            ));
        }
    }
    Ok(reference)
}

/// `content` (a part's, decoded) cut into the part's target frames, each
/// checked against NEW's index and compressed again as NEW's layer was.
fn compress_targets(part: &Part, content: &[u8], new: &ImageView, what: &str) -> Decoded {
    let mut out = Vec::new();
    let mut at = 0usize;
    let mut compressors: HashMap<i32, zstd::bulk::Compressor<'static>> = HashMap::new();
    for (l, i) in part.targets.iter().flat_map(Run::frames) {
        let (_, index) = new.layers[l]
            .index
            .as_ref()
            .ok_or("a target layer without an index")?;
        let f = index
            .frames
            .get(i)
            .ok_or("a target frame NEW does not have")?;
        let end = at + f.tar_len as usize;
        let plain = content
            .get(at..end)
            .ok_or_else(|| format!("{what}: shorter than its targets"))?;
        if ChunkId::of(plain) != f.id {
            return Err(format!(
                "{what}: layer {l} frame {i} rebuilt with another digest than NEW's index gives"
            ));
        }
        let compressor = match compressors.entry(index.level) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(crate::layer::frame_compressor(index.level).map_err(|e| e.to_string())?)
            }
        };
        let packed = compressor.compress(plain).map_err(|e| e.to_string())?;
        if packed.len() as u64 != f.blob_len {
            return Err(format!(
                "{what}: layer {l} frame {i} compresses to {} bytes here, {} in NEW",
                packed.len(),
                f.blob_len
            ));
        }
        out.push(((l, i), packed));
        at = end;
    }
    if at != content.len() {
        return Err(format!("{what}: longer than its targets"));
    }
    Ok(out)
}
