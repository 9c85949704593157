//! GET_ROWS on every Vulkan device, every weight type, against the CPU reference
//! (`quant::dequantize`, the same quantized bytes):
//!
//! - get_rows: bit-exact, zeros for an id outside the table, a table at an odd offset.
//! - get_rows_h16: the rows as f16 through `dq_chunk_h`, the dequantization of the
//!   cooperative-matrix tiles (`dq_chunk_h`, `dq8_h`: `common/dequant_type.glsl`), so that code is checked on
//!   devices without cooperative matrices (lavapipe) too: the nearest half bit for bit
//!   where the kernel rounds once (floats, legacy types), derived bounds elsewhere
//!   ([`check_h16`]). A device without `shaderFloat16` fails it.
//!
//! Case names: `[Vulkan/<device>] get_rows(type=q4_K,ne0=768,rows=11,n=5,t_off=0)`.

mod common;

use common::{check_guards, for_each_device, guarded, quantized, words, Gpu};
use vkgraph::backend::vulkan::dispatch;
use vkgraph::quant::{self, GgmlType};

fn get_rows_case(gpu: &Gpu, ty: GgmlType, ne0: usize, nrows: usize, ids: &[i32], t_off: usize) {
    get_rows_case_with(gpu, ty, ne0, nrows, ids, t_off, false);
}

/// One gather: `get_rows` (f32, bit-exact), or with `h16` `get_rows_h16` (f16 through the
/// coopmat tiles' `dq_chunk_h`, checked by [`check_h16`]).
fn get_rows_case_with(
    gpu: &Gpu,
    ty: GgmlType,
    ne0: usize,
    nrows: usize,
    ids: &[i32],
    t_off: usize,
    h16: bool,
) {
    let name = if h16 { "get_rows_h16" } else { "get_rows" };
    let case = gpu.case(&format!(
        "{name}(type={ty},ne0={ne0},rows={nrows},n={},t_off={t_off})",
        ids.len()
    ));
    let table = quantized(ty, nrows, ne0, 51 + ne0 as u64);
    let rb = ty.row_bytes(ne0).unwrap();
    let mut want = vec![0f32; ne0 * ids.len()];
    for (i, &id) in ids.iter().enumerate() {
        if id >= 0 && (id as usize) < nrows {
            let row = &table[id as usize * rb..][..rb];
            quant::dequantize(ty, row, &mut want[i * ne0..][..ne0]).expect("dequantize");
        }
    }
    let mut tbytes = vec![0x5au8; t_off];
    tbytes.extend_from_slice(&table);
    let tbuf = gpu.buffer_from("table", &tbytes);
    let ibuf = gpu.buffer_from("ids", bytemuck::cast_slice(ids));
    let d_off = 5;
    // f32 words of output (f16: two values a word).
    let nw = if h16 {
        ne0 * ids.len() / 2
    } else {
        ne0 * ids.len()
    };
    let dbuf = guarded(gpu, "dst", d_off, &words(&vec![f32::NAN; nw]));

    let mut rec = gpu.ctx.recorder().expect("recorder");
    rec.begin().expect("begin");
    let record = if h16 {
        dispatch::get_rows::get_rows_h16
    } else {
        dispatch::get_rows::get_rows
    };
    record(
        &mut rec,
        ty,
        tbuf.range(t_off as u64, table.len() as u64),
        ibuf.range(0, (ids.len() * 4) as u64),
        dbuf.range((d_off * 4) as u64, (nw * 4) as u64),
        ne0 as u32,
        ids.len() as u32,
    )
    .unwrap_or_else(|e| panic!("{case}: {e}"));
    rec.submit_and_wait()
        .unwrap_or_else(|e| panic!("{case}: {e}"));

    let got = gpu.read_f32(&dbuf, d_off, nw);
    if h16 {
        let halves: Vec<u16> = bytemuck::cast_slice(&got).to_vec();
        check_h16(&case, ty, &table, ne0, ids, &halves, &want);
        check_guards(gpu, &dbuf, d_off, nw, &case);
        return;
    }
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits(),
            "{case}: value {i} (token {}, column {}) is {g:e}, CPU reference {w:e}",
            i / ne0,
            i % ne0
        );
    }
    check_guards(gpu, &dbuf, d_off, ne0 * ids.len(), &case);
}

#[test]
fn get_rows_all_types_exact() {
    for_each_device("get_rows_all_types", |gpu| {
        for ty in GgmlType::WEIGHT_TYPES {
            let ne0 = 3 * ty.block_size().max(32);
            get_rows_case(gpu, ty, ne0, 11, &[3, 0, 10, 3, 7], 0);
            // Odd placement: the table 2 bytes (f32: 4) into its buffer.
            let t_off = if ty == GgmlType::F32 { 4 } else { 2 };
            get_rows_case(gpu, ty, ne0, 5, &[4, 1], t_off);
            // Out-of-range ids give zeros.
            get_rows_case(gpu, ty, ne0, 4, &[2, 4, -1, 1], 0);
        }
        // Float tables need only ne0 % 4 == 0.
        for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
            get_rows_case(gpu, ty, 20, 6, &[5, 0, 2], 0);
        }
    });
}

