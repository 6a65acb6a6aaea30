//! Who each byte of a plan is for: the bytes of the layer, chunk and delta
//! levels split among the owners of NEW's files (its packages), so that a
//! report can say what each package update costs a client.
//!
//! Every byte a level counts goes to exactly one [`Owner`], so the owners'
//! bytes add up to the level's total:
//!
//! - a frame's compressed bytes go to the files it holds in proportion to
//!   their uncompressed tar bytes (a small file: its content and a 512-byte
//!   header; a chunk: its file; a large file's header: the entries frame
//!   that ends with it); what else a frame holds (headers of directories,
//!   links, the trailer) is [`Owner::Metadata`];
//! - a byte range goes to the frames it overlaps (gap bytes too: they are
//!   fetched), a whole layer to all its frames, a layer without an index to
//!   [`Owner::NotIndexed`];
//! - a delta part goes to the frames it rebuilds in proportion to their
//!   uncompressed length;
//! - manifests, configs, chunk indexes and finding a delta are
//!   [`Owner::Metadata`].
//!
//! Whole bytes are split by the largest-remainder method: each share is
//! rounded down and the bytes left over go one each to the largest
//! remainders (the first of equal ones), so nothing is lost to rounding.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::delta_level::index_saving;
use super::{BlobAction, BlobPlan, UpdatePlan};
use crate::delta::find::FoundDelta;
use crate::delta::format::{Part, Run};
use crate::layer::index::{ChunkIndex, FrameKind};
use crate::store::view::ImageView;

/// Whom bytes are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// Manifests, configs, chunk indexes, tar headers of entries without
    /// content, finding a delta.
    Metadata,
    /// Files no package owns.
    Unowned,
    /// Layers without a chunk index: whose files they hold is not known
    /// without reading them.
    NotIndexed,
    /// The package of this number (the caller's numbering).
    Package(usize),
}

/// Bytes by owner at one level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shares(HashMap<Owner, u64>);

impl Shares {
    /// Adds `bytes` for `owner`.
    pub fn add(&mut self, owner: Owner, bytes: u64) {
        if bytes > 0 {
            *self.0.entry(owner).or_default() += bytes;
        }
    }

    /// Takes `bytes` back from `owner` (at most what it has).
    fn take(&mut self, owner: Owner, bytes: u64) {
        if let Some(b) = self.0.get_mut(&owner) {
            *b = b.saturating_sub(bytes);
        }
    }

    /// The bytes of `owner`.
    pub fn get(&self, owner: Owner) -> u64 {
        self.0.get(&owner).copied().unwrap_or(0)
    }

    /// Every owner's bytes.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// The layer, chunk and delta levels of a plan, by owner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LevelShares {
    /// The layer level.
    pub layer: Shares,
    /// The chunk level.
    pub chunk: Shares,
    /// The delta level, when NEW lists a delta from OLD.
    pub delta: Option<Shares>,
}

/// `total` split in proportion to `weights` by the largest-remainder
/// method: the shares add up to `total` (all of it to the first weight when
/// they are all 0).
pub fn apportion(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if weights.is_empty() {
        return Vec::new();
    }
    if sum == 0 {
        let mut out = vec![0; weights.len()];
        out[0] = total;
        return out;
    }
    let mut out = Vec::with_capacity(weights.len());
    let mut remainders = Vec::new();
    let mut given = 0u64;
    for (i, &w) in weights.iter().enumerate() {
        let scaled = u128::from(total) * u128::from(w);
        let share = (scaled / sum) as u64;
        given += share;
        out.push(share);
        remainders.push((scaled % sum, i));
    }
    let left = (total - given) as usize;
    if left > 0 {
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in &remainders[..left] {
            out[i] += 1;
        }
    }
    out
}

/// Splits `bytes` over `weights` (owners and their weights) into `into`.
fn split_into(into: &mut Shares, bytes: u64, weights: &[(Owner, u64)]) {
    if weights.is_empty() {
        into.add(Owner::Metadata, bytes);
        return;
    }
    let w: Vec<u64> = weights.iter().map(|&(_, w)| w).collect();
    for (&(owner, _), share) in weights.iter().zip(apportion(bytes, &w)) {
        into.add(owner, share);
    }
}

/// The size of a tar header, what a file's entry holds besides its content.
const HEADER: u64 = 512;

/// For every frame of a layer, whom its uncompressed bytes are for.
type FrameWeights = Vec<Vec<(Owner, u64)>>;

