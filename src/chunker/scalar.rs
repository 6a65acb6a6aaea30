//! The reference kernels: every other backend is tested against these. Also
//! the portable lockstep kernel, which the backends without one of their own
//! use for large FastCDC inputs (tested, like the others, against
//! `backend::RollFn`'s contract).
//!
//! A kernel scans the positions `from..to` of `data` and appends to `out`
//! every position `i` whose steady-state rolling hash (the hash of the window
//! of bytes ending at `i`, see [`super::gear`]) has no bit of `mask` set.
//! Kernels know nothing about chunk boundaries: the driver applies the
//! min/avg/max and normalisation rules to the candidates they report.

use super::gear::{vector_mix, FASTCDC_WINDOW, GEAR64, VECTOR_WINDOW, VGEAR};

/// One step of the FastCDC hash: shift, then add the byte's gear value.
#[inline(always)]
pub(crate) fn roll64(h: u64, b: u8) -> u64 {
    (h << 1).wrapping_add(GEAR64[b as usize])
}

#[inline(always)]
fn roll32(h: u32, b: u8) -> u32 {
    (h << 1).wrapping_add(VGEAR[b as usize])
}

/// The FastCDC hash of the window ending at `i` (low 48 bits exact).
pub fn fastcdc_hash_at(data: &[u8], i: usize) -> u64 {
    let start = (i + 1).saturating_sub(FASTCDC_WINDOW);
    data[start..=i].iter().fold(0, |h, &b| roll64(h, b))
}

/// The vector hash of the window ending at `i` (the mixed rolled sum).
pub fn vector_hash_at(data: &[u8], i: usize) -> u32 {
    let start = (i + 1).saturating_sub(VECTOR_WINDOW);
    vector_mix(data[start..=i].iter().fold(0, |h, &b| roll32(h, b)))
}

/// Reference FastCDC candidate scan: one hash chain, one byte at a time.
pub fn scan_fastcdc(data: &[u8], from: usize, to: usize, mask: u64, out: &mut Vec<usize>) {
    let warm = from.saturating_sub(FASTCDC_WINDOW - 1);
    let mut h = data[warm..from].iter().fold(0, |h, &b| roll64(h, b));
    for (i, &b) in data[from..to].iter().enumerate() {
        h = roll64(h, b);
        if h & mask == 0 {
            out.push(from + i);
        }
    }
}

/// The simplest lockstep kernel (see `backend::RollFn`): four FastCDC chains at
/// their own positions, one byte each per step, until a step at which any
/// chain's hash has no bit of `mask` set.
#[cfg(test)]
pub(crate) fn roll_fastcdc4(
    data: &[u8],
    pos: &mut [usize; 4],
    h: &mut [u64; 4],
    steps: usize,
    mask: u64,
) {
    for _ in 0..steps {
        for (h, p) in h.iter_mut().zip(pos.iter_mut()) {
            *h = roll64(*h, data[*p]);
            *p += 1;
        }
        if h.iter().any(|&h| h & mask == 0) {
            return;
        }
    }
}

/// Portable lockstep kernel (see `backend::RollFn`), for the backends without
/// one of their own: the loop of the x86 kernel in Rust. Each round rolls every
/// chain two bytes, one chain's pair after another's, and a hit ends the call
/// at once, so the chains after the hitting one have not rolled that round.
/// The chains' bytes come as slices of pairs, zipped, so the loop checks no
/// bounds.
pub(crate) fn roll_fastcdc_chains(
    data: &[u8],
    pos: &mut [usize; 4],
    h: &mut [u64; 4],
    steps: usize,
    mask: u64,
) {
    check_roll(data, pos, steps);
    let [c0, c1, c2, c3] = pos.map(|p| data[p..p + steps].as_chunks::<2>().0);
    let mut hs = *h;
    let mut round = 0;
    // Where the call stopped: the chain, and the bytes it rolled of the round.
    let mut stop = None;
    'rounds: for (((p0, p1), p2), p3) in c0.iter().zip(c1).zip(c2).zip(c3) {
        for (l, pair) in [p0, p1, p2, p3].into_iter().enumerate() {
            for (s, &b) in pair.iter().enumerate() {
                hs[l] = roll64(hs[l], b);
                if hs[l] & mask == 0 {
                    stop = Some((l, s + 1));
                    break 'rounds;
                }
            }
        }
        round += 2;
    }
    advance_by_pairs(pos, round, stop);
    *h = hs;
}

