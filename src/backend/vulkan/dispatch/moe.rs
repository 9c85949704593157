//! Mixture-of-experts kernels (qwen3moe): `moe_route.comp` (`moe_topk`, `moe_weights`:
//! see `Op::MoeTopK`, `Op::MoeWeights`), the expert-indexed matmul (`Op::MulMatId`, one
//! variant per weight type) and `moe_sum.comp` (`Op::MoeSum`).
//!
//! Invariants: element offsets and counts travel in push constants as for every helper
//! (`dispatch::bind`); the expert-indexed matmul's weights are bound as one range of
//! `n_expert` matrices (2-byte elements, f32 4) and addressed in bytes, so the whole
//! 3-D tensor must stay under 4 GiB of byte offsets.
//! - Decode batches (up to `MAT_VEC_MAX_N` tokens) run `mul_mat_vec_id.comp`, the float
//!   mat-vec of the dense path with workgroup z = (token, slot) pair, so `n_used · n`
//!   must fit the device's workgroup count along z (`Error::Unsupported` otherwise).
//! - Prompt batches (more than `MAT_VEC_MAX_N` tokens, [`groups_by_expert`]) group the
//!   (token, slot) pairs by expert first (`moe_group.comp`, into a scratch range of
//!   [`grouping_words`] words the executor plans) and then run the dense tiled matmul's
//!   tile over each expert's pairs (`mul_mat_id_coopmat.comp`, or `mul_mat_id_tiled.comp`,
//!   scalar), so an expert's weights are read once per tile of pairs, not once per pair.
//!   Results equal the mat-vec's within the tiled kernels' rounding (coopmat: f16
//!   products).

use bytemuck::{Pod, Zeroable};

use super::mul_mat::{self, TiledKernel, WeightBinding};
use super::mul_mat_vecq::{self, XQ};
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

/// Rows per workgroup of `moe_router.comp` (`RPW`).
const ROUTER_RPW: u32 = 2;
/// Most experts `moe_router.comp` takes (`MAX_E`: its shared copy of the logits).
pub const ROUTER_MAX_EXPERTS: u32 = 256;

/// Why `moe_router_topk` cannot run `k` of `n_expert` experts for `n` tokens of rows of
/// `k_dim` on this device, or `Ok`: the top-k's needs ([`supports_topk`]), at most
/// `passes::fusion::ROUTER_TOPK_MAX_N` tokens, at most [`ROUTER_MAX_EXPERTS`] experts, rows
/// of a multiple of 4 values, and a
/// subgroup of at least 4 invocations dividing the invocations of a row (`WG_X / RPW`).
pub fn router_topk_support(caps: &Caps, k_dim: u64, n_expert: u64, k: u64, n: u64) -> Result<()> {
    let shader = ShaderId::moe_router;
    let per_row = shader.workgroup()[0] / ROUTER_RPW;
    let why = if !supports_topk(caps) {
        "no subgroup arithmetic (or too wide a subgroup) for the top-k".to_string()
    } else if per_row % caps.subgroup_size != 0 || caps.subgroup_size < 4 {
        format!(
            "subgroup of {} does not divide {per_row} invocations per row",
            caps.subgroup_size
        )
    } else if n == 0 || n > crate::passes::fusion::ROUTER_TOPK_MAX_N as u64 {
        format!(
            "{n} tokens (1..={})",
            crate::passes::fusion::ROUTER_TOPK_MAX_N
        )
    } else if k_dim == 0 || k_dim % 4 != 0 {
        format!("rows of {k_dim} values (a multiple of 4 needed)")
    } else if n_expert > u64::from(ROUTER_MAX_EXPERTS) {
        format!("{n_expert} experts (at most {ROUTER_MAX_EXPERTS})")
    } else if k == 0 || k > n_expert {
        format!("{k} experts of {n_expert}")
    } else if n_expert * k_dim > u64::from(u32::MAX) {
        format!("{n_expert} x {k_dim} router values exceed 32-bit indices")
    } else {
        return Ok(());
    };
    Err(Error::Unsupported(format!("{shader}: {why}")))
}

