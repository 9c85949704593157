//! `mul_mat_vec.comp` / `mul_mat.comp`: `dst = W·x` for every weight type (see
//! [`crate::graph::Op::MulMat`]).
//!
//! Invariants:
//! - `w` holds `m` rows of `k` values in ggml block layout; with a non-empty `split` the
//!   rows form segments (a fused weight's member tensors, back to back) and the output is
//!   split on write: segment `s` is a contiguous `[split[s], n]` block of `dst`.
//! - Small batches (`n <= MAT_VEC_MAX_N`) use the mat-vec kernel (weights read once for all
//!   tokens); larger ones a tiled kernel: `mul_mat_coopmat.comp` (KHR cooperative matrices,
//!   f16 products, f32 accumulation) when the caller asks for it ([`TiledKernel`]: `Auto`
//!   takes it where [`coopmat_shape`] finds the shape it is built for), else the scalar
//!   `mul_mat.comp` (f32 throughout). The executor asks for it by default
//!   (`VKGRAPH_COOPMAT=0`, `crate::options`, turns it off): 2.6–3.5× the scalar kernel on
//!   the H200 (52–70 TFLOPS at llama-8B shapes, n = 512), with f16 activations that stay
//!   within llama.cpp's own rounding spread (tests/parity.rs, docs/parity.md). The
//!   tiles, and split-K for grids too small to fill the device, live in
//!   `dispatch::mul_mat_tiled` (re-exported here).
//! - Kernels read weights through 16-bit storage; a device without it gets
//!   `Error::Unsupported` (the scheduler then keeps the op on the CPU).
//! - Operands are bound with `dispatch::bind` (offset rounded down to the device's
//!   alignment); the remaining byte/element offsets travel in push constants, so any
//!   element-aligned tensor view works (weights: 2-byte aligned, F32 4).

use bytemuck::{Pod, Zeroable};

use super::{bind, count_u32};

use crate::backend::vulkan::{BufferRange, Caps, Recorder, ShaderId};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// Largest token count the mat-vec kernel takes (its `NMAX`).
pub const MAT_VEC_MAX_N: u32 = 16;
/// Most segments a fused weight may have (the push constants' arrays).
pub const MAX_SEGMENTS: usize = 4;
pub(crate) use super::mul_mat_tiled::{coopmat_id_fits, dense_launch, tiled_launch};
pub use super::mul_mat_tiled::{
    coopmat_shape, split_k, sum_splits, tiled_scratch_bytes, CoopScratch, SplitK, TiledKernel,
    SPLIT_K_GRID,
};

/// Default mat-vec workgroup width and rows per workgroup.
const MMV_WG: u32 = 128;
const MMV_ROWS: u32 = 2;

/// Push constants of the matmul kernels (`shaders/common/dequant_matmul.glsl`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(crate) struct Push {
    k: u32,
    m: u32,
    n: u32,
    nseg: u32,
    pub(crate) x_off: u32,
    d_off: u32,
    row_bytes: u32,
    /// mul_mat_vecq: element offset of the (d, s) pairs in binding 2; else unused.
    x2_off: u32,
    seg_rows: [u32; 4],
    seg_woff: [u32; 4],
}

impl Push {
    /// The block for weights `wb`; `x_off`, `x2_off`, `d_off` as the kernels define them.
    pub(crate) fn new(
        k: u32,
        m: u32,
        n: u32,
        wb: &WeightBinding<'_>,
        x_off: u32,
        x2_off: u32,
        d_off: u32,
    ) -> Push {
        Push {
            k,
            m,
            n,
            nseg: wb.nseg,
            x_off,
            d_off,
            row_bytes: wb.row_bytes,
            x2_off,
            seg_rows: wb.seg_rows,
            seg_woff: wb.seg_woff,
        }
    }
}

/// A weight operand bound for the matmul kernels: the range, and its segment table
/// (byte offsets relative to the binding).
pub(crate) struct WeightBinding<'a> {
    pub range: BufferRange<'a>,
    pub nseg: u32,
    pub row_bytes: u32,
    pub seg_rows: [u32; 4],
    pub seg_woff: [u32; 4],
}

