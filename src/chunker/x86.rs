//! x86_64 kernels behind `#[target_feature]`.
//!
//! FastCDC's hash is one serial chain (a shift and an add per byte), and
//! gather-based SIMD versions of it were measured slower than scalar code on
//! AMD, so its x86 kernels are the four-chain ILP kernel compiled for the
//! backend's features.
//!
//! The vector hash runs one independent stream per 32-bit lane (see
//! [`super::lanes`]): each iteration loads a row of bytes per lane, looks the
//! bytes up with two byte shuffles, transposes the rows so that one register
//! holds the next four bytes of every lane, then rolls and tests the hash of
//! all lanes at once, one byte per step. No gathers, no cross-lane work in
//! the hash itself.

use std::arch::x86_64::*;

use super::gear::{VECTOR_MIX, VECTOR_NIBBLES};
use super::lanes::{finish, scalar_head, LanePlan};
use super::scalar;

/// # Safety
/// The CPU must have AVX2 and BMI2.
#[target_feature(enable = "avx2,bmi2")]
pub(crate) unsafe fn scan_fastcdc_avx2(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u64,
    out: &mut Vec<usize>,
) {
    scalar::scan_fastcdc_ilp(data, from, to, mask, out)
}

/// # Safety
/// The CPU must have AVX-512 F/BW and BMI2.
#[target_feature(enable = "avx512f,avx512bw,bmi2")]
pub(crate) unsafe fn scan_fastcdc_avx512(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u64,
    out: &mut Vec<usize>,
) {
    scalar::scan_fastcdc_ilp(data, from, to, mask, out)
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
    let from = scalar_head(data, from, to, mask, out);
    let Some(plan) = LanePlan::<LANES>::new(from, to, STEP) else {
        return scalar::scan_vector(data, from, to, mask, out);
    };
    let lo_table = _mm256_broadcastsi128_si256(_mm_loadu_si128(VECTOR_NIBBLES[0].as_ptr().cast()));
    let hi_table = _mm256_broadcastsi128_si256(_mm_loadu_si128(VECTOR_NIBBLES[1].as_ptr().cast()));
    let nibble = _mm256_set1_epi8(0x0f);
    let byte = _mm256_set1_epi32(0xff);
    let vmask = _mm256_set1_epi32(mask as i32);
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
        // Hit masks of the STEP positions; checked once per iteration, off the hash chain.
        let mut found = [0u8; LANES];
        let mut any = 0u32;
        for (t, &col) in cols.iter().enumerate() {
            let g = [
                _mm256_and_si256(col, byte),
                _mm256_and_si256(_mm256_srli_epi32::<8>(col), byte),
                _mm256_and_si256(_mm256_srli_epi32::<16>(col), byte),
                _mm256_srli_epi32::<24>(col),
            ];
            let mut tested = [zero; 4];
            for (k, gk) in g.into_iter().enumerate() {
                h = _mm256_add_epi32(_mm256_add_epi32(h, h), gk);
                tested[k] = _mm256_and_si256(_mm256_mullo_epi32(h, mix), vmask);
            }
            // One test for four steps: a zero lane in any of them makes the minimum zero.
            let least = _mm256_min_epu32(
                _mm256_min_epu32(tested[0], tested[1]),
                _mm256_min_epu32(tested[2], tested[3]),
            );
            let lanes =
                _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(least, zero))) as u32;
            found[t] = lanes as u8;
            any |= lanes;
        }
        if any != 0 {
            // Which of the four positions hit: rare, so ask the scalar hash.
            for (t, &lanes) in found.iter().enumerate() {
                for k in 0..4 {
                    plan.record_if(u32::from(lanes), off + 4 * t + k, &mut hits, |pos| {
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