/// Bytes of scratch `moe_router_topk` needs: its counter, and room for the logits when
/// no router MUL_MAT output receives them.
pub fn router_topk_scratch_bytes(n_expert: u32, n: u32) -> u64 {
    16 + 4 * u64::from(n_expert) * u64::from(n)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RouterPush {
    k_dim: u32,
    n_expert: u32,
    n: u32,
    k: u32,
    w_off: u32,
    x_off: u32,
    l_off: u32,
    i_off: u32,
    c_off: u32,
    nw_off: u32,
    eps: f32,
    pad: u32,
}

/// The router `logits = w · x` (`w`: f32 `[k_dim, n_expert]`, `x`: f32 `[k_dim, n]`) and
/// the top-`k` expert ids of each token (`[k, n]` i32, as [`moe_topk`]) in one dispatch
/// (`moe_router.comp`, Op::MoeRouterTopK). `logits` receives the logits (the router
/// MUL_MAT node's output when the executor folds that node in; else scratch); `scratch`
/// starts with the dispatch's counter, zero before and after (see
/// [`router_topk_scratch_bytes`]). With `norm` (the norm weight, f32 `[k_dim]`, and
/// epsilon) the router reads `rms_norm(x) * nw` of the raw `x` (`moe_router_norm`).
#[allow(clippy::too_many_arguments)]
pub fn moe_router_topk(
    rec: &mut Recorder,
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    logits: BufferRange<'_>,
    ids: BufferRange<'_>,
    scratch: BufferRange<'_>,
    k_dim: u32,
    n_expert: u32,
    k: u32,
    n: u32,
    norm: Option<(BufferRange<'_>, f32)>,
) -> Result<()> {
    let shader = if norm.is_some() {
        ShaderId::moe_router_norm
    } else {
        ShaderId::moe_router
    };
    let caps = rec.caps();
    router_topk_support(caps, k_dim.into(), n_expert.into(), k.into(), n.into())?;
    let nw = u64::from(k_dim) * u64::from(n_expert);
    let nx = u64::from(k_dim) * u64::from(n);
    let (rw, w_off) = bind(caps, &w, 16, nw / 4, &format!("{shader} router"))?;
    let (rx, x_off) = bind(caps, &x, 16, nx / 4, &format!("{shader} x"))?;
    let (rl, l_off) = bind(
        caps,
        &logits,
        4,
        u64::from(n_expert) * u64::from(n),
        "moe logits",
    )?;
    let (ri, i_off) = bind(caps, &ids, 4, u64::from(k) * u64::from(n), "moe ids")?;
    let (rc, c_off) = bind(caps, &scratch, 4, 1, &format!("{shader} counter"))?;
    // Without a norm binding 5 holds x (not read).
    let (rn, nw_off, eps) = match &norm {
        Some((nw, eps)) => {
            let (r, o) = bind(
                caps,
                nw,
                16,
                u64::from(k_dim) / 4,
                &format!("{shader} norm weight"),
            )?;
            (r, o, *eps)
        }
        None => (rx, 0, 0.0),
    };
    let push = RouterPush {
        k_dim,
        n_expert,
        n,
        k,
        w_off,
        x_off,
        l_off,
        i_off,
        c_off,
        nw_off,
        eps,
        pad: 0,
    };
    let groups = [n_expert.div_ceil(ROUTER_RPW), 1, 1];
    if groups[0] > caps.max_compute_work_group_count[0] {
        return Err(Error::Unsupported(format!(
            "{shader}: {} workgroups exceed the device's {}",
            groups[0], caps.max_compute_work_group_count[0]
        )));
    }
    rec.dispatch(
        shader,
        &[],
        &[rw, rx, rl, ri, rc, rn],
        bytemuck::bytes_of(&push),
        groups,
    )
}

/// Most members a fused expert-indexed weight may have (gate and up).
pub const MAX_ID_SEGMENTS: usize = 2;

/// Whether `mul_mat_id` has a kernel for weight type `ty`.
pub fn supports_mul_mat_id(ty: GgmlType) -> bool {
    vec_id_shader(ty, false).is_some()
}

/// Whether a decode `MUL_MAT_ID` of `n` tokens of `ty` with rows of `k` can take the
/// integer-dot kernel (`mul_mat_vecq_id.comp`): what the dense one needs
/// (`mul_mat_vecq::supports`) for one x row per workgroup.
pub fn vecq_id_supports(caps: &Caps, ty: GgmlType, k: u32, n: u32) -> bool {
    vecq_id_shader(ty).is_some()
        && n <= mul_mat::MAT_VEC_MAX_N
        && mul_mat_vecq::supports(caps, ty, k, 1)
}

fn vecq_id_shader(ty: GgmlType) -> Option<ShaderId> {
    use GgmlType as T;
    use ShaderId as S;
    Some(match ty {
        T::Q4_0 => S::mul_mat_vecq_id_q4_0,
        T::Q4_1 => S::mul_mat_vecq_id_q4_1,
        T::Q5_0 => S::mul_mat_vecq_id_q5_0,
        T::Q5_1 => S::mul_mat_vecq_id_q5_1,
        T::Q8_0 => S::mul_mat_vecq_id_q8_0,
        T::Q2K => S::mul_mat_vecq_id_q2_K,
        T::Q3K => S::mul_mat_vecq_id_q3_K,
        T::Q4K => S::mul_mat_vecq_id_q4_K,
        T::Q5K => S::mul_mat_vecq_id_q5_K,
        T::Q6K => S::mul_mat_vecq_id_q6_K,
        _ => return None,
    })
}

/// `dst[t][s] = W[ids[s][t]] · x[t][s mod nx]` (see `Op::MulMatId`): `w` is `n_expert`
/// matrices of `m` rows of `k` values of `ty`, `x` f32 `[k, nx, n]`, `ids` i32
/// `[n_used, n]`, `dst` f32 `[m, n_used, n]`. With a non-empty `split` (at most
/// [`MAX_ID_SEGMENTS`] row counts summing to `m`) `w` holds each member's whole expert
/// stack after the other and dst is split on write: member `s` is a contiguous
/// `[split[s], n_used, n]` block. Runs `mul_mat_vec_id.comp` (the float mat-vec, workgroup
/// z = pair) whatever `n` is: [`mul_mat_id_with`] groups prompt batches by expert.
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
    mul_mat_id_with(
        rec,
        ty,
        w,
        x,
        ids,
        false,
        dst,
        k,
        m,
        n_expert,
        nx,
        n_used,
        n,
        split,
        IdEpilogue::default(),
        None,
        None,
        None,
    )
}

/// Most buckets (`n_expert` + 1) `moe_group.comp` counts in shared memory.
pub const MAX_GROUP_BUCKETS: u32 = 1024;

/// Words of the grouping `moe_group.comp` writes for `n_expert` experts and `pairs`
/// (token, slot) pairs (layout in `shaders/common/moe_group.glsl`).
pub fn grouping_words(n_expert: u32, pairs: u32) -> u64 {
    2 * (u64::from(n_expert) + 1) + u64::from(pairs)
}

/// Whether a MUL_MAT_ID of `n` tokens over `n_expert` experts of type `ty` runs grouped
/// by expert on this device (and so needs a grouping scratch range): prompt batches
/// (more than `MAT_VEC_MAX_N` tokens), at most [`MAX_GROUP_BUCKETS`] − 1 experts, a
/// tiled kernel for the type and 16-bit storage. Otherwise the per-pair kernel runs.
pub fn groups_by_expert(caps: &Caps, ty: GgmlType, n_expert: u32, n: u32) -> bool {
    n > mul_mat::MAT_VEC_MAX_N
        && n_expert < MAX_GROUP_BUCKETS
        && caps.storage_16bit
        && id_tiled_shader(ty, false).is_some()
}

/// Whether the expert-indexed coopmat kernel fits this device where the dense one does:
/// its tile's shared memory plus the two per-column words (`c_x`, `c_d`). Where it does
/// not, the grouped path takes the scalar kernel.
pub fn coopmat_fits(caps: &Caps) -> bool {
    mul_mat::coopmat_id_fits(caps)
}

/// The expert-indexed float mat-vec (`mul_mat_vec_id.comp`) for `ty`: the subgroup
/// reduction, or (`shared`) the shared-memory tree.
fn vec_id_shader(ty: GgmlType, shared: bool) -> Option<ShaderId> {
    use GgmlType as T;
    use ShaderId as S;
    Some(match (shared, ty) {
        (false, T::F32) => S::mul_mat_vec_id_f32,
        (false, T::F16) => S::mul_mat_vec_id_f16,
        (false, T::BF16) => S::mul_mat_vec_id_bf16,
        (false, T::Q4_0) => S::mul_mat_vec_id_q4_0,
        (false, T::Q4_1) => S::mul_mat_vec_id_q4_1,
        (false, T::Q5_0) => S::mul_mat_vec_id_q5_0,
        (false, T::Q5_1) => S::mul_mat_vec_id_q5_1,
        (false, T::Q8_0) => S::mul_mat_vec_id_q8_0,
        (false, T::Q2K) => S::mul_mat_vec_id_q2_K,
        (false, T::Q3K) => S::mul_mat_vec_id_q3_K,
        (false, T::Q4K) => S::mul_mat_vec_id_q4_K,
        (false, T::Q5K) => S::mul_mat_vec_id_q5_K,
        (false, T::Q6K) => S::mul_mat_vec_id_q6_K,
        (true, T::F32) => S::mul_mat_vec_id_f32_shmem,
        (true, T::F16) => S::mul_mat_vec_id_f16_shmem,
        (true, T::BF16) => S::mul_mat_vec_id_bf16_shmem,
        (true, T::Q4_0) => S::mul_mat_vec_id_q4_0_shmem,
        (true, T::Q4_1) => S::mul_mat_vec_id_q4_1_shmem,
        (true, T::Q5_0) => S::mul_mat_vec_id_q5_0_shmem,
        (true, T::Q5_1) => S::mul_mat_vec_id_q5_1_shmem,
        (true, T::Q8_0) => S::mul_mat_vec_id_q8_0_shmem,
        (true, T::Q2K) => S::mul_mat_vec_id_q2_K_shmem,
        (true, T::Q3K) => S::mul_mat_vec_id_q3_K_shmem,
        (true, T::Q4K) => S::mul_mat_vec_id_q4_K_shmem,
        (true, T::Q5K) => S::mul_mat_vec_id_q5_K_shmem,
        (true, T::Q6K) => S::mul_mat_vec_id_q6_K_shmem,
        _ => return None,
    })
}

/// The expert-indexed tiled kernel for `ty` (`coop`: on cooperative matrices).
fn id_tiled_shader(ty: GgmlType, coop: bool) -> Option<ShaderId> {
    use GgmlType as T;
    use ShaderId as S;
    Some(match (coop, ty) {
        (false, T::F32) => S::mul_mat_id_tiled_f32,
        (false, T::F16) => S::mul_mat_id_tiled_f16,
        (false, T::BF16) => S::mul_mat_id_tiled_bf16,
        (false, T::Q4_0) => S::mul_mat_id_tiled_q4_0,
        (false, T::Q4_1) => S::mul_mat_id_tiled_q4_1,
        (false, T::Q5_0) => S::mul_mat_id_tiled_q5_0,
        (false, T::Q5_1) => S::mul_mat_id_tiled_q5_1,
        (false, T::Q8_0) => S::mul_mat_id_tiled_q8_0,
        (false, T::Q2K) => S::mul_mat_id_tiled_q2_K,
        (false, T::Q3K) => S::mul_mat_id_tiled_q3_K,
        (false, T::Q4K) => S::mul_mat_id_tiled_q4_K,
        (false, T::Q5K) => S::mul_mat_id_tiled_q5_K,
        (false, T::Q6K) => S::mul_mat_id_tiled_q6_K,
        (true, T::F32) => S::mul_mat_id_coopmat_f32,
        (true, T::F16) => S::mul_mat_id_coopmat_f16,
        (true, T::BF16) => S::mul_mat_id_coopmat_bf16,
        (true, T::Q4_0) => S::mul_mat_id_coopmat_q4_0,
        (true, T::Q4_1) => S::mul_mat_id_coopmat_q4_1,
        (true, T::Q5_0) => S::mul_mat_id_coopmat_q5_0,
        (true, T::Q5_1) => S::mul_mat_id_coopmat_q5_1,
        (true, T::Q8_0) => S::mul_mat_id_coopmat_q8_0,
        (true, T::Q2K) => S::mul_mat_id_coopmat_q2_K,
        (true, T::Q3K) => S::mul_mat_id_coopmat_q3_K,
        (true, T::Q4K) => S::mul_mat_id_coopmat_q4_K,
        (true, T::Q5K) => S::mul_mat_id_coopmat_q5_K,
        (true, T::Q6K) => S::mul_mat_id_coopmat_q6_K,
        _ => return None,
    })
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GroupPush {
    n_expert: u32,
    pairs: u32,
    ids_off: u32,
    g_off: u32,
}

/// Push constants of the expert-indexed kernels (`mul_mat_vec_id`, `mul_mat_id_tiled`,
/// `mul_mat_id_coopmat`): the dense matmuls' block (with `n` = pairs), then `ID`'s fields
/// (`shaders/common/dequant_matmul.glsl`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct IdPush {
    base: mul_mat::Push,
    n_used: u32,
    nx: u32,
    n_expert: u32,
    id_off: u32,
}

/// Push constants of `mul_mat_vecq_id.comp`: [`IdPush`], then its q8_1 epilogue's
/// element offsets (codes in words and (d, s) pairs in binding 5, counters in binding 6).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct IdqPush {
    id: IdPush,
    qo_codes: u32,
    qo_scales: u32,
    qo_cnt: u32,
    pad: u32,
}

