//! `mul_mat_vecq_layer.comp`: the integer-dot mat-vec with the decode-layer folds
//! (`Op::MulMatLayer` on the MMVQ path), recorded through `mul_mat::mul_mat_vec_layer`
//! with [`LayerQ8`] operands.
//!
//! Invariants:
//! - x is q8_1 (`mul_mat_vecq::quantize_q8_1_norm` or a producer's q8_1 epilogue); with
//!   the RMS-norm prologue it holds the blocks of `x·nw` and the per-block sums of squares
//!   of `x`, and the kernel scales the products by `1/rms` (the rms cancels out of the
//!   quantization).
//! - The q8_1 epilogue ([`LayerQ8Out`]) quantizes the output (times the next norm's
//!   weight, with its sums of squares) for the next integer-dot matmul: the last of the
//!   workgroups covering a 32-row block to arrive (a counter per block, zero between
//!   dispatches) writes it. Only where [`vecq_layer_qout_fits`]: residual-add, SwiGLU or
//!   plain epilogues into one output.
//! - Only the ranges a dispatch reads (x's sums of squares) and writes (its epilogue's
//!   slot, its block counters) of the scratch are bound, so siblings of one stage never
//!   overlap in a writable binding.

use bytemuck::{Pod, Zeroable};

use super::bind;
use super::mul_mat::{grid_2d, LayerEpi, LayerParts, LayerPush, MatVecShape, Push, WeightBinding};
use crate::backend::vulkan::{BufferRange, Caps, Recorder, ShaderId};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// The q8_1 operands of the integer-dot fused mat-vec (`mul_mat_vecq_layer.comp`).
pub struct LayerQ8<'a> {
    /// x as q8_1 (`quantize_q8_1` or a producer's q8_1 epilogue); with a norm, the blocks
    /// of `x·nw` (the norm weight in [`LayerParts::norm`] is then not read).
    pub x: super::mul_mat_vecq::XQ<'a>,
    /// The q8_1 scratch buffer that `ss` and `out`'s offsets index, in bytes from the
    /// start of this range (the kernel binds the parts it reads and writes).
    pub scratch: BufferRange<'a>,
    /// With a norm: the per-block sums of squares of the raw x, f32 `[n·k/32]`.
    pub ss: Option<u64>,
    /// The q8_1 epilogue: the output quantized for the next integer-dot matmul.
    pub out: Option<LayerQ8Out<'a>>,
}

/// Where [`LayerQ8::out`] writes: byte offsets in the scratch of the output's q8_1 codes
/// (`n·m_out` bytes) and `(d, s)` pairs (`n·m_out/32`), of `m_out/32` u32 block
/// counters (zero before the dispatch, left at zero), and with `norm` the next norm's
/// weight (f32 `[m_out]`: the blocks are of output·weight) and the offset of the output's
/// per-block sums of squares (f32 `[n·m_out/32]`). `m_out` is the output's rows (half
/// the weight's with SwiGLU).
pub struct LayerQ8Out<'a> {
    pub codes: u64,
    pub scales: u64,
    pub cnt: u64,
    pub norm: Option<(BufferRange<'a>, u64)>,
}

/// Push constants of `mul_mat_vecq_layer.comp`: [`LayerPush`], then the q8_1 scratch's
/// element offsets (bindings 6, 7 and 8).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct LayerQPush {
    layer: LayerPush,
    ss_off: u32,
    qo_codes: u32,
    qo_scales: u32,
    qo_ss: u32,
    qo_cnt: u32,
    pad: [u32; 3],
}

/// Whether the q8_1 epilogue of the integer-dot fused mat-vec can quantize an output of
/// `m_out` rows computed `rows_out` per workgroup: each workgroup's rows in one 32-row
/// block, every block whole.
pub fn vecq_layer_qout_fits(m_out: u32, rows_out: u32) -> bool {
    m_out % 32 == 0 && rows_out > 0 && 32 % rows_out == 0
}

