//! x86_64 kernels behind `#[target_feature]`.
//!
//! FastCDC's hash is one serial chain (a shift and an add per byte), and
//! gather-based SIMD versions of it were measured slower than scalar code on
//! AMD, so its x86 kernels run four chains side by side in general-purpose
//! registers, the same code for both backends: over one scan block
//! ([`scan_fastcdc_chains`]), or as four independent chunkers
//! ([`roll_fastcdc_chains`], for the lockstep driver). Both roll the chains
//! in [`roll4_by_pairs`], one chain's pair of bytes after another's.
//!
//! The vector hash runs one independent stream per 32-bit lane (see
//! [`super::lanes`]): each iteration loads a row of bytes per lane, looks the
//! bytes up with two byte shuffles, transposes the rows so that one register
//! holds the next four bytes of every lane, then rolls and tests the hash of
//! all lanes at once, one byte per step. No gathers, no cross-lane work in
//! the hash itself.

use std::arch::x86_64::*;

use super::gear::{FASTCDC_WINDOW, GEAR64, VECTOR_MIX, VECTOR_NIBBLES};
use super::lanes::{finish, scalar_head, LanePlan};
use super::scalar;

/// # Safety
/// The CPU must have AVX2 and BMI2 (the kernel itself needs neither; the
/// backend promises them).
#[target_feature(enable = "avx2,bmi2")]
pub(crate) unsafe fn scan_fastcdc_avx2(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u64,
    out: &mut Vec<usize>,
) {
    scan_fastcdc_chains(data, from, to, mask, out)
}

/// # Safety
/// The CPU must have AVX-512 F/BW and BMI2 (as for AVX2, the kernel needs
/// none of them).
#[target_feature(enable = "avx512f,avx512bw,bmi2")]
pub(crate) unsafe fn scan_fastcdc_avx512(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u64,
    out: &mut Vec<usize>,
) {
    scan_fastcdc_chains(data, from, to, mask, out)
}

/// The steady-state hashes before `starts`: the 47 bytes before each rolled
/// from zero (bits above 47 are never tested), the four chains side by side.
fn warm_up(data: &[u8], starts: [usize; 4]) -> [u64; 4] {
    const WARM: usize = FASTCDC_WINDOW - 1;
    let roll = scalar::roll64;
    if starts[0] < WARM {
        return starts.map(|s| {
            data[s.saturating_sub(WARM)..s]
                .iter()
                .fold(0, |h, &b| roll(h, b))
        });
    }
    let windows: [&[u8; WARM]; 4] = starts.map(|s| data[s - WARM..s].try_into().expect("47 bytes"));
    let mut h = [0u64; 4];
    for j in 0..WARM {
        for (h, window) in h.iter_mut().zip(windows) {
            *h = roll(*h, window[j]);
        }
    }
    h
}

/// Steps the chains take between two rounds of prefetches (even).
const CHAINS_SEGMENT: usize = 128;
/// How many steps ahead of the chains their bytes are asked for.
const CHAINS_AHEAD: usize = 256;

/// Software prefetch for the four chains of a scan block, and then for those
/// of the next block of the same size (the driver's next call unless a cut is
/// found in this one, as it is in about one block in sixteen).
///
/// Each chain reads 12 lines or so of a block, too few for the hardware
/// prefetcher to pick the four streams up: scanning consecutive 3 KiB blocks
/// of a 4 MiB buffer took 1.5 to 2.2 times as long as one block held in L1.
/// Asking for all of a block at once did worse than spreading the requests
/// (BENCHMARKS.md; likely more were in flight than the core tracks).
struct Prefetch {
    base: *const u8,
    q: usize,
    /// Steps (of every chain) whose lines have been asked for.
    done: usize,
}

impl Prefetch {
    fn new(base: *const u8, q: usize) -> Self {
        Prefetch { base, q, done: 0 }
    }

