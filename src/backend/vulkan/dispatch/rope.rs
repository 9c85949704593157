//! `rope.comp`: rotary position embedding of f32 `[head_dim, n_head, n]` activations
//! at the i32 positions `pos[n]` (see `Op::Rope`).
//!
//! The first `n_dims` values of each head are rotated — adjacent pairs (`rope_norm`,
//! llama) or halves (`rope_neox`, qwen) — by `theta_i = pos · freq_scale ·
//! freq_base^(−2i/n_dims)`; values `n_dims..head_dim` are copied. One invocation per
//! pair, so `x` and `dst` may be the same range (in-place).

use bytemuck::{Pod, Zeroable};

use super::{bind, count_u32, groups_1d};
use crate::backend::vulkan::{BufferRange, Recorder, ShaderId};
use crate::{Error, Result};

/// Push constants of `shaders/rope.comp` (must match its `Push` block).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    head_dim: u32,
    n_head: u32,
    n: u32,
    n_dims: u32,
    freq_base: f32,
    freq_scale: f32,
    x_off: u32,
    pos_off: u32,
    d_off: u32,
    table_rows: u32,
    w_off: u32,
    eps: f32,
    rows_off: u32,
    pad: [u32; 3],
}

/// The RMS norm of each head row folded before the rope (`Op::Rope { norm: Some(eps) }`):
/// `w` holds `head_dim` f32 weights.
#[derive(Clone, Copy, Debug)]
pub struct RowNorm<'a> {
    pub w: BufferRange<'a>,
    pub eps: f32,
}

/// `dst = rope(x, pos)`; `neox` picks the halves layout.
#[allow(clippy::too_many_arguments)]
pub fn rope(
    rec: &mut Recorder,
    x: BufferRange<'_>,
    pos: BufferRange<'_>,
    dst: BufferRange<'_>,
    head_dim: u32,
    n_head: u32,
    n: u32,
    neox: bool,
    n_dims: u32,
    freq_base: f32,
    freq_scale: f32,
) -> Result<()> {
    rope_with(
        rec, x, pos, dst, None, head_dim, n_head, n, neox, n_dims, freq_base, freq_scale,
    )
}

/// [`rope`] with the RMS norm of each head row folded in first when `norm` is given.
#[allow(clippy::too_many_arguments)]
pub fn rope_with(
    rec: &mut Recorder,
    x: BufferRange<'_>,
    pos: BufferRange<'_>,
    dst: BufferRange<'_>,
    norm: Option<RowNorm<'_>>,
    head_dim: u32,
    n_head: u32,
    n: u32,
    neox: bool,
    n_dims: u32,
    freq_base: f32,
    freq_scale: f32,
) -> Result<()> {
    let shader = match (neox, norm.is_some()) {
        (true, false) => ShaderId::rope_neox,
        (false, false) => ShaderId::rope_norm,
        (true, true) => ShaderId::rope_neox_rms,
        (false, true) => ShaderId::rope_norm_rms,
    };
    let shape = [head_dim, n_head, n, n_dims];
    record(
        rec, shader, x, pos, dst, norm, shape, freq_base, freq_scale, None,
    )
}

/// Rope of `x` (token t at position `pos[t]`) written as f16 into row `rows[t]` of `dst`,
/// a table of `n_rows` rows of `n_head·head_dim` (the KV cache): `Op::RopeSetRows`, the
/// rope of K fused with its cache write. Rows outside the table are skipped.
#[allow(clippy::too_many_arguments)]
pub fn rope_set_rows(
    rec: &mut Recorder,
    x: BufferRange<'_>,
    pos: BufferRange<'_>,
    rows: BufferRange<'_>,
    dst: BufferRange<'_>,
    head_dim: u32,
    n_head: u32,
    n: u32,
    neox: bool,
    n_dims: u32,
    freq_base: f32,
    freq_scale: f32,
    n_rows: u32,
) -> Result<()> {
    rope_set_rows_with(
        rec, x, pos, rows, dst, None, head_dim, n_head, n, neox, n_dims, freq_base, freq_scale,
        n_rows,
    )
}