fn frame_weights(index: &ChunkIndex, owner: &dyn Fn(&Path) -> Owner) -> FrameWeights {
    let mut weights: FrameWeights = vec![Vec::new(); index.frames.len()];
    for file in &index.files {
        let o = owner(&file.path);
        if file.frame_count == 0 {
            if let Some(w) = weights.get_mut(file.first_frame) {
                w.push((o, file.size + HEADER));
            }
            continue;
        }
        let chunks = file.first_frame..file.first_frame + file.frame_count;
        for f in chunks.clone() {
            if let (Some(w), Some(frame)) = (weights.get_mut(f), index.frames.get(f)) {
                w.push((o, frame.tar_len));
            }
        }
        // Its header ends the entries frame before its first chunk.
        let before = chunks.start.checked_sub(1);
        let entries_before = before.filter(|&b| {
            index
                .frames
                .get(b)
                .is_some_and(|f| f.kind == FrameKind::Entries)
        });
        if let Some(b) = entries_before {
            weights[b].push((o, HEADER));
        }
    }
    for (w, frame) in weights.iter_mut().zip(&index.frames) {
        merge_owners(w);
        let held: u64 = w.iter().map(|&(_, b)| b).sum();
        if frame.tar_len > held {
            w.push((Owner::Metadata, frame.tar_len - held));
        }
    }
    weights
}

/// Sums the weights of each owner into one entry, in owner order.
fn merge_owners(w: &mut Vec<(Owner, u64)>) {
    if w.len() < 2 {
        return;
    }
    w.sort_by_key(|&(o, _)| o);
    let mut merged: Vec<(Owner, u64)> = Vec::with_capacity(w.len());
    for &(o, b) in w.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == o => last.1 += b,
            _ => merged.push((o, b)),
        }
    }
    *w = merged;
}

/// NEW's layers with their frames' weights, what the levels are split by.
struct NewLayers<'a> {
    new: &'a ImageView,
    weights: Vec<Option<FrameWeights>>,
}

impl<'a> NewLayers<'a> {
    fn of(new: &'a ImageView, owner: &dyn Fn(&Path) -> Owner) -> Self {
        let weights = new
            .layers
            .iter()
            .map(|l| l.index.as_ref().map(|(_, i)| frame_weights(i, owner)))
            .collect();
        NewLayers { new, weights }
    }

    /// A whole layer blob: every frame, the rest (its index) metadata.
    fn whole(&self, into: &mut Shares, layer: usize) {
        let l = &self.new.layers[layer];
        let (Some((_, index)), Some(weights)) = (&l.index, &self.weights[layer]) else {
            into.add(Owner::NotIndexed, l.descriptor.size);
            return;
        };
        let mut framed = 0;
        for (f, w) in index.frames.iter().zip(weights) {
            split_into(into, f.blob_len, w);
            framed += f.blob_len;
        }
        into.add(Owner::Metadata, l.descriptor.size.saturating_sub(framed));
    }

    /// A byte range of a layer blob: the frames it overlaps.
    fn range(&self, into: &mut Shares, layer: usize, range: &Range<u64>) {
        let (Some((_, index)), Some(weights)) =
            (&self.new.layers[layer].index, &self.weights[layer])
        else {
            into.add(Owner::NotIndexed, range.end - range.start);
            return;
        };
        let first = index
            .frames
            .partition_point(|f| f.blob_offset + f.blob_len <= range.start);
        let mut framed = 0;
        for (f, w) in index.frames[first..].iter().zip(&weights[first..]) {
            if f.blob_offset >= range.end {
                break;
            }
            let overlap =
                range.end.min(f.blob_offset + f.blob_len) - range.start.max(f.blob_offset);
            split_into(into, overlap, w);
            framed += overlap;
        }
        into.add(Owner::Metadata, (range.end - range.start) - framed);
    }

    /// `bytes` of a delta part: the frames it rebuilds, in proportion to
    /// their uncompressed length.
    fn part(&self, into: &mut Shares, part: &Part, bytes: u64) {
        let targets: Vec<(usize, usize)> = part.targets.iter().flat_map(Run::frames).collect();
        let frame = |(l, f): (usize, usize)| {
            let (_, index) = self.new.layers.get(l)?.index.as_ref()?;
            let weights = self.weights[l].as_ref()?;
            Some((index.frames.get(f)?.tar_len, weights.get(f)?))
        };
        let found: Option<Vec<_>> = targets.iter().map(|&at| frame(at)).collect();
        let Some(found) = found.filter(|f| !f.is_empty()) else {
            into.add(Owner::Metadata, bytes);
            return;
        };
        let lens: Vec<u64> = found.iter().map(|&(len, _)| len).collect();
        for ((_, w), share) in found.iter().zip(apportion(bytes, &lens)) {
            split_into(into, share, w);
        }
    }

