//! What a client holding one image version must fetch to get the next.
//!
//! [`load`] reads what planning needs from an image — its manifest, config
//! and the chunk index of every seekable layer — and nothing of the layer
//! bodies. [`plan`] is a pure function of two such [`ImageView`]s: for the
//! new image it says, at four levels, what a client holding the old one
//! downloads:
//!
//! - **image**: manifest, config and every layer;
//! - **layer**: manifest, the config and the layer blobs the old image lacks
//!   (a plain registry pull);
//! - **file**: manifest, a new config, and in each new layer the entries
//!   frames (tar headers and small files) the old image lacks and every
//!   chunk of each large file whose content the old image lacks (a per-file
//!   fetcher);
//! - **chunk**: manifest, a new config, the index of each new layer, and the
//!   frames the old image lacks, as byte ranges merged across gaps of at
//!   most [`DeltaOptions::gap`] bytes (the gap bytes are fetched too), at
//!   most [`DeltaOptions::max_requests`] requests. A frame is reused when the
//!   old image has a frame with the same uncompressed content compressed by
//!   the same zstd version and level, so its bytes are identical.
//!
//! Layers without an index (gzip, plain zstd, other tools' images) are
//! fetched whole at every level.

pub mod apply;
pub mod binary;
pub mod tree;

pub use apply::{apply, ApplyOptions, ApplyReport};

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::digest::{ChunkId, Digest};
use crate::error::Result;
use crate::layer::index::{ChunkIndex, FrameKind, IndexLocation};
use crate::oci::read::Image;
use crate::oci::types::Descriptor;
use crate::store::ImageReader;

/// One layer as planning sees it.
#[derive(Clone, Debug)]
pub struct LayerView {
    /// The layer's descriptor.
    pub descriptor: Descriptor,
    /// Its chunk index and where that is in the blob, if it has one.
    pub index: Option<(IndexRange, ChunkIndex)>,
}

/// Where a layer's index is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct IndexRange {
    /// Offset in the blob.
    pub offset: u64,
    /// Length.
    pub length: u64,
}

/// An image as planning sees it.
#[derive(Clone, Debug)]
pub struct ImageView {
    /// The manifest's descriptor.
    pub manifest: Descriptor,
    /// The config's descriptor.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<LayerView>,
}

/// Reads the image's manifest, config and chunk indexes (nothing else of the
/// layers), checking every index against the digest its annotation gives.
pub fn load(reader: &ImageReader, image: &Image) -> Result<ImageView> {
    let layers = image
        .manifest
        .layers
        .iter()
        .map(|d| {
            Ok(LayerView {
                descriptor: d.clone(),
                index: read_index(reader, d)?.map(|(range, index, _)| (range, index)),
            })
        })
        .collect::<Result<_>>()?;
    Ok(ImageView {
        manifest: image.descriptor.clone(),
        config: image.manifest.config.clone(),
        layers,
    })
}

/// The chunk index of the layer `d` of the image `reader` reads, if its
/// annotations say it has one: where it is, decoded (its digest and frames
/// checked), and its bytes, read as one range.
pub fn read_index(
    reader: &ImageReader,
    d: &Descriptor,
) -> Result<Option<(IndexRange, ChunkIndex, Vec<u8>)>> {
    let what = format!("{} layer {}", reader.reference(), d.digest);
    let Some(location) = IndexLocation::from_annotations(&d.annotations, d.size, &what)? else {
        return Ok(None);
    };
    let bytes = reader.read_range(&d.digest, d.size, location.offset, location.length)?;
    let index = location.decode(&bytes, &format!("{what} chunk index"))?;
    let range = IndexRange {
        offset: location.offset,
        length: location.length,
    };
    Ok(Some((range, index, bytes)))
}

/// How byte ranges become requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaOptions {
    /// Ranges of one blob at most this many bytes apart are fetched as one.
    pub gap: u64,
    /// At most this many requests in all (ranges are merged further, the
    /// smallest gaps first, to stay under it); `None`: no limit.
    pub max_requests: Option<usize>,
    /// Ranges of one blob asked for in one request (a multi-range request,
    /// answered as `multipart/byteranges`); 1: one range per request.
    pub ranges_per_request: usize,
}