    /// Asks for the lines of every chain's steps up to `steps`; steps past
    /// the block's `q` are those of the next block.
    #[inline]
    fn upto(&mut self, steps: usize) {
        while self.done < steps {
            let (block, step) = if self.done < self.q {
                (0, self.done)
            } else {
                (4 * self.q, self.done - self.q)
            };
            for lane in 0..4 {
                let at = self.base.wrapping_add(block + lane * self.q + step);
                // SAFETY: a prefetch never faults, and `wrapping_add` makes
                // no claim that the address is inside the data.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast()) };
            }
            self.done += 64;
        }
    }
}

/// Rolls four FastCDC hash chains by pairs of bytes, one chain's pair after
/// the other's: chain `l` reads the bytes at `at + d[l - 1]` (chain 0 at `at`),
/// the offsets taken modulo 2^64 so that they may stand for negative
/// distances. Each round rolls every chain two bytes, from `at` while
/// `at < end`, and it stops at the first hash with no bit of `mask` set.
///
/// Returns the position (of chain 0) of the round it stopped in, or `end`
/// (or past it) if no hash hit, and where in the round it stopped: `2 * l + s`
/// for a hit on chain `l`'s byte `s` (0 or 1) of the round, [`ROUND_DONE`] for
/// no hit. Chains before `l` have then rolled the round's two bytes, those
/// after it none; `h` holds each chain's hash after its last byte.
///
/// The loop is assembly because the two resources it needs are scarce. Per
/// byte and chain it takes one and a half loads (half of a 16-bit load of the
/// pair, the byte's gear value) and three ALU operations (a `movzx` takes the
/// byte out of the pair, a `lea` rolls the hash, a fused test-and-branch
/// tests it). The loop before it stepped the four chains together a byte at
/// a time, with a load per byte where this one has the `movzx`; on a Zen 3
/// core, where loads are the scarcer, this one is 1.15 times as fast
/// (BENCHMARKS.md). Written in Rust, that loop had been compiled with the
/// table address and the data pointer reloaded every step, 1.2 to 1.3 times
/// slower than in assembly. The pair is split with `al` and `ah`, so `rax`
/// and `rcx` are named; thirteen registers in all, few enough to build with
/// frame pointers on.
///
/// # Safety
/// `end - at` must be even and every chain's bytes readable: `at + d + j` for
/// `j` in `0..end - at`.
#[inline(always)]
unsafe fn roll4_by_pairs(
    at: *const u8,
    d: [usize; 3],
    h: &mut [u64; 4],
    end: *const u8,
    mask: u64,
) -> (*const u8, usize) {
    let mut at = at;
    let stop: usize;
    // SAFETY: the caller promises the bytes read; GEAR64[b] for a byte b is
    // inside the 256-entry table. It writes only its register operands.
    unsafe {
        std::arch::asm!(
            // The loop's speed should not depend on where the linker put it.
            ".p2align 6",
            "2:",
            "movzx eax, word ptr [{at}]",
            "movzx ecx, al",
            "movzx eax, ah",
            "mov rcx, qword ptr [{tbl} + rcx * 8]",
            "lea {h0}, [rcx + {h0} * 2]",
            "test {h0}, {mask}",
            "jz 20f",
            "mov rax, qword ptr [{tbl} + rax * 8]",
            "lea {h0}, [rax + {h0} * 2]",
            "test {h0}, {mask}",
            "jz 21f",
            "movzx eax, word ptr [{at} + {d1}]",
            "movzx ecx, al",
            "movzx eax, ah",
            "mov rcx, qword ptr [{tbl} + rcx * 8]",
            "lea {h1}, [rcx + {h1} * 2]",
            "test {h1}, {mask}",
            "jz 22f",
            "mov rax, qword ptr [{tbl} + rax * 8]",
            "lea {h1}, [rax + {h1} * 2]",
            "test {h1}, {mask}",
            "jz 23f",
            "movzx eax, word ptr [{at} + {d2}]",
            "movzx ecx, al",
            "movzx eax, ah",
            "mov rcx, qword ptr [{tbl} + rcx * 8]",
            "lea {h2}, [rcx + {h2} * 2]",
            "test {h2}, {mask}",
            "jz 24f",
            "mov rax, qword ptr [{tbl} + rax * 8]",
            "lea {h2}, [rax + {h2} * 2]",
            "test {h2}, {mask}",
            "jz 25f",
            "movzx eax, word ptr [{at} + {d3}]",
            "movzx ecx, al",
            "movzx eax, ah",
            "mov rcx, qword ptr [{tbl} + rcx * 8]",
            "lea {h3}, [rcx + {h3} * 2]",
            "test {h3}, {mask}",
            "jz 26f",
            "mov rax, qword ptr [{tbl} + rax * 8]",
            "lea {h3}, [rax + {h3} * 2]",
            "test {h3}, {mask}",
            "jz 27f",
            "add {at}, 2",
            "cmp {at}, {end}",
            "jb 2b",
            "mov ecx, 8",
            "jmp 3f",
            "20:",
            "mov ecx, 0",
            "jmp 3f",
            "21:",
            "mov ecx, 1",
            "jmp 3f",
            "22:",
            "mov ecx, 2",
            "jmp 3f",
            "23:",
            "mov ecx, 3",
            "jmp 3f",
            "24:",
            "mov ecx, 4",
            "jmp 3f",
            "25:",
            "mov ecx, 5",
            "jmp 3f",
            "26:",
            "mov ecx, 6",
            "jmp 3f",
            "27:",
            "mov ecx, 7",
            "3:",
            at = inout(reg) at,
            h0 = inout(reg) h[0],
            h1 = inout(reg) h[1],
            h2 = inout(reg) h[2],
            h3 = inout(reg) h[3],
            out("rax") _,
            out("rcx") stop,
            d1 = in(reg) d[0],
            d2 = in(reg) d[1],
            d3 = in(reg) d[2],
            end = in(reg) end,
            tbl = in(reg) GEAR64.as_ptr(),
            mask = in(reg) mask,
            options(nostack, readonly),
        );
    }
    (at, stop)
}