    /// The chunk level of `blobs` (a plan's config and layers) and NEW's
    /// manifest.
    fn chunk_level(&self, blobs: &[BlobPlan]) -> Shares {
        let mut s = Shares::default();
        s.add(Owner::Metadata, self.new.manifest.size);
        for (at, b) in blobs.iter().enumerate() {
            match (&b.action, at.checked_sub(1)) {
                (BlobAction::Keep, _) => {}
                (BlobAction::Fetch, None) => s.add(Owner::Metadata, b.size),
                (BlobAction::Fetch, Some(layer)) => self.whole(&mut s, layer),
                (BlobAction::Rebuild { index, ranges, .. }, layer) => {
                    s.add(Owner::Metadata, index.length);
                    for r in ranges {
                        match layer {
                            Some(layer) => self.range(&mut s, layer, r),
                            None => s.add(Owner::Metadata, r.end - r.start),
                        }
                    }
                }
            }
        }
        s
    }

    /// The layer level of `blobs`: NEW's manifest and every blob OLD lacks.
    fn layer_level(&self, blobs: &[BlobPlan]) -> Shares {
        let mut s = Shares::default();
        s.add(Owner::Metadata, self.new.manifest.size);
        for (at, b) in blobs.iter().enumerate() {
            match (&b.action, at.checked_sub(1)) {
                (BlobAction::Keep, _) => {}
                (_, None) => s.add(Owner::Metadata, b.size),
                (_, Some(layer)) => self.whole(&mut s, layer),
            }
        }
        s
    }
}

/// A binary delta as a plan used it.
#[derive(Clone, Copy, Debug)]
pub struct UsedDelta<'a> {
    /// The delta NEW lists for OLD.
    pub found: &'a FoundDelta,
    /// When it pays: the delta level's blobs (frames the parts rebuild are
    /// not fetched) and the byte ranges of the delta blob fetched.
    pub taken: Option<(&'a [BlobPlan], &'a [Range<u64>])>,
}

/// The layer, chunk and delta levels of the plan from `old` to `new`, by
/// owner: `chunk_plan` is [`super::plan`]'s (without a delta), `delta` how
/// the delta level used the delta NEW lists, if any; `owner` names the
/// owner of each path of NEW's layers (relative, as the chunk index
/// records it).
///
/// Each level's shares add up to the level's bytes in the plan.
pub fn split_levels(
    old: &ImageView,
    new: &ImageView,
    chunk_plan: &UpdatePlan,
    delta: Option<UsedDelta<'_>>,
    owner: &dyn Fn(&Path) -> Owner,
) -> LevelShares {
    let layers = NewLayers::of(new, owner);
    let layer = layers.layer_level(&chunk_plan.blobs);
    let chunk = layers.chunk_level(&chunk_plan.blobs);
    let delta = delta.map(|used| {
        let (saving, _) = index_saving(used.found, old, chunk_plan);
        let mut s = match used.taken {
            None => chunk.clone(),
            Some((blobs, ranges)) => {
                let mut s = layers.chunk_level(blobs);
                for r in ranges {
                    delta_range(&layers, &mut s, &used.found.lookup.parts, r);
                }
                s
            }
        };
        s.add(Owner::Metadata, used.found.bytes_read);
        s.take(Owner::Metadata, saving);
        s
    });
    LevelShares {
        layer,
        chunk,
        delta,
    }
}

/// A byte range of the delta blob: the parts it overlaps (parts not taken
/// but fetched in a gap too), the rest metadata.
fn delta_range(layers: &NewLayers<'_>, into: &mut Shares, parts: &[Part], range: &Range<u64>) {
    let first = parts.partition_point(|p| p.offset + p.length <= range.start);
    let mut covered = 0;
    for p in &parts[first..] {
        if p.offset >= range.end {
            break;
        }
        let overlap = range.end.min(p.offset + p.length) - range.start.max(p.offset);
        layers.part(into, p, overlap);
        covered += overlap;
    }
    into.add(Owner::Metadata, (range.end - range.start) - covered);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_gives_every_byte_once() {
        assert_eq!(apportion(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(apportion(10, &[0, 0]), vec![10, 0]);
        assert_eq!(apportion(7, &[]), Vec::<u64>::new());
        assert_eq!(apportion(100, &[3, 1]), vec![75, 25]);
        // The largest remainders get the bytes left over.
        assert_eq!(apportion(5, &[1, 2, 2]), vec![1, 2, 2]);
        assert_eq!(apportion(3, &[10, 45, 45]), vec![0, 2, 1]);
        assert_eq!(
            apportion(u64::MAX, &[u64::MAX, 1]).iter().sum::<u64>(),
            u64::MAX
        );
    }

    proptest::proptest! {
        #[test]
        fn apportion_sums_to_total(total in 0u64..1 << 40, weights in proptest::collection::vec(0u64..1 << 40, 1..20)) {
            let shares = apportion(total, &weights);
            proptest::prop_assert_eq!(shares.iter().sum::<u64>(), total);
            let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
            for (s, w) in shares.iter().zip(&weights) {
                if let Some(exact) = (u128::from(total) * u128::from(*w)).checked_div(sum) {
                    proptest::prop_assert!(u128::from(*s) == exact || u128::from(*s) == exact + 1);
                }
            }
        }
    }
}