impl Default for DeltaOptions {
    fn default() -> Self {
        DeltaOptions {
            gap: 4096,
            max_requests: None,
            ranges_per_request: 1,
        }
    }
}

impl DeltaOptions {
    /// An [`crate::Error::Config`] if `max_requests` or
    /// `ranges_per_request` is 0.
    pub fn validate(&self) -> Result<()> {
        if self.max_requests == Some(0) {
            return Err(crate::Error::Config(
                "max_requests must be at least 1".into(),
            ));
        }
        if self.ranges_per_request == 0 {
            return Err(crate::Error::Config(
                "ranges_per_request must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Requests for `ranges` ranges of one blob.
    pub fn requests_for(&self, ranges: usize) -> usize {
        ranges.div_ceil(self.ranges_per_request.max(1))
    }
}

/// Bytes of planned ranges a client holds in memory at a time, at most: a
/// longer range is read in pieces of this size, each its own request, and
/// ranges share a request only up to it.
pub const FETCH_WINDOW: u64 = 32 << 20;

/// `ranges` with each range above `max` bytes cut into pieces of `max`.
pub fn split_ranges(ranges: &[(u64, u64)], max: u64) -> Vec<(u64, u64)> {
    let max = max.max(1);
    let mut out = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges {
        let mut at = start;
        while end - at > max {
            out.push((at, at + max));
            at += max;
        }
        out.push((at, end));
    }
    out
}

/// `ranges` grouped into requests, in order: at most `per_request` ranges
/// and `max_bytes` bytes in each (a range above `max_bytes` alone).
pub fn request_groups(
    ranges: &[(u64, u64)],
    per_request: usize,
    max_bytes: u64,
) -> Vec<std::ops::Range<usize>> {
    bounded_runs(ranges.iter().map(|(s, e)| e - s), per_request, max_bytes)
}

/// Consecutive items, by their `costs`, cut into runs of at most
/// `max_count` items costing at most `max_bytes` together (an item above
/// `max_bytes` alone); the runs in order, as index ranges.
pub fn bounded_runs(
    costs: impl IntoIterator<Item = u64>,
    max_count: usize,
    max_bytes: u64,
) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    let mut used = 0;
    for (i, cost) in costs.into_iter().enumerate() {
        match runs.last_mut() {
            Some(r) if r.len() < max_count.max(1) && used + cost <= max_bytes => {
                r.end = i + 1;
                used += cost;
            }
            _ => {
                runs.push(i..i + 1);
                used = cost;
            }
        }
    }
    runs
}

/// Bytes (and requests) at one level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    /// Bytes downloaded.
    pub bytes: u64,
    /// Requests made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Of `bytes`, those of chunk indexes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_bytes: Option<u64>,
}

/// The levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Levels {
    /// The whole new image.
    pub image: Level,
    /// New blobs.
    pub layer: Level,
    /// New files.
    pub file: Level,
    /// New chunks.
    pub chunk: Level,
    /// A binary delta, and new chunks where it has no part that pays;
    /// finding the delta counted (`None`: no delta is published for the
    /// pair).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<Level>,
}

/// How a blob of the new image is obtained at the chunk level.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum BlobAction {
    /// The old image has it.
    Keep,
    /// Fetched whole (a config, or a layer without an index).
    Fetch,
    /// Rebuilt from old frames and fetched ranges.
    Rebuild {
        /// Where the index is.
        index: IndexRange,
        /// Byte ranges `[start, end)` to fetch, merged, in order.
        ranges: Vec<(u64, u64)>,
        /// Frames taken from the old image.
        reused_frames: usize,
        /// Their compressed bytes.
        reused_bytes: u64,
    },
}

/// One blob of the new image and how it is obtained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobPlan {
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// How.
    #[serde(flatten)]
    pub action: BlobAction,
}

/// What getting the new image costs, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaPlan {
    /// Bytes and requests at each level.
    pub levels: Levels,
    /// Whether the old image already holds everything (config and layers).
    pub same: bool,
    /// The config and each layer, in manifest order (config first).
    pub blobs: Vec<BlobPlan>,
}

/// A frame of the old image that can stand in for a new one.
#[derive(Clone, Copy, Debug)]
pub struct OldFrame {
    /// The old blob holding it.
    pub blob: usize,
    /// Its offset there.
    pub offset: u64,
}

