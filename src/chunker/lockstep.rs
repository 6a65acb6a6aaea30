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
/// On a Zen 3 core (BENCHMARKS.md), against the block kernels, lanes of
/// 512 KiB (a 2 MiB input) were 0.95 times as fast, of 1 MiB 1.08, of 2 MiB
/// 1.25.
pub(crate) const MIN_REGION: usize = 1 << 20;

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

    while let Some((order, active)) = chain_order(&lanes) {
        let mut pos = order.map(|j| lanes[j].pos);
        let mut h = order.map(|j| lanes[j].h);
        let steps = order[..active]
            .iter()
            .map(|&j| lanes[j].span.end - lanes[j].pos)
            .min()
            .expect("active lanes");
        if steps >= 2 {
            roll(data, &mut pos, &mut h, steps & !1, common);
        } else {
            // One byte before some lane's last position: not worth the kernel.
            for (h, p) in h.iter_mut().zip(pos.iter_mut()) {
                *h = scalar::roll64(*h, data[*p]);
                *p += 1;
            }
        }
        for c in 0..active {
            let j = order[c];
            if pos[c] == lanes[j].pos {
                // Not rolled: its hash was tested after its last call.
                continue;
            }
            let (lane, rest) = lanes[j..].split_first_mut().expect("lane j");
            let next = rest.first().map(|next| next.cuts.as_slice());
            lane.pos = pos[c];
            lane.h = h[c];
            let at = lane.pos - 1;
            if h[c] & common == 0 && h[c] & lane.span.mask_at(at, masks) == 0 {
                lane.cut(chunker, len, at, next);
            } else if lane.pos == lane.span.end {
                lane.cut(chunker, len, lane.span.forced, next);
            }
        }
    }
    finish_lanes(chunker, data, &mut lanes);
    let specs = lanes.map(|lane| lane.cuts);
    parallel::stitch(chunker, data, &bounds, &specs)
}

/// Which lane each of the kernel's four chains runs, and how many lanes are
/// active; `None` once fewer than [`MIN_ACTIVE`] are.
///
/// Chain `c` runs lane `order[c]`: the active lanes first, in order, so
/// that chain 0 (which always rolls) is an active one. A lane that is done
/// shadows chain 0 (same bytes and hash, so it hits where chain 0 hits
/// first; its result is unused).
fn chain_order(lanes: &[Lane; 4]) -> Option<([usize; 4], usize)> {
    let mut order = [0; 4];
    let mut active = 0;
    for j in (0..4).filter(|&j| !lanes[j].done) {
        order[active] = j;
        active += 1;
    }
    if active < MIN_ACTIVE {
        return None;
    }
    for c in active..4 {
        order[c] = order[0];
    }
    Some((order, active))
}

/// The lanes left go on one chunk at a time from the chunk they are in,
/// until each reaches the next lane's cuts (or the end).
fn finish_lanes(chunker: &Chunker, data: &[u8], lanes: &mut [Lane; 4]) {
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
                kernels.push((backend.name(), k.lockstep));
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

    /// Checks one kernel call against `RollFn`'s contract by rolling each
    /// chain again one byte at a time.
    fn check_call(
        data: &[u8],
        before: ([usize; 4], [u64; 4]),
        after: ([usize; 4], [u64; 4]),
        steps: usize,
        mask: u64,
    ) -> Result<(), String> {
        let mut any_hit = false;
        for l in 0..4 {
            let (from, to) = (before.0[l], after.0[l]);
            if to < from || to - from > steps {
                return Err(format!("chain {l} rolled from {from} to {to}"));
            }
            let mut h = before.1[l];
            for (k, &b) in data[from..to].iter().enumerate() {
                if k > 0 && h & mask == 0 {
                    return Err(format!("chain {l} went on past a hit at {}", from + k - 1));
                }
                h = scalar::roll64(h, b);
            }
            if h != after.1[l] {
                return Err(format!("chain {l} hash {:#x}, want {h:#x}", after.1[l]));
            }
            any_hit |= to > from && h & mask == 0;
        }
        let rolled = std::array::from_fn::<_, 4, _>(|l| after.0[l] - before.0[l]);
        if rolled[0] == 0 {
            return Err("chain 0 did not roll".into());
        }
        if !any_hit && rolled != [steps; 4] {
            return Err(format!("stopped after {rolled:?} of {steps} with no hit"));
        }
        Ok(())
    }

    /// Calls each kernel as the lanes do, checking every call, until each
    /// chain has rolled `len` bytes; the hits it reports must be those of
    /// each chain rolled alone.
    #[test]
    fn lockstep_kernels_keep_their_contract() {
        let data = golden_input(3, 1 << 16);
        let len = 20_000;
        // Ascending, descending, equal and overlapping starts.
        let starts = [
            [5, 20_001, 20_000, 40_003],
            [40_000, 30_000, 20_000, 1],
            [7, 7, 9, 7],
        ];
        let masks = [0, 1, 0x3, 0xff << 20, 0xd903_5300_0000, u64::MAX >> 16];
        for (start, mask) in starts.into_iter().flat_map(|s| masks.map(|m| (s, m))) {
            let want: Vec<Vec<usize>> = start
                .iter()
                .enumerate()
                .map(|(l, &p)| {
                    let mut h = l as u64;
                    (p..p + len)
                        .filter(|&q| {
                            h = scalar::roll64(h, data[q]);
                            h & mask == 0
                        })
                        .collect()
                })
                .collect();
            for (kernel, roll) in kernels() {
                let (mut pos, mut h) = (start, [0, 1, 2, 3]);
                let mut hits = vec![vec![]; 4];
                let mut calls = 0;
                loop {
                    let left = (0..4).map(|l| start[l] + len - pos[l]).min().unwrap();
                    if left < 2 {
                        break;
                    }
                    // Short calls too, so that rounds end without a hit.
                    let steps = if calls % 3 == 1 { 2 } else { left & !1 };
                    let before = (pos, h);
                    roll(&data, &mut pos, &mut h, steps, mask);
                    calls += 1;
                    if let Err(e) = check_call(&data, before, (pos, h), steps, mask) {
                        panic!("{kernel} mask {mask:#x} starts {start:?} call {calls}: {e}");
                    }
                    for l in (0..4).filter(|&l| pos[l] > before.0[l] && h[l] & mask == 0) {
                        hits[l].push(pos[l] - 1);
                    }
                }
                for l in 0..4 {
                    // Chains that stopped short of `len`: compare what they rolled.
                    let rolled: Vec<usize> =
                        want[l].iter().copied().filter(|&q| q < pos[l]).collect();
                    assert_eq!(
                        hits[l], rolled,
                        "{kernel} mask {mask:#x} starts {start:?} chain {l}"
                    );
                }
            }
        }
    }
}
