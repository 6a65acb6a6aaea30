//! FastCDC over a large input: four chunkers side by side in one thread.
//!
//! FastCDC's hash is one serial chain, so a core runs it well below its width.
//! The block kernels ([`super::Chunker::next_cut`]) win part of that back with
//! four chains over one scan block, but each chain first rolls the 47 bytes
//! before its part, and the block's bytes after a cut are scanned for nothing.
//! Here each quarter of the input gets a whole chunker of its own instead,
//! which rolls the hash from zero at each chunk's minimum size as FastCDC does
//! (no warm-up) and skips the minimum after each cut (nothing scanned past
//! one). The four step together in the backend's lockstep kernel
//! ([`super::backend::RollFn`]). Each but the first starts speculatively at
//! its quarter's first byte, and [`super::parallel::stitch`] joins them as it
//! joins threads: the cut points equal those of one chunker, whatever the data.

use super::backend::RollFn;
use super::{parallel, scalar, Chunker, FastCdcSpan};

/// Bytes per chunker below which the lockstep driver is not used: a lane
/// re-chunks a chunk or two past its quarter before it meets the next one.
/// On a Zen 3 core (BENCHMARKS.md), against the block kernels, lanes of 1 MiB
/// (a 4 MiB input) were 0.96 times as fast, of 2 MiB 1.12, of 4 MiB 1.23.
pub(crate) const MIN_REGION: usize = 2 << 20;

/// Fewest bits the strict and relaxed masks must have in common: each
/// position whose hash passes those bits takes the chunkers out of the
/// kernel, as often as one position in 2^bits per chunker.
pub(crate) const MIN_COMMON_MASK_BITS: u32 = 10;

/// Lanes still running below which the rest go on one chunk at a time: the
/// kernel's cost is that of four lanes however many are still useful.
const MIN_ACTIVE: usize = 3;

/// One speculative chunker: its cuts from its first chunk start until one
/// reaches `stop` and is also a cut of the next lane (from there on the two
/// agree), or until the next lane's cuts so far do not tell.
struct Lane {
    stop: usize,
    span: FastCdcSpan,
    /// The next byte to roll.
    pos: usize,
    h: u64,
    cuts: Vec<usize>,
    done: bool,
}

impl Lane {
    fn new(chunker: &Chunker, len: usize, start: usize, stop: usize) -> Lane {
        let mut lane = Lane {
            stop,
            span: FastCdcSpan::default(),
            pos: 0,
            h: 0,
            cuts: Vec::with_capacity((stop - start) / chunker.config.avg + 2),
            done: false,
        };
        lane.begin(chunker, len, start, None);
        lane
    }

    /// Records a cut at `at`, then starts the chunk there (skipping chunks
    /// with no position to test) unless the lane is done. `next` holds the
    /// next lane's cuts so far, if there is a next lane.
    fn cut(&mut self, chunker: &Chunker, len: usize, at: usize, next: Option<&[usize]>) {
        self.cuts.push(at);
        self.done = self.reached(at, next);
        if !self.done {
            self.begin(chunker, len, at, next);
        }
    }

    /// Whether a cut at `at` ends the lane.
    fn reached(&self, at: usize, next: Option<&[usize]>) -> bool {
        at >= self.stop
            && next.is_none_or(|next| {
                next.last().is_none_or(|&last| at >= last) || next.binary_search(&at).is_ok()
            })
    }

    fn begin(&mut self, chunker: &Chunker, len: usize, start: usize, next: Option<&[usize]>) {
        match chunker.config.fastcdc_span(start, len) {
            // The chunk runs to the end of the input.
            None => self.cut(chunker, len, len, next),
            Some(span) if span.first >= span.end => self.cut(chunker, len, span.forced, next),
            Some(span) => {
                self.span = span;
                self.pos = span.first;
                self.h = 0;
            }
        }
    }
}