/// Frames of `old` by (content, compressed length, zstd version, level):
/// identical compressed bytes.
pub type FrameKey = (ChunkId, u64, u32, i32);

/// The frames of `old`'s indexed layers, by key.
pub fn old_frames(old: &ImageView) -> HashMap<FrameKey, OldFrame> {
    let mut map = HashMap::new();
    for (b, l) in old.layers.iter().enumerate() {
        if let Some((_, index)) = &l.index {
            for f in &index.frames {
                map.entry((f.id, f.blob_len, index.zstd_version, index.level))
                    .or_insert(OldFrame {
                        blob: b,
                        offset: f.blob_offset,
                    });
            }
        }
    }
    map
}

/// Plans the way from `old` to `new`.
pub fn plan(old: &ImageView, new: &ImageView, options: DeltaOptions) -> DeltaPlan {
    plan_covering(old, new, options, &Coverage::new())
}

/// Frames of NEW (layer, frame: positions in the manifest and the layer's
/// index) that come from elsewhere than the old image and byte ranges: a
/// binary delta.
pub type Coverage = HashSet<(usize, usize)>;

/// [`plan`], but the frames in `covered` are not fetched at the chunk level
/// (they are rebuilt from a binary delta).
pub fn plan_covering(
    old: &ImageView,
    new: &ImageView,
    options: DeltaOptions,
    covered: &Coverage,
) -> DeltaPlan {
    let old_blobs: HashSet<Digest> = old
        .layers
        .iter()
        .map(|l| l.descriptor.digest)
        .chain([old.config.digest])
        .collect();
    let frames = old_frames(old);
    let old_files: HashSet<ChunkId> = old
        .layers
        .iter()
        .filter_map(|l| l.index.as_ref())
        .flat_map(|(_, i)| i.files.iter().map(|f| f.content_id(i)))
        .collect();

    let manifest = new.manifest.size;
    let config_new = !old_blobs.contains(&new.config.digest);
    let config = if config_new { new.config.size } else { 0 };
    // Bytes at each level; requests and index bytes where they apply.
    let mut image = manifest + new.config.size;
    let (mut layer, mut file_bytes, mut chunk) =
        (manifest + config, manifest + config, manifest + config);
    let mut layer_requests = 1 + u64::from(config_new);
    let mut chunk_requests = layer_requests;
    let mut index_bytes = 0;
    let mut blobs = vec![BlobPlan {
        digest: new.config.digest,
        size: new.config.size,
        action: if config_new {
            BlobAction::Fetch
        } else {
            BlobAction::Keep
        },
    }];
    // Per rebuilt blob: its fetch ranges before request-limit merging.
    let mut rebuilt: Vec<(usize, Vec<(u64, u64)>)> = Vec::new();
    for (at, l) in new.layers.iter().enumerate() {
        let d = &l.descriptor;
        image += d.size;
        if old_blobs.contains(&d.digest) {
            blobs.push(BlobPlan {
                digest: d.digest,
                size: d.size,
                action: BlobAction::Keep,
            });
            continue;
        }
        layer += d.size;
        layer_requests += 1;
        let Some((range, index)) = &l.index else {
            file_bytes += d.size;
            chunk += d.size;
            chunk_requests += 1;
            blobs.push(BlobPlan {
                digest: d.digest,
                size: d.size,
                action: BlobAction::Fetch,
            });
            continue;
        };
        let key =
            |f: &crate::layer::index::Frame| (f.id, f.blob_len, index.zstd_version, index.level);
        // File level: entries frames the old image lacks, large files whose
        // content it lacks (all their chunks).
        file_bytes += range.length;
        for f in &index.frames {
            if f.kind != FrameKind::Chunk && !frames.contains_key(&key(f)) {
                file_bytes += f.blob_len;
            }
        }
        for file in index.files.iter().filter(|f| f.frame_count > 0) {
            if !old_files.contains(&file.content_id(index)) {
                file_bytes += index.frames[file.first_frame..][..file.frame_count]
                    .iter()
                    .map(|f| f.blob_len)
                    .sum::<u64>();
            }
        }
        // Chunk level: every frame the old image lacks.
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let (mut reused_frames, mut reused_bytes) = (0, 0);
        for (i, f) in index.frames.iter().enumerate() {
            if frames.contains_key(&key(f)) {
                reused_frames += 1;
                reused_bytes += f.blob_len;
                continue;
            }
            if covered.contains(&(at, i)) {
                continue;
            }
            let (start, end) = (f.blob_offset, f.blob_offset + f.blob_len);
            match ranges.last_mut() {
                Some(last) if start - last.1 <= options.gap => last.1 = end,
                _ => ranges.push((start, end)),
            }
        }
        rebuilt.push((blobs.len(), ranges.clone()));
        blobs.push(BlobPlan {
            digest: d.digest,
            size: d.size,
            action: BlobAction::Rebuild {
                index: *range,
                ranges,
                reused_frames,
                reused_bytes,
            },
        });
        index_bytes += range.length;
        chunk += range.length;
        chunk_requests += 1;
    }
    // The request limit: merge the smallest gaps first.
    let fixed = chunk_requests as usize;
    if let Some(limit) = options.max_requests {
        let count = |rebuilt: &[(usize, Vec<(u64, u64)>)]| -> usize {
            rebuilt
                .iter()
                .map(|(_, r)| options.requests_for(r.len()))
                .sum()
        };
        while fixed + count(&rebuilt) > limit {
            let smallest = rebuilt
                .iter()
                .enumerate()
                .flat_map(|(b, (_, r))| {
                    r.windows(2)
                        .enumerate()
                        .map(move |(i, w)| (w[1].0 - w[0].1, b, i))
                })
                .min();
            let Some((_, b, i)) = smallest else { break };
            let r = &mut rebuilt[b].1;
            r[i].1 = r[i + 1].1;
            r.remove(i + 1);
        }
        for (at, merged) in &rebuilt {
            if let BlobAction::Rebuild { ranges, .. } = &mut blobs[*at].action {
                *ranges = merged.clone();
            }
        }
    }
    for (_, r) in &rebuilt {
        chunk += r.iter().map(|(s, e)| e - s).sum::<u64>();
        chunk_requests += options.requests_for(r.len()) as u64;
    }
    let levels = Levels {
        image: Level {
            bytes: image,
            ..Level::default()
        },
        layer: Level {
            bytes: layer,
            requests: Some(layer_requests),
            index_bytes: None,
        },
        file: Level {
            bytes: file_bytes,
            ..Level::default()
        },
        chunk: Level {
            bytes: chunk,
            requests: Some(chunk_requests),
            index_bytes: Some(index_bytes),
        },
        delta: None,
    };
    let same = blobs.iter().all(|b| b.action == BlobAction::Keep);
    DeltaPlan {
        levels,
        same,
        blobs,
    }
}

