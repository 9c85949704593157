//! `get_rows.comp`: gather rows of a table of any weight type into f32 (see
//! [`crate::graph::Op::GetRows`]).
//!
//! Invariants:
//! - `table` holds whole rows of `ne0` values in ggml block layout; row `r` starts at
//!   byte `table.offset + r * row_bytes`; its row count is `table.size / row_bytes`.
//! - Dequantization is bit-exact with the CPU reference (`quant::dequantize`).
//! - An id outside the table gives a row of zeros on the GPU (no error can be raised
//!   there); callers validate token ids before recording.
//! - [`get_rows_h16`] gathers into f16 through `dq_chunk_h`, the cooperative-matrix
//!   tiles' dequantization (no graph op uses it: the tests check that dequantization
//!   with it, on devices without cooperative matrices too).

use bytemuck::{Pod, Zeroable};

use super::mul_mat::{grid_2d, kernel_qk};
use super::{bind, count_u32};
use crate::backend::vulkan::{BufferRange, Recorder, ShaderId};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// Push constants of `shaders/get_rows.comp`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    ne0: u32,
    n: u32,
    nrows: u32,
    row_bytes: u32,
    t_off: u32,
    ids_off: u32,
    d_off: u32,
    pad: u32,
}

fn shader(ty: GgmlType) -> Option<ShaderId> {
    use GgmlType as T;
    use ShaderId as S;
    Some(match ty {
        T::F32 => S::get_rows_f32,
        T::F16 => S::get_rows_f16,
        T::BF16 => S::get_rows_bf16,
        T::Q4_0 => S::get_rows_q4_0,
        T::Q4_1 => S::get_rows_q4_1,
        T::Q5_0 => S::get_rows_q5_0,
        T::Q5_1 => S::get_rows_q5_1,
        T::Q8_0 => S::get_rows_q8_0,
        T::Q2K => S::get_rows_q2_K,
        T::Q3K => S::get_rows_q3_K,
        T::Q4K => S::get_rows_q4_K,
        T::Q5K => S::get_rows_q5_K,
        T::Q6K => S::get_rows_q6_K,
        T::I32 => return None,
    })
}

/// Whether `get_rows` handles table type `ty` (all 13 weight types).
fn shader_h16(ty: GgmlType) -> Option<ShaderId> {
    use GgmlType as T;
    use ShaderId as S;
    Some(match ty {
        T::F32 => S::get_rows_h16_f32,
        T::F16 => S::get_rows_h16_f16,
        T::BF16 => S::get_rows_h16_bf16,
        T::Q4_0 => S::get_rows_h16_q4_0,
        T::Q4_1 => S::get_rows_h16_q4_1,
        T::Q5_0 => S::get_rows_h16_q5_0,
        T::Q5_1 => S::get_rows_h16_q5_1,
        T::Q8_0 => S::get_rows_h16_q8_0,
        T::Q2K => S::get_rows_h16_q2_K,
        T::Q3K => S::get_rows_h16_q3_K,
        T::Q4K => S::get_rows_h16_q4_K,
        T::Q5K => S::get_rows_h16_q5_K,
        T::Q6K => S::get_rows_h16_q6_K,
        T::I32 => return None,
    })
}

pub fn supports(ty: GgmlType) -> bool {
    shader(ty).is_some()
}

/// Records `dst[i] = dequantize(table row ids[i])` for `i < n`: `table` has rows of `ne0`
/// values of type `ty`, `ids` holds `n` i32, `dst` receives f32 `[ne0, n]`.
/// `Error::Unsupported` for a type without a kernel, `ne0` not a multiple of the block
/// (4 for float tables) or a device without 16-bit storage.
pub fn get_rows(
    rec: &mut Recorder,
    ty: GgmlType,
    table: BufferRange<'_>,
    ids: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    n: u32,
) -> Result<()> {
    record(rec, ty, table, ids, dst, ne0, n, false)
}

/// [`get_rows`] into f16 (`dst` holds `ne0 × n` halves; `ne0` a multiple of 16) through
/// `dq_chunk_h` (`get_rows_h16_*`): the dequantization of the cooperative-matrix tiles,
/// for tests. Needs `shaderFloat16`.
pub fn get_rows_h16(
    rec: &mut Recorder,
    ty: GgmlType,
    table: BufferRange<'_>,
    ids: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    n: u32,
) -> Result<()> {
    record(rec, ty, table, ids, dst, ne0, n, true)
}

#[allow(clippy::too_many_arguments)]
fn record(
    rec: &mut Recorder,
    ty: GgmlType,
    table: BufferRange<'_>,
    ids: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    n: u32,
    h16: bool,
) -> Result<()> {
    let what = format!(
        "get_rows{}(type={ty},ne0={ne0},n={n})",
        if h16 { "_h16" } else { "" }
    );
    let shader = if h16 { shader_h16(ty) } else { shader(ty) }
        .ok_or_else(|| Error::Unsupported(format!("{what}: no Vulkan kernel for {ty}")))?;
    let caps = rec.caps();
    if !caps.storage_16bit {
        return Err(Error::Unsupported(format!(
            "{what}: device {} lacks storageBuffer16BitAccess",
            caps.name
        )));
    }
    if h16 && !caps.fp16 {
        return Err(Error::Unsupported(format!(
            "{what}: device {} lacks shaderFloat16",
            caps.name
        )));
    }
    // dq4 reads 4 values at a time, dq_chunk_h 16; quantized rows are whole blocks.
    let step = match (h16, ty.is_quantized()) {
        (_, true) => kernel_qk(ty),
        (true, false) => 16,
        (false, false) => 4,
    };
    if ne0 == 0 || ne0 % step != 0 {
        return Err(Error::Unsupported(format!(
            "{what}: ne0 must be a positive multiple of {step}"
        )));
    }
    let row_bytes = ty.row_bytes(ne0 as usize).expect("ne0 checked above") as u64;
    table.check(&format!("{what} table"))?;
    let telem = if ty == GgmlType::F32 { 4 } else { 2 };
    let nrows = table.size / row_bytes;
    let t_bytes = nrows * row_bytes;
    let (rt, t_off) = bind(
        caps,
        &table,
        telem,
        t_bytes / telem,
        &format!("{what} table"),
    )?;
    let t_off = u64::from(t_off) * telem;
    if t_off + t_bytes > u64::from(u32::MAX) {
        return Err(Error::Unsupported(format!(
            "{what}: table {table:?} extends beyond the kernel's 32-bit byte offsets"
        )));
    }
    let total = u64::from(ne0) * u64::from(n);
    count_u32(total, &what)?;
    let (ri, ids_off) = bind(caps, &ids, 4, u64::from(n), &format!("{what} ids"))?;
    // f16 output is addressed in uints (pairs of halves; ne0 is even).
    let d_words = if h16 { total / 2 } else { total };
    let (rd, d_off) = bind(caps, &dst, 4, d_words, &format!("{what} dst"))?;
    if n == 0 {
        return Ok(());
    }
    let push = Push {
        ne0,
        n,
        nrows: nrows as u32, // < 2^32 / row_bytes, checked above
        row_bytes: row_bytes as u32,
        t_off: t_off as u32,
        ids_off,
        d_off,
        pad: 0,
    };
    let groups = grid_2d(caps, n, &what)?;
    rec.dispatch(
        shader,
        &[],
        &[rt, ri, rd],
        bytemuck::bytes_of(&push),
        groups,
    )
}
