//! `quantize_q8_1.comp` + `mul_mat_vecq.comp`: the integer-dot mat-vec (MMVQ) path for
//! decode, `dst = W·x` with `x` quantized to q8_1 blocks once and shared by every
//! matmul that reads it (the executor quantizes each distinct activation of a stage
//! once, before the stage).
//!
//! Invariants:
//! - [`quantize_q8_1`] turns f32 `x [k, n]` (`k % 32 == 0`, 16-byte aligned) into an
//!   [`XQ`]: int8 codes (4 per word) and one `(d, s)` f32 pair per 32 values.
//! - [`mul_mat_vecq`] takes the weight types [`supports`] lists (the 10 quantized types;
//!   f16/bf16/f32 have no integer codes and stay on `mul_mat_vec.comp`), `n ≤ 8`, the
//!   same split-on-write segments as `dispatch::mul_mat`, and needs `shaderIntegerDotProduct`
//!   and subgroup arithmetic and shuffles (subgroup size a multiple of 8: q8_1 writers
//!   share a block among 8 lanes). Where the device only emulates 4×8-bit dot products
//!   ([`preferred`] is false) the float kernel stays the default.
//! - Accuracy: the activation rounding is llama.cpp's (q8_1, as its MMVQ kernels and
//!   ggml-vulkan's `mul_mat_vecq` use); the weights' codes are exact.

use bytemuck::{Pod, Zeroable};

use super::mul_mat::{bind_weights, grid_2d, MatVecShape, Push, MAT_VEC_MAX_N};
use super::{bind, count_u32, groups_1d};
use crate::backend::vulkan::{BufferRange, Caps, Recorder, ShaderId};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// A q8_1-quantized activation: `codes` holds `n·k/4` words, `scales` `n·k/32` pairs.
#[derive(Clone, Copy, Debug)]
pub struct XQ<'a> {
    pub codes: BufferRange<'a>,
    pub scales: BufferRange<'a>,
}

/// Binds an [`XQ`] of `vals` values for the integer-dot kernels: (codes range, offset
/// in words — a multiple of 4: the kernels read uvec4s —, scales range, offset in pairs).
pub(crate) fn bind_xq<'a>(
    caps: &Caps,
    x: &XQ<'a>,
    vals: u64,
    what: &str,
) -> Result<(BufferRange<'a>, u32, BufferRange<'a>, u32)> {
    let (rq, q_off) = bind(caps, &x.codes, 4, vals / 4, &format!("{what} codes"))?;
    let (rs, s_off) = bind(caps, &x.scales, 8, vals / 32, &format!("{what} scales"))?;
    if q_off % 4 != 0 {
        return Err(Error::Unsupported(format!(
            "{what}: the codes must start at a multiple of 16 bytes"
        )));
    }
    Ok((rq, q_off, rs, s_off))
}

/// Bytes of the two arrays of an [`XQ`] for `x [k, n]`.
pub fn xq_bytes(k: u32, n: u32) -> (u64, u64) {
    let vals = u64::from(k) * u64::from(n);
    (vals, vals / 32 * 8)
}

/// Widest default workgroup and rows per workgroup (benches/mat_vec.rs).
const WG: u32 = 128;
const ROWS: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct QuantPush {
    nblocks: u32,
    x_off: u32,
    q_off: u32,
    ds_off: u32,
    k: u32,
    nw_off: u32,
    ss_off: u32,
    pad0: u32,
}

fn shader(ty: GgmlType, n: u32) -> Option<ShaderId> {
    use GgmlType as T;
    use ShaderId as S;
    Some(match ty {
        T::Q2K if !chunk4(ty, n) => S::mul_mat_vecq_q2_K_u32,
        T::Q3K if !chunk4(ty, n) => S::mul_mat_vecq_q3_K_u32,
        T::Q4_0 => S::mul_mat_vecq_q4_0,
        T::Q4_1 => S::mul_mat_vecq_q4_1,
        T::Q5_0 => S::mul_mat_vecq_q5_0,
        T::Q5_1 => S::mul_mat_vecq_q5_1,
        T::Q8_0 => S::mul_mat_vecq_q8_0,
        T::Q2K => S::mul_mat_vecq_q2_K,
        T::Q3K => S::mul_mat_vecq_q3_K,
        T::Q4K => S::mul_mat_vecq_q4_K,
        T::Q5K => S::mul_mat_vecq_q5_K,
        T::Q6K => S::mul_mat_vecq_q6_K,
        _ => return None,
    })
}

