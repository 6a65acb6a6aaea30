//! What a client holding one image version must fetch to get the next.
//!
//! [`ImageView::load`] reads what planning needs from an image — its
//! manifest, config and the chunk index of every seekable layer — and
//! nothing of the layer bodies. [`plan`] is a pure function of two such
//! [`ImageView`]s: for the new image it says, at four levels, what a client
//! holding the old one downloads:
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
//!   most [`RequestOptions::gap`] bytes (the gap bytes are fetched too), at
//!   most [`RequestOptions::max_requests`] requests. A frame is reused when the
//!   old image has a frame with the same uncompressed content compressed by
//!   the same zstd version and level, so its bytes are identical.
//!
//! Layers without an index (gzip, plain zstd, other tools' images) are
//! fetched whole at every level.
//!
//! With a binary delta published beside the new image, [`delta_level`]
//! takes the parts that pay (the **delta** level) and [`rebuild`] turns
//! them into the new image's frames; [`apply()`] rebuilds the new image from
//! the old one, the ranges and the parts. [`tree`] plans between two
//! directory trees, chunked on the fly.

pub mod apply;
pub mod delta_level;
pub mod rebuild;
pub mod requests;
pub mod tree;

pub use apply::{apply, ApplyOptions, ApplyReport};
pub use requests::RequestOptions;

use std::collections::HashSet;

use serde::Serialize;

use crate::digest::{ChunkId, Digest};
use crate::layer::index::FrameKind;
use crate::store::view::{ImageView, IndexRange};

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
pub struct UpdatePlan {
    /// Bytes and requests at each level.
    pub levels: Levels,
    /// Whether the old image already holds everything (config and layers).
    pub same: bool,
    /// The config and each layer, in manifest order (config first).
    pub blobs: Vec<BlobPlan>,
}

/// Plans the way from `old` to `new`.
pub fn plan(old: &ImageView, new: &ImageView, options: RequestOptions) -> UpdatePlan {
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
    options: RequestOptions,
    covered: &Coverage,
) -> UpdatePlan {
    let old_blobs: HashSet<Digest> = old
        .layers
        .iter()
        .map(|l| l.descriptor.digest)
        .chain([old.config.digest])
        .collect();
    let frames = old.frames_by_key();
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
        // File level: entries frames the old image lacks, large files whose
        // content it lacks (all their chunks).
        file_bytes += range.length;
        for f in &index.frames {
            if f.kind != FrameKind::Chunk && !frames.contains_key(&index.key(f)) {
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
            if frames.contains_key(&index.key(f)) {
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
    UpdatePlan {
        levels,
        same,
        blobs,
    }
}
