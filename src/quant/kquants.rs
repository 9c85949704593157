//! The k-quant super-block formats (256 values per block): q2_K, q3_K, q4_K, q5_K, q6_K.
//!
//! Each function handles exactly one super-block: `b` is its bytes, `x`/`y` its 256 values.
//! Byte layouts (little-endian, no padding), as in ggml-common.h:
//!
//! | type | bytes | layout |
//! |------|-------|--------|
//! | q2_K | 84  | scales: [u8; 16] (lo nibble scale, hi nibble min, per 16 values), qs: [u8; 64], d: f16, dmin: f16 |
//! | q3_K | 110 | hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12] (16 × 6-bit, packed), d: f16 |
//! | q4_K | 144 | d: f16, dmin: f16, scales: [u8; 12] (8 × 6-bit scale + 8 × 6-bit min), qs: [u8; 128] |
//! | q5_K | 176 | d: f16, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128] |
//! | q6_K | 210 | ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16 |
//!
//! 2-bit fields of q2_K/q3_K/q6_K: within each 128 values, byte `l` of a 32-byte run holds
//! values `l`, `l+32`, `l+64`, `l+96` at bit offsets 0, 2, 4, 6.
//! Quantizers are ggml's `quantize_row_*_ref` (no importance matrix), operation for operation.

use super::float::{le_f16, put_f16, round_f16};
use super::search::GROUP_MAX_EPS;
use super::search::{make_q3_quants, make_qkx2_quants, make_qx_quants, nearest_int, Qkx2};

const QK_K: usize = 256;

// ---- shared packing helpers -----------------------------------------------------------------

/// Scale `j` (0..8) and min of q4_K/q5_K's 12-byte packed 6-bit scales.
#[inline]
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Packs 8 six-bit scales and mins into q4_K/q5_K's 12 bytes (inverse of [`scale_min_k4`]).
fn pack_scale_min_k4(ls: &[u8; 8], lm: &[u8; 8], out: &mut [u8]) {
    out[..12].fill(0);
    for j in 0..8 {
        if j < 4 {
            out[j] = ls[j];
            out[j + 4] = lm[j];
        } else {
            out[j + 4] = (ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4);
            out[j - 4] |= (ls[j] >> 4) << 6;
            out[j] |= (lm[j] >> 4) << 6;
        }
    }
}

/// Signed 6-bit scale `j` (0..16) of q3_K's 12 packed bytes, minus its bias of 32.
#[inline]
fn scale_k3(j: usize, s: &[u8]) -> i8 {
    let lo = if j < 8 { s[j] & 0x0f } else { s[j - 8] >> 4 };
    let hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    (lo | (hi << 4)) as i8 - 32
}