/// What a decode MUL_MAT_ID does with its products besides writing them (`Op::MulMatId`'s
/// `glu`; the default: nothing).
#[derive(Clone, Copy, Debug, Default)]
pub struct IdEpilogue<'a> {
    /// `silu(gate)·up` of a fused gate/up weight's two equal segments: dst `[m/2, pairs]`.
    pub glu: bool,
    /// With `glu` on the integer-dot kernel: the output also quantized to q8_1 for the
    /// next integer-dot matmul (the down experts), so no quantize_q8_1 dispatch runs.
    pub q8_out: Option<IdQ8Out<'a>>,
}

/// Where [`IdEpilogue::q8_out`] writes: byte offsets in `scratch` of the output's q8_1
/// codes (`pairs·m_out` bytes), `(d, s)` pairs (`pairs·m_out/32`) and block counters
/// (`pairs·m_out/32` u32, zero before the dispatch and left at zero).
#[derive(Clone, Copy, Debug)]
pub struct IdQ8Out<'a> {
    pub scratch: BufferRange<'a>,
    pub codes: u64,
    pub scales: u64,
    pub cnt: u64,
}

/// Whether the q8_1 epilogue can quantize an output of `m_out` rows written `rows_out`
/// per workgroup: whole 32-row blocks, each workgroup's rows in one.
pub fn id_qout_fits(m_out: u32, rows_out: u32) -> bool {
    super::mul_mat_vecq_layer::vecq_layer_qout_fits(m_out, rows_out)
}