/// Checks `split` (segment row counts summing to `m`, at most [`MAX_SEGMENTS`]; empty:
/// one segment) and binds `m` rows of `k` values of `ty` from `w`.
pub(crate) fn bind_weights<'a>(
    caps: &Caps,
    ty: GgmlType,
    w: &BufferRange<'a>,
    k: u32,
    m: u32,
    split: &[u32],
    what: &str,
) -> Result<WeightBinding<'a>> {
    let segs: Vec<u32> = if split.is_empty() {
        vec![m]
    } else {
        split.to_vec()
    };
    if segs.len() > MAX_SEGMENTS {
        return Err(Error::Unsupported(format!(
            "{what}: {} segments, the kernels take at most {MAX_SEGMENTS}",
            segs.len()
        )));
    }
    if segs.iter().map(|&s| u64::from(s)).sum::<u64>() != u64::from(m) {
        return Err(Error::Usage(format!(
            "{what}: split {split:?} does not sum to m = {m}"
        )));
    }
    let row_bytes = ty.row_bytes(k as usize).ok_or_else(|| {
        Error::Unsupported(format!("{what}: k = {k} is not a multiple of {ty}'s block"))
    })? as u64;
    // Weights are read as 16-bit halves and aligned words: 2-byte elements (F32: 4).
    let welem = if ty == GgmlType::F32 { 4 } else { 2 };
    let w_bytes = u64::from(m) * row_bytes;
    let (range, w_off) = bind(caps, w, welem, w_bytes / welem, &format!("{what} weights"))?;
    let w_off = u64::from(w_off) * welem;
    if w_off + w_bytes > u64::from(u32::MAX) {
        return Err(Error::Unsupported(format!(
            "{what}: {w_bytes} weight bytes exceed the kernels' 32-bit byte offsets"
        )));
    }
    let mut seg_rows = [0u32; 4];
    let mut seg_woff = [0u32; 4];
    let mut at = w_off;
    for (s, &rows) in segs.iter().enumerate() {
        seg_rows[s] = rows;
        seg_woff[s] = at as u32; // < w_off + w_bytes, checked above
        at += u64::from(rows) * row_bytes;
    }
    Ok(WeightBinding {
        range,
        nseg: segs.len() as u32,
        row_bytes: row_bytes as u32,
        seg_rows,
        seg_woff,
    })
}

/// Which kernel family a shader belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Mat-vec, subgroup reduction.
    VecSubgroup,
    /// Mat-vec, shared-memory reduction.
    VecShared,
    /// Tiled (scalar) matrix-matrix.
    Tiled,
    /// Tiled matrix-matrix on cooperative matrices.
    Coop,
    /// The same on the small tile (`mul_mat_tiled`, `CoopTile::SMALL`).
    CoopSmall,
}

/// Values per kernel block: the ggml block, or 16 for the float types.
pub(crate) fn kernel_qk(ty: GgmlType) -> u32 {
    if ty.is_quantized() {
        ty.block_size() as u32
    } else {
        16
    }
}

/// Whether the mat-mul kernels handle weight type `ty` (all 13 weight types).
pub fn supports(ty: GgmlType) -> bool {
    shader(ty, Kernel::Tiled).is_some()
}

