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
pub mod by_owner;
pub mod delta_level;
pub mod rebuild;
pub mod requests;
pub mod tree;

pub use apply::{apply, ApplyOptions, ApplyReport};
pub use requests::RequestOptions;

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use serde::Serialize;

use crate::digest::{ChunkId, Digest};
use crate::layer::index::{ChunkIndex, FrameKey, FrameKind};
use crate::store::view::{FrameAt, ImageView, IndexRange, LayerView};

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
        /// Byte ranges to fetch, merged, in order (in JSON `[start, end]`
        /// pairs).
        #[serde(serialize_with = "requests::serialize_pairs")]
        ranges: Vec<Range<u64>>,
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
    let have = OldContent::of(old);
    let config_new = !have.blobs.contains(&new.config.digest);
    let mut tally = LevelTally::start(new, config_new);
    let mut blobs = vec![BlobPlan {
        digest: new.config.digest,
        size: new.config.size,
        action: if config_new {
            BlobAction::Fetch
        } else {
            BlobAction::Keep
        },
    }];
    for (at, l) in new.layers.iter().enumerate() {
        let in_delta = |frame: usize| covered.contains(&(at, frame));
        blobs.push(BlobPlan {
            digest: l.descriptor.digest,
            size: l.descriptor.size,
            action: tally.layer(l, &have, &in_delta, options.gap),
        });
    }
    let mut rebuilt: Vec<&mut Vec<Range<u64>>> = blobs
        .iter_mut()
        .filter_map(|b| match &mut b.action {
            BlobAction::Rebuild { ranges, .. } => Some(ranges),
            _ => None,
        })
        .collect();
    if let Some(limit) = options.max_requests {
        merge_to_request_limit(&mut rebuilt, tally.chunk_requests as usize, limit, options);
    }
    for r in &rebuilt {
        tally.chunk += requests::total_len(r);
        tally.chunk_requests += options.requests_for(r.len()) as u64;
    }
    let same = blobs.iter().all(|b| b.action == BlobAction::Keep);
    UpdatePlan {
        levels: tally.levels(),
        same,
        blobs,
    }
}

/// What of an old image a plan can reuse: its blobs, its frames by key and
/// the contents of its files.
struct OldContent {
    blobs: HashSet<Digest>,
    frames: HashMap<FrameKey, FrameAt>,
    files: HashSet<ChunkId>,
}

impl OldContent {
    fn of(old: &ImageView) -> Self {
        OldContent {
            blobs: old
                .layers
                .iter()
                .map(|l| l.descriptor.digest)
                .chain([old.config.digest])
                .collect(),
            frames: old.frames_by_key(),
            files: old
                .layers
                .iter()
                .filter_map(|l| l.index.as_ref())
                .flat_map(|(_, i)| i.files.iter().map(|f| f.content_id(i)))
                .collect(),
        }
    }

    /// The file level of a new layer's body: entries frames the old image
    /// lacks, and large files whose content it lacks (all their chunks).
    fn missing_file_bytes(&self, index: &ChunkIndex) -> u64 {
        let entries: u64 = index
            .frames
            .iter()
            .filter(|f| f.kind != FrameKind::Chunk && !self.frames.contains_key(&index.key(f)))
            .map(|f| f.blob_len)
            .sum();
        let files: u64 = index
            .files
            .iter()
            .filter(|f| f.frame_count > 0 && !self.files.contains(&f.content_id(index)))
            .flat_map(|file| &index.frames[file.first_frame..][..file.frame_count])
            .map(|f| f.blob_len)
            .sum();
        entries + files
    }