/// Binds [`IdQ8Out`]'s slot and counters: (slot range, counters range, [codes word,
/// pair, counter] offsets).
fn id_q8_out<'a>(
    caps: &Caps,
    o: &IdQ8Out<'a>,
    m_out: u32,
    pairs: u64,
    rows_out: u32,
    what: &str,
) -> Result<(BufferRange<'a>, BufferRange<'a>, [u32; 3])> {
    if !id_qout_fits(m_out, rows_out) {
        return Err(Error::Usage(format!(
            "{what}: no q8_1 epilogue for {m_out} output rows, {rows_out} per workgroup \
             (needs whole 32-row blocks, each workgroup's rows in one)"
        )));
    }
    let (cb, sb) = mul_mat_vecq::xq_bytes(m_out, pairs as u32);
    let nb = u64::from(m_out / 32) * pairs;
    let arrays = [(o.codes, cb), (o.scales, sb)];
    let q8 = super::mul_mat_vecq_layer::bind_q8_slot(caps, &o.scratch, &arrays, o.cnt, nb, what)?;
    Ok((q8.slot, q8.cnt, [q8.words[0], q8.words[1] / 2, q8.cnt_off]))
}

/// What a prompt batch grouped by expert needs besides the operands (planned by the
/// executor): the grouping's scratch range (at least [`grouping_words`] words), the tiled
/// kernel family, and room for an f16 copy of x (`k·nx·n` halves, 16-byte aligned) that
/// the cooperative-matrix kernel reads instead of x when given (converted beside the
/// grouping, before the same barrier).
#[derive(Clone, Copy, Debug)]
pub struct Grouping<'a> {
    pub scratch: BufferRange<'a>,
    pub tiled: TiledKernel,
    pub x16: Option<BufferRange<'a>>,
}

