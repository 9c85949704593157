//! The legacy 32-value block formats: q4_0, q4_1, q5_0, q5_1, q8_0.
//!
//! Each function handles exactly one block: `b` is the block's bytes (`type_size`), `x`/`y`
//! its 32 values. Layouts (little-endian, no padding), as in ggml-common.h:
//!
//! | type | bytes | layout |
//! |------|-------|--------|
//! | q4_0 | 18 | d: f16, qs: [u8; 16] (value j in low nibble of qs[j], j+16 in high nibble) |
//! | q4_1 | 20 | d: f16, m: f16, qs: [u8; 16] |
//! | q5_0 | 22 | d: f16, qh: [u8; 4] (bit j = 5th bit of value j), qs: [u8; 16] |
//! | q5_1 | 24 | d: f16, m: f16, qh: [u8; 4], qs: [u8; 16] |
//! | q8_0 | 34 | d: f16, qs: [i8; 32] |
//!
//! Quantizers follow ggml's `quantize_row_*_ref` operation for operation (f32 arithmetic in
//! the same order, the same truncating casts) so the bytes are identical to ggml's.

use super::float::{le_f16, put_f16};

const QK: usize = 32;

pub(crate) fn dequant_q4_0(b: &[u8], y: &mut [f32]) {
    let d = le_f16(b, 0);
    let qs = &b[2..18];
    for j in 0..QK / 2 {
        y[j] = ((qs[j] & 0x0f) as i32 - 8) as f32 * d;
        y[j + QK / 2] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

pub(crate) fn dequant_q4_1(b: &[u8], y: &mut [f32]) {
    let d = le_f16(b, 0);
    let m = le_f16(b, 2);
    let qs = &b[4..20];
    for j in 0..QK / 2 {
        y[j] = (qs[j] & 0x0f) as f32 * d + m;
        y[j + QK / 2] = (qs[j] >> 4) as f32 * d + m;
    }
}

/// The 5th bits of a q5 block's 32 values.
#[inline]
fn qh32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn dequant_q5_0(b: &[u8], y: &mut [f32]) {
    let d = le_f16(b, 0);
    let qh = qh32(b, 2);
    let qs = &b[6..22];
    for j in 0..QK / 2 {
        let h0 = ((qh >> j) << 4) as u8 & 0x10;
        let h1 = (qh >> (j + 12)) as u8 & 0x10;
        y[j] = (((qs[j] & 0x0f) | h0) as i32 - 16) as f32 * d;
        y[j + QK / 2] = (((qs[j] >> 4) | h1) as i32 - 16) as f32 * d;
    }
}

pub(crate) fn dequant_q5_1(b: &[u8], y: &mut [f32]) {
    let d = le_f16(b, 0);
    let m = le_f16(b, 2);
    let qh = qh32(b, 4);
    let qs = &b[8..24];
    for j in 0..QK / 2 {
        let h0 = ((qh >> j) << 4) as u8 & 0x10;
        let h1 = (qh >> (j + 12)) as u8 & 0x10;
        y[j] = ((qs[j] & 0x0f) | h0) as f32 * d + m;
        y[j + QK / 2] = ((qs[j] >> 4) | h1) as f32 * d + m;
    }
}

pub(crate) fn dequant_q8_0(b: &[u8], y: &mut [f32]) {
    let d = le_f16(b, 0);
    for (v, &q) in y.iter_mut().zip(&b[2..34]) {
        *v = (q as i8) as f32 * d;
    }
}

/// The value of largest magnitude (the first one on ties), as ggml's `amax`/`max` loop finds it.
#[inline]
fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

#[inline]
fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// C's `(int8_t)(float)`: truncate toward zero, then keep the low byte.
#[inline]
fn trunc_i8(v: f32) -> i8 {
    v as i32 as i8
}

pub(crate) fn quant_q4_0(x: &[f32], b: &mut [u8]) {
    let max = signed_absmax(x);
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d);
    for j in 0..QK / 2 {
        let q0 = trunc_i8(x[j] * id + 8.5).min(15) as u8;
        let q1 = trunc_i8(x[j + QK / 2] * id + 8.5).min(15) as u8;
        b[2 + j] = q0 | (q1 << 4);
    }
}

pub(crate) fn quant_q4_1(x: &[f32], b: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d);
    put_f16(b, 2, min);
    for j in 0..QK / 2 {
        let q0 = trunc_i8((x[j] - min) * id + 0.5).min(15) as u8;
        let q1 = trunc_i8((x[j + QK / 2] - min) * id + 0.5).min(15) as u8;
        b[4 + j] = q0 | (q1 << 4);
    }
}

pub(crate) fn quant_q5_0(x: &[f32], b: &mut [u8]) {
    let max = signed_absmax(x);
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d);
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let q0 = trunc_i8(x[j] * id + 16.5).min(31) as u8;
        let q1 = trunc_i8(x[j + QK / 2] * id + 16.5).min(31) as u8;
        b[6 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
        qh |= (((q0 & 0x10) >> 4) as u32) << j;
        qh |= (((q1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    b[2..6].copy_from_slice(&qh.to_le_bytes());
}

pub(crate) fn quant_q5_1(x: &[f32], b: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d);
    put_f16(b, 2, min);
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        // ggml casts straight to uint8_t here (no clamp): same truncation, low byte kept.
        let q0 = ((x[j] - min) * id + 0.5) as i32 as u8;
        let q1 = ((x[j + QK / 2] - min) * id + 0.5) as i32 as u8;
        b[8 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
        qh |= (((q0 & 0x10) >> 4) as u32) << j;
        qh |= (((q1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    b[4..8].copy_from_slice(&qh.to_le_bytes());
}

pub(crate) fn quant_q8_0(x: &[f32], b: &mut [u8]) {
    let mut amax = 0.0f32;
    for &v in x {
        amax = amax.max(v.abs());
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(b, 0, d);
    for (q, &v) in b[2..34].iter_mut().zip(x) {
        // roundf rounds half away from zero, as f32::round does.
        *q = (v * id).round() as i32 as i8 as u8;
    }
}