#[cfg(test)]
mod tests {
    use super::{request_groups, split_ranges, DeltaOptions};

    #[test]
    fn long_ranges_are_cut_into_pieces_and_requests_bounded_in_bytes() {
        assert_eq!(
            split_ranges(&[(0, 10), (20, 45)], 10),
            vec![(0, 10), (20, 30), (30, 40), (40, 45)]
        );
        assert_eq!(split_ranges(&[(5, 6)], 0), vec![(5, 6)]);
        let r = [(0, 4), (10, 14), (20, 24), (30, 50), (60, 61)];
        // By count alone.
        assert_eq!(request_groups(&r, 2, u64::MAX), vec![0..2, 2..4, 4..5]);
        // By bytes: the 20-byte range alone, above the bound.
        assert_eq!(request_groups(&r, 10, 8), vec![0..2, 2..3, 3..4, 4..5]);
        assert!(request_groups(&[], 3, 8).is_empty());
    }

    #[test]
    fn ranges_per_request_divides_rounding_up() {
        let per = |n| DeltaOptions {
            ranges_per_request: n,
            ..DeltaOptions::default()
        };
        assert_eq!(DeltaOptions::default().requests_for(7), 7);
        assert_eq!(per(8).requests_for(0), 0);
        assert_eq!(per(8).requests_for(8), 1);
        assert_eq!(per(8).requests_for(9), 2);
        assert_eq!(per(0).requests_for(3), 3);
    }
}