/// Packs 2-bit levels `l[0..256]` into 64 bytes, four 32-value runs per 128 values.
fn pack_2bit(l: &[u8], qs: &mut [u8]) {
    for j in (0..QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] =
                l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

/// Signed levels → their unsigned storage form (the caller already offset them).
#[inline]
fn as_u8(l: &[i8; QK_K]) -> [u8; QK_K] {
    l.map(|v| v as u8)
}

// ---- dequantization ---------------------------------------------------------------------------

pub(crate) fn dequant_q2_k(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let d = le_f16(b, 80);
    let min = le_f16(b, 82);
    let mut out = 0;
    let mut is = 0;
    for half in 0..2 {
        let q = &qs[32 * half..32 * half + 32];
        for shift in (0..8).step_by(2) {
            for part in 0..2 {
                let sc = scales[is];
                is += 1;
                let dl = d * (sc & 0x0f) as f32;
                let ml = min * (sc >> 4) as f32;
                for &byte in &q[16 * part..16 * part + 16] {
                    y[out] = dl * ((byte >> shift) & 3) as f32 - ml;
                    out += 1;
                }
            }
        }
    }
}

pub(crate) fn dequant_q3_k(b: &[u8], y: &mut [f32]) {
    let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
    let d_all = le_f16(b, 108);
    let mut out = 0;
    let mut is = 0;
    let mut m = 1u8;
    for half in 0..2 {
        let q = &qs[32 * half..32 * half + 32];
        for shift in (0..8).step_by(2) {
            for part in 0..2 {
                let dl = d_all * scale_k3(is, scales) as f32;
                is += 1;
                for l in 16 * part..16 * part + 16 {
                    let lo = ((q[l] >> shift) & 3) as i32;
                    let v = lo - if hmask[l] & m != 0 { 0 } else { 4 };
                    y[out] = dl * v as f32;
                    out += 1;
                }
            }
            m <<= 1;
        }
    }
}

pub(crate) fn dequant_q4_k(b: &[u8], y: &mut [f32]) {
    let d = le_f16(b, 0);
    let min = le_f16(b, 2);
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for j in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * j, scales);
        let (sc2, m2) = scale_min_k4(2 * j + 1, scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        let q = &qs[32 * j..32 * j + 32];
        let out = &mut y[64 * j..64 * j + 64];
        for l in 0..32 {
            out[l] = d1 * (q[l] & 0x0f) as f32 - m1;
            out[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

pub(crate) fn dequant_q5_k(b: &[u8], y: &mut [f32]) {
    let d = le_f16(b, 0);
    let min = le_f16(b, 2);
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for j in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * j, scales);
        let (sc2, m2) = scale_min_k4(2 * j + 1, scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
        let q = &qs[32 * j..32 * j + 32];
        let out = &mut y[64 * j..64 * j + 64];
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            out[l] = d1 * ((q[l] & 0x0f) + h1) as f32 - m1;
            out[l + 32] = d2 * ((q[l] >> 4) + h2) as f32 - m2;
        }
    }
}

pub(crate) fn dequant_q6_k(b: &[u8], y: &mut [f32]) {
    let d = le_f16(b, 208);
    for half in 0..2 {
        let ql = &b[64 * half..64 * half + 64];
        let qh = &b[128 + 32 * half..128 + 32 * half + 32];
        let sc = &b[192 + 8 * half..192 + 8 * half + 8];
        let out = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            out[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            out[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            out[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            out[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

// ---- quantization -----------------------------------------------------------------------------

pub(crate) fn quant_q2_k(x: &[f32], b: &mut [u8]) {
    const Q4SCALE: f32 = 15.0;
    let search = Qkx2 {
        nmax: 3,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    let mut l = [0u8; QK_K];
    let mut scales = [0.0f32; 16];
    let mut mins = [0.0f32; 16];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..16 {
        let xs = &x[16 * j..16 * j + 16];
        let weights: [f32; 16] = std::array::from_fn(|i| xs[i].abs());
        (scales[j], mins[j]) = make_qkx2_quants(&search, xs, &weights, &mut l[16 * j..16 * j + 16]);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }

    let mut sc = [0u8; 16];
    let d = if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for j in 0..16 {
            sc[j] = nearest_int(iscale * scales[j]) as u8;
        }
        max_scale / Q4SCALE
    } else {
        0.0
    };
    let dmin = if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for j in 0..16 {
            sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
        }
        max_min / Q4SCALE
    } else {
        0.0
    };
    put_f16(b, 80, d);
    put_f16(b, 82, dmin);
    let (d, dmin) = (round_f16(d), round_f16(dmin));

    for (j, &s) in sc.iter().enumerate() {
        let dj = d * (s & 0x0f) as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin * (s >> 4) as f32;
        for i in 16 * j..16 * j + 16 {
            l[i] = nearest_int((x[i] + dm) / dj).clamp(0, 3) as u8;
        }
    }
    b[0..16].copy_from_slice(&sc);
    pack_2bit(&l, &mut b[16..80]);
}

pub(crate) fn quant_q3_k(x: &[f32], b: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    let mut max_scale = 0.0f32;
    let mut amax = 0.0f32;
    for j in 0..16 {
        scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
        if scales[j].abs() > amax {
            amax = scales[j].abs();
            max_scale = scales[j];
        }
    }

    let mut s = [0u8; 12];
    let d = if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for j in 0..16 {
            // ggml stores nearest_int into an int8_t first: keep that wrap.
            let q = (nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32;
            let q = q as u8;
            if j < 8 {
                s[j] = q & 0x0f;
            } else {
                s[j - 8] |= (q & 0x0f) << 4;
            }
            s[j % 4 + 8] |= (q >> 4) << (2 * (j / 4));
        }
        1.0 / iscale
    } else {
        0.0
    };
    put_f16(b, 108, d);
    let d = round_f16(d);

    for j in 0..16 {
        let dj = d * scale_k3(j, &s) as f32;
        if dj == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            l[i] = (nearest_int(x[i] / dj).clamp(-4, 3) + 4) as i8;
        }
    }

    let mut l = as_u8(&l);
    let hmask = &mut b[0..32];
    hmask.fill(0);
    for (j, v) in l.iter_mut().enumerate() {
        if *v > 3 {
            hmask[j % 32] |= 1 << (j / 32);
            *v -= 4;
        }
    }
    pack_2bit(&l, &mut b[32..96]);
    b[96..108].copy_from_slice(&s);
}

/// The shared first half of q4_K and q5_K: per-32 asymmetric searches, 6-bit scales/mins
/// written to bytes 0..16 (d, dmin, scales), and the final levels `0..=nmax` returned.
fn quant_k4_scales(x: &[f32], b: &mut [u8], search: &Qkx2) -> [u8; QK_K] {
    let mut l = [0u8; QK_K];
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; 32] = std::array::from_fn(|i| av_x + xs[i].abs());
        (scales[j], mins[j]) = make_qkx2_quants(search, xs, &weights, &mut l[32 * j..32 * j + 32]);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }

    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // ggml assigns nearest_int to a uint8_t before clamping to 63: keep that truncation.
    let ls: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_scale * scales[j]) as u8).min(63));
    let lm: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_min * mins[j]) as u8).min(63));
    pack_scale_min_k4(&ls, &lm, &mut b[4..16]);
    put_f16(b, 0, max_scale / 63.0);
    put_f16(b, 2, max_min / 63.0);
    let d = round_f16(max_scale / 63.0);
    let dmin = round_f16(max_min / 63.0);

    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &b[4..16]);
        let dj = d * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin * m as f32;
        for i in 32 * j..32 * j + 32 {
            l[i] = nearest_int((x[i] + dm) / dj).clamp(0, search.nmax) as u8;
        }
    }
    l
}

