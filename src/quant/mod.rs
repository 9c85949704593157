//! Quantization formats: the type table ([`GgmlType`]) and CPU reference
//! dequantization / quantization for every supported type, with ggml's block layouts.
//!
//! Invariants:
//! - [`dequantize`] is bit-exact with ggml's `dequantize_row_*` / `*_to_fp32_row`.
//! - [`quantize`] is byte-exact with ggml's `ggml_quantize_chunk` without an importance matrix
//!   (the `quantize_row_*_ref` algorithms), so files we write are what llama-quantize writes.
//! - Both are checked against fixtures produced by ggml itself (`tests/quant.rs`,
//!   `scripts/gen_quant_fixtures.py`).
//! - Lengths are validated up front; bad input is an error, never a panic.

mod float;
mod kquants;
mod legacy;
mod search;
mod types;

pub use types::{ggml_type_name, GgmlType};

use crate::{Error, Result};

/// Largest block (values) of any supported type: the k-quant super-block.
const MAX_BLOCK: usize = 256;

type DequantFn = fn(&[u8], &mut [f32]);
type QuantFn = fn(&[f32], &mut [u8]);

/// The per-block codec of a weight type. For the float types a "block" is one value, and the
/// functions accept any whole number of values at once.
struct Codec {
    dequant: DequantFn,
    quant: QuantFn,
}

fn codec(ty: GgmlType) -> Option<Codec> {
    use GgmlType as T;
    let (dequant, quant): (DequantFn, QuantFn) = match ty {
        T::F32 => (float::dequant_f32, float::quant_f32),
        T::F16 => (float::dequant_f16, float::quant_f16),
        T::BF16 => (float::dequant_bf16, float::quant_bf16),
        T::Q4_0 => (legacy::dequant_q4_0, legacy::quant_q4_0),
        T::Q4_1 => (legacy::dequant_q4_1, legacy::quant_q4_1),
        T::Q5_0 => (legacy::dequant_q5_0, legacy::quant_q5_0),
        T::Q5_1 => (legacy::dequant_q5_1, legacy::quant_q5_1),
        T::Q8_0 => (legacy::dequant_q8_0, legacy::quant_q8_0),
        T::Q2K => (kquants::dequant_q2_k, kquants::quant_q2_k),
        T::Q3K => (kquants::dequant_q3_k, kquants::quant_q3_k),
        T::Q4K => (kquants::dequant_q4_k, kquants::quant_q4_k),
        T::Q5K => (kquants::dequant_q5_k, kquants::quant_q5_k),
        T::Q6K => (kquants::dequant_q6_k, kquants::quant_q6_k),
        T::I32 => return None,
    };
    Some(Codec { dequant, quant })
}

fn codec_or_err(ty: GgmlType, what: &str) -> Result<Codec> {
    codec(ty).ok_or_else(|| {
        Error::Unsupported(format!(
            "{what} of type {ty}: not a weight type (supported: f32, f16, bf16, q4_0, q4_1, \
             q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K)"
        ))
    })
}

/// Checks that `bytes` bytes hold exactly `n` values of `ty` (a whole number of blocks).
/// Returns a [`Error::Usage`] naming the type and both sizes otherwise. Callers of
/// [`dot_row`] use this once per tensor instead of per row.
pub fn check_row(ty: GgmlType, n: usize, bytes: usize) -> Result<()> {
    match ty.row_bytes(n) {
        None => Err(Error::Usage(format!(
            "{ty}: {n} values is not a multiple of the block size {}",
            ty.block_size()
        ))),
        Some(want) if want != bytes => Err(Error::Usage(format!(
            "{ty}: {n} values take {want} bytes, got {bytes}"
        ))),
        Some(_) => Ok(()),
    }
}

/// Dequantizes `dst.len()` values of type `ty` from `src` (ggml's layout) into `dst`.
///
/// `dst.len()` must be a multiple of the block size and `src.len()` must equal
/// `ty.row_bytes(dst.len())`; `ty` must be one of [`GgmlType::WEIGHT_TYPES`].
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<()> {
    let c = codec_or_err(ty, "dequantization")?;
    check_row(ty, dst.len(), src.len())?;
    if ty.is_quantized() {
        let bs = ty.block_size();
        for (b, y) in src
            .chunks_exact(ty.type_size())
            .zip(dst.chunks_exact_mut(bs))
        {
            (c.dequant)(b, y);
        }
    } else {
        (c.dequant)(src, dst);
    }
    Ok(())
}

/// Quantizes `src` to type `ty` exactly as ggml's reference quantizer does (no importance
/// matrix). `src.len()` must be a multiple of the block size.
pub fn quantize(ty: GgmlType, src: &[f32]) -> Result<Vec<u8>> {
    let c = codec_or_err(ty, "quantization")?;
    let bytes = ty.row_bytes(src.len()).ok_or_else(|| {
        Error::Usage(format!(
            "quantize {ty}: {} values is not a multiple of the block size {}",
            src.len(),
            ty.block_size()
        ))
    })?;
    let mut out = vec![0u8; bytes];
    if ty.is_quantized() {
        let bs = ty.block_size();
        for (x, b) in src
            .chunks_exact(bs)
            .zip(out.chunks_exact_mut(ty.type_size()))
        {
            (c.quant)(x, b);
        }
    } else {
        (c.quant)(src, &mut out);
    }
    Ok(out)
}

/// Dot product of one stored row of type `ty` with `x`, accumulated in f64:
/// `Σ dequant(row)[i] · x[i]`. Dequantizes one block at a time into a stack buffer, so it
/// allocates nothing.
///
/// # Panics
/// If `ty` is not a weight type or `row.len() != ty.row_bytes(x.len())`. These are caller
/// bugs, not input errors: validate a tensor once with [`check_row`] before its rows are used.
pub fn dot_row(ty: GgmlType, row: &[u8], x: &[f32]) -> f32 {
    let Some(c) = codec(ty) else {
        panic!("dot_row: {ty} is not a weight type");
    };
    if let Err(e) = check_row(ty, x.len(), row.len()) {
        panic!("dot_row: {e}");
    }
    let (bs, ts) = if ty.is_quantized() {
        (ty.block_size(), ty.type_size())
    } else {
        // Plain floats: convert a buffer-full of values per step.
        (MAX_BLOCK, MAX_BLOCK * ty.type_size())
    };
    let mut buf = [0.0f32; MAX_BLOCK];
    // Eight independent partial sums: one f64 chain would be bound by add latency.
    let mut acc = [0.0f64; 8];
    let mut tail = 0.0f64;
    for (b, xs) in row.chunks(ts).zip(x.chunks(bs)) {
        let y = &mut buf[..xs.len()];
        (c.dequant)(b, y);
        let (y8, xs8) = (y.chunks_exact(8), xs.chunks_exact(8));
        for (&a, &v) in y8.remainder().iter().zip(xs8.remainder()) {
            tail += a as f64 * v as f64;
        }
        for (ya, xa) in y8.zip(xs8) {
            for k in 0..8 {
                acc[k] += ya[k] as f64 * xa[k] as f64;
            }
        }
    }
    (acc.iter().sum::<f64>() + tail) as f32
}