/// [`roll4_by_pairs`]'s report of a round with no hit.
const ROUND_DONE: usize = 8;

/// The lockstep kernel of both x86 backends (see [`super::backend::RollFn`]):
/// four chains at independent positions, one [`roll4_by_pairs`] call.
pub(crate) fn roll_fastcdc_chains(
    data: &[u8],
    pos: &mut [usize; 4],
    h: &mut [u64; 4],
    steps: usize,
    mask: u64,
) {
    scalar::check_roll(data, pos, steps);
    let base = data[pos[0]..].as_ptr();
    let d = [1, 2, 3].map(|l| pos[l].wrapping_sub(pos[0]));
    let end = base.wrapping_add(steps);
    // SAFETY: `steps` is even and each chain's bytes pos[l]..pos[l] + steps
    // are inside `data` (both asserted by `check_roll`).
    let (at, stop) = unsafe { roll4_by_pairs(base, d, h, end, mask) };
    let round = (at as usize - base as usize).min(steps);
    let stop = (stop != ROUND_DONE).then_some((stop / 2, stop % 2 + 1));
    scalar::advance_by_pairs(pos, round, stop);
}

/// Positions per chain below which warming four chains up costs more than it saves.
const CHAINS_MIN_STEPS: usize = 256;
/// Candidates one call takes from the chains before it hands its range to the
/// reference scan: low-entropy input can make every position a candidate, and
/// each one costs a trip out of the assembly loop.
const CHAINS_MAX_EXITS: usize = 64;

