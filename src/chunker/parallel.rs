//! One large input split across threads, with exact resynchronisation.
//!
//! Each thread chunks its own segment as if a chunk started at the segment's
//! first byte. Those speculative cuts are right from the first position where
//! the true (sequential) chain of cuts lands on one of them: cut points depend
//! only on the bytes from a chunk's start. The merge ([`stitch`]) walks the
//! true chain from the previous segment into this one until it meets the
//! speculative chain, so the result equals a sequential scan, whatever the
//! data. The four chunkers of [`super::lockstep`] are stitched the same way.

use rayon::prelude::*;

use super::Chunker;

/// Below this many bytes per thread, splitting costs more than it saves.
const MIN_SEGMENT: usize = 4 << 20;

/// Chunk ends of `data`, computed in up to `threads` segments.
pub(crate) fn cut_points(chunker: &Chunker, data: &[u8], threads: usize) -> Vec<usize> {
    let parts = threads.min(data.len() / MIN_SEGMENT).max(1);
    if parts == 1 {
        return chunker.cut_points(data);
    }
    let bounds: Vec<usize> = (0..=parts).map(|j| data.len() * j / parts).collect();
    // Speculative chains: segment j from bounds[j] until a cut reaches bounds[j + 1].
    let specs: Vec<Vec<usize>> = (0..parts)
        .into_par_iter()
        .map(|j| chunker.chain(data, bounds[j], bounds[j + 1]))
        .collect();
    stitch(chunker, data, &bounds, &specs)
}

/// The cuts of the chain that starts at `bounds[0]` and runs until a cut
/// reaches the last bound, from the speculative chains `specs[j]`, each
/// started at `bounds[j]` and run until a cut reached `bounds[j + 1]`.
pub(crate) fn stitch(
    chunker: &Chunker,
    data: &[u8],
    bounds: &[usize],
    specs: &[Vec<usize>],
) -> Vec<usize> {
    debug_assert_eq!(bounds.len(), specs.len() + 1);
    let mut out: Vec<usize> = Vec::with_capacity(specs.iter().map(Vec::len).sum());
    let mut pos = bounds[0];
    for (j, spec) in specs.iter().enumerate() {
        let (begin, end) = (bounds[j], bounds[j + 1]);
        while pos < end {
            // Does the true chain start a chunk where the speculative one does?
            let adopt_from = if pos == begin {
                Some(0)
            } else {
                spec.binary_search(&pos).ok().map(|k| k + 1)
            };
            if let Some(k) = adopt_from {
                out.extend_from_slice(&spec[k..]);
                pos = *out.last().expect("a segment has at least one cut");
                break;
            }
            pos = chunker.next_cut(data, pos);
            out.push(pos);
        }
    }
    out
}
