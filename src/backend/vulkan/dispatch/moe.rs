//! Mixture-of-experts kernels (qwen3moe): `moe_route.comp` (`moe_topk`, `moe_weights`:
//! see `Op::MoeTopK`, `Op::MoeWeights`), `mul_mat_id.comp` (`Op::MulMatId`, one variant
//! per weight type) and `moe_sum.comp` (`Op::MoeSum`).
//!
//! Invariants: element offsets and counts travel in push constants as for every helper
//! (`dispatch::bind`); the expert-indexed matmul's weights are bound as one range of
//! `n_expert` matrices (2-byte elements, f32 4) and addressed in bytes, so the whole
//! 3-D tensor must stay under 4 GiB of byte offsets; `MUL_MAT_ID` runs one workgroup per
//! (row, token × slot), so `m` and `n_used · n` must fit the device's workgroup counts
//! (`Error::Unsupported` otherwise).

use bytemuck::{Pod, Zeroable};

use super::{bind, count_u32, groups_1d};
use crate::backend::vulkan::{BufferRange, Caps, Recorder, ShaderId};
use crate::quant::GgmlType;
use crate::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RoutePush {
    n_expert: u32,
    k: u32,
    n: u32,
    l_off: u32,
    i_off: u32,
    w_off: u32,
    pad: [u32; 2],
}

/// Top-k expert ids (`[k, n]` i32) of router logits `[n_expert, n]` (see `Op::MoeTopK`).
pub fn moe_topk(
    rec: &mut Recorder,
    logits: BufferRange<'_>,
    ids: BufferRange<'_>,
    n_expert: u32,
    k: u32,
    n: u32,
) -> Result<()> {
    route(rec, ShaderId::moe_topk, logits, ids, None, n_expert, k, n)
}

/// Routing weights `[k, n]` of the chosen experts (see `Op::MoeWeights`).
pub fn moe_weights(
    rec: &mut Recorder,
    logits: BufferRange<'_>,
    ids: BufferRange<'_>,
    dst: BufferRange<'_>,
    n_expert: u32,
    k: u32,
    n: u32,
) -> Result<()> {
    route(
        rec,
        ShaderId::moe_weights,
        logits,
        ids,
        Some(dst),
        n_expert,
        k,
        n,
    )
}

#[allow(clippy::too_many_arguments)]
fn route(
    rec: &mut Recorder,
    shader: ShaderId,
    logits: BufferRange<'_>,
    ids: BufferRange<'_>,
    dst: Option<BufferRange<'_>>,
    n_expert: u32,
    k: u32,
    n: u32,
) -> Result<()> {
    if k == 0 || k > n_expert {
        return Err(Error::Usage(format!("{shader}: {k} experts of {n_expert}")));
    }
    let caps = rec.caps();
    let nl = u64::from(n_expert) * u64::from(n);
    let ni = u64::from(k) * u64::from(n);
    count_u32(nl, shader.name())?;
    let (rl, l_off) = bind(caps, &logits, 4, nl, "moe logits")?;
    let (ri, i_off) = bind(caps, &ids, 4, ni, "moe ids")?;
    let (rw, w_off) = match &dst {
        Some(d) => bind(caps, d, 4, ni, "moe weights")?,
        // moe_topk does not read binding 2; the ids range fills the slot.
        None => (ri, 0),
    };
    let push = RoutePush {
        n_expert,
        k,
        n,
        l_off,
        i_off,
        w_off,
        pad: [0; 2],
    };
    if n == 0 {
        return Ok(());
    }
    let groups = if dst.is_none() {
        // moe_topk: one subgroup per token, WG_X / subgroup size tokens per workgroup.
        if !supports_topk(caps) {
            return Err(Error::Unsupported(format!(
                "{shader}: needs subgroup arithmetic and a subgroup of at most {} \
                 invocations (device {}: {})",
                shader.workgroup()[0],
                caps.name,
                caps.subgroup_size
            )));
        }
        let wg = u64::from(shader.workgroup()[0]);
        let per_group = (wg / u64::from(caps.subgroup_size)).max(1);
        groups_1d(caps, shader, u64::from(n).div_ceil(per_group) * wg)?
    } else {
        groups_1d(caps, shader, u64::from(n))?
    };
    rec.dispatch(
        shader,
        &[],
        &[rl, ri, rw],
        bytemuck::bytes_of(&push),
        groups,
    )
}