/// FastCDC candidate scan with four hash chains in general-purpose registers.
///
/// The range is cut in four parts of `q` positions (`q` even); each chain
/// first rolls the 47 bytes before its part, so it holds the steady-state
/// hash, and the four chains then advance side by side. Same output as
/// [`scalar::scan_fastcdc`].
///
/// The chains roll in [`roll_fastcdc_chains`], which leaves its loop at the
/// first position where any of them hits; with a 64 KiB average that is one
/// position in 2^14 per chain, so everything else is done in Rust (small
/// averages hit more often, and after [`CHAINS_MAX_EXITS`] hits the range
/// goes to the reference scan).
pub(crate) fn scan_fastcdc_chains(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u64,
    out: &mut Vec<usize>,
) {
    let q = ((to - from) / 4) & !1;
    if q < CHAINS_MIN_STEPS {
        return scalar::scan_fastcdc(data, from, to, mask, out);
    }
    let first = out.len();
    let starts = [from, from + q, from + 2 * q, from + 3 * q];
    // Every byte the chains read is below from + 4q.
    assert!(from + 4 * q <= data.len());
    let mut hs = warm_up(data, starts);
    let mut pos = starts;
    let mut prefetch = Prefetch::new(data[from..].as_ptr(), q);
    prefetch.upto(CHAINS_AHEAD);
    let mut exits = 0;
    loop {
        // A call stops at a hit with the chains up to a pair apart: the one
        // furthest on bounds the next call, the others finish below.
        let ahead = (0..4).map(|l| pos[l] - starts[l]).max().expect("four");
        let steps = (q - ahead).min(CHAINS_SEGMENT) & !1;
        if steps == 0 {
            break;
        }
        prefetch.upto(ahead + steps + CHAINS_AHEAD);
        let before = pos;
        roll_fastcdc_chains(data, &mut pos, &mut hs, steps, mask);
        let mut hit = false;
        for l in (0..4).filter(|&l| pos[l] > before[l] && hs[l] & mask == 0) {
            out.push(pos[l] - 1);
            hit = true;
        }
        if hit {
            exits += 1;
            if exits > CHAINS_MAX_EXITS {
                out.truncate(first);
                return scalar::scan_fastcdc(data, from, to, mask, out);
            }
        }
    }
    for l in 0..4 {
        let mut h = hs[l];
        for (p, &b) in data.iter().enumerate().take(starts[l] + q).skip(pos[l]) {
            h = scalar::roll64(h, b);
            if h & mask == 0 {
                out.push(p);
            }
        }
    }
    // The chains found their hits in step order: put them in position order.
    out[first..].sort_unstable();
    // The positions that did not divide into four even parts.
    scalar::scan_fastcdc(data, from + 4 * q, to, mask, out);
}

// ---------------------------------------------------------------- AVX2, 8 lanes

/// 8x8 transpose of 32-bit elements: `r[l]` dword `t` becomes `r[t]` lane `l`.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
    let a0 = _mm256_unpacklo_epi32(r[0], r[1]);
    let a1 = _mm256_unpackhi_epi32(r[0], r[1]);
    let a2 = _mm256_unpacklo_epi32(r[2], r[3]);
    let a3 = _mm256_unpackhi_epi32(r[2], r[3]);
    let a4 = _mm256_unpacklo_epi32(r[4], r[5]);
    let a5 = _mm256_unpackhi_epi32(r[4], r[5]);
    let a6 = _mm256_unpacklo_epi32(r[6], r[7]);
    let a7 = _mm256_unpackhi_epi32(r[6], r[7]);
    // Within each 128-bit half q: b0 = column 4q of rows 0..4, b1 = 4q+1, b2 = 4q+2, b3 = 4q+3.
    let b0 = _mm256_unpacklo_epi64(a0, a2);
    let b1 = _mm256_unpackhi_epi64(a0, a2);
    let b2 = _mm256_unpacklo_epi64(a1, a3);
    let b3 = _mm256_unpackhi_epi64(a1, a3);
    let b4 = _mm256_unpacklo_epi64(a4, a6);
    let b5 = _mm256_unpackhi_epi64(a4, a6);
    let b6 = _mm256_unpacklo_epi64(a5, a7);
    let b7 = _mm256_unpackhi_epi64(a5, a7);
    [
        _mm256_permute2x128_si256::<0x20>(b0, b4),
        _mm256_permute2x128_si256::<0x20>(b1, b5),
        _mm256_permute2x128_si256::<0x20>(b2, b6),
        _mm256_permute2x128_si256::<0x20>(b3, b7),
        _mm256_permute2x128_si256::<0x31>(b0, b4),
        _mm256_permute2x128_si256::<0x31>(b1, b5),
        _mm256_permute2x128_si256::<0x31>(b2, b6),
        _mm256_permute2x128_si256::<0x31>(b3, b7),
    ]
}