/// The rows per workgroup of the integer-dot fused mat-vec's default launch (`None`
/// where it has none: [`vecq_layer_support`] says why).
pub fn vecq_layer_rows(
    caps: &Caps,
    ty: GgmlType,
    k: u32,
    n: u32,
    shape: Option<MatVecShape>,
) -> Option<u32> {
    vecq_layer_launch(caps, ty, k, n, shape, "")
        .ok()
        .map(|(s, _)| s.rows)
}

/// Why the integer-dot fused mat-vec (`mul_mat_vecq_layer.comp`) cannot take weight type
/// `ty` with rows of `k` for `n` tokens here, or `Ok`: the integer-dot mat-vec's needs
/// (`mul_mat_vecq::supports`) and its default launch's shared arrays with the norm's.
pub fn vecq_layer_support(
    caps: &Caps,
    ty: GgmlType,
    k: u64,
    n: u64,
) -> std::result::Result<(), String> {
    let (Ok(k32), Ok(n32)) = (u32::try_from(k), u32::try_from(n)) else {
        return Err(format!("k = {k} or n = {n} exceeds 32 bits"));
    };
    if vecq_layer_shader(ty, n32).is_none() || !super::mul_mat_vecq::supports(caps, ty, k32, n32) {
        return Err(format!(
            "no integer-dot fused mat-vec for {ty} with k = {k}, n = {n} on {}",
            caps.name
        ));
    }
    vecq_layer_launch(caps, ty, k32, n32, None, "integer-dot fused mat-vec")
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The integer-dot mat-vec's launch (`mul_mat_vecq::launch`) with room for the norm's
/// per-token sums beside the partial sums, and an even row count (the gate/up pairs).
fn vecq_layer_launch(
    caps: &Caps,
    ty: GgmlType,
    k: u32,
    n: u32,
    shape: Option<MatVecShape>,
    what: &str,
) -> Result<(MatVecShape, u32)> {
    let (shape, wg) = super::mul_mat_vecq::launch(caps, ty, k, n, shape, 1, what)?;
    if shape.rows % 2 != 0 {
        return Err(Error::Unsupported(format!(
            "{what}: shape {shape:?}: the fused kernel pairs rows (an even count)"
        )));
    }
    Ok((shape, wg))
}

fn vecq_layer_shader(ty: GgmlType, n: u32) -> Option<ShaderId> {
    use GgmlType as T;
    use ShaderId as S;
    Some(match ty {
        T::Q2K if !super::mul_mat_vecq::chunk4(ty, n) => S::mul_mat_vecq_layer_q2_K_u32,
        T::Q3K if !super::mul_mat_vecq::chunk4(ty, n) => S::mul_mat_vecq_layer_q3_K_u32,
        T::Q4_0 => S::mul_mat_vecq_layer_q4_0,
        T::Q4_1 => S::mul_mat_vecq_layer_q4_1,
        T::Q5_0 => S::mul_mat_vecq_layer_q5_0,
        T::Q5_1 => S::mul_mat_vecq_layer_q5_1,
        T::Q8_0 => S::mul_mat_vecq_layer_q8_0,
        T::Q2K => S::mul_mat_vecq_layer_q2_K,
        T::Q3K => S::mul_mat_vecq_layer_q3_K,
        T::Q4K => S::mul_mat_vecq_layer_q4_K,
        T::Q5K => S::mul_mat_vecq_layer_q5_K,
        T::Q6K => S::mul_mat_vecq_layer_q6_K,
        _ => return None,
    })
}

/// `len` bytes at byte `b` of the q8_1 scratch range `scratch` (`Error::Usage` past its end).
pub(super) fn scratch_sub<'a>(
    scratch: &BufferRange<'a>,
    b: u64,
    len: u64,
    name: &str,
    what: &str,
) -> Result<BufferRange<'a>> {
    if b.checked_add(len).is_none_or(|e| e > scratch.size) {
        return Err(Error::Usage(format!(
            "{what}: {name} [{b}, +{len}) outside the q8_1 scratch"
        )));
    }
    Ok(scratch.buffer.range(scratch.offset + b, len))
}