/// The coopmat tiles' halves (`dq_chunk_h`, `dq8_h`) against the CPU's exact values
/// `want`, with bounds derived from what Vulkan promises of f16 arithmetic: each
/// conversion, multiply or add rounds to one of the two neighbouring halves (the direction
/// is the implementation's: an error below 1 ulp, not ½), `fma` may round twice, and a
/// result or scale below 2^-14 may be flushed to zero (2^-14 absolute):
/// - floats and legacy types (an exact f32 value packed, or (q - bias) · d in f16, one
///   rounding): one of the two halves around `want` (lavapipe: the nearest, checked too
///   by the mutation runs of this session);
/// - q2_K, q4_K, q5_K (q · dl - ml, with dl and ml rounded to f16 first): dl, ml, the
///   product and the difference each within 1 ulp: within 2^-10 (3 q dl + 2 ml) ≤
///   2^-8 (qmax dl + ml), dl and ml those of the value's 16- or 32-value group;
/// - q3_K, q6_K ((q - bias) times d · scale rounded to f16): two roundings, within
///   2^-9 (1 + 2^-10) |want|.
///
/// What that can and cannot catch (mutation runs, twenty-second session): a wrong bias,
/// nibble, high bit or scale index fails it (errors of a whole code step); a K-quant
/// scale off by under ~1 % (dl × 1.005, ml × 1.01 on q4_K) passes, as rounding to f16
/// in some direction would allow.
fn check_h16(
    case: &str,
    ty: GgmlType,
    table: &[u8],
    ne0: usize,
    ids: &[i32],
    got: &[u16],
    want: &[f32],
) {
    use GgmlType as T;
    let rb = ty.row_bytes(ne0).unwrap();
    let tiny = 2f32.powi(-14);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (t, col) = (i / ne0, i % ne0);
        let gv = half::f16::from_bits(g).to_f32();
        let near = half::f16::from_f32(w);
        let in_table = ids[t] >= 0 && (ids[t] as usize) < table.len() / rb;
        let block = |ty: GgmlType| &table[ids[t] as usize * rb + (col / 256) * ty.type_size()..];
        let f16_at = |b: &[u8], o: usize| half::f16::from_le_bytes([b[o], b[o + 1]]).to_f32();
        let err = (gv - w).abs();
        let ok = match ty {
            T::Q3K | T::Q6K => err <= w.abs() * 2f32.powi(-9) * (1.0 + 2f32.powi(-10)) + tiny,
            T::Q2K if in_table => {
                // Scale byte of the value's 16-value group: low nibble scale, high min.
                let b = block(ty);
                let sc = b[(col % 256) / 16];
                let dl = f16_at(b, 80) * f32::from(sc & 15);
                let ml = f16_at(b, 82) * f32::from(sc >> 4);
                err <= (3.0 * dl + ml) * 2f32.powi(-8) + tiny
            }
            T::Q4K | T::Q5K if in_table => {
                // The sub-block's dl and ml (scale_min_k4, as ggml).
                let b = block(ty);
                let (s, j) = (&b[4..16], (col % 256) / 32);
                let (sc, mn) = if j < 4 {
                    (s[j] & 63, s[j + 4] & 63)
                } else {
                    (
                        (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4),
                        (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
                    )
                };
                let qmax = if ty == T::Q4K { 15.0 } else { 31.0 };
                let (dl, ml) = (f16_at(b, 0) * f32::from(sc), f16_at(b, 2) * f32::from(mn));
                err <= (qmax * dl + ml) * 2f32.powi(-8) + tiny
            }
            _ => bracketing(w).contains(&g) || (w.abs() < tiny && gv == 0.0),
        };
        assert!(
            ok,
            "{case}: value {i} (token {t}, column {col}) is {gv:e} (0x{g:04x}), CPU reference \
             {w:e} (nearest half 0x{:04x})",
            near.to_bits()
        );
    }
}

/// The halves on either side of `w` (one, twice, where `w` is a half), as bits.
fn bracketing(w: f32) -> [u16; 2] {
    let n = half::f16::from_f32(w);
    let nv = n.to_f32();
    if nv == w {
        return [n.to_bits(); 2];
    }
    // One step from n towards w: the magnitude bits grow when w is farther from zero
    // than n (n, the nearest, has w's sign), else shrink; from zero, the smallest
    // subnormal of w's sign.
    let b = n.to_bits();
    let other = if nv == 0.0 {
        if w > 0.0 {
            0x0001
        } else {
            0x8001
        }
    } else if w.abs() > nv.abs() {
        b + 1
    } else {
        b - 1
    };
    [b, other]
}

#[test]
fn get_rows_h16_all_types() {
    for_each_device("get_rows_h16_all_types", |gpu| {
        if !gpu.ctx.caps().fp16 {
            panic!(
                "{}: no shaderFloat16: dq_chunk_h / dq8_h NOT TESTED",
                gpu.label
            );
        }
        for ty in GgmlType::WEIGHT_TYPES {
            let ne0 = 3 * ty.block_size().max(32);
            get_rows_case_with(gpu, ty, ne0, 11, &[3, 0, 10, 3, 7], 0, true);
            let t_off = if ty == GgmlType::F32 { 4 } else { 2 };
            get_rows_case_with(gpu, ty, ne0, 5, &[4, 1], t_off, true);
            get_rows_case_with(gpu, ty, ne0, 4, &[2, 4, -1, 1], 0, true);
        }
    });
}