fn shader(ty: GgmlType, kernel: Kernel) -> Option<ShaderId> {
    use GgmlType as T;
    use Kernel as K;
    use ShaderId as S;
    Some(match (kernel, ty) {
        (K::VecSubgroup, T::F32) => S::mul_mat_vec_f32,
        (K::VecSubgroup, T::F16) => S::mul_mat_vec_f16,
        (K::VecSubgroup, T::BF16) => S::mul_mat_vec_bf16,
        (K::VecSubgroup, T::Q4_0) => S::mul_mat_vec_q4_0,
        (K::VecSubgroup, T::Q4_1) => S::mul_mat_vec_q4_1,
        (K::VecSubgroup, T::Q5_0) => S::mul_mat_vec_q5_0,
        (K::VecSubgroup, T::Q5_1) => S::mul_mat_vec_q5_1,
        (K::VecSubgroup, T::Q8_0) => S::mul_mat_vec_q8_0,
        (K::VecSubgroup, T::Q2K) => S::mul_mat_vec_q2_K,
        (K::VecSubgroup, T::Q3K) => S::mul_mat_vec_q3_K,
        (K::VecSubgroup, T::Q4K) => S::mul_mat_vec_q4_K,
        (K::VecSubgroup, T::Q5K) => S::mul_mat_vec_q5_K,
        (K::VecSubgroup, T::Q6K) => S::mul_mat_vec_q6_K,
        (K::VecShared, T::F32) => S::mul_mat_vec_f32_shmem,
        (K::VecShared, T::F16) => S::mul_mat_vec_f16_shmem,
        (K::VecShared, T::BF16) => S::mul_mat_vec_bf16_shmem,
        (K::VecShared, T::Q4_0) => S::mul_mat_vec_q4_0_shmem,
        (K::VecShared, T::Q4_1) => S::mul_mat_vec_q4_1_shmem,
        (K::VecShared, T::Q5_0) => S::mul_mat_vec_q5_0_shmem,
        (K::VecShared, T::Q5_1) => S::mul_mat_vec_q5_1_shmem,
        (K::VecShared, T::Q8_0) => S::mul_mat_vec_q8_0_shmem,
        (K::VecShared, T::Q2K) => S::mul_mat_vec_q2_K_shmem,
        (K::VecShared, T::Q3K) => S::mul_mat_vec_q3_K_shmem,
        (K::VecShared, T::Q4K) => S::mul_mat_vec_q4_K_shmem,
        (K::VecShared, T::Q5K) => S::mul_mat_vec_q5_K_shmem,
        (K::VecShared, T::Q6K) => S::mul_mat_vec_q6_K_shmem,
        (K::Tiled, T::F32) => S::mul_mat_f32,
        (K::Tiled, T::F16) => S::mul_mat_f16,
        (K::Tiled, T::BF16) => S::mul_mat_bf16,
        (K::Tiled, T::Q4_0) => S::mul_mat_q4_0,
        (K::Tiled, T::Q4_1) => S::mul_mat_q4_1,
        (K::Tiled, T::Q5_0) => S::mul_mat_q5_0,
        (K::Tiled, T::Q5_1) => S::mul_mat_q5_1,
        (K::Tiled, T::Q8_0) => S::mul_mat_q8_0,
        (K::Tiled, T::Q2K) => S::mul_mat_q2_K,
        (K::Tiled, T::Q3K) => S::mul_mat_q3_K,
        (K::Tiled, T::Q4K) => S::mul_mat_q4_K,
        (K::Tiled, T::Q5K) => S::mul_mat_q5_K,
        (K::Tiled, T::Q6K) => S::mul_mat_q6_K,
        (K::Coop, T::F32) => S::mul_mat_coopmat_f32,
        (K::Coop, T::F16) => S::mul_mat_coopmat_f16,
        (K::Coop, T::BF16) => S::mul_mat_coopmat_bf16,
        (K::Coop, T::Q4_0) => S::mul_mat_coopmat_q4_0,
        (K::Coop, T::Q4_1) => S::mul_mat_coopmat_q4_1,
        (K::Coop, T::Q5_0) => S::mul_mat_coopmat_q5_0,
        (K::Coop, T::Q5_1) => S::mul_mat_coopmat_q5_1,
        (K::Coop, T::Q8_0) => S::mul_mat_coopmat_q8_0,
        (K::Coop, T::Q2K) => S::mul_mat_coopmat_q2_K,
        (K::Coop, T::Q3K) => S::mul_mat_coopmat_q3_K,
        (K::Coop, T::Q4K) => S::mul_mat_coopmat_q4_K,
        (K::Coop, T::Q5K) => S::mul_mat_coopmat_q5_K,
        (K::Coop, T::Q6K) => S::mul_mat_coopmat_q6_K,
        (K::CoopSmall, T::F32) => S::mul_mat_coopmat_small_f32,
        (K::CoopSmall, T::F16) => S::mul_mat_coopmat_small_f16,
        (K::CoopSmall, T::BF16) => S::mul_mat_coopmat_small_bf16,
        (K::CoopSmall, T::Q4_0) => S::mul_mat_coopmat_small_q4_0,
        (K::CoopSmall, T::Q4_1) => S::mul_mat_coopmat_small_q4_1,
        (K::CoopSmall, T::Q5_0) => S::mul_mat_coopmat_small_q5_0,
        (K::CoopSmall, T::Q5_1) => S::mul_mat_coopmat_small_q5_1,
        (K::CoopSmall, T::Q8_0) => S::mul_mat_coopmat_small_q8_0,
        (K::CoopSmall, T::Q2K) => S::mul_mat_coopmat_small_q2_K,
        (K::CoopSmall, T::Q3K) => S::mul_mat_coopmat_small_q3_K,
        (K::CoopSmall, T::Q4K) => S::mul_mat_coopmat_small_q4_K,
        (K::CoopSmall, T::Q5K) => S::mul_mat_coopmat_small_q5_K,
        (K::CoopSmall, T::Q6K) => S::mul_mat_coopmat_small_q6_K,
        _ => return None,
    })
}

