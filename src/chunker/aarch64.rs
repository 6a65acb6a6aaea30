//! aarch64 kernels behind `#[target_feature]`.
//!
//! FastCDC's hash is one serial chain, so its NEON kernel is the four-chain
//! ILP kernel compiled for NEON (as on x86).
//!
//! The vector hash runs one independent stream per 32-bit lane (see
//! [`super::lanes`]), eight lanes in two `uint32x4_t` (two independent hash
//! chains for the CPU to overlap). Each iteration loads a row of 16 bytes per
//! lane, looks the bytes up with two `tbl` on the nibble tables, transposes
//! the rows (4x4 per half) so that one register holds the next four bytes of
//! four lanes, then rolls and tests the hash of all lanes at once, one byte
//! per step. No gathers, no cross-lane work in the hash itself.

use std::arch::aarch64::*;

use super::gear::{VECTOR_MIX, VECTOR_NIBBLES};
use super::lanes::{finish, scalar_head, LanePlan};
use super::scalar;

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn scan_fastcdc_neon(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u64,
    out: &mut Vec<usize>,
) {
    scalar::scan_fastcdc_ilp(data, from, to, mask, out)
}

/// 4x4 transpose of 32-bit elements: `r[l]` word `t` becomes `r[t]` lane `l`.
#[inline]
#[target_feature(enable = "neon")]
fn transpose4(r: [uint32x4_t; 4]) -> [uint32x4_t; 4] {
    // a0 = [r0.0 r1.0 r0.2 r1.2], a1 = [r0.1 r1.1 r0.3 r1.3]; a2, a3 likewise of r2, r3.
    let a0 = vreinterpretq_u64_u32(vtrn1q_u32(r[0], r[1]));
    let a1 = vreinterpretq_u64_u32(vtrn2q_u32(r[0], r[1]));
    let a2 = vreinterpretq_u64_u32(vtrn1q_u32(r[2], r[3]));
    let a3 = vreinterpretq_u64_u32(vtrn2q_u32(r[2], r[3]));
    [
        vreinterpretq_u32_u64(vtrn1q_u64(a0, a2)),
        vreinterpretq_u32_u64(vtrn1q_u64(a1, a3)),
        vreinterpretq_u32_u64(vtrn2q_u64(a0, a2)),
        vreinterpretq_u32_u64(vtrn2q_u64(a1, a3)),
    ]
}

/// The four bytes of each lane of `col`, lowest (earliest in the stream) first.
#[inline]
#[target_feature(enable = "neon")]
fn split_bytes(col: uint32x4_t) -> [uint32x4_t; 4] {
    let byte = vdupq_n_u32(0xff);
    [
        vandq_u32(col, byte),
        vandq_u32(vshrq_n_u32::<8>(col), byte),
        vandq_u32(vshrq_n_u32::<16>(col), byte),
        vshrq_n_u32::<24>(col),
    ]
}