/// A q8_1 epilogue's operands bound for its kernel: the slot (its arrays in one range,
/// writable), the block counters (their own range), each array's offset in 32-bit words
/// of the slot's binding, and the counters' element offset.
pub(super) struct Q8SlotBinding<'a> {
    pub slot: BufferRange<'a>,
    pub cnt: BufferRange<'a>,
    pub words: Vec<u32>,
    pub cnt_off: u32,
}

/// Binds a q8_1 epilogue's `arrays` (byte offset and length in `scratch`, 8-byte aligned
/// to each other: codes, (d, s) pairs, sums of squares) as one range and its `counters`
/// u32 block counters at byte `cnt`.
pub(super) fn bind_q8_slot<'a>(
    caps: &Caps,
    scratch: &BufferRange<'a>,
    arrays: &[(u64, u64)],
    cnt: u64,
    counters: u64,
    what: &str,
) -> Result<Q8SlotBinding<'a>> {
    let lo = arrays.iter().map(|p| p.0).min().unwrap_or(0);
    let hi = arrays.iter().map(|p| p.0 + p.1).max().unwrap_or(0);
    let mut sorted = arrays.to_vec();
    sorted.sort_unstable();
    if arrays.iter().any(|p| (p.0 - lo) % 8 != 0)
        || sorted.windows(2).any(|w| w[0].0 + w[0].1 > w[1].0)
    {
        return Err(Error::Usage(format!(
            "{what}: the epilogue's arrays must be 8-byte aligned and apart"
        )));
    }
    let r = scratch_sub(scratch, lo, hi - lo, "the epilogue's slot", what)?;
    let (slot, base) = bind(caps, &r, 8, (hi - lo) / 8, &format!("{what} q8_1 epilogue"))?;
    let words = arrays
        .iter()
        .map(|p| {
            u32::try_from((u64::from(base) * 8 + p.0 - lo) / 4)
                .map_err(|_| Error::Unsupported(format!("{what}: scratch offset exceeds 32 bits")))
        })
        .collect::<Result<Vec<u32>>>()?;
    let (rc, cnt_off) = bind(
        caps,
        &scratch_sub(
            scratch,
            cnt,
            counters * 4,
            "the epilogue's block counters",
            what,
        )?,
        4,
        counters,
        &format!("{what} block counters"),
    )?;
    Ok(Q8SlotBinding {
        slot,
        cnt: rc,
        words,
        cnt_off,
    })
}