/// Whether the device can reduce with subgroup arithmetic in compute shaders.
pub(crate) fn has_subgroup_add(caps: &Caps) -> bool {
    use ash::vk::SubgroupFeatureFlags as F;
    caps.subgroup_ops.contains(F::BASIC | F::ARITHMETIC)
}

/// Records `dst = W·x`: `w` is `m` rows of `k` values of type `ty`, `x` is f32 `[k, n]`,
/// `dst` f32 (`[m, n]`, or segment after segment when `split` lists the row counts of a
/// fused weight's members). Picks the mat-vec kernel for `n <= MAT_VEC_MAX_N`, the scalar
/// tiled one otherwise (the executor's default; [`mul_mat_tiled`] chooses another).
/// `Error::Unsupported` for a type without a kernel, `k` not a multiple of
/// the kernel block, more than [`MAX_SEGMENTS`] segments or a device without 16-bit storage.
#[allow(clippy::too_many_arguments)]
pub fn mul_mat(
    rec: &mut Recorder,
    ty: GgmlType,
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    dst: BufferRange<'_>,
    k: u32,
    m: u32,
    n: u32,
    split: &[u32],
) -> Result<()> {
    record(
        rec,
        ty,
        w,
        x,
        dst,
        k,
        m,
        n,
        split,
        None,
        TiledKernel::Scalar,
        None,
    )
}

/// [`mul_mat`] with an explicit tiled kernel (for tests and A/B runs; ignored when
/// `n <= MAT_VEC_MAX_N`). `TiledKernel::Coopmat` on a device where [`coopmat_shape`] is
/// `None` is `Error::Unsupported`; it ignores `VKGRAPH_COOPMAT`.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn mul_mat_tiled(
    rec: &mut Recorder,
    ty: GgmlType,
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    dst: BufferRange<'_>,
    k: u32,
    m: u32,
    n: u32,
    split: &[u32],
    tiled: TiledKernel,
) -> Result<()> {
    record(rec, ty, w, x, dst, k, m, n, split, None, tiled, None)
}

/// [`mul_mat`] with every choice explicit: the mat-vec launch shape (`None`: the default
/// for the row length and device; ignored when `n > MAT_VEC_MAX_N`) and the tiled kernel
/// (ignored when `n <= MAT_VEC_MAX_N`). `x16` ([`CoopScratch`]): room for an f16 copy of
/// x — where the cooperative-matrix kernel runs, x is converted into it once and the
/// kernel reads halves (a barrier between) — and for the partial blocks of a split-K
/// ([`split_k`]: the kernel writes them, a barrier, `sum_splits.comp` adds them into
/// dst); `None` or another kernel: x is read as f32, k unsplit. What the executor
/// records.
#[allow(clippy::too_many_arguments)]
pub fn mul_mat_with(
    rec: &mut Recorder,
    ty: GgmlType,
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    dst: BufferRange<'_>,
    k: u32,
    m: u32,
    n: u32,
    split: &[u32],
    shape: Option<MatVecShape>,
    tiled: TiledKernel,
    x16: Option<CoopScratch<'_>>,
) -> Result<()> {
    record(rec, ty, w, x, dst, k, m, n, split, shape, tiled, x16)
}

/// Mat-vec launch shape: workgroup width (a power of two, 16..=1024) and rows per workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatVecShape {
    pub wg: u32,
    pub rows: u32,
}

/// [`mul_mat`] with an explicit mat-vec launch shape (for tuning and tests; ignored when
/// `n > MAT_VEC_MAX_N`).
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn mul_mat_with_shape(
    rec: &mut Recorder,
    ty: GgmlType,
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    dst: BufferRange<'_>,
    k: u32,
    m: u32,
    n: u32,
    split: &[u32],
    shape: MatVecShape,
) -> Result<()> {
    if !shape.wg.is_power_of_two() || !(16..=1024).contains(&shape.wg) || shape.rows == 0 {
        return Err(Error::Usage(format!(
            "mul_mat: bad mat-vec shape {shape:?}"
        )));
    }
    record(
        rec,
        ty,
        w,
        x,
        dst,
        k,
        m,
        n,
        split,
        Some(shape),
        TiledKernel::Scalar,
        None,
    )
}