/// The alignment every block start of `wb` has (`W_ALIGN` in common/dequant.glsl): 16 for
/// q4_K / q5_K whose segments, rows and blocks all start at 16-byte multiples (their
/// 16-byte fields are then loaded as one uvec4), else 4 when everything is word-aligned,
/// else 2.
pub(crate) fn w_align(ty: GgmlType, wb: &super::mul_mat::WeightBinding<'_>) -> u32 {
    let block = ty.row_bytes(ty.block_size()).unwrap_or(2) as u32;
    let starts = wb.seg_woff[..wb.nseg as usize]
        .iter()
        .fold(wb.row_bytes | block, |acc, &o| acc | o);
    let wide = matches!(ty, GgmlType::Q4K | GgmlType::Q5K);
    if wide && starts % 16 == 0 {
        16
    } else if starts % 4 == 0 {
        4
    } else {
        2
    }
}

/// Whether the device and shapes allow the integer-dot path for `ty` at `n` tokens.
pub fn supports(caps: &Caps, ty: GgmlType, k: u32, n: u32) -> bool {
    use ash::vk::SubgroupFeatureFlags as F;
    shader(ty, n).is_some()
        && caps.integer_dot_product
        && caps.storage_16bit
        && caps.subgroup_ops.contains(F::BASIC | F::ARITHMETIC | F::SHUFFLE)
        // q8_1 writers exchange a block's values among 8 lanes of one subgroup.
        && caps.subgroup_size % 8 == 0
        && (1..=MAT_VEC_MAX_N).contains(&n)
        && k > 0
        && k % ty.block_size() as u32 == 0
}

/// Whether the integer-dot path is the better default on this device: 4×8-bit signed
/// dot products are hardware-accelerated (and it is not a CPU implementation).
pub fn preferred(caps: &Caps) -> bool {
    caps.integer_dot_4x8_signed_accelerated && caps.device_type != ash::vk::PhysicalDeviceType::CPU
}

/// Most tokens for which q2_K / q3_K take their 16-byte code chunks (`KCHUNK4` in
/// common/mul_mat_vecq_body.glsl); more take the 32-value units (the `_u32` variants).
/// Measured on the H100 (docs/BENCHMARKS.md, thirteenth session): chunks +32 % / +36 %
/// at n = 1, −23 % / −10 % at n = 8; n = 2..7 were not measured, 3 is a guess between.
pub(crate) const CHUNK4_MAX_N: u32 = 3;

/// Whether weight type `ty` at `n` tokens takes the q2_K / q3_K code chunks.
pub(crate) fn chunk4(ty: GgmlType, n: u32) -> bool {
    matches!(ty, GgmlType::Q2K | GgmlType::Q3K) && n <= CHUNK4_MAX_N
}

/// Values one invocation takes per row and step at `n` tokens: a 16-byte code chunk of
/// q2_K / q3_K ([`chunk4`]) spans 64, every other unit 32.
pub(crate) fn unit_values(ty: GgmlType, n: u32) -> u32 {
    if chunk4(ty, n) {
        64
    } else {
        32
    }
}

/// The launch shape for rows of `k` values over `n` tokens (`shape`, or the default) and
/// the workgroup width the device takes: one 32-value unit per invocation and row per
/// step, a workgroup no wider than the row has units (short rows: one subgroup, no idle
/// invocations), at least a subgroup. `Error::Unsupported` when the reduction's shared
/// arrays (rows × n × width floats, plus `extra_rows` × n × width: the fused kernel's
/// norm sums) do not fit.
pub(crate) fn launch(
    caps: &Caps,
    ty: GgmlType,
    k: u32,
    n: u32,
    shape: Option<MatVecShape>,
    extra_rows: u32,
    what: &str,
) -> Result<(MatVecShape, u32)> {
    let shape = shape.unwrap_or(MatVecShape {
        wg: (k / unit_values(ty, n))
            .next_power_of_two()
            .clamp(caps.subgroup_size.clamp(8, WG), WG),
        rows: ROWS,
    });
    let wg = shape.wg.min(caps.max_compute_work_group_size[0]);
    let shared = u64::from(shape.rows + extra_rows) * u64::from(n) * u64::from(wg) * 4;
    if shared > u64::from(caps.max_compute_shared_memory_size) || shape.rows == 0 {
        return Err(Error::Unsupported(format!(
            "{what}: shape {shape:?} needs {shared} bytes of shared memory"
        )));
    }
    Ok((shape, wg))
}

/// The norm form of [`quantize_q8_1_norm`]: the weight the values are multiplied by
/// (f32 `[k]`) and where the per-block sums of squares of the raw values go (f32
/// `[n·k/32]`).
pub struct QuantNorm<'a> {
    pub nw: BufferRange<'a>,
    pub ss: BufferRange<'a>,
}

/// Records the q8_1 quantization of f32 `x [k, n]` into `out`.
pub fn quantize_q8_1(
    rec: &mut Recorder,
    x: BufferRange<'_>,
    out: XQ<'_>,
    k: u32,
    n: u32,
) -> Result<()> {
    quantize_q8_1_norm(rec, x, out, k, n, None)
}