/// [`mul_mat_id`] with a [`Grouping`]: where [`groups_by_expert`] holds it runs the
/// grouped path on its tiled kernel family; `None`, or a batch it does not hold for,
/// runs the decode kernel per (token, slot) pair: with `route`, `ids` is the router's
/// logits f32 `[n_expert, n]` and each pair's workgroup ranks them itself to find its
/// expert (MOE_TOPK's order: `Op::MulMatId`'s `route`; decode only, `n_used` ≤
/// `n_expert`); with `xq` (x's q8_1 copy, every row
/// of `[k, nx, n]`, written before this dispatch: `mul_mat_vecq::quantize_q8_1` or a
/// producer's q8 epilogue; with its launch shape override) and where [`vecq_id_supports`]
/// holds the integer-dot kernel `mul_mat_vecq_id.comp`, else the float `mul_mat_vec_id.comp` with the mat-vec launch
/// `shape` (`None`: the default for the row length and device; `VKGRAPH_MMV_SHAPE`).
/// What the executor records.
#[allow(clippy::too_many_arguments)]
pub fn mul_mat_id_with(
    rec: &mut Recorder,
    ty: GgmlType,
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    ids: BufferRange<'_>,
    route: bool,
    dst: BufferRange<'_>,
    k: u32,
    m: u32,
    n_expert: u32,
    nx: u32,
    n_used: u32,
    n: u32,
    split: &[u32],
    epi: IdEpilogue<'_>,
    grouping: Option<Grouping<'_>>,
    shape: Option<mul_mat::MatVecShape>,
    xq: Option<(XQ<'_>, Option<mul_mat::MatVecShape>)>,
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
    if !supports_mul_mat_id(ty) {
        return Err(Error::Unsupported(format!("{what}: no kernel for {ty}")));
    }
    let glu = epi.glu;
    if glu && (segs.len() != 2 || segs[0] != segs[1]) {
        return Err(Error::Usage(format!(
            "{what}: a SwiGLU epilogue needs two equal segments (gate, up), not {split:?}"
        )));
    }
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
    if route && !mul_mat::has_subgroup_add(caps) {
        return Err(Error::Unsupported(format!(
            "{what}: routing in the kernel needs subgroup arithmetic, which {} lacks",
            caps.name
        )));
    }
    if route && (n_used > n_expert || n > mul_mat::MAT_VEC_MAX_N) {
        return Err(Error::Usage(format!(
            "{what}: routing in the kernel takes at most {} tokens and {n_expert} slots, \
             not {n} and {n_used}",
            mul_mat::MAT_VEC_MAX_N
        )));
    }
    // The ids, or with `route` the logits (n_expert per token).
    let id_words = if route {
        u64::from(n_expert) * u64::from(n)
    } else {
        pairs
    };
    let (ri, ids_off) = bind(caps, &ids, 4, id_words, "mul_mat_id ids")?;
    // With the SwiGLU epilogue one output row per gate/up pair of rows.
    let nd = u64::from(if glu { m / 2 } else { m }) * pairs;
    count_u32(nd, &what)?;
    let (rd, d_off) = bind(caps, &dst, 4, nd, "mul_mat_id dst")?;
    let mut seg_rows = [0u32; 4];
    let mut seg_woff = [0u32; 4];
    let mut at = w_off;
    for (s, &rows) in segs.iter().enumerate() {
        seg_rows[s] = rows;
        seg_woff[s] = at as u32; // < w_off + w_bytes, checked above
        at += u64::from(rows) * row_bytes * u64::from(n_expert);
    }
    if pairs == 0 || m == 0 {
        return Ok(());
    }
    let max = caps.max_compute_work_group_count;
    let wb = WeightBinding {
        range: rw,
        nseg: segs.len() as u32,
        row_bytes: row_bytes as u32,
        seg_rows,
        seg_woff,
    };
    let x_vec4 = u32::from(x_off % 4 == 0);
    // Specialization constant 5 of the decode kernels (EPI): 2 = SwiGLU.
    let epi_code = if glu { 2 } else { 0 };
    if epi.q8_out.is_some() && !glu {
        return Err(Error::Usage(format!(
            "{what}: a q8_1 epilogue needs the SwiGLU epilogue"
        )));
    }
    if let Some(Grouping {
        scratch,
        tiled,
        x16,
    }) = grouping.filter(|_| groups_by_expert(caps, ty, n_expert, n))
    {
        // Prompt: moe_group.comp writes the grouping; after a barrier the expert-indexed
        // tile runs over each expert's pairs.
        if glu {
            return Err(Error::Unsupported(format!(
                "{what}: the grouped prompt kernels have no SwiGLU epilogue (decode only)"
            )));
        }
        let pairs = pairs as u32; // count_u32(m · pairs) above
        let (rg, g_off) = bind(
            caps,
            &scratch,
            4,
            grouping_words(n_expert, pairs),
            "mul_mat_id grouping",
        )?;
        let tiled = match tiled {
            TiledKernel::Auto if !coopmat_fits(caps) => TiledKernel::Scalar,
            t => t,
        };
        let launch = mul_mat::tiled_launch(caps, tiled, x_vec4, true, &what)?;
        let tiled_shader = id_tiled_shader(ty, launch.coop).expect("checked by groups_by_expert");
        let groups = [
            m.div_ceil(launch.tile[0]),
            n.div_ceil(launch.tile[1]),
            n_expert + 1,
        ];
        if groups.iter().zip(max).any(|(&g, mx)| g > mx) {
            return Err(Error::Unsupported(format!(
                "{what}: {groups:?} workgroups exceed {}'s limits",
                caps.name
            )));
        }
        let mut push = IdPush {
            base: mul_mat::Push::new(k, m, pairs, &wb, x_off, 0, d_off),
            n_used,
            nx,
            n_expert,
            id_off: g_off,
        };
        let gpush = GroupPush {
            n_expert,
            pairs,
            ids_off,
            g_off,
        };
        let (mut spec, mut rx) = (launch.spec, rx);
        if let Some(x16) = x16.filter(|_| launch.coop) {
            // x → f16 beside the grouping; the kernel reads uvec4s of 8 halves (constant 1).
            let (rh, h_off) = bind(caps, &x16, 2, nxe, &format!("{what} x16"))?;
            if h_off % 8 == 0 {
                super::copy::copy_f32_f16(rec, x, x16, nxe)?;
                push.base.x_off = h_off;
                spec[1] = 1;
                rx = rh;
            }
        }
        rec.dispatch(
            ShaderId::moe_group,
            &[],
            &[ri, rg],
            bytemuck::bytes_of(&gpush),
            [1, 1, 1],
        )?;
        rec.barrier()?;
        return rec.dispatch(
            tiled_shader,
            &spec,
            &[wb.range, rx, rd, rg],
            bytemuck::bytes_of(&push),
            groups,
        );
    }
    // Decode: the float mat-vec per pair, NR rows per workgroup, workgroup z = pair.
    if pairs > u64::from(max[2]) {
        return Err(Error::Unsupported(format!(
            "{what}: {pairs} token x slot pairs exceed {}'s {} workgroups along z",
            caps.name, max[2]
        )));
    }
    if let Some((xq, qshape)) = xq.filter(|_| vecq_id_supports(caps, ty, k, n)) {
        // Integer dot products on x's q8_1 copy (all k·nx·n values).
        let (rq, q_off, rs, s_off) = mul_mat_vecq::bind_xq(caps, &xq, nxe, &what)?;
        let (shape, wg) = mul_mat_vecq::launch(caps, ty, k, 1, qshape, 0, &what)?;
        glu_rows(glu, shape, &what)?;
        let mut groups = mul_mat::grid_2d(caps, m.div_ceil(shape.rows), &what)?;
        groups[2] = pairs as u32;
        // The q8_1 epilogue's slot (codes, then (d, s)) and its counters, one per 32-row
        // block of each pair's output; without it both bindings hold dst.
        let (ro, rc, qo) = match &epi.q8_out {
            None => (rd, rd, [0u32; 3]),
            Some(o) => id_q8_out(caps, o, m / 2, pairs, shape.rows / 2, &what)?,
        };
        let push = IdqPush {
            id: IdPush {
                base: mul_mat::Push::new(k, m, pairs as u32, &wb, q_off, s_off, d_off),
                n_used,
                nx,
                n_expert,
                id_off: ids_off,
            },
            qo_codes: qo[0],
            qo_scales: qo[1],
            qo_cnt: qo[2],
            pad: 0,
        };
        let shader = vecq_id_shader(ty).expect("checked by vecq_id_supports");
        let align = mul_mat_vecq::w_align(ty, &wb);
        let qout = u32::from(epi.q8_out.is_some());
        return rec.dispatch(
            shader,
            &[
                wg,
                shape.rows,
                0,
                1,
                0,
                epi_code,
                0,
                align,
                qout,
                u32::from(route),
            ],
            &[wb.range, rq, rs, rd, ri, ro, rc],
            bytemuck::bytes_of(&push),
            groups,
        );
    }
    if epi.q8_out.is_some() {
        return Err(Error::Unsupported(format!(
            "{what}: the float expert-indexed mat-vec has no q8_1 epilogue"
        )));
    }
    let shader = vec_id_shader(ty, !mul_mat::has_subgroup_add(caps))
        .ok_or_else(|| Error::Unsupported(format!("{what}: no kernel for {ty}")))?;
    let (shape, wg) = mul_mat::mat_vec_launch(caps, ty, k, 1, shape, 0, &what)?;
    glu_rows(glu, shape, &what)?;
    let mut groups = mul_mat::grid_2d(caps, m.div_ceil(shape.rows), &what)?;
    groups[2] = pairs as u32;
    let push = IdPush {
        base: mul_mat::Push::new(k, m, pairs as u32, &wb, x_off, 0, d_off),
        n_used,
        nx,
        n_expert,
        id_off: ids_off,
    };
    rec.dispatch(
        shader,
        // Constants 6-8 at their defaults (7: W_ALIGN 2); 9: ROUTE.
        &[
            wg,
            shape.rows,
            x_vec4,
            1,
            0,
            epi_code,
            0,
            2,
            0,
            u32::from(route),
        ],
        &[wb.range, rx, rd, ri],
        bytemuck::bytes_of(&push),
        groups,
    )
}

/// The SwiGLU epilogue pairs a workgroup's rows (gate row, up row): an even row count.
fn glu_rows(glu: bool, shape: mul_mat::MatVecShape, what: &str) -> Result<()> {
    if glu && shape.rows % 2 != 0 {
        return Err(Error::Unsupported(format!(
            "{what}: a SwiGLU epilogue needs an even row count per workgroup, not {}",
            shape.rows
        )));
    }
    Ok(())
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
    r_off: u32,
    pad: u32,
}

/// `dst[t] = Σ_s w[s][t] · y[t][s]` (see `Op::MoeSum`), plus `residual[t]` when given
/// (MOE_SUM_ADD, `moe_sum_add.comp`'s variant): `y` f32 `[ne0, n_used, n]`, `w` f32
/// `[n_used, n]`, `residual` and `dst` f32 `[ne0, n]`.
#[allow(clippy::too_many_arguments)]
pub fn moe_sum(
    rec: &mut Recorder,
    y: BufferRange<'_>,
    w: BufferRange<'_>,
    residual: Option<BufferRange<'_>>,
    dst: BufferRange<'_>,
    ne0: u32,
    n_used: u32,
    n: u32,
) -> Result<()> {
    let shader = if residual.is_some() {
        ShaderId::moe_sum_add
    } else {
        ShaderId::moe_sum
    };
    let caps = rec.caps();
    let nd = u64::from(ne0) * u64::from(n);
    let ny = nd * u64::from(n_used);
    count_u32(ny, shader.name())?;
    let (ry, y_off) = bind(caps, &y, 4, ny, "moe_sum y")?;
    let (rw, w_off) = bind(caps, &w, 4, u64::from(n_used) * u64::from(n), "moe_sum w")?;
    let (rd, d_off) = bind(caps, &dst, 4, nd, "moe_sum dst")?;
    // The plain variant declares no binding 3: y stands in for it.
    let (rr, r_off) = match residual {
        Some(r) => bind(caps, &r, 4, nd, "moe_sum residual")?,
        None => (ry, 0),
    };
    let bindings = [ry, rw, rd, rr];
    let push = SumPush {
        ne0,
        n_used,
        n,
        y_off,
        w_off,
        d_off,
        r_off,
        pad: 0,
    };
    if nd == 0 {
        return Ok(());
    }
    let groups = groups_1d(caps, shader, nd)?;
    rec.dispatch(shader, &[], &bindings, bytemuck::bytes_of(&push), groups)
}
