//! The plain float formats (f32, f16, bf16) and the scalar f16 conversions every
//! block format uses for its scales.
//!
//! Invariants: conversions are bit-exact with ggml's. f16 → f32 is exact; f32 → f16 rounds to
//! nearest even (what ggml's `GGML_FP32_TO_FP16` does on every path); f32 → bf16 is ggml's
//! `ggml_compute_fp32_to_bf16`: round to nearest even, NaN forced quiet, subnormals kept.

use half::f16;

/// f16 bits → f32 (exact).
#[inline]
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// f32 → f16 bits, round to nearest even.
#[inline]
pub(crate) fn f32_to_f16(v: f32) -> u16 {
    f16::from_f32(v).to_bits()
}

/// Rounds `v` through f16 and back: the value a scale stored as f16 is read back as.
#[inline]
pub(crate) fn round_f16(v: f32) -> f32 {
    f16_to_f32(f32_to_f16(v))
}

/// bf16 bits → f32 (exact).
#[inline]
pub(crate) fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// f32 → bf16 bits exactly as ggml rounds (nearest even; NaN made quiet, keeping its sign).
#[inline]
pub(crate) fn f32_to_bf16(v: f32) -> u16 {
    let u = v.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    // Cannot overflow: the largest finite/inf pattern plus 0x8000 stays below 2^32.
    ((u + (0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

/// Reads the little-endian u16 at byte `i`.
#[inline]
pub(crate) fn le_u16(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

/// Reads the f16 stored little-endian at byte `i` as f32.
#[inline]
pub(crate) fn le_f16(b: &[u8], i: usize) -> f32 {
    f16_to_f32(le_u16(b, i))
}

/// Writes `v` rounded to f16 at byte `i`.
#[inline]
pub(crate) fn put_f16(b: &mut [u8], i: usize, v: f32) {
    b[i..i + 2].copy_from_slice(&f32_to_f16(v).to_le_bytes());
}

pub(crate) fn dequant_f32(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
        *d = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    }
}

pub(crate) fn dequant_f16(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = f16_to_f32(u16::from_le_bytes([s[0], s[1]]));
    }
}

pub(crate) fn dequant_bf16(src: &[u8], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *d = bf16_to_f32(u16::from_le_bytes([s[0], s[1]]));
    }
}

pub(crate) fn quant_f32(src: &[f32], dst: &mut [u8]) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src) {
        d.copy_from_slice(&s.to_le_bytes());
    }
}

pub(crate) fn quant_f16(src: &[f32], dst: &mut [u8]) {
    for (d, s) in dst.chunks_exact_mut(2).zip(src) {
        d.copy_from_slice(&f32_to_f16(*s).to_le_bytes());
    }
}

pub(crate) fn quant_bf16(src: &[f32], dst: &mut [u8]) {
    for (d, s) in dst.chunks_exact_mut(2).zip(src) {
        d.copy_from_slice(&f32_to_bf16(*s).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounding_matches_ggml_rules() {
        // Ties go to even, carries ripple into the exponent, NaN stays NaN and quiet.
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3fff_ffff)), 0x4000);
        assert_eq!(f32_to_bf16(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(f32_to_bf16(f32::INFINITY), 0x7f80);
        // Subnormals are rounded, not flushed (current ggml).
        assert_eq!(f32_to_bf16(f32::from_bits(0x0001_8000)), 0x0002);
    }

    #[test]
    fn f16_rounds_to_nearest_even() {
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    }
}