/// [`mul_mat_vec_layer`]'s integer-dot form (`mul_mat_vecq_layer.comp`); `kmn` is
/// `[k, m, n, out_rows]`, checked by the caller except for the q8_1 operands.
#[allow(clippy::too_many_arguments)]
pub(crate) fn vecq_layer(
    rec: &mut Recorder,
    ty: GgmlType,
    wb: WeightBinding<'_>,
    q: &LayerQ8<'_>,
    parts: &LayerParts<'_>,
    dst: BufferRange<'_>,
    kmn: [u32; 4],
    shape: Option<MatVecShape>,
    what: &str,
) -> Result<()> {
    let [k, m, n, out_rows] = kmn;
    let caps = rec.caps();
    let kn = u64::from(k) * u64::from(n);
    let mn = u64::from(out_rows) * u64::from(n);
    let glu = matches!(parts.epi, LayerEpi::SwiGlu);
    let (rq, q_off, rs, s_off) = super::mul_mat_vecq::bind_xq(caps, &q.x, kn, what)?;
    let (rd, d_off) = bind(caps, &dst, 4, mn, &format!("{what} dst"))?;
    // The scratch, addressed in bytes from its range's start: x's sums of squares bound
    // read-only (binding 6), the epilogue's slot alone writable (binding 7). Where either
    // is absent its binding holds dst, which this dispatch writes anyway.
    let (rss, ss_off) = match (q.ss, &parts.norm) {
        (Some(b), Some(_)) => {
            let r = scratch_sub(&q.scratch, b, kn / 32 * 4, "sums of squares", what)?;
            bind(caps, &r, 4, kn / 32, &format!("{what} sums of squares"))?
        }
        (None, None) => (rd, 0),
        _ => {
            return Err(Error::Usage(format!(
                "{what}: a norm needs x's sums of squares and they need a norm"
            )))
        }
    };
    let rows_out_of = |rows: u32| if glu { rows / 2 } else { rows };
    let (shape, wg) = vecq_layer_launch(caps, ty, k, n, shape, what)?;
    let (rnw, nw_off, ro, rcnt, qo, qout) = match &q.out {
        None => (rd, 0, rd, rd, [0u32; 4], 0),
        Some(o) => {
            if !vecq_layer_qout_fits(out_rows, rows_out_of(shape.rows))
                || matches!(parts.epi, LayerEpi::Bias(_))
                || (!glu && wb.nseg > 1)
            {
                return Err(Error::Usage(format!(
                    "{what}: no q8_1 epilogue for {out_rows} output rows, {} per workgroup \
                     (needs whole 32-row blocks, one per workgroup, one unsplit output)",
                    rows_out_of(shape.rows)
                )));
            }
            // The slot's arrays: codes, (d, s), sums of squares, in one range; the block
            // counters in their own.
            let (cb, sb) = super::mul_mat_vecq::xq_bytes(out_rows, n);
            let mut parts_b = vec![(o.codes, cb), (o.scales, sb)];
            if let Some((_, ssb)) = &o.norm {
                parts_b.push((*ssb, sb / 2));
            }
            let nb = u64::from(out_rows / 32);
            let q8 = bind_q8_slot(caps, &q.scratch, &parts_b, o.cnt, nb, what)?;
            let (rnw, nw_off, qss, qout) = match &o.norm {
                Some((nw, _)) => {
                    let (r, off) = bind(
                        caps,
                        nw,
                        4,
                        u64::from(out_rows),
                        &format!("{what} next norm weight"),
                    )?;
                    (r, off, q8.words[2], 2)
                }
                None => (rd, 0, 0, 1),
            };
            let qo = [q8.words[0], q8.words[1] / 2, qss, q8.cnt_off];
            (rnw, nw_off, q8.slot, q8.cnt, qo, qout)
        }
    };
    let (rr, r_off) = parts.epi.bind(caps, rd, mn, m, what)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let eps = parts.norm.as_ref().map_or(0.0, |(_, e)| *e);
    let push = LayerQPush {
        layer: LayerPush {
            base: Push::new(k, m, n, &wb, q_off, s_off, d_off),
            nw_off,
            r_off,
            eps,
            scale: parts.scale,
        },
        ss_off,
        qo_codes: qo[0],
        qo_scales: qo[1],
        qo_ss: qo[2],
        qo_cnt: qo[3],
        pad: [0; 3],
    };
    if shape.rows % 2 != 0 || !shape.wg.is_power_of_two() {
        return Err(Error::Usage(format!("{what}: bad mat-vec shape {shape:?}")));
    }
    let groups = grid_2d(caps, out_rows.div_ceil(rows_out_of(shape.rows)), what)?;
    let epi = parts.epi.code();
    rec.dispatch(
        vecq_layer_shader(ty, n).expect("checked by vecq_layer_support"),
        &[
            wg,
            shape.rows,
            1,
            n,
            u32::from(parts.norm.is_some()),
            epi,
            u32::from(nw_off % 4 == 0),
            super::mul_mat_vecq::w_align(ty, &wb),
            qout,
        ],
        &[wb.range, rq, rs, rd, rr, rnw, rss, ro, rcnt],
        bytemuck::bytes_of(&push),
        groups,
    )
}