#[allow(clippy::too_many_arguments)]
fn record(
    rec: &mut Recorder,
    ty: GgmlType,
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    dst: BufferRange<'_>,
    k: u32,
    m: u32,
    n: u32,
    split: &[u32],
    shape: Option<MatVecShape>,
    tiled: TiledKernel,
    x16: Option<CoopScratch<'_>>,
) -> Result<()> {
    let what = format!("mul_mat(type={ty},m={m},k={k},n={n})");
    if !supports(ty) {
        return Err(Error::Unsupported(format!(
            "{what}: no Vulkan kernel for {ty}"
        )));
    }
    if !rec.caps().storage_16bit {
        return Err(Error::Unsupported(format!(
            "{what}: device {} lacks storageBuffer16BitAccess",
            rec.caps().name
        )));
    }
    let qk = kernel_qk(ty);
    if k == 0 || k % qk != 0 {
        return Err(Error::Unsupported(format!(
            "{what}: k must be a positive multiple of {qk}"
        )));
    }
    let kn = u64::from(k) * u64::from(n);
    let mn = u64::from(m) * u64::from(n);
    count_u32(kn, &what)?;
    count_u32(mn, &what)?;
    let caps = rec.caps();
    let wb = bind_weights(caps, ty, &w, k, m, split, &what)?;
    let rw = wb.range;
    let (rx, x_off) = bind(caps, &x, 4, kn, &format!("{what} x"))?;
    let (rd, d_off) = bind(caps, &dst, 4, mn, &format!("{what} dst"))?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let push = Push::new(k, m, n, &wb, x_off, 0, d_off);
    let x_vec4 = u32::from(x_off % 4 == 0);
    let bindings = [rw, rx, rd];

    if n <= MAT_VEC_MAX_N {
        let kernel = if has_subgroup_add(caps) {
            Kernel::VecSubgroup
        } else {
            Kernel::VecShared
        };
        let shader = shader(ty, kernel).expect("every supported type has a mat-vec kernel");
        let (shape, wg) = mat_vec_launch(caps, ty, k, n, shape, 0, &what)?;
        let groups = grid_2d(caps, m.div_ceil(shape.rows), &what)?;
        return rec.dispatch(
            shader,
            &[wg, shape.rows, x_vec4, n],
            &bindings,
            bytemuck::bytes_of(&push),
            groups,
        );
    }
    let launch = dense_launch(caps, tiled, x_vec4, m, n, &what)?;
    let shader = shader(ty, launch.kernel).expect("every supported type has tiled kernels");
    let (tile, mut spec) = (launch.tile, launch.spec);
    let mut groups = [m.div_ceil(tile[0]), n.div_ceil(tile[1]), 1];
    let max = caps.max_compute_work_group_count;
    if groups[0] > max[0] || groups[1] > max[1] {
        return Err(Error::Unsupported(format!(
            "{what}: {groups:?} workgroups exceed {}'s limits",
            caps.name
        )));
    }
    let Some(scratch) = x16.filter(|_| launch.coop) else {
        return rec.dispatch(shader, &spec, &bindings, bytemuck::bytes_of(&push), groups);
    };
    let x16 = scratch.range;
    let (mut push, mut bindings) = (push, bindings);
    // Split-K as planned (`split_k`): the partial blocks follow the f16 x in the scratch.
    let x16_bytes = tiled_scratch_bytes(k, m, n, None);
    let sk = scratch.split;
    if let Some(s) = sk {
        if !s.fits(caps, tiled, k, m, n, split.len().max(1)) {
            return Err(Error::Usage(format!("{what}: split-K {s:?} does not fit")));
        }
        if x16.size < x16_bytes + s.bytes(m, n) {
            return Err(Error::Usage(format!(
                "{what}: {} bytes of scratch, split-K {s:?} needs {}",
                x16.size,
                x16_bytes + s.bytes(m, n)
            )));
        }
    }
    // The split and its partial blocks, after the f16 x.
    let part = sk.map(|s| (s, x16.buffer.range(x16.offset + x16_bytes, s.bytes(m, n))));
    if let Some((sk, part)) = &part {
        let (rp, p_off) = bind(
            caps,
            part,
            4,
            u64::from(sk.ks) * mn,
            &format!("{what} split-K"),
        )?;
        push.d_off = p_off;
        push.x2_off = sk.kc;
        bindings[2] = rp;
        groups[2] = sk.ks;
    }
    // x → f16 once, then the kernel reads uvec4s of 8 halves (constant 1).
    let (rh, h_off) = bind(caps, &x16, 2, kn, &format!("{what} x16"))?;
    if h_off % 8 == 0 {
        super::copy::copy_f32_f16(rec, x, x16, kn)?;
        rec.barrier()?;
        push.x_off = h_off;
        spec[1] = 1;
        bindings[1] = rh;
    }
    rec.dispatch(shader, &spec, &bindings, bytemuck::bytes_of(&push), groups)?;
    match part {
        Some((sk, part)) => {
            rec.barrier()?;
            sum_splits(rec, part, dst, mn, sk.ks)
        }
        None => Ok(()),
    }
}