/// The lanes (a bit each) whose value in `x` is at most the one in `below`.
#[inline]
#[target_feature(enable = "avx2")]
fn hit_lanes(x: __m256i, below: __m256i) -> u32 {
    let at_most = _mm256_cmpeq_epi32(_mm256_min_epu32(x, below), x);
    _mm256_movemask_ps(_mm256_castsi256_ps(at_most)) as u32
}

/// # Safety
/// The CPU must have AVX2 and BMI2.
#[target_feature(enable = "avx2,bmi2")]
pub(crate) unsafe fn scan_vector_avx2(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u32,
    out: &mut Vec<usize>,
) {
    const LANES: usize = 8;
    const STEP: usize = 32;
    const PREFETCH: usize = 8 * STEP;
    if mask.leading_ones() + mask.trailing_zeros() != 32 {
        // Not a mask of top bits: the minimum test below does not apply.
        return scalar::scan_vector(data, from, to, mask, out);
    }
    let from = scalar_head(data, from, to, mask, out);
    let Some(plan) = LanePlan::<LANES>::new(from, to, STEP) else {
        return scalar::scan_vector(data, from, to, mask, out);
    };
    let lo_table = _mm256_broadcastsi128_si256(_mm_loadu_si128(VECTOR_NIBBLES[0].as_ptr().cast()));
    let hi_table = _mm256_broadcastsi128_si256(_mm_loadu_si128(VECTOR_NIBBLES[1].as_ptr().cast()));
    let nibble = _mm256_set1_epi8(0x0f);
    // Byte k of every dword, zero-extended: the gear value of step k.
    let pick: [__m256i; 4] = std::array::from_fn(|k| {
        // Within each 128-bit half: byte k of dword d is byte 4d + k; 0x80 gives zero.
        let index: [u8; 32] =
            std::array::from_fn(|i| if i % 4 == 0 { (i % 16 + k) as u8 } else { 0x80 });
        // SAFETY: 32 bytes, the size of an unaligned 256-bit load.
        unsafe { _mm256_loadu_si256(index.as_ptr().cast()) }
    });
    // The mask is the top bits of the mixed hash (`gear::vector_masks`), so a
    // position hits when its mixed hash is at most `!mask`: the minimum of
    // several steps tells whether any of them hit.
    let below = _mm256_set1_epi32(!mask as i32);
    let mix = _mm256_set1_epi32(VECTOR_MIX as i32);
    let zero = _mm256_setzero_si256();
    let mut h = zero;
    let mut hits = Vec::new();
    let ptr = data.as_ptr();
    let mut off = 0;
    while off < plan.span {
        let mut rows = [zero; LANES];
        for (l, row) in rows.iter_mut().enumerate() {
            // SAFETY: base[l] + span <= to <= data.len() (LanePlan), and off + STEP <= span.
            let raw = unsafe { _mm256_loadu_si256(ptr.add(plan.base[l] + off).cast()) };
            // Eight streams are more than the hardware prefetcher follows well.
            _mm_prefetch::<_MM_HINT_T0>(ptr.wrapping_add(plan.base[l] + off + PREFETCH).cast());
            let lo = _mm256_shuffle_epi8(lo_table, _mm256_and_si256(raw, nibble));
            let hi = _mm256_shuffle_epi8(
                hi_table,
                _mm256_and_si256(_mm256_srli_epi16::<4>(raw), nibble),
            );
            *row = _mm256_xor_si256(lo, hi);
        }
        let cols = transpose8(rows);
        // The least mixed hash of each pair of columns (eight steps): a lane
        // hits in them exactly when that least value is at most `below`.
        let mut least = [zero; LANES / 2];
        for (pair, least) in cols.chunks_exact(2).zip(&mut least) {
            let mut m = [zero; 2];
            for (&col, m) in pair.iter().zip(&mut m) {
                let mut x = [zero; 4];
                for (k, x) in x.iter_mut().enumerate() {
                    h = _mm256_add_epi32(_mm256_add_epi32(h, h), _mm256_shuffle_epi8(col, pick[k]));
                    *x = _mm256_mullo_epi32(h, mix);
                }
                *m = _mm256_min_epu32(_mm256_min_epu32(x[0], x[1]), _mm256_min_epu32(x[2], x[3]));
            }
            *least = _mm256_min_epu32(m[0], m[1]);
        }
        let all = _mm256_min_epu32(
            _mm256_min_epu32(least[0], least[1]),
            _mm256_min_epu32(least[2], least[3]),
        );
        if hit_lanes(all, below) != 0 {
            // Which of the eight positions of a pair hit: rare, so ask the scalar hash.
            for (p, &least) in least.iter().enumerate() {
                let lanes = hit_lanes(least, below);
                for i in 0..8 {
                    plan.record_if(lanes, off + 8 * p + i, &mut hits, |pos| {
                        scalar::vector_hash_at(data, pos) & mask == 0
                    });
                }
            }
        }
        off += STEP;
    }
    finish(hits, out);
}