    /// The chunk level of a new layer: the frames the old image lacks and
    /// `in_delta` does not cover, as byte ranges merged across gaps of at
    /// most `gap` bytes.
    fn chunk_action(
        &self,
        range: IndexRange,
        index: &ChunkIndex,
        in_delta: &dyn Fn(usize) -> bool,
        gap: u64,
    ) -> BlobAction {
        let mut ranges: Vec<Range<u64>> = Vec::new();
        let (mut reused_frames, mut reused_bytes) = (0, 0);
        for (i, f) in index.frames.iter().enumerate() {
            if self.frames.contains_key(&index.key(f)) {
                reused_frames += 1;
                reused_bytes += f.blob_len;
                continue;
            }
            if in_delta(i) {
                continue;
            }
            let frame = f.blob_offset..f.blob_offset + f.blob_len;
            match ranges.last_mut() {
                Some(last) if frame.start - last.end <= gap => last.end = frame.end,
                _ => ranges.push(frame),
            }
        }
        BlobAction::Rebuild {
            index: range,
            ranges,
            reused_frames,
            reused_bytes,
        }
    }
}

/// Bytes and requests at each level, added up layer by layer.
struct LevelTally {
    image: u64,
    layer: u64,
    file: u64,
    chunk: u64,
    layer_requests: u64,
    chunk_requests: u64,
    index_bytes: u64,
}

impl LevelTally {
    /// The manifest, and the config (at all but the image level, when the
    /// old image lacks it).
    fn start(new: &ImageView, config_new: bool) -> Self {
        let manifest = new.manifest.size;
        let config = if config_new { new.config.size } else { 0 };
        let requests = 1 + u64::from(config_new);
        LevelTally {
            image: manifest + new.config.size,
            layer: manifest + config,
            file: manifest + config,
            chunk: manifest + config,
            layer_requests: requests,
            chunk_requests: requests,
            index_bytes: 0,
        }
    }

    /// Counts the new layer `l` and says how the chunk level obtains it
    /// (its ranges not counted yet: the request limit may merge them).
    fn layer(
        &mut self,
        l: &LayerView,
        have: &OldContent,
        in_delta: &dyn Fn(usize) -> bool,
        gap: u64,
    ) -> BlobAction {
        let d = &l.descriptor;
        self.image += d.size;
        if have.blobs.contains(&d.digest) {
            return BlobAction::Keep;
        }
        self.layer += d.size;
        self.layer_requests += 1;
        let Some((range, index)) = &l.index else {
            self.file += d.size;
            self.chunk += d.size;
            self.chunk_requests += 1;
            return BlobAction::Fetch;
        };
        self.file += range.length + have.missing_file_bytes(index);
        self.index_bytes += range.length;
        self.chunk += range.length;
        self.chunk_requests += 1;
        have.chunk_action(*range, index, in_delta, gap)
    }

    fn levels(&self) -> Levels {
        Levels {
            image: Level {
                bytes: self.image,
                ..Level::default()
            },
            layer: Level {
                bytes: self.layer,
                requests: Some(self.layer_requests),
                index_bytes: None,
            },
            file: Level {
                bytes: self.file,
                ..Level::default()
            },
            chunk: Level {
                bytes: self.chunk,
                requests: Some(self.chunk_requests),
                index_bytes: Some(self.index_bytes),
            },
            delta: None,
        }
    }
}

/// Merges the ranges of the rebuilt blobs, the smallest gap first (the
/// first of equal ones), until their requests and `fixed` ones are at most
/// `limit`.
fn merge_to_request_limit(
    rebuilt: &mut [&mut Vec<Range<u64>>],
    fixed: usize,
    limit: usize,
    options: RequestOptions,
) {
    let count = |rebuilt: &[&mut Vec<Range<u64>>]| -> usize {
        rebuilt.iter().map(|r| options.requests_for(r.len())).sum()
    };
    while fixed + count(rebuilt) > limit {
        let smallest = rebuilt
            .iter()
            .enumerate()
            .flat_map(|(b, r)| {
                r.windows(2)
                    .enumerate()
                    .map(move |(i, w)| (w[1].start - w[0].end, b, i))
            })
            .min();
        let Some((_, b, i)) = smallest else { break };
        let r = &mut *rebuilt[b];
        r[i].end = r[i + 1].end;
        r.remove(i + 1);
    }
}