/// The mat-vec launch shape for rows of `k` values of `ty` over `n` tokens: `shape`, or the
/// default, and the workgroup width the device takes. Narrow workgroups for short rows
/// (fewer idle invocations), a power of two for the shared-memory tree, at least
/// NR * NMAX = 16 so the final write loop covers all; on a CPU implementation (lavapipe,
/// which runs a workgroup as one SIMD loop) narrow groups with more rows each, ~1.8x
/// faster there (llvmpipe, K = 576..1536). `Error::Unsupported` when the reduction's
/// shared arrays (rows × n × width floats, plus `extra_rows` × n × width) do not fit.
pub(crate) fn mat_vec_launch(
    caps: &Caps,
    ty: GgmlType,
    k: u32,
    n: u32,
    shape: Option<MatVecShape>,
    extra_rows: u32,
    what: &str,
) -> Result<(MatVecShape, u32)> {
    let qk = kernel_qk(ty);
    let units = (k / qk) * (qk / 16);
    let cpu = caps.device_type == ash::vk::PhysicalDeviceType::CPU;
    let shape = shape.unwrap_or(if cpu {
        MatVecShape { wg: 16, rows: 8 }
    } else {
        MatVecShape {
            wg: units.next_power_of_two().clamp(32, MMV_WG),
            rows: MMV_ROWS,
        }
    });
    let wg = shape.wg.min(caps.max_compute_work_group_size[0].max(32));
    let shared = u64::from(shape.rows + extra_rows) * u64::from(n) * u64::from(wg) * 4;
    if shared > u64::from(caps.max_compute_shared_memory_size) {
        return Err(Error::Unsupported(format!(
            "{what}: mat-vec shape {shape:?} needs {shared} bytes of shared memory"
        )));
    }
    Ok((shape, wg))
}

/// `count` workgroups as a 2-D grid `[x, y, 1]` with `x <= maxComputeWorkGroupCount[0]`;
/// kernels recover the index as `y * groups_x + x` and skip indices past `count`.
pub(crate) fn grid_2d(caps: &Caps, count: u32, what: &str) -> Result<[u32; 3]> {
    let max = caps.max_compute_work_group_count;
    let x = count.min(max[0].max(1));
    let y = if x == 0 { 0 } else { count.div_ceil(x) };
    if y > max[1] {
        return Err(Error::Unsupported(format!(
            "{what}: {count} workgroups exceed {}'s limits",
            caps.name
        )));
    }
    Ok([x, y, 1])
}

pub use super::mul_mat_vecq_layer::{
    vecq_layer_qout_fits, vecq_layer_rows, vecq_layer_support, LayerQ8, LayerQ8Out,
};

/// What [`mul_mat_vec_layer`] folds around the product (`Op::MulMatLayer`).
pub struct LayerParts<'a> {
    /// RMS-norm prologue: the norm weight (f32 `[k]`) and epsilon.
    pub norm: Option<(BufferRange<'a>, f32)>,
    /// The epilogue; [`LayerEpi::Add`] carries the residual (f32 `[m, n]`).
    pub epi: LayerEpi<'a>,
    /// Factor on the product before the epilogue (a folded SCALE; 1 for none).
    pub scale: f32,
    /// The integer-dot kernel (`mul_mat_vecq_layer.comp`, the quantized types only;
    /// [`vecq_layer_support`]) with its q8_1 operands, instead of the float one.
    pub int8: Option<super::mul_mat_vecq_layer::LayerQ8<'a>>,
}