// ------------------------------------------------------------- AVX-512, 16 lanes

/// 16x16 transpose of 32-bit elements: `r[l]` dword `t` becomes `r[t]` lane `l`.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512i; 16]) -> [__m512i; 16] {
    let mut a = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // b[4g + j], 128-bit lane q: column 4q + j of rows 4g..4g+4.
    let mut b = [_mm512_setzero_si512(); 16];
    for g in 0..4 {
        b[4 * g] = _mm512_unpacklo_epi64(a[4 * g], a[4 * g + 2]);
        b[4 * g + 1] = _mm512_unpackhi_epi64(a[4 * g], a[4 * g + 2]);
        b[4 * g + 2] = _mm512_unpacklo_epi64(a[4 * g + 1], a[4 * g + 3]);
        b[4 * g + 3] = _mm512_unpackhi_epi64(a[4 * g + 1], a[4 * g + 3]);
    }
    let mut c = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        // Lanes (q0, q2) and (q1, q3) of rows 0..8, then of rows 8..16.
        let w_even = _mm512_shuffle_i32x4::<0x88>(b[j], b[4 + j]);
        let w_odd = _mm512_shuffle_i32x4::<0xdd>(b[j], b[4 + j]);
        let x_even = _mm512_shuffle_i32x4::<0x88>(b[8 + j], b[12 + j]);
        let x_odd = _mm512_shuffle_i32x4::<0xdd>(b[8 + j], b[12 + j]);
        c[j] = _mm512_shuffle_i32x4::<0x88>(w_even, x_even);
        c[8 + j] = _mm512_shuffle_i32x4::<0xdd>(w_even, x_even);
        c[4 + j] = _mm512_shuffle_i32x4::<0x88>(w_odd, x_odd);
        c[12 + j] = _mm512_shuffle_i32x4::<0xdd>(w_odd, x_odd);
    }
    c
}

