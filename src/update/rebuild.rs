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
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::requests::{bounded_runs, request_groups, FETCH_WINDOW};
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
    /// (layer, frame) → (offset, length) in the spill file.
    at: HashMap<(usize, usize), (u64, u64)>,
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
        let Some(&(offset, len)) = self.at.get(&(layer, i)) else {
            return Ok(None);
        };
        let mut v = vec![0u8; len as usize];
        self.spill
            .read_exact_at(&mut v, offset)
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

/// Rebuilds the frames of the parts `chosen` of `found` (read from
/// `source` by the ranges [`super::delta_level::part_ranges`] gives, `per_request`
/// to a request), against OLD's frames
/// read through `old_reader`. The spill file is a nameless file in
/// `scratch`.
pub fn rebuild(
    found: &FoundDelta,
    chosen: &[usize],
    (old_reader, old): (&ImageReader, &ImageView),
    (source, new): (&ImageReader, &ImageView),
    (gap, per_request): (u64, usize),
    scratch: &Path,
) -> Result<Rebuilt> {
    let spill = crate::io::anonymous_file(scratch)?;
    let mut out = Rebuilt {
        spill,
        spill_path: scratch.to_path_buf(),
        at: HashMap::new(),
        bytes_read: 0,
        requests: 0,
        fallbacks: Vec::new(),
    };
    let mut old_blobs: HashMap<usize, Blob> = HashMap::new();
    let mut spilled = 0u64;
    let parts: Vec<&Part> = chosen.iter().map(|&p| &found.lookup.parts[p]).collect();
    let ranges = super::delta_level::part_ranges(&parts, gap);
    // The parts each range holds (both in blob order).
    let mut next = 0;
    for g in request_groups(&ranges, per_request, FETCH_WINDOW) {
        let group = &ranges[g];
        let held = parts[next..]
            .iter()
            .take_while(|p| p.offset + p.length <= group[group.len() - 1].1)
            .count();
        let batch = &chosen[next..next + held];
        let batch_parts = &parts[next..next + held];
        next += held;
        let fetched = match source.read_ranges(&found.blob.digest, found.blob.size, group) {
            Ok(f) if f.len() == group.len() => f,
            Ok(_) | Err(_) => {
                // The parts cannot be had: their frames come by ranges.
                for (&p, part) in batch.iter().zip(batch_parts) {
                    out.fallbacks.push(Fallback {
                        part: Some(p),
                        frames: frames_of(part),
                        reason: "the delta blob could not be read".into(),
                    });
                }
                continue;
            }
        };
        out.bytes_read += group.iter().map(|(s, e)| e - s).sum::<u64>();
        out.requests += 1;
        // Each part's bytes within the fetched ranges.
        let data: Vec<&[u8]> = batch_parts
            .iter()
            .map(|p| {
                let r = group
                    .iter()
                    .position(|r| r.0 <= p.offset && p.offset + p.length <= r.1)
                    .expect("a range holds each part");
                let start = (p.offset - group[r].0) as usize;
                &fetched[r][start..start + p.length as usize]
            })
            .collect();
        // The old blobs the references need, opened once.
        for part in batch_parts {
            for (l, _) in part.reference.iter().flat_map(Run::frames) {
                if let std::collections::hash_map::Entry::Vacant(e) = old_blobs.entry(l) {
                    let d = &old.layers[l].descriptor;
                    e.insert(old_reader.blob(&d.digest, d.size)?);
                }
            }
        }
        for g in decode_groups(batch_parts, old) {
            let (ps, ds, ns) = (&batch_parts[g.clone()], &data[g.clone()], &batch[g]);
            let decoded: Vec<Decoded> = {
                use rayon::prelude::*;
                ps.par_iter()
                    .zip(ds.par_iter())
                    .zip(ns.par_iter())
                    .map(|((part, bytes), p)| {
                        decode(
                            part,
                            bytes,
                            &old_blobs,
                            old,
                            new,
                            &format!("delta part {p}"),
                        )
                    })
                    .collect()
            };
            for ((&p, part), result) in ns.iter().zip(ps).zip(decoded) {
                match result {
                    Ok(frames) => {
                        for (at, bytes) in frames {
                            out.spill
                                .write_all_at(&bytes, spilled)
                                .map_err(|e| Error::io(scratch, e))?;
                            out.at.insert(at, (spilled, bytes.len() as u64));
                            spilled += bytes.len() as u64;
                        }
                    }
                    Err(reason) => out.fallbacks.push(Fallback {
                        part: Some(p),
                        frames: frames_of(part),
                        reason,
                    }),
                }
            }
        }
    }
    Ok(out)
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
    let text = |e: Error| e.to_string();
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
        read_frame(&old_blobs[&l], f, &mut reference).map_err(text)?;
        if reference.len() as u64 > reference_len {
            return Err(format!(
                "{what}: its reference is longer than OLD's index gives"
            ));
        }
    }
    let content = decompress_part(&reference, bytes, part.content_len, what).map_err(text)?;
    drop(reference);
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
