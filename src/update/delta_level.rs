//! Which parts of a delta a client takes, and what the update costs with
//! them: the **delta** level of a plan.
//!
//! A part is taken when every frame it names exists (its reference in OLD,
//! its targets in NEW, with chunk indexes), every target is a frame the
//! chunk level would fetch and this client can compress again to the same
//! bytes (NEW's index records this zstd version), no earlier part rebuilds
//! it, its length matches its targets, and it is smaller than their
//! compressed frames. Everything else is fetched by ranges as without a
//! delta.

use std::ops::Range;

use super::{plan, plan_covering, Coverage, Level, RequestOptions, UpdatePlan};
use crate::delta::find::FoundDelta;
use crate::delta::format::{DeltaLookup, IndexPart, Part, Run};
use crate::layer::index::Frame;
use crate::store::view::ImageView;

/// The parts a client takes.
#[derive(Clone, Debug, Default)]
pub struct DeltaChoice {
    /// Positions of the parts taken in the lookup, in blob order.
    pub parts: Vec<usize>,
    /// The NEW frames they rebuild.
    pub covered: Coverage,
}

fn frame(view: &ImageView, (l, i): (usize, usize)) -> Option<(&Frame, u32)> {
    let (_, index) = view.layers.get(l)?.index.as_ref()?;
    Some((index.frames.get(i)?, index.zstd_version))
}

/// The parts of `found` worth taking from `old` to `new`.
pub fn choose(found: &FoundDelta, old: &ImageView, new: &ImageView) -> DeltaChoice {
    let ours = crate::layer::zstd_version();
    let old_layers: std::collections::HashSet<_> =
        old.layers.iter().map(|l| l.descriptor.digest).collect();
    let known = old.frames_by_key();
    let needed = |(l, i): (usize, usize)| -> Option<&Frame> {
        let layer = new.layers.get(l)?;
        if old_layers.contains(&layer.descriptor.digest) {
            return None;
        }
        let (_, index) = layer.index.as_ref()?;
        let f = index.frames.get(i)?;
        let have = known.contains_key(&index.key(f));
        (index.zstd_version == ours && !have).then_some(f)
    };
    let mut choice = DeltaChoice::default();
    'parts: for (p, part) in found.lookup.parts.iter().enumerate() {
        if !part
            .reference
            .iter()
            .flat_map(Run::frames)
            .all(|at| frame(old, at).is_some())
        {
            continue;
        }
        let (mut content, mut cost) = (0u64, 0u64);
        for at in part.targets.iter().flat_map(Run::frames) {
            match needed(at) {
                Some(f) if !choice.covered.contains(&at) => {
                    content += f.tar_len;
                    cost += f.blob_len;
                }
                _ => continue 'parts,
            }
        }
        if content != part.content_len || part.length >= cost {
            continue;
        }
        choice
            .covered
            .extend(part.targets.iter().flat_map(Run::frames));
        choice.parts.push(p);
    }
    choice
}

/// The most bytes of the delta blob one range covers when parts are merged
/// (a larger part is a range of its own): what a client holds of the blob
/// at a time.
pub const MAX_RANGE: u64 = 8 << 20;

/// The index part of `lookup` a client takes for NEW's layer `layer`
/// (whose index frame is `index_len` bytes): one whose OLD layer has an
/// index, smaller than the frame it replaces.
pub fn usable_index_part<'a>(
    lookup: &'a DeltaLookup,
    old: &ImageView,
    layer: usize,
    index_len: u64,
) -> Option<&'a IndexPart> {
    let part = lookup.index_part(layer)?;
    let old_has_index = old
        .layers
        .get(part.old_layer as usize)
        .is_some_and(|l| l.index.is_some());
    (old_has_index
        && part.length < index_len
        && part.content_len <= crate::delta::format::MAX_PART_BYTES)
        .then_some(part)
}

/// What the index parts save at the chunk level of `plan`: for each layer
/// it rebuilds, its index frame less the index part taken instead; and the
/// bytes of the index frames so replaced.
pub(crate) fn index_saving(found: &FoundDelta, old: &ImageView, plan: &UpdatePlan) -> (u64, u64) {
    plan.blobs[1..]
        .iter()
        .enumerate()
        .filter_map(|(l, b)| match &b.action {
            super::BlobAction::Rebuild { index, .. } => {
                let part = usable_index_part(&found.lookup, old, l, index.length)?;
                Some((index.length - part.length, index.length))
            }
            _ => None,
        })
        .fold((0, 0), |(s, r), (a, b)| (s + a, r + b))
}

/// The byte ranges of the delta blob that hold `parts` (in blob order),
/// merged across gaps of at most `gap` bytes up to [`MAX_RANGE`] bytes.
pub fn part_ranges(parts: &[&Part], gap: u64) -> Vec<Range<u64>> {
    let mut ranges: Vec<Range<u64>> = Vec::new();
    for p in parts {
        let (start, end) = (p.offset, p.offset + p.length);
        match ranges.last_mut() {
            Some(last)
                if start >= last.end
                    && start - last.end <= gap
                    && end - last.start <= MAX_RANGE =>
            {
                last.end = end
            }
            _ => ranges.push(start..end),
        }
    }
    ranges
}

/// The plan from `old` to `new` with the delta `found`: the chunk plan's
/// levels, and the delta level (finding the delta, its index parts instead
/// of index frames, its parts taken, and ranges for the rest); the blobs
/// are those of the delta level, with the
/// parts taken. When the delta does not pay, the chunk plan, its delta
/// level the same as the chunk level plus what finding the delta cost.
pub fn plan_with_delta(
    old: &ImageView,
    new: &ImageView,
    options: RequestOptions,
    found: &FoundDelta,
) -> (UpdatePlan, DeltaChoice) {
    let chunk_plan = plan(old, new, options);
    let choice = choose(found, old, new);
    let mut with = plan_covering(old, new, options, &choice.covered);
    let parts: Vec<&Part> = choice
        .parts
        .iter()
        .map(|&p| &found.lookup.parts[p])
        .collect();
    let ranges = part_ranges(&parts, options.gap);
    let (saving, index_parts_replaced) = index_saving(found, old, &chunk_plan);
    let delta = Level {
        bytes: with.levels.chunk.bytes + found.bytes_read + super::requests::total_len(&ranges)
            - saving,
        requests: Some(
            with.levels.chunk.requests.unwrap_or(0)
                + found.requests
                + options.requests_for(ranges.len()) as u64,
        ),
        // The index frames the index parts stand in for are not fetched.
        index_bytes: with
            .levels
            .chunk
            .index_bytes
            .map(|i| i - index_parts_replaced),
    };
    if choice.parts.is_empty() || delta.bytes >= chunk_plan.levels.chunk.bytes {
        let mut p = chunk_plan;
        let chunk = p.levels.chunk;
        p.levels.delta = Some(Level {
            bytes: chunk.bytes + found.bytes_read - saving,
            requests: Some(chunk.requests.unwrap_or(0) + found.requests),
            index_bytes: chunk.index_bytes.map(|i| i - index_parts_replaced),
        });
        return (p, DeltaChoice::default());
    }
    with.levels = chunk_plan.levels;
    with.levels.delta = Some(delta);
    (with, choice)
}