/// # Safety
/// The CPU must have AVX-512 F/BW/VBMI/VNNI and BMI2.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni,bmi2")]
pub(crate) unsafe fn scan_vector_avx512(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u32,
    out: &mut Vec<usize>,
) {
    const LANES: usize = 16;
    const STEP: usize = 64;
    const PREFETCH: usize = 4 * STEP;
    let from = scalar_head(data, from, to, mask, out);
    let Some(plan) = LanePlan::<LANES>::new(from, to, STEP) else {
        return scalar::scan_vector(data, from, to, mask, out);
    };
    // vpermb reads the low 6 bits of each index: 64-entry copies of the nibble
    // tables make the `& 15` unnecessary (the bits above come from the shift).
    let lo_table: [u8; 64] = std::array::from_fn(|i| VECTOR_NIBBLES[0][i & 15]);
    let hi_table: [u8; 64] = std::array::from_fn(|i| VECTOR_NIBBLES[1][i & 15]);
    // SAFETY: both arrays are 64 bytes, the size of an unaligned 512-bit load.
    let (lo_table, hi_table) = unsafe {
        (
            _mm512_loadu_si512(lo_table.as_ptr().cast()),
            _mm512_loadu_si512(hi_table.as_ptr().cast()),
        )
    };
    // With VNNI one instruction adds the weighted bytes of a dword:
    // h after k+1 steps = (h << (k+1)) + sum of g_j << (k - j) for j <= k.
    let weights = [
        _mm512_set1_epi32(0x0000_0001),
        _mm512_set1_epi32(0x0000_0102),
        _mm512_set1_epi32(0x0001_0204),
        _mm512_set1_epi32(0x0102_0408),
    ];
    let vmask = _mm512_set1_epi32(mask as i32);
    let mix = _mm512_set1_epi32(VECTOR_MIX as i32);
    let mut h = _mm512_setzero_si512();
    let mut hits = Vec::new();
    let ptr = data.as_ptr();
    let mut off = 0;
    while off < plan.span {
        let mut rows = [_mm512_setzero_si512(); LANES];
        for (l, row) in rows.iter_mut().enumerate() {
            // SAFETY: base[l] + span <= to <= data.len() (LanePlan), and off + STEP <= span.
            let raw = unsafe { _mm512_loadu_si512(ptr.add(plan.base[l] + off).cast()) };
            // Sixteen streams are more than the hardware prefetcher follows well.
            _mm_prefetch::<_MM_HINT_T0>(ptr.wrapping_add(plan.base[l] + off + PREFETCH).cast());
            let lo = _mm512_permutexvar_epi8(raw, lo_table);
            let hi = _mm512_permutexvar_epi8(_mm512_srli_epi16::<4>(raw), hi_table);
            *row = _mm512_xor_si512(lo, hi);
        }
        let cols = transpose16(rows);
        // Hit masks of the STEP positions; checked once per iteration, off the hash chain.
        let mut found = [0u16; STEP];
        let mut any = 0u16;
        for (t, &col) in cols.iter().enumerate() {
            let steps = [
                _mm512_dpbusd_epi32(_mm512_slli_epi32::<1>(h), col, weights[0]),
                _mm512_dpbusd_epi32(_mm512_slli_epi32::<2>(h), col, weights[1]),
                _mm512_dpbusd_epi32(_mm512_slli_epi32::<3>(h), col, weights[2]),
                _mm512_dpbusd_epi32(_mm512_slli_epi32::<4>(h), col, weights[3]),
            ];
            for (k, hk) in steps.into_iter().enumerate() {
                let lanes = _mm512_testn_epi32_mask(_mm512_mullo_epi32(hk, mix), vmask);
                found[4 * t + k] = lanes;
                any |= lanes;
            }
            h = steps[3];
        }
        if any != 0 {
            for (i, &lanes) in found.iter().enumerate() {
                plan.record(u32::from(lanes), off + i, &mut hits);
            }
        }
        off += STEP;
    }
    finish(hits, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_scans_equal_the_reference_scan() {
        let data = crate::chunker::golden_input(13, 50_000);
        let zeros = vec![0u8; 8_192];
        for (data, from, to, mask) in [
            (&data, 0, 50_000, 0xff00_0000),
            (&data, 1, 49_999, 0xf000_0000),
            (&data, 31, 4_200, 0xc000_0000),
            (&data, 33, 33 + 4 * 16 * 64, 0xe000_0000),
            (&data, 3_000, 3_000 + 4 * 8 * 32 - 1, 0x8000_0000),
            (&data, 100, 20_000, 0),
            // Not a mask of top bits: the AVX2 kernel hands it to the reference.
            (&data, 100, 20_000, 0x0f0f_0000),
            (&zeros, 100, 8_000, 0),
            (&zeros, 0, 8_192, 0xffff_ffff),
        ] {
            let mut reference = vec![usize::MAX];
            scalar::scan_vector(data, from, to, mask, &mut reference);
            assert!(
                mask == 0xffff_ffff || reference.len() > 1,
                "mask {mask:#x} hits"
            );
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("bmi2")
            {
                let mut avx2 = vec![usize::MAX];
                // SAFETY: AVX2 and BMI2 were detected just above.
                unsafe { scan_vector_avx2(data, from, to, mask, &mut avx2) };
                assert_eq!(avx2, reference, "avx2 from {from} to {to} mask {mask:#x}");
            }
            if crate::chunker::Backend::Avx512.is_available() {
                let mut avx512 = vec![usize::MAX];
                // SAFETY: the AVX-512 backend's features were detected just above.
                unsafe { scan_vector_avx512(data, from, to, mask, &mut avx512) };
                assert_eq!(
                    avx512, reference,
                    "avx512 from {from} to {to} mask {mask:#x}"
                );
            }
        }
    }

    #[test]
    fn chains_equal_the_reference_scan() {
        let data = crate::chunker::golden_input(11, 70_000);
        let (strict, relaxed) = crate::chunker::gear::fastcdc_masks(64 << 10, 1);
        let mut checked_hits = 0;
        // Masks from no hit to every position; ranges short, odd, unaligned and long.
        for mask in [strict & relaxed, 0x3_0000, 0xff, 0x7, 0x1, 0] {
            for (from, to) in [
                (0, 70_000),
                (47, 3_119),
                (1, 1_025),
                (5, 2_058),
                (3_000, 3_000 + 4 * 256 + 7),
                (10_001, 10_001 + 3 * 1_024 + 3),
                (69_000, 70_000),
            ] {
                let mut reference = vec![7];
                let mut chains = vec![7];
                scalar::scan_fastcdc(&data, from, to, mask, &mut reference);
                scan_fastcdc_chains(&data, from, to, mask, &mut chains);
                assert_eq!(chains, reference, "from {from} to {to} mask {mask:#x}");
                checked_hits += reference.len() - 1;
            }
        }
        assert!(checked_hits > 100_000, "the masks gave hits to check");
    }

    #[test]
    fn chains_report_hits_on_both_steps_of_a_pair_and_in_every_chain() {
        // Mask 0x3f: a hit every 64 positions on average, fewer than the exit
        // cap in a short range, at even and odd offsets in all four chains.
        let data = crate::chunker::golden_input(5, 4_096);
        for (from, to) in [(100, 100 + 1_100), (101, 101 + 1_100)] {
            let mut reference = Vec::new();
            let mut chains = Vec::new();
            scalar::scan_fastcdc(&data, from, to, 0x3f, &mut reference);
            scan_fastcdc_chains(&data, from, to, 0x3f, &mut chains);
            assert_eq!(chains, reference);
            let q = ((to - from) / 4) & !1;
            for lane in 0..4 {
                let lane_hits: Vec<_> = reference
                    .iter()
                    .map(|&i| i - from)
                    .filter(|&i| i / q == lane)
                    .collect();
                assert!(lane_hits.iter().any(|i| i % 2 == 0), "lane {lane} even");
                assert!(lane_hits.iter().any(|i| i % 2 == 1), "lane {lane} odd");
            }
            assert!(reference.len() <= CHAINS_MAX_EXITS, "stays in the chains");
        }
    }

    #[test]
    fn transposes_put_dword_t_of_row_l_in_lane_l_of_column_t() {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected just above.
            unsafe {
                let rows: [__m256i; 8] = std::array::from_fn(|l| {
                    let v: [i32; 8] = std::array::from_fn(|t| (l * 100 + t) as i32);
                    std::mem::transmute(v)
                });
                let cols = transpose8(rows);
                for (t, col) in cols.iter().enumerate() {
                    let lanes: [i32; 8] = std::mem::transmute(*col);
                    assert_eq!(
                        lanes,
                        std::array::from_fn(|l| (l * 100 + t) as i32),
                        "column {t}"
                    );
                }
            }
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512 F was detected just above.
            unsafe {
                let rows: [__m512i; 16] = std::array::from_fn(|l| {
                    let v: [i32; 16] = std::array::from_fn(|t| (l * 100 + t) as i32);
                    std::mem::transmute(v)
                });
                let cols = transpose16(rows);
                for (t, col) in cols.iter().enumerate() {
                    let lanes: [i32; 16] = std::mem::transmute(*col);
                    assert_eq!(
                        lanes,
                        std::array::from_fn(|l| (l * 100 + t) as i32),
                        "column {t}"
                    );
                }
            }
        }
    }
}