/// Records the q8_1 quantization of f32 `x [k, n]`, times `norm.nw` per row when given
/// (the input `mul_mat_vecq_layer.comp`'s RMS-norm prologue reads: blocks of `x·nw` and
/// the sums of squares of `x` per block), into `out`.
pub fn quantize_q8_1_norm(
    rec: &mut Recorder,
    x: BufferRange<'_>,
    out: XQ<'_>,
    k: u32,
    n: u32,
    norm: Option<QuantNorm<'_>>,
) -> Result<()> {
    let what = format!("quantize_q8_1(k={k},n={n})");
    if k == 0 || k % 32 != 0 {
        return Err(Error::Unsupported(format!(
            "{what}: k must be a multiple of 32"
        )));
    }
    let vals = u64::from(k) * u64::from(n);
    count_u32(vals, &what)?;
    let caps = rec.caps();
    let (rx, x_off) = bind(caps, &x, 4, vals, &format!("{what} x"))?;
    let (rq, q_off) = bind(caps, &out.codes, 4, vals / 4, &format!("{what} codes"))?;
    let (rs, ds_off) = bind(caps, &out.scales, 8, vals / 32, &format!("{what} scales"))?;
    if x_off % 4 != 0 {
        return Err(Error::Unsupported(format!(
            "{what}: x must start at a multiple of 16 bytes"
        )));
    }
    let (rnw, nw_off, rss, ss_off) = match &norm {
        Some(q) => {
            let (rnw, nw_off) = bind(caps, &q.nw, 4, u64::from(k), &format!("{what} norm weight"))?;
            let (rss, ss_off) = bind(
                caps,
                &q.ss,
                4,
                vals / 32,
                &format!("{what} sums of squares"),
            )?;
            (rnw, nw_off, rss, ss_off)
        }
        None => (rx, 0, rs, 0),
    };
    let push = QuantPush {
        nblocks: (vals / 32) as u32,
        x_off: x_off / 4,
        q_off,
        ds_off,
        k,
        nw_off,
        ss_off,
        pad0: 0,
    };
    let shader = ShaderId::quantize_q8_1;
    // One invocation per 4 values (8 per block).
    let groups = groups_1d(caps, shader, vals / 4)?;
    rec.dispatch(
        shader,
        &[u32::from(norm.is_some())],
        &[rx, rq, rs, rnw, rss],
        bytemuck::bytes_of(&push),
        groups,
    )
}

/// Records `dst = W·x` from a quantized `x` ([`quantize_q8_1`]); `w`, `dst`, `k`, `m`,
/// `n` and `split` as `dispatch::mul_mat::mul_mat`. `shape` overrides the launch shape.
#[allow(clippy::too_many_arguments)]
pub fn mul_mat_vecq(
    rec: &mut Recorder,
    ty: GgmlType,
    w: BufferRange<'_>,
    x: XQ<'_>,
    dst: BufferRange<'_>,
    k: u32,
    m: u32,
    n: u32,
    split: &[u32],
    shape: Option<MatVecShape>,
) -> Result<()> {
    let what = format!("mul_mat_vecq(type={ty},m={m},k={k},n={n})");
    let caps = rec.caps();
    if !supports(caps, ty, k, n) {
        return Err(Error::Unsupported(format!(
            "{what}: needs a quantized weight type, n <= {MAT_VEC_MAX_N}, k a multiple of \
             the block, shaderIntegerDotProduct, 16-bit storage and subgroup arithmetic \
             (device {})",
            caps.name
        )));
    }
    let vals = u64::from(k) * u64::from(n);
    let mn = u64::from(m) * u64::from(n);
    count_u32(vals, &what)?;
    count_u32(mn, &what)?;
    let wb = bind_weights(caps, ty, &w, k, m, split, &what)?;
    let (rq, q_off, rs, s_off) = bind_xq(caps, &x, vals, &what)?;
    let (rd, d_off) = bind(caps, &dst, 4, mn, &format!("{what} dst"))?;
    if m == 0 {
        return Ok(());
    }
    let push = Push::new(k, m, n, &wb, q_off, s_off, d_off);
    let (shape, wg) = launch(caps, ty, k, n, shape, 0, &what)?;
    let groups = grid_2d(caps, m.div_ceil(shape.rows), &what)?;
    let shader = shader(ty, n).expect("checked by supports()");
    let align = w_align(ty, &wb);
    rec.dispatch(
        shader,
        &[wg, shape.rows, 0, n, 0, 0, 0, align],
        &[wb.range, rq, rs, rd],
        bytemuck::bytes_of(&push),
        groups,
    )
}