/// The epilogue of [`mul_mat_vec_layer`].
pub enum LayerEpi<'a> {
    None,
    Add(BufferRange<'a>),
    SwiGlu,
    /// A per-row bias, f32 `[m]` (rows numbered across the segments).
    Bias(BufferRange<'a>),
    /// `Epilogue::AddSwiGlu`: `gu` is a fused gate/up output, f32 `[m, n]` of gate then
    /// `[m, n]` of up; the product is added to its up half (`gate` false) or gate half
    /// (`gate` true) and `silu(gate) * up` is written (`dst` f32 `[m, n]`, unsplit weights).
    AddSwiGlu {
        gu: BufferRange<'a>,
        gate: bool,
    },
}

impl<'a> LayerEpi<'a> {
    /// Binds the epilogue's operand (the residual, `mn` values, or the bias, `m`), or
    /// `unused` (a range the dispatch binds anyway) where it has none: (range, offset).
    pub(crate) fn bind(
        &self,
        caps: &Caps,
        unused: BufferRange<'a>,
        mn: u64,
        m: u32,
        what: &str,
    ) -> Result<(BufferRange<'a>, u32)> {
        match self {
            LayerEpi::Add(r) => bind(caps, r, 4, mn, &format!("{what} residual")),
            LayerEpi::Bias(b) => bind(caps, b, 4, u64::from(m), &format!("{what} bias")),
            LayerEpi::AddSwiGlu { gu, .. } => bind(caps, gu, 4, 2 * mn, &format!("{what} gate/up")),
            _ => Ok((unused, 0)),
        }
    }

    /// The kernels' EPI specialization constant.
    pub(crate) fn code(&self) -> u32 {
        match self {
            LayerEpi::None => 0,
            LayerEpi::Add(_) => 1,
            LayerEpi::SwiGlu => 2,
            LayerEpi::Bias(_) => 3,
            LayerEpi::AddSwiGlu { gate: false, .. } => 4,
            LayerEpi::AddSwiGlu { gate: true, .. } => 5,
        }
    }
}

/// Push constants of `mul_mat_vec_layer.comp`: [`Push`], then the LAYER fields.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(crate) struct LayerPush {
    pub(crate) base: Push,
    pub(crate) nw_off: u32,
    pub(crate) r_off: u32,
    pub(crate) eps: f32,
    pub(crate) scale: f32,
}