/// # Safety
/// The CPU must have NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn scan_vector_neon(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u32,
    out: &mut Vec<usize>,
) {
    const LANES: usize = 8;
    const STEP: usize = 16;
    let from = scalar_head(data, from, to, mask, out);
    let Some(plan) = LanePlan::<LANES>::new(from, to, STEP) else {
        return scalar::scan_vector(data, from, to, mask, out);
    };
    // Bit l of a step's lane mask, for the 16-bit hit flag of lane l.
    let lane_bits: [u16; LANES] = std::array::from_fn(|l| 1 << l);
    // SAFETY: each nibble table is 16 bytes and `lane_bits` is 8 u16: exactly
    // one 128-bit load each.
    let (lo_table, hi_table, lane_bits) = unsafe {
        (
            vld1q_u8(VECTOR_NIBBLES[0].as_ptr()),
            vld1q_u8(VECTOR_NIBBLES[1].as_ptr()),
            vld1q_u16(lane_bits.as_ptr()),
        )
    };
    let nibble = vdupq_n_u8(0x0f);
    let vmask = vdupq_n_u32(mask);
    let mix = vdupq_n_u32(VECTOR_MIX);
    let zero = vdupq_n_u32(0);
    // Lanes 0..4 in h[0], lanes 4..8 in h[1].
    let mut h = [zero; 2];
    let mut hits = Vec::new();
    let ptr = data.as_ptr();
    let mut off = 0;
    while off < plan.span {
        let mut rows = [zero; LANES];
        for (l, row) in rows.iter_mut().enumerate() {
            // SAFETY: base[l] + span <= to <= data.len() (LanePlan), and
            // off + STEP <= span (span is a multiple of STEP, off < span).
            let raw = unsafe { vld1q_u8(ptr.add(plan.base[l] + off)) };
            let lo = vqtbl1q_u8(lo_table, vandq_u8(raw, nibble));
            let hi = vqtbl1q_u8(hi_table, vshrq_n_u8::<4>(raw));
            *row = vreinterpretq_u32_u8(veorq_u8(lo, hi));
        }
        let cols = [
            transpose4([rows[0], rows[1], rows[2], rows[3]]),
            transpose4([rows[4], rows[5], rows[6], rows[7]]),
        ];
        // Hit flags of the STEP positions (0xffff in lane l when lane l hit);
        // checked once per iteration, off the hash chain.
        let mut found = [vdupq_n_u16(0); STEP];
        let mut any = vdupq_n_u16(0);
        for t in 0..STEP / 4 {
            let g = [split_bytes(cols[0][t]), split_bytes(cols[1][t])];
            for k in 0..4 {
                let mut tested = [zero; 2];
                for (half, hh) in h.iter_mut().enumerate() {
                    *hh = vaddq_u32(vaddq_u32(*hh, *hh), g[half][k]);
                    tested[half] = vceqzq_u32(vandq_u32(vmulq_u32(*hh, mix), vmask));
                }
                let flags = vcombine_u16(vmovn_u32(tested[0]), vmovn_u32(tested[1]));
                found[4 * t + k] = flags;
                any = vorrq_u16(any, flags);
            }
        }
        if vmaxvq_u16(any) != 0 {
            for (i, &flags) in found.iter().enumerate() {
                let lanes = vaddvq_u16(vandq_u16(flags, lane_bits));
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
    fn transpose_puts_word_t_of_row_l_in_lane_l_of_column_t() {
        if !std::arch::is_aarch64_feature_detected!("neon") {
            return;
        }
        let rows: [[u32; 4]; 4] =
            std::array::from_fn(|l| std::array::from_fn(|t| (l * 100 + t) as u32));
        // SAFETY: NEON was detected just above; every load and store moves
        // exactly the four u32 of a `[u32; 4]`.
        unsafe {
            let cols = transpose4(rows.map(|row| vld1q_u32(row.as_ptr())));
            for (t, col) in cols.iter().enumerate() {
                let mut lanes = [0u32; 4];
                vst1q_u32(lanes.as_mut_ptr(), *col);
                assert_eq!(
                    lanes,
                    std::array::from_fn(|l| (l * 100 + t) as u32),
                    "column {t}"
                );
            }
        }
    }

    #[test]
    fn neon_vector_scan_equals_reference_scan() {
        if !std::arch::is_aarch64_feature_detected!("neon") {
            return;
        }
        let data = noise(50_000, 11);
        let zeros = vec![0u8; 8_192];
        for (data, from, to, mask) in [
            (&data, 0, 50_000, 0xff00_0000),
            (&data, 1, 49_999, 0xf000_0000),
            (&data, 31, 4_200, 0xc000_0000),
            (&data, 33, 33 + 4 * 8 * 16, 0xe000_0000),
            (&data, 3_000, 3_000 + 4 * 8 * 16 - 1, 0x8000_0000),
            (&data, 100, 20_000, 0),
            (&zeros, 100, 8_000, 0),
            (&zeros, 0, 8_192, 0xffff_ffff),
        ] {
            let mut a = vec![usize::MAX];
            let mut b = vec![usize::MAX];
            scalar::scan_vector(data, from, to, mask, &mut a);
            // SAFETY: NEON was detected just above.
            unsafe { scan_vector_neon(data, from, to, mask, &mut b) };
            assert_eq!(a, b, "from {from} to {to} mask {mask:#x}");
        }
    }
}