pub(crate) fn quant_q4_k(x: &[f32], b: &mut [u8]) {
    let search = Qkx2 {
        nmax: 15,
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
        use_mad: false,
    };
    let l = quant_k4_scales(x, b, &search);
    let qs = &mut b[16..144];
    for j in 0..4 {
        for i in 0..32 {
            qs[32 * j + i] = l[64 * j + i] | (l[64 * j + i + 32] << 4);
        }
    }
}

pub(crate) fn quant_q5_k(x: &[f32], b: &mut [u8]) {
    let search = Qkx2 {
        nmax: 31,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: false,
    };
    let l = quant_k4_scales(x, b, &search);
    let (qh, qs) = b[16..176].split_at_mut(32);
    qh.fill(0);
    for j in 0..4 {
        let (m1, m2) = (1u8 << (2 * j), 2u8 << (2 * j));
        for i in 0..32 {
            let mut l1 = l[64 * j + i];
            if l1 > 15 {
                l1 -= 16;
                qh[i] |= m1;
            }
            let mut l2 = l[64 * j + i + 32];
            if l2 > 15 {
                l2 -= 16;
                qh[i] |= m2;
            }
            qs[32 * j + i] = l1 | (l2 << 4);
        }
    }
}

pub(crate) fn quant_q6_k(x: &[f32], b: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; 16];
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for j in 0..16 {
        scales[j] = make_qx_quants(32, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
        if scales[j].abs() > max_abs_scale {
            max_abs_scale = scales[j].abs();
            max_scale = scales[j];
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        b[..210].fill(0);
        return;
    }

    let iscale = -128.0 / max_scale;
    put_f16(b, 208, 1.0 / iscale);
    let d = round_f16(1.0 / iscale);
    let mut sc = [0i8; 16];
    for j in 0..16 {
        sc[j] = nearest_int(iscale * scales[j]).min(127) as i8;
    }
    for (j, &s) in sc.iter().enumerate() {
        let dj = d * s as f32;
        if dj == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            l[i] = (nearest_int(x[i] / dj).clamp(-32, 31) + 32) as i8;
        }
    }

    let l = as_u8(&l);
    for half in 0..2 {
        let lh = &l[128 * half..128 * half + 128];
        for i in 0..32 {
            let (q1, q2, q3, q4) = (lh[i], lh[i + 32], lh[i + 64], lh[i + 96]);
            b[64 * half + i] = (q1 & 0x0f) | ((q3 & 0x0f) << 4);
            b[64 * half + i + 32] = (q2 & 0x0f) | ((q4 & 0x0f) << 4);
            b[128 + 32 * half + i] =
                (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
    for (dst, s) in b[192..208].iter_mut().zip(sc) {
        *dst = s as u8;
    }
}