/// A lockstep kernel's arguments as `backend::RollFn` requires them: an
/// even number of steps, at least 2, every chain's bytes inside `data`.
pub(crate) fn check_roll(data: &[u8], pos: &[usize; 4], steps: usize) {
    assert!(
        steps >= 2 && steps.is_multiple_of(2),
        "an even number of steps"
    );
    assert!(pos.iter().all(|&p| p + steps <= data.len()));
}

/// Moves the chains of a kernel that rolls one chain's pair of bytes after
/// another's: `round` bytes each, then, if chain `hit` stopped on byte
/// `rolled` (1 or 2) of the next round, two more for the chains before it and
/// `rolled` for it.
pub(crate) fn advance_by_pairs(pos: &mut [usize; 4], round: usize, stop: Option<(usize, usize)>) {
    for (l, p) in pos.iter_mut().enumerate() {
        *p += round
            + match stop {
                Some((hit, _)) if l < hit => 2,
                Some((hit, rolled)) if l == hit => rolled,
                _ => 0,
            };
    }
}

/// Reference vector-hash candidate scan.
pub fn scan_vector(data: &[u8], from: usize, to: usize, mask: u32, out: &mut Vec<usize>) {
    let warm = from.saturating_sub(VECTOR_WINDOW - 1);
    let mut h = data[warm..from].iter().fold(0, |h, &b| roll32(h, b));
    for (i, &b) in data[from..to].iter().enumerate() {
        h = roll32(h, b);
        if vector_mix(h) & mask == 0 {
            out.push(from + i);
        }
    }
}

/// How many independent hash chains the ILP kernel interleaves.
const LANES: usize = 4;
/// Candidates a lane may hold before it falls back to the reference scan.
const LANE_CAP: usize = 32;
/// Below this many positions per lane, warming four chains up costs more than it saves.
const ILP_MIN_PER_LANE: usize = 256;

/// The span the driver hands the ILP kernel most often (its scan block):
/// for it the chains' distances are constants, which frees registers.
pub const ILP_BLOCK: usize = 3 << 10;

/// FastCDC candidate scan with four interleaved hash chains.
///
/// The range is cut in four parts; each chain first rolls the 47 bytes before
/// its part, so it reaches the steady-state hash exactly, and the four chains
/// are independent, so the CPU overlaps them. Same output as [`scan_fastcdc`].
#[inline(always)]
pub fn scan_fastcdc_ilp(data: &[u8], from: usize, to: usize, mask: u64, out: &mut Vec<usize>) {
    let n = to - from;
    if n == ILP_BLOCK {
        return ilp_lanes::<{ ILP_BLOCK / LANES }>(data, from, 0, mask, out);
    }
    let q = n / LANES;
    if q < ILP_MIN_PER_LANE {
        return scan_fastcdc(data, from, to, mask, out);
    }
    ilp_lanes::<0>(data, from, q, mask, out);
    // The tail that did not divide evenly.
    scan_fastcdc(data, from + LANES * q, to, mask, out);
}