/// The cuts of the chain that starts at `begin` (a chunk start) and runs
/// until a cut reaches `end`, as [`Chunker::chain`] gives them.
pub(crate) fn chain(
    chunker: &Chunker,
    data: &[u8],
    begin: usize,
    end: usize,
    roll: RollFn,
) -> Vec<usize> {
    let len = data.len();
    let bounds: [usize; 5] = std::array::from_fn(|j| begin + (end - begin) * j / 4);
    assert!(
        bounds.windows(2).all(|w| w[0] < w[1]) && end <= len,
        "four non-empty regions inside the input"
    );
    let masks = chunker.fastcdc_masks;
    let common = masks.0 & masks.1;
    let mut lanes: [Lane; 4] =
        std::array::from_fn(|j| Lane::new(chunker, len, bounds[j], bounds[j + 1]));

    loop {
        let active = lanes.each_ref().map(|lane| !lane.done);
        if active.iter().filter(|&&a| a).count() < MIN_ACTIVE {
            break;
        }
        // A lane that is done shadows an active one (same bytes, result unused).
        let first = active.iter().position(|&a| a).expect("active lanes");
        let pos = std::array::from_fn(|j| lanes[if active[j] { j } else { first }].pos);
        let mut h = lanes.each_ref().map(|lane| lane.h);
        let steps = (0..4)
            .filter(|&j| active[j])
            .map(|j| lanes[j].span.end - lanes[j].pos)
            .min()
            .expect("active lanes");
        let taken = if steps >= 2 {
            roll(data, pos, &mut h, steps & !1, common)
        } else {
            // One step before some lane's last position: not worth the kernel.
            for (h, p) in h.iter_mut().zip(pos) {
                *h = scalar::roll64(*h, data[p]);
            }
            1
        };
        for j in (0..4).filter(|&j| active[j]) {
            let (lane, rest) = lanes[j..].split_first_mut().expect("lane j");
            let next = rest.first().map(|next| next.cuts.as_slice());
            lane.pos += taken;
            lane.h = h[j];
            let at = lane.pos - 1;
            if h[j] & common == 0 && h[j] & lane.span.mask_at(at, masks) == 0 {
                lane.cut(chunker, len, at, next);
            } else if lane.pos == lane.span.end {
                lane.cut(chunker, len, lane.span.forced, next);
            }
        }
    }
    // The last lanes go on one chunk at a time from the chunk they are in.
    for j in 0..4 {
        let (lane, rest) = lanes[j..].split_first_mut().expect("lane j");
        let next = rest.first().map(|next| next.cuts.as_slice());
        let mut pos = lane.span.start;
        while !lane.done {
            pos = chunker.next_cut(data, pos);
            lane.cuts.push(pos);
            lane.done = lane.reached(pos, next);
        }
    }
    let specs = lanes.map(|lane| lane.cuts);
    parallel::stitch(chunker, data, &bounds, &specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::{golden_input, Algorithm, Backend, ChunkerConfig};

    /// Inputs that stress the lanes: random, runs of one byte (no hit, or a
    /// hit at every position), a short repeating pattern, a mix.
    fn inputs(len: usize) -> Vec<(&'static str, Vec<u8>)> {
        let random = golden_input(7, len);
        let mut mixed = random.clone();
        for (k, b) in mixed.iter_mut().enumerate() {
            if (k / 5000) % 3 == 1 {
                *b = 0;
            }
        }
        vec![
            ("random", random),
            ("zeros", vec![0; len]),
            ("ones", vec![0xff; len]),
            ("pattern", (0..len).map(|k| (k % 7) as u8).collect()),
            ("mixed", mixed),
        ]
    }

    fn kernels() -> Vec<(&'static str, RollFn)> {
        let mut kernels: Vec<(&'static str, RollFn)> = vec![("reference", scalar::roll_fastcdc4)];
        for backend in Backend::available() {
            if let Ok(k) = backend.kernels() {
                if let Some(roll) = k.lockstep {
                    kernels.push((backend.name(), roll));
                }
            }
        }
        kernels
    }

    #[test]
    fn lanes_give_the_cuts_of_one_chunker() {
        let configs = [
            ChunkerConfig::new(64, 256, 1024, 1).unwrap(),
            ChunkerConfig::new(256, 1024, 4096, 2).unwrap(),
            ChunkerConfig::new(1024, 4096, 8192, 0).unwrap(),
            ChunkerConfig::new(2048, 8192, 65536, 3).unwrap(),
        ];
        for config in configs {
            let chunker =
                Chunker::new(config.with_algorithm(Algorithm::FastCdc), Backend::Scalar).unwrap();
            for (name, data) in inputs(300_001) {
                for (begin, end) in [(0, data.len()), (1, data.len() - 5), (777, 200_000)] {
                    let want = chunker.chain_by_chunk(&data, begin, end);
                    for (kernel, roll) in kernels() {
                        let got = chain(&chunker, &data, begin, end, roll);
                        assert_eq!(got, want, "{config:?} {name} {begin}..{end} {kernel}");
                    }
                }
            }
        }
    }

    #[test]
    fn lockstep_kernels_equal_the_reference() {
        let data = golden_input(3, 1 << 16);
        let pos = [5, 20_001, 20_000, 40_003];
        for mask in [0, 1, 0x3, 0xff << 20, 0xd903_5300_0000, u64::MAX >> 16] {
            for steps in [2, 4, 100, 20_000] {
                let mut want_h = [1, 2, 3, 4];
                let want = scalar::roll_fastcdc4(&data, pos, &mut want_h, steps, mask);
                for (kernel, roll) in kernels() {
                    let mut h = [1, 2, 3, 4];
                    let got = roll(&data, pos, &mut h, steps, mask);
                    assert_eq!(
                        (got, h),
                        (want, want_h),
                        "{kernel} mask {mask:#x} steps {steps}"
                    );
                }
            }
        }
    }
}
