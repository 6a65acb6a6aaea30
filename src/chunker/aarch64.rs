//! aarch64 kernels behind `#[target_feature]`.

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
    scalar::scan_vector(data, from, to, mask, out)
}