/// [`rope_set_rows`] with the RMS norm of each head row folded in first when `norm` is given.
#[allow(clippy::too_many_arguments)]
pub fn rope_set_rows_with(
    rec: &mut Recorder,
    x: BufferRange<'_>,
    pos: BufferRange<'_>,
    rows: BufferRange<'_>,
    dst: BufferRange<'_>,
    norm: Option<RowNorm<'_>>,
    head_dim: u32,
    n_head: u32,
    n: u32,
    neox: bool,
    n_dims: u32,
    freq_base: f32,
    freq_scale: f32,
    n_rows: u32,
) -> Result<()> {
    let shader = match (neox, norm.is_some()) {
        (true, false) => ShaderId::rope_neox_set_rows,
        (false, false) => ShaderId::rope_norm_set_rows,
        (true, true) => ShaderId::rope_neox_set_rows_rms,
        (false, true) => ShaderId::rope_norm_set_rows_rms,
    };
    if !rec.caps().storage_16bit {
        return Err(Error::Unsupported(format!(
            "{shader} needs storageBuffer16BitAccess, which {} lacks",
            rec.caps().name
        )));
    }
    let shape = [head_dim, n_head, n, n_dims];
    record(
        rec,
        shader,
        x,
        pos,
        dst,
        norm,
        shape,
        freq_base,
        freq_scale,
        Some((rows, n_rows)),
    )
}

/// Checks the shape, binds and dispatches either variant: `table` is `None` for an f32
/// copy of `x`, `Some((rows, n_rows))` for f16 rows of a table of `n_rows` rows indexed
/// by `rows`.
#[allow(clippy::too_many_arguments)]
fn record(
    rec: &mut Recorder,
    shader: ShaderId,
    x: BufferRange<'_>,
    pos: BufferRange<'_>,
    dst: BufferRange<'_>,
    norm: Option<RowNorm<'_>>,
    [head_dim, n_head, n, n_dims]: [u32; 4],
    freq_base: f32,
    freq_scale: f32,
    table: Option<(BufferRange<'_>, u32)>,
) -> Result<()> {
    let table_rows = table.as_ref().map(|t| t.1);
    if head_dim % 2 != 0 || n_dims % 2 != 0 || n_dims == 0 || n_dims > head_dim {
        return Err(Error::Unsupported(format!(
            "{shader}: n_dims {n_dims} must be even, non-zero and at most head_dim \
             {head_dim}, which must be even"
        )));
    }
    if !(freq_base > 0.0 && freq_base.is_finite() && freq_scale.is_finite()) {
        return Err(Error::Usage(format!(
            "{shader}: freq_base {freq_base} must be finite and > 0, freq_scale \
             {freq_scale} finite"
        )));
    }
    let total = u64::from(head_dim) * u64::from(n_head) * u64::from(n);
    count_u32(total, shader.name())?;
    let caps = rec.caps();
    let (rx, x_off) = bind(caps, &x, 4, total, &format!("{shader} x"))?;
    let (rp, pos_off) = bind(caps, &pos, 4, u64::from(n), &format!("{shader} pos"))?;
    let (rd, d_off) = match table_rows {
        None => bind(caps, &dst, 4, total, &format!("{shader} dst"))?,
        Some(rows) => {
            let table = u64::from(head_dim) * u64::from(n_head) * u64::from(rows);
            bind(caps, &dst, 2, table, &format!("{shader} dst"))?
        }
    };
    let (rw, w_off, eps) = match &norm {
        Some(nm) => {
            if !(nm.eps >= 0.0 && nm.eps.is_finite()) {
                return Err(Error::Usage(format!(
                    "{shader}: eps {} must be finite and >= 0",
                    nm.eps
                )));
            }
            let wg = shader.workgroup()[0];
            if head_dim / 2 > wg {
                return Err(Error::Unsupported(format!(
                    "{shader}: head_dim {head_dim} exceeds twice the workgroup width {wg}"
                )));
            }
            let (rw, w_off) = bind(caps, &nm.w, 4, u64::from(head_dim), &format!("{shader} w"))?;
            (rw, w_off, nm.eps)
        }
        None => (rx, 0, 0.0),
    };
    let (rr, rows_off) = match &table {
        Some((rows, _)) => bind(caps, rows, 4, u64::from(n), &format!("{shader} rows"))?,
        None => (rx, 0),
    };
    let push = Push {
        head_dim,
        n_head,
        n,
        n_dims,
        freq_base,
        freq_scale,
        x_off,
        pos_off,
        d_off,
        table_rows: table_rows.unwrap_or(0),
        w_off,
        eps,
        rows_off,
        pad: [0; 3],
    };
    if total == 0 {
        return Ok(());
    }
    let groups = if norm.is_some() {
        // Whole rows per workgroup: WG_X / (head_dim / 2) rows of head_dim / 2 invocations.
        let wg = shader.workgroup()[0];
        let rows = u64::from(n_head) * u64::from(n);
        let per = u64::from(wg / (head_dim / 2).max(1));
        groups_1d(caps, shader, rows.div_ceil(per) * u64::from(wg))?
    } else {
        groups_1d(caps, shader, total / 2)?
    };
    rec.dispatch(
        shader,
        &[],
        &[rx, rp, rd, rw, rr],
        bytemuck::bytes_of(&push),
        groups,
    )
}
