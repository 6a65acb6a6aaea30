//! How a multi-stream kernel splits a scan among its lanes.
//!
//! The vector hash depends only on the last 32 bytes, so a range can be cut
//! into independent streams, one per SIMD lane: each lane first rolls the 32
//! bytes before its part (warm-up), then its part. Lanes run in lock step
//! over equal spans; the last lanes are pulled back to end at the range's end
//! and report only positions no earlier lane reports.

use super::gear::VECTOR_WINDOW;
use super::scalar;

/// Scans the part of `from..to` before the first whole window with the scalar
/// kernel and returns where SIMD lanes may start.
pub(crate) fn scalar_head(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u32,
    out: &mut Vec<usize>,
) -> usize {
    let head_end = to.min(from.max(VECTOR_WINDOW));
    if from < head_end {
        scalar::scan_vector(data, from, head_end, mask, out);
    }
    head_end
}

/// Appends the sorted hits of a multi-stream scan.
pub(crate) fn finish(mut hits: Vec<usize>, out: &mut Vec<usize>) {
    hits.sort_unstable();
    out.extend_from_slice(&hits);
}

/// The split of `from..to` among `N` lanes.
pub(crate) struct LanePlan<const N: usize> {
    /// First byte each lane rolls.
    pub base: [usize; N],
    /// Positions each lane reports: `accept[l].0..accept[l].1`.
    pub accept: [(usize, usize); N],
    /// Bytes each lane rolls, a multiple of the kernel's step.
    pub span: usize,
}

impl<const N: usize> LanePlan<N> {
    /// Plans `from..to` for lanes that roll `step` bytes per iteration, or
    /// `None` when the range is too short to be worth it (or starts before a
    /// whole window): the caller scans it with the scalar kernel.
    pub fn new(from: usize, to: usize, step: usize) -> Option<Self> {
        let n = to.checked_sub(from)?;
        if from < VECTOR_WINDOW || n < 4 * N * step {
            return None;
        }
        let span = (n.div_ceil(N) + VECTOR_WINDOW).div_ceil(step) * step;
        let scan = span - VECTOR_WINDOW;
        debug_assert!(scan * N >= n && scan <= n);
        let mut base = [0; N];
        let mut accept = [(0, 0); N];
        for l in 0..N {
            let lo = (from + l * scan).min(to);
            let hi = (from + (l + 1) * scan).min(to);
            let start = lo.min(to - scan);
            base[l] = start - VECTOR_WINDOW;
            accept[l] = (lo, hi);
        }
        Some(LanePlan { base, accept, span })
    }

    /// Like [`LanePlan::record`], for lanes that may have hit: `hit(pos)` decides.
    // Only the AVX2 kernel tests several steps at once and needs a second opinion.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    #[inline]
    pub fn record_if(
        &self,
        mut lanes: u32,
        offset: usize,
        hits: &mut Vec<usize>,
        hit: impl Fn(usize) -> bool,
    ) {
        while lanes != 0 {
            let l = lanes.trailing_zeros() as usize;
            lanes &= lanes - 1;
            let pos = self.base[l] + offset;
            if pos >= self.accept[l].0 && pos < self.accept[l].1 && hit(pos) {
                hits.push(pos);
            }
        }
    }

    /// Records the hits of one step: bit `l` of `lanes` set means lane `l`'s
    /// hash at `base[l] + offset` passed the test.
    #[inline]
    pub fn record(&self, mut lanes: u32, offset: usize, hits: &mut Vec<usize>) {
        while lanes != 0 {
            let l = lanes.trailing_zeros() as usize;
            lanes &= lanes - 1;
            let pos = self.base[l] + offset;
            if pos >= self.accept[l].0 && pos < self.accept[l].1 {
                hits.push(pos);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_report_every_position_once() {
        for (from, to) in [
            (32, 32 + 4 * 16 * 64),
            (100, 20_000),
            (5_000, 5_000 + 8_192),
            (40, 70_001),
        ] {
            let plan = LanePlan::<16>::new(from, to, 64).unwrap();
            let mut covered = vec![0u8; to];
            for l in 0..16 {
                let start = plan.base[l] + VECTOR_WINDOW;
                let end = plan.base[l] + plan.span;
                assert!(end <= to, "lane {l} runs past the range");
                let (lo, hi) = plan.accept[l];
                assert!(
                    lo >= start && hi <= end,
                    "lane {l} reports {lo}..{hi} outside what it scans"
                );
                covered[lo..hi].iter_mut().for_each(|c| *c += 1);
            }
            assert!(covered[from..to].iter().all(|&c| c == 1));
            assert!(covered[..from].iter().all(|&c| c == 0));
        }
        assert!(LanePlan::<16>::new(10, 100_000, 64).is_none());
        assert!(LanePlan::<16>::new(100, 200, 64).is_none());
    }
}