/// Whether `moe_topk` runs on this device (one subgroup per token: subgroup arithmetic,
/// a subgroup no wider than the workgroup).
pub fn supports_topk(caps: &Caps) -> bool {
    use ash::vk::SubgroupFeatureFlags as F;
    caps.subgroup_ops.contains(F::BASIC | F::ARITHMETIC)
        && caps.subgroup_size >= 1
        && caps.subgroup_size <= ShaderId::moe_topk.workgroup()[0]
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct IdPush {
    k: u32,
    m: u32,
    nx: u32,
    n_used: u32,
    n_expert: u32,
    x_off: u32,
    d_off: u32,
    ids_off: u32,
    row_bytes: u32,
    nseg: u32,
    /// Rows per expert and first byte of each segment (a fused weight's members).
    seg_rows: [u32; 2],
    seg_woff: [u32; 2],
    pad: [u32; 2],
}

/// Most members a fused expert-indexed weight may have (gate and up).
pub const MAX_ID_SEGMENTS: usize = 2;

/// The `mul_mat_id.comp` variant for weight type `ty`.
fn id_shader(ty: GgmlType) -> Option<ShaderId> {
    use GgmlType as T;
    use ShaderId as S;
    Some(match ty {
        T::F32 => S::mul_mat_id_f32,
        T::F16 => S::mul_mat_id_f16,
        T::BF16 => S::mul_mat_id_bf16,
        T::Q4_0 => S::mul_mat_id_q4_0,
        T::Q4_1 => S::mul_mat_id_q4_1,
        T::Q5_0 => S::mul_mat_id_q5_0,
        T::Q5_1 => S::mul_mat_id_q5_1,
        T::Q8_0 => S::mul_mat_id_q8_0,
        T::Q2K => S::mul_mat_id_q2_K,
        T::Q3K => S::mul_mat_id_q3_K,
        T::Q4K => S::mul_mat_id_q4_K,
        T::Q5K => S::mul_mat_id_q5_K,
        T::Q6K => S::mul_mat_id_q6_K,
        _ => return None,
    })
}

/// Whether `mul_mat_id` has a kernel for weight type `ty`.
pub fn supports_mul_mat_id(ty: GgmlType) -> bool {
    id_shader(ty).is_some()
}

/// `dst[t][s] = W[ids[s][t]] · x[t][s mod nx]` (see `Op::MulMatId`): `w` is `n_expert`
/// matrices of `m` rows of `k` values of `ty`, `x` f32 `[k, nx, n]`, `ids` i32
/// `[n_used, n]`, `dst` f32 `[m, n_used, n]`. With a non-empty `split` (at most
/// [`MAX_ID_SEGMENTS`] row counts summing to `m`) `w` holds each member's whole expert
/// stack after the other and dst is split on write: member `s` is a contiguous
/// `[split[s], n_used, n]` block.
#[allow(clippy::too_many_arguments)]
pub fn mul_mat_id(
    rec: &mut Recorder,
    ty: GgmlType,
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    ids: BufferRange<'_>,
    dst: BufferRange<'_>,
    k: u32,
    m: u32,
    n_expert: u32,
    nx: u32,
    n_used: u32,
    n: u32,
    split: &[u32],
) -> Result<()> {
    let what = format!("mul_mat_id({ty}, k={k}, m={m}, experts={n_expert})");
    let segs: Vec<u32> = if split.is_empty() {
        vec![m]
    } else {
        split.to_vec()
    };
    if segs.len() > MAX_ID_SEGMENTS
        || segs.iter().map(|&r| u64::from(r)).sum::<u64>() != u64::from(m)
    {
        return Err(Error::Usage(format!(
            "{what}: split {split:?} (at most {MAX_ID_SEGMENTS} row counts summing to m)"
        )));
    }
    let shader =
        id_shader(ty).ok_or_else(|| Error::Unsupported(format!("{what}: no kernel for {ty}")))?;
    if nx != 1 && nx != n_used {
        return Err(Error::Usage(format!(
            "{what}: nx = {nx} is neither 1 nor n_used"
        )));
    }
    let row_bytes = ty
        .row_bytes(k as usize)
        .ok_or_else(|| Error::Unsupported(format!("{what}: k is not a multiple of {ty}'s block")))?
        as u64;
    let w_bytes = row_bytes * u64::from(m) * u64::from(n_expert);
    let caps = rec.caps();
    let welem = if ty == GgmlType::F32 { 4 } else { 2 };
    let (rw, w_off) = bind(caps, &w, welem, w_bytes / welem, &format!("{what} weights"))?;
    let w_off = u64::from(w_off) * welem;
    if w_off + w_bytes > u64::from(u32::MAX) {
        return Err(Error::Unsupported(format!(
            "{what}: {w_bytes} weight bytes exceed the kernel's 32-bit byte offsets"
        )));
    }
    let pairs = u64::from(n_used) * u64::from(n);
    let nxe = u64::from(k) * u64::from(nx) * u64::from(n);
    count_u32(nxe, &what)?;
    let (rx, x_off) = bind(caps, &x, 4, nxe, "mul_mat_id x")?;
    let (ri, ids_off) = bind(caps, &ids, 4, pairs, "mul_mat_id ids")?;
    let nd = u64::from(m) * pairs;
    count_u32(nd, &what)?;
    let (rd, d_off) = bind(caps, &dst, 4, nd, "mul_mat_id dst")?;
    let max = caps.max_compute_work_group_count;
    if m > max[0] || pairs > u64::from(max[1]) {
        return Err(Error::Unsupported(format!(
            "{what}: {m} x {pairs} workgroups exceed {}'s limits",
            caps.name
        )));
    }
    let mut seg_rows = [0u32; 2];
    let mut seg_woff = [0u32; 2];
    let mut at = w_off;
    for (s, &rows) in segs.iter().enumerate() {
        seg_rows[s] = rows;
        seg_woff[s] = at as u32; // < w_off + w_bytes, checked above
        at += u64::from(rows) * row_bytes * u64::from(n_expert);
    }
    let push = IdPush {
        k,
        m,
        nx,
        n_used,
        n_expert,
        x_off,
        d_off,
        ids_off,
        row_bytes: row_bytes as u32,
        nseg: segs.len() as u32,
        seg_rows,
        seg_woff,
        pad: [0; 2],
    };
    if pairs == 0 || m == 0 {
        return Ok(());
    }
    rec.dispatch(
        shader,
        &[],
        &[rw, rx, rd, ri],
        bytemuck::bytes_of(&push),
        [m, pairs as u32, 1],
    )
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SumPush {
    ne0: u32,
    n_used: u32,
    n: u32,
    y_off: u32,
    w_off: u32,
    d_off: u32,
    pad: [u32; 2],
}

/// `dst[t] = Σ_s w[s][t] · y[t][s]` (see `Op::MoeSum`): `y` f32 `[ne0, n_used, n]`, `w` f32
/// `[n_used, n]`, `dst` f32 `[ne0, n]`.
pub fn moe_sum(
    rec: &mut Recorder,
    y: BufferRange<'_>,
    w: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    n_used: u32,
    n: u32,
) -> Result<()> {
    let shader = ShaderId::moe_sum;
    let caps = rec.caps();
    let nd = u64::from(ne0) * u64::from(n);
    let ny = nd * u64::from(n_used);
    count_u32(ny, shader.name())?;
    let (ry, y_off) = bind(caps, &y, 4, ny, "moe_sum y")?;
    let (rw, w_off) = bind(caps, &w, 4, u64::from(n_used) * u64::from(n), "moe_sum w")?;
    let (rd, d_off) = bind(caps, &dst, 4, nd, "moe_sum dst")?;
    let push = SumPush {
        ne0,
        n_used,
        n,
        y_off,
        w_off,
        d_off,
        pad: [0; 2],
    };
    if nd == 0 {
        return Ok(());
    }
    let groups = groups_1d(caps, shader, nd)?;
    rec.dispatch(
        shader,
        &[],
        &[ry, rw, rd],
        bytemuck::bytes_of(&push),
        groups,
    )
}