/// Why the fused mat-vec (`mul_mat_vec_layer.comp`) cannot take weight type `ty` with
/// rows of `k` for `n` tokens on this device, or `Ok` — the same checks
/// [`mul_mat_vec_layer`] makes, for plan time (`passes::layer` asks before folding).
pub fn layer_support(caps: &Caps, ty: GgmlType, k: u64, n: u64) -> std::result::Result<(), String> {
    if layer_shader(ty).is_none() {
        return Err(format!("no fused mat-vec kernel for {ty}"));
    }
    if n > u64::from(MAT_VEC_MAX_N) {
        return Err(format!(
            "{n} tokens take the tiled matmul (the fused mat-vec takes at most {MAT_VEC_MAX_N})"
        ));
    }
    if !has_subgroup_add(caps) || !caps.storage_16bit {
        return Err(format!(
            "{} lacks subgroup arithmetic or 16-bit storage",
            caps.name
        ));
    }
    let qk = u64::from(kernel_qk(ty));
    if k == 0 || k % qk != 0 {
        return Err(format!(
            "k = {k} is not a multiple of {ty}'s {qk}-value block"
        ));
    }
    let k = u32::try_from(k).map_err(|_| format!("k = {k} exceeds 32 bits"))?;
    // The default launch's shared arrays must fit (n <= MAT_VEC_MAX_N, checked above).
    mat_vec_launch(caps, ty, k, n as u32, None, 1, "fused mat-vec")
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn layer_shader(ty: GgmlType) -> Option<ShaderId> {
    use GgmlType as T;
    use ShaderId as S;
    Some(match ty {
        T::F32 => S::mul_mat_vec_layer_f32,
        T::F16 => S::mul_mat_vec_layer_f16,
        T::BF16 => S::mul_mat_vec_layer_bf16,
        T::Q4_0 => S::mul_mat_vec_layer_q4_0,
        T::Q4_1 => S::mul_mat_vec_layer_q4_1,
        T::Q5_0 => S::mul_mat_vec_layer_q5_0,
        T::Q5_1 => S::mul_mat_vec_layer_q5_1,
        T::Q8_0 => S::mul_mat_vec_layer_q8_0,
        T::Q2K => S::mul_mat_vec_layer_q2_K,
        T::Q3K => S::mul_mat_vec_layer_q3_K,
        T::Q4K => S::mul_mat_vec_layer_q4_K,
        T::Q5K => S::mul_mat_vec_layer_q5_K,
        T::Q6K => S::mul_mat_vec_layer_q6_K,
        _ => return None,
    })
}

/// Records `dst = epi(scale · W · x')` (`Op::MulMatLayer`) for `n <= MAT_VEC_MAX_N` tokens: `x'`
/// is `x` or, with `parts.norm`, `rms_norm(x) * nw` per token; the epilogue adds a
/// residual (`dst` and `r` f32 `[m, n]`, unsplit weights) or, for a weight of two equal
/// segments (gate rows, up rows), writes `silu(gate) * up` (`dst` f32 `[m/2, n]`), or adds
/// a per-row bias (f32 `[m]`; any split).
/// Errors as [`mul_mat`], and `Error::Unsupported` where [`layer_support`] says so.
#[allow(clippy::too_many_arguments)]
pub fn mul_mat_vec_layer(
    rec: &mut Recorder,
    ty: GgmlType,
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    parts: LayerParts<'_>,
    dst: BufferRange<'_>,
    k: u32,
    m: u32,
    n: u32,
    split: &[u32],
    shape: Option<MatVecShape>,
) -> Result<()> {
    let kernel = if parts.int8.is_some() {
        "mul_mat_vecq_layer"
    } else {
        "mul_mat_vec_layer"
    };
    let what = format!("{kernel}(type={ty},m={m},k={k},n={n})");
    let caps = rec.caps();
    if parts.int8.is_some() {
        vecq_layer_support(caps, ty, u64::from(k), u64::from(n))
    } else {
        layer_support(caps, ty, u64::from(k), u64::from(n))
    }
    .map_err(|e| Error::Unsupported(format!("{what}: {e}")))?;
    let glu = matches!(parts.epi, LayerEpi::SwiGlu);
    if glu && (split.len() != 2 || split[0] != split[1]) {
        return Err(Error::Usage(format!(
            "{what}: a SwiGLU epilogue needs two equal segments, got split {split:?}"
        )));
    }
    if matches!(parts.epi, LayerEpi::Add(_) | LayerEpi::AddSwiGlu { .. }) && split.len() > 1 {
        return Err(Error::Usage(format!(
            "{what}: a residual epilogue needs an unsplit weight"
        )));
    }
    if matches!(parts.epi, LayerEpi::AddSwiGlu { .. }) && parts.int8.is_some() {
        return Err(Error::Unsupported(format!(
            "{what}: the integer-dot fused mat-vec has no gate/up + SwiGLU epilogue"
        )));
    }
    let kn = u64::from(k) * u64::from(n);
    let out_rows = if glu { m / 2 } else { m };
    let mn = u64::from(out_rows) * u64::from(n);
    count_u32(kn, &what)?;
    count_u32(u64::from(m) * u64::from(n), &what)?;
    let wb = bind_weights(caps, ty, &w, k, m, split, &what)?;
    if let Some(q) = &parts.int8 {
        return super::mul_mat_vecq_layer::vecq_layer(
            rec,
            ty,
            wb,
            q,
            &parts,
            dst,
            [k, m, n, out_rows],
            shape,
            &what,
        );
    }
    let (rx, x_off) = bind(caps, &x, 4, kn, &format!("{what} x"))?;
    let (rd, d_off) = bind(caps, &dst, 4, mn, &format!("{what} dst"))?;
    let (rnw, nw_off, eps) = match &parts.norm {
        Some((nw, eps)) => {
            let (r, o) = bind(caps, nw, 4, u64::from(k), &format!("{what} norm weight"))?;
            (r, o, *eps)
        }
        None => (rx, 0, 0.0),
    };
    let (rr, r_off) = parts.epi.bind(caps, rx, mn, m, &what)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let push = LayerPush {
        base: Push::new(k, m, n, &wb, x_off, 0, d_off),
        nw_off,
        r_off,
        eps,
        scale: parts.scale,
    };
    // As mul_mat's mat-vec (rows even, for the gate/up pairs), plus the norm's
    // per-token partial sums in shared memory.
    let (shape, wg) = mat_vec_launch(caps, ty, k, n, shape, 1, &what)?;
    if shape.rows % 2 != 0 || !shape.wg.is_power_of_two() {
        return Err(Error::Usage(format!("{what}: bad mat-vec shape {shape:?}")));
    }
    let groups = grid_2d(
        caps,
        out_rows.div_ceil(if glu { shape.rows / 2 } else { shape.rows }),
        &what,
    )?;
    let epi = parts.epi.code();
    rec.dispatch(
        layer_shader(ty).expect("checked by layer_support"),
        &[
            wg,
            shape.rows,
            u32::from(x_off % 4 == 0),
            n,
            u32::from(parts.norm.is_some()),
            epi,
            u32::from(nw_off % 4 == 0),
            2,
        ],
        &[wb.range, rx, rd, rnw, rr],
        bytemuck::bytes_of(&push),
        groups,
    )
}