/// One step of the rolling hash from a looked-up gear value: on x86_64 one
/// `lea` (the compiler's `add h, h; add h, [table]` costs one more ALU
/// operation, and the ALUs are what four chains are bound by).
#[inline(always)]
fn roll_with(h: u64, gear: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let out: u64;
        // SAFETY: arithmetic on registers only.
        unsafe {
            std::arch::asm!(
                "lea {out}, [{g} + {h} * 2]",
                out = lateout(reg) out,
                g = in(reg) gear,
                h = in(reg) h,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        out
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        (h << 1).wrapping_add(gear)
    }
}

/// The four chains over `data[from..from + 4 * q]`, `q` being `Q` when it
/// is not zero (a constant), else `q_dyn`.
#[inline(always)]
fn ilp_lanes<const Q: usize>(
    data: &[u8],
    from: usize,
    q_dyn: usize,
    mask: u64,
    out: &mut Vec<usize>,
) {
    let q = if Q > 0 { Q } else { q_dyn };
    let starts = [from, from + q, from + 2 * q, from + 3 * q];
    let mut h = [0u64; LANES];
    for (lane, &s) in starts.iter().enumerate() {
        let warm = s.saturating_sub(FASTCDC_WINDOW - 1);
        h[lane] = data[warm..s].iter().fold(0, |h, &b| roll64(h, b));
    }
    let mut found = [[0u32; LANE_CAP]; LANES];
    let mut count = [0usize; LANES];
    #[cold]
    #[inline(never)]
    fn note(found: &mut [u32; LANE_CAP], count: &mut usize, k: usize) {
        if *count < LANE_CAP {
            found[*count] = k as u32;
        }
        *count += 1;
    }
    let [mut h0, mut h1, mut h2, mut h3] = h;
    assert!(from + 4 * q <= data.len());
    let base = data[from..].as_ptr();
    macro_rules! step {
        ($k:expr) => {
            let k = $k;
            // SAFETY: k < q, so every index is below 4 * q, and
            // from + 4 * q <= data.len() (asserted above).
            let (b0, b1, b2, b3) = unsafe {
                let p = base.add(k);
                (*p, *p.add(q), *p.add(2 * q), *p.add(3 * q))
            };
            h0 = roll_with(h0, GEAR64[b0 as usize]);
            h1 = roll_with(h1, GEAR64[b1 as usize]);
            h2 = roll_with(h2, GEAR64[b2 as usize]);
            h3 = roll_with(h3, GEAR64[b3 as usize]);
            // Separate tests: each compiles to one fused test-and-branch, rarely taken.
            if h0 & mask == 0 {
                note(&mut found[0], &mut count[0], k);
            }
            if h1 & mask == 0 {
                note(&mut found[1], &mut count[1], k);
            }
            if h2 & mask == 0 {
                note(&mut found[2], &mut count[2], k);
            }
            if h3 & mask == 0 {
                note(&mut found[3], &mut count[3], k);
            }
        };
    }
    let mut k = 0;
    while k + 2 <= q {
        step!(k);
        step!(k + 1);
        k += 2;
    }
    if k < q {
        step!(k);
    }
    for lane in 0..LANES {
        let s = starts[lane];
        if count[lane] > LANE_CAP {
            // Low-entropy data: report this lane exactly with the reference scan.
            scan_fastcdc(data, s, s + q, mask, out);
        } else {
            out.extend(found[lane][..count[lane]].iter().map(|&k| s + k as usize));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn ilp_scan_equals_reference_scan() {
        let data = noise(50_000, 7);
        for (from, to, mask) in [
            (0, 50_000, 0xff),
            (1, 49_999, 0x0f0f),
            (47, 4_200, 0x1_0000),
            (3_000, 3_000 + 4 * 256 + 3, 0x3),
        ] {
            let mut a = Vec::new();
            let mut b = Vec::new();
            scan_fastcdc(&data, from, to, mask, &mut a);
            scan_fastcdc_ilp(&data, from, to, mask, &mut b);
            assert!(!a.is_empty());
            assert_eq!(a, b, "from {from} to {to} mask {mask:#x}");
        }
    }

    #[test]
    fn ilp_scan_overflowing_a_lane_stays_exact() {
        // Constant bytes give a constant steady-state hash: with mask 0 every position matches.
        let data = vec![0u8; 8_192];
        let mut a = Vec::new();
        let mut b = Vec::new();
        scan_fastcdc(&data, 100, 8_000, 0, &mut a);
        scan_fastcdc_ilp(&data, 100, 8_000, 0, &mut b);
        assert_eq!(a.len(), 7_900);
        assert_eq!(a, b);
    }

    #[test]
    fn vector_hash_check_values_of_docs_vector_md() {
        let data: Vec<u8> = (0..64).collect();
        let expect = [
            (0, 0x2ea8_8303),
            (1, 0x04d7_6fcd),
            (31, 0x35cb_672e),
            (32, 0x37f9_08f7),
            (63, 0xafde_c5b5),
        ];
        for (i, h) in expect {
            assert_eq!(vector_hash_at(&data, i), h, "H({i})");
        }
    }

    #[test]
    fn window_hash_equals_the_long_chain_in_its_low_bits() {
        let data = noise(1_000, 3);
        let mut h = 0u64;
        for (i, &b) in data.iter().enumerate() {
            h = roll64(h, b);
            assert_eq!(
                fastcdc_hash_at(&data, i) & ((1 << 48) - 1),
                h & ((1 << 48) - 1)
            );
        }
        let mut h = 0u32;
        for (i, &b) in data.iter().enumerate() {
            h = roll32(h, b);
            assert_eq!(vector_hash_at(&data, i), vector_mix(h));
        }
    }
}
