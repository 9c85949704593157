//! `attention.comp`: causal multi-head attention with GQA over an f16 KV cache
//! (see `Op::Attention`), flash-attention style.
//!
//! One workgroup per (query head, query token) streams the cache rows of its span
//! (`span[2t] ..= span[2t+1]`, clamped as `cpu::ops::kv_range`) in tiles with an online softmax (f32 running
//! max and sum), so memory use does not grow with the context; its sub-blocks take
//! interleaved tiles and merge their partial softmax results at the end. Works for
//! decode (`n` = 1) and prefill (`n` > 1, causal through the spans alike), and batches
//! that mix sequences (each token's span covers only its own sequence's cells).
//!
//! Decode over long contexts splits the context too (flash-decoding, [`attention_split`]):
//! `NZ` workgroups per (head group, token) take a share of the rows each and the last to
//! finish merges the partial softmax results, so every compute unit works at any context
//! length. It needs a scratch range ([`SplitShape::scratch_bytes`]) whose counter words
//! start at zero and are left at zero.
//!
//! Layouts: `q`, `dst` f32 `[d, n_head, n]`; `k`, `v` f16 `[d, n_head_kv, ≥ n_kv]`
//! (a cache with more rows is fine: rows past `n_kv` are never read); `span` i32 `[2, n]`.
//! Limits: `d % 8 == 0`, `d ≤ 256`, `n_head % n_head_kv == 0`; `k` must start at a
//! multiple of 16 bytes (it is read 8 halves at a time), `v` at a multiple of 4.

use bytemuck::{Pod, Zeroable};

use super::mul_mat_vecq::XQ;
use super::{bind, count_u32};
use crate::backend::vulkan::{BufferRange, Recorder, ShaderId};
use crate::{Error, Result};

/// Largest head size the kernel holds (`D_MAX` in `shaders/attention.comp`).
pub const MAX_HEAD_DIM: u32 = 256;

/// The head of every attention kernel's push block (`attention.comp`,
/// `attention_coopmat.comp`): shape, scale and the operands' element offsets.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct PushHead {
    pub d: u32,
    pub n_head: u32,
    pub n_head_kv: u32,
    pub n: u32,
    pub n_kv: u32,
    pub scale: f32,
    pub q_off: u32,
    pub k_off: u32,
    pub v_off: u32,
    pub span_off: u32,
    pub d_off: u32,
}

/// Push constants of `shaders/attention.comp` (must match its `Push` block).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    head: PushHead,
    part_off: u32,
    cnt_off: u32,
    q8_off: u32,
    q8s_off: u32,
    pad: u32,
}
// `// push: 64` in attention.comp.
const _: () = assert!(std::mem::size_of::<Push>() == 64);

/// `dst = softmax(q·kᵀ·scale, causal by span) · v` per head, one workgroup per
/// (head group, token) — or, for prompt batches on devices with cooperative matrices
/// ([`super::attention_coopmat::takes`]), `attention_coopmat.comp`.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    rec: &mut Recorder,
    q: BufferRange<'_>,
    k: BufferRange<'_>,
    v: BufferRange<'_>,
    span: BufferRange<'_>,
    dst: BufferRange<'_>,
    d: u32,
    n_head: u32,
    n_head_kv: u32,
    n: u32,
    n_kv: u32,
    scale: f32,
) -> Result<()> {
    if super::attention_coopmat::takes(rec.caps(), d, n, k.offset, v.offset) {
        return super::attention_coopmat::attention_coopmat(
            rec, q, k, v, span, dst, d, n_head, n_head_kv, n, n_kv, scale,
        );
    }
    attention_with(
        rec, q, k, v, span, dst, None, None, None, d, n_head, n_head_kv, n, n_kv, None, scale,
    )
}

/// The RoPE / KV-cache stage an [`attention_rope`] dispatch does first (see
/// `shaders/common/attention_body.glsl`, ROPE).
pub struct RopeFold<'a> {
    /// i32 `[n]`: the token's position.
    pub pos: BufferRange<'a>,
    /// i32 `[n]`: the cache row the token's new K/V row goes to.
    pub cells: BufferRange<'a>,
    /// f32 `[d, n_head_kv, n]`: the new K rows, before RoPE (and norm).
    pub k_new: BufferRange<'a>,
    /// f32 `[d, n_head_kv, n]`: the new V rows.
    pub v_new: BufferRange<'a>,
    /// qwen3's per-head norms: q weight, k weight (f32 `[d]` each), epsilon.
    pub norm: Option<(BufferRange<'a>, BufferRange<'a>, f32)>,
    pub neox: bool,
    pub n_dims: u32,
    pub freq_base: f32,
    pub freq_scale: f32,
    /// LoRA B factors folded in (`attention_rope_lora.comp`): s · B·a added to q, k_new
    /// and v_new where given, before the norm and the rotation.
    pub lora: Option<LoraFold<'a>>,
}

/// The LoRA corrections an [`attention_rope`] adds to its base projections.
pub struct LoraFold<'a> {
    /// For q, k, v: (B f32 or f16 `[r, m]`, a = A·x f32 `[r]`, the scale s), or `None`.
    pub targets: [Option<(BufferRange<'a>, BufferRange<'a>, f32)>; 3],
    /// The adapters' rank r (every target's).
    pub rank: u32,
    /// The B factors are f16 (else f32).
    pub f16: bool,
}

/// Most LoRA rank the folded attention takes (its inner loop runs r times per value).
pub const MAX_LORA_RANK: u32 = 64;
/// Storage buffers `attention_rope_lora.comp` binds.
pub const LORA_BINDINGS: u32 = 21;

/// [`attention`] for one token (`n` = 1) with the RoPE / KV-cache stage folded in
/// (`Op::Attention` with `rope: Some`): `q` is the raw q projection; the new K row
/// (rotated) and V row go into cache row `cells[0]` of `k` and `v` before the attention
/// reads it. `Error::Unsupported` (from every path that takes a fold) for more tokens, an
/// odd or too large `n_dims`, or a device without 16-bit storage or subgroup arithmetic.
#[allow(clippy::too_many_arguments)]
pub fn attention_rope(
    rec: &mut Recorder,
    q: BufferRange<'_>,
    k: BufferRange<'_>,
    v: BufferRange<'_>,
    span: BufferRange<'_>,
    dst: BufferRange<'_>,
    fold: RopeFold<'_>,
    d: u32,
    n_head: u32,
    n_head_kv: u32,
    n_kv: u32,
    scale: f32,
) -> Result<()> {
    attention_with(
        rec,
        q,
        k,
        v,
        span,
        dst,
        None,
        None,
        Some(fold),
        d,
        n_head,
        n_head_kv,
        1,
        n_kv,
        None,
        scale,
    )
}

/// Why the RoPE-folded attention cannot run `n` tokens with head size `d` and `n_dims`
/// rotated dims on this device (plan time: `Backend::fuses_mat_vec` on an ATTENTION).
pub fn rope_fold_support(
    caps: &crate::backend::vulkan::Caps,
    d: u64,
    n_dims: u64,
    n: u64,
) -> std::result::Result<(), String> {
    if n != 1 {
        return Err(format!("{n} tokens (the folded attention takes one)"));
    }
    if d == 0 || d % 8 != 0 || d > u64::from(MAX_HEAD_DIM) {
        return Err(format!("head size {d}"));
    }
    if n_dims == 0 || n_dims % 2 != 0 || n_dims > d {
        return Err(format!("{n_dims} rotated dims of {d}"));
    }
    if !caps.storage_16bit {
        return Err(format!("{} lacks 16-bit storage", caps.name));
    }
    use ash::vk::SubgroupFeatureFlags as F;
    if !caps.subgroup_ops.contains(F::BASIC | F::ARITHMETIC) || caps.subgroup_size < 4 {
        return Err(format!(
            "{} lacks subgroup arithmetic on subgroups of >= 4 (the head norms reduce so)",
            caps.name
        ));
    }
    Ok(())
}

/// The checks every attention dispatch makes on its shape (head grouping, a non-empty
/// cache, a finite scale, 32-bit element counts); returns the element counts of q (and
/// dst) and of k (and v).
pub(super) fn check_operands(
    d: u32,
    n_head: u32,
    n_head_kv: u32,
    n: u32,
    n_kv: u32,
    scale: f32,
) -> Result<(u64, u64)> {
    if n_head_kv == 0 || n_head % n_head_kv != 0 {
        return Err(Error::Usage(format!(
            "attention: {n_head} query heads are not a multiple of {n_head_kv} kv heads"
        )));
    }
    if n_kv == 0 {
        return Err(Error::Usage(
            "attention: the KV cache is empty (n_kv = 0)".into(),
        ));
    }
    if !scale.is_finite() {
        return Err(Error::Usage(format!(
            "attention: scale {scale} is not finite"
        )));
    }
    let nq = u64::from(d) * u64::from(n_head) * u64::from(n);
    let nkv = u64::from(d) * u64::from(n_head_kv) * u64::from(n_kv);
    count_u32(nq, "attention q")?;
    count_u32(nkv, "attention k/v")?;
    Ok((nq, nkv))
}

/// The five operands of an attention dispatch bound, and its push-constant head: the
/// shape checked by [`check_operands`], q / dst as f32, k as uvec4s of 8 halves, v in
/// words of `v_bytes` (4: 2 halves, as `attention.comp` reads it; 16: 8 halves).
pub(super) struct Operands<'a> {
    pub q: BufferRange<'a>,
    pub k: BufferRange<'a>,
    pub v: BufferRange<'a>,
    pub span: BufferRange<'a>,
    pub dst: BufferRange<'a>,
    pub head: PushHead,
    /// Elements of q (and dst).
    pub nq: u64,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn bind_operands<'a>(
    caps: &crate::backend::vulkan::Caps,
    [q, k, v, span, dst]: [&BufferRange<'a>; 5],
    v_bytes: u64,
    d: u32,
    n_head: u32,
    n_head_kv: u32,
    n: u32,
    n_kv: u32,
    scale: f32,
) -> Result<Operands<'a>> {
    let (nq, nkv) = check_operands(d, n_head, n_head_kv, n, n_kv, scale)?;
    let (rq, q_off) = bind(caps, q, 4, nq, "attention q")?;
    let (rk, k_off) = bind(caps, k, 16, nkv / 8, "attention k")?;
    let (rv, v_off) = bind(caps, v, v_bytes, nkv * 2 / v_bytes, "attention v")?;
    let (rp, span_off) = bind(caps, span, 4, 2 * u64::from(n), "attention span")?;
    let (rd, d_off) = bind(caps, dst, 4, nq, "attention dst")?;
    Ok(Operands {
        q: rq,
        k: rk,
        v: rv,
        span: rp,
        dst: rd,
        head: PushHead {
            d,
            n_head,
            n_head_kv,
            n,
            n_kv,
            scale,
            q_off,
            k_off,
            v_off,
            span_off,
            d_off,
        },
        nq,
    })
}

/// The ROPE push constants after [`Push`] (`shaders/common/attention_body.glsl`).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RopeFields {
    pos_off: u32,
    cell_off: u32,
    knew_off: u32,
    vnew_off: u32,
    qw_off: u32,
    kw_off: u32,
    n_dims: u32,
    freq_base: f32,
    freq_scale: f32,
    eps: f32,
}

/// Push constants of `shaders/attention_rope.comp`: [`Push`], then the ROPE fields.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RopePush {
    base: Push,
    rope: RopeFields,
    pad: [u32; 2],
}

/// Push constants of `shaders/attention_rope_lora.comp` (128 bytes, Vulkan's minimum
/// limit): the ROPE fields, then the B factors' and A products' element offsets.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct RopeLoraPush {
    base: Push,
    rope: RopeFields,
    lb_off: [u32; 3],
    la_off: [u32; 3],
}

/// How a split-K attention dispatch is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitShape {
    /// Workgroups per (head group, token) along the context (`NZ`, ≥ 2).
    pub nz: u32,
    /// Sub-blocks of 64 invocations per workgroup (a power of two).
    pub sub_blocks: u32,
    /// Query heads per workgroup (a power of two dividing the GQA group).
    pub qb: u32,
    /// Load each tile's V rows into registers before scoring it (`VPRE`, specialization
    /// constant 5: K and V loads in flight together; with head sizes up to 128 the first
    /// tile's K rows too, before the prologue). On by default for head sizes up to
    /// [`SPLIT_PRELOAD_MAX_D`], with at most [`SPLIT_MAX_QB`] heads per workgroup (see
    /// there); the unsplit narrow decode workgroups use it too.
    pub preload_v: bool,
}

impl SplitShape {
    /// Scratch bytes a dispatch of this shape needs: one counter word per (head group,
    /// token), then `nz × qb × (d + 4)` floats per (head group, token) (a record is m, l,
    /// two pad words and the d accumulators, 16-byte aligned).
    pub fn scratch_bytes(&self, d: u32, n_head: u32, n: u32) -> u64 {
        let (words, floats) = self.scratch_words(d, n_head, n);
        4 * (words + floats)
    }

    fn scratch_words(&self, d: u32, n_head: u32, n: u32) -> (u64, u64) {
        let slots = u64::from(n_head / self.qb) * u64::from(n);
        // Counters padded to 4 words so the partials stay 16-byte aligned.
        let words = slots.div_ceil(4) * 4;
        (
            words,
            slots * u64::from(self.nz) * u64::from(self.qb) * u64::from(d + 4),
        )
    }
}

/// Most workgroups along the context in a split-K dispatch (`MAX_NZ` in the shader: its
/// merge holds one weight per split in shared memory).
pub const MAX_NZ: u32 = 64;
/// Cache rows per split-K workgroup at full context (two tiles; 64: one tile, one
/// sub-block, twice the workgroups — `VKGRAPH_ATTN_SPLIT_ROWS`).
pub const ROWS_PER_SPLIT: u32 = 128;
/// Planned cache rows below which decode runs unsplit (one workgroup per head group): at
/// ≤ 256 rows the split (2 workgroups along the context and the merge) was slower (H200,
/// qwen3-0.6B q4_0 tg128 in a run whose cache holds 640 cells: 679 t/s split, 736 t/s in
/// one whose cache holds 128, unsplit).
pub const MIN_SPLIT_ROWS: u32 = 512;
/// Most query heads per split-K workgroup. Two, not the four a llama GQA group allows:
/// H100, `vkgraph bench -p 0 -n 64 -d 512,2048,4096` (docs/BENCHMARKS.md, twenty-first
/// session), llama-8b q4_0 (groups of 4) with V preloaded made 324 / 306 / 293 t/s with
/// two heads per workgroup against 306 / 293 / 276 with four (no preload; four with
/// preload: 300 / 288 / 269) — twice the workgroups, half the registers each.
pub const SPLIT_MAX_QB: u32 = 2;
/// Largest head size whose split-K launch preloads V (and the first tile's K): the
/// registers it costs grow with d (`T × COLS` words). Same runs: qwen3-0.6b q4_0 (groups
/// of 2) 785–804 / 735–759 / 689–707 t/s with it against 736–755 / 706–719 / 684–693.
pub const SPLIT_PRELOAD_MAX_D: u32 = 128;
/// Most workgroups of a split-K dispatch in all (enough to fill a large GPU several
/// times over; empty ones return at once).
const MAX_SPLIT_GROUPS: u32 = 2048;

/// The split-K shape for a decode batch (`n ≤ 8`) over a cache of `n_kv` rows, or `None`
/// when one workgroup per (head group, token) is the better choice: prefill, caches
/// planned for fewer than `min_rows` rows (the default [`MIN_SPLIT_ROWS`];
/// `VKGRAPH_ATTN_MIN_SPLIT`), and CPU devices (where workgroups run one after another anyway). `force`
/// (tests, A/B) splits CPU devices and short caches too, into at least 2.
#[allow(clippy::too_many_arguments)]
pub fn split_shape(
    caps: &crate::backend::vulkan::Caps,
    d: u32,
    n_head: u32,
    n_head_kv: u32,
    n: u32,
    n_kv: u32,
    force: bool,
    min_rows: u32,
    rows_per_split: u32,
) -> Option<SplitShape> {
    if n == 0 || n > 8 || n_head_kv == 0 || n_head % n_head_kv != 0 {
        return None;
    }
    if (caps.device_type == ash::vk::PhysicalDeviceType::CPU || n_kv < min_rows) && !force {
        return None;
    }
    let group = n_head / n_head_kv;
    let rows_per_split = rows_per_split.clamp(TILE, 2 * TILE);
    let mut qb = (group & group.wrapping_neg()).min(SPLIT_MAX_QB);
    // One sub-block per tile of a split's rows.
    let mut sub_blocks = rows_per_split / TILE;
    while shared_bytes(d, sub_blocks, qb) > caps.max_compute_shared_memory_size {
        if qb > 1 {
            qb /= 2;
        } else if sub_blocks > 1 {
            sub_blocks /= 2;
        } else {
            return None;
        }
    }
    let slots = (n_head / qb) * n;
    let nz = split_count(
        n_kv,
        rows_per_split,
        MAX_NZ
            .min(MAX_SPLIT_GROUPS / slots.max(1))
            .min(caps.max_compute_work_group_count[2]),
    );
    let nz = if force { nz.max(2) } else { nz };
    (nz >= 2).then_some(SplitShape {
        nz,
        sub_blocks,
        qb,
        preload_v: d <= SPLIT_PRELOAD_MAX_D,
    })
}

/// [`attention`] with the context split over `shape.nz` workgroups (see the module docs);
/// `scratch` holds at least [`SplitShape::scratch_bytes`] bytes, its counter words zero.
#[allow(clippy::too_many_arguments)]
pub fn attention_split(
    rec: &mut Recorder,
    q: BufferRange<'_>,
    k: BufferRange<'_>,
    v: BufferRange<'_>,
    span: BufferRange<'_>,
    dst: BufferRange<'_>,
    scratch: BufferRange<'_>,
    shape: SplitShape,
    d: u32,
    n_head: u32,
    n_head_kv: u32,
    n: u32,
    n_kv: u32,
    scale: f32,
) -> Result<()> {
    attention_with(
        rec,
        q,
        k,
        v,
        span,
        dst,
        Some((scratch, shape)),
        None,
        None,
        d,
        n_head,
        n_head_kv,
        n,
        n_kv,
        None,
        scale,
    )
}

/// Shared memory of one workgroup with `s` sub-blocks and `qb` query heads: per query
/// head q (4d), and per sub-block partial dot products (T rows x 8 lanes x 4), scores and
/// weights (2 x 4T), m and l (8) and partial outputs (4d); plus the split-K flag and the
/// Q8 variant's output staging (4d per head; counted always) and the split-K merge's
/// per-split weights (`MAX_NZ` per head).
fn shared_bytes(d: u32, s: u32, qb: u32) -> u32 {
    qb * (8 * d + s * (TILE * 32 + 8 * TILE + 8 + 4 * d) + 4 * MAX_NZ) + 4
}

/// What the RoPE-folded variant adds: per row (qb q rows and the K row) a partial sum
/// per possible subgroup (width / 4 of them), and the new K and V row (`kn_sh4`,
/// `vn_sh2`: 2d floats).
fn fold_shared_bytes(d: u32, s: u32, qb: u32) -> u32 {
    (qb + 1) * (s * TILE / 4) * 4 + 8 * d
}

/// [`attention`] or [`attention_split`] (`split` given), also writing the output as q8_1
/// blocks into `q8` when given (the input of attn_output's integer-dot mat-vec; needs
/// `d % 32 == 0`), with the RoPE / KV-cache stage folded in when `fold` is given (one
/// token: see [`attention_rope`]). `plan_rows`: the cache rows an unsplit launch's width
/// is sized for, when fewer than `n_kv` are in use — the executor's planned length (the
/// current one rounded up; it re-records when the context outgrows it), so decode early
/// in a long cache gets narrow workgroups (`None`: `n_kv`). What the executor records.
#[allow(clippy::too_many_arguments)]
pub fn attention_with(
    rec: &mut Recorder,
    q: BufferRange<'_>,
    k: BufferRange<'_>,
    v: BufferRange<'_>,
    span: BufferRange<'_>,
    dst: BufferRange<'_>,
    split: Option<(BufferRange<'_>, SplitShape)>,
    q8: Option<XQ<'_>>,
    fold: Option<RopeFold<'_>>,
    d: u32,
    n_head: u32,
    n_head_kv: u32,
    n: u32,
    n_kv: u32,
    plan_rows: Option<u32>,
    scale: f32,
) -> Result<()> {
    let lora = fold.as_ref().is_some_and(|f| f.lora.is_some());
    let shader = match (q8.is_some(), fold.is_some(), lora) {
        (false, false, _) => ShaderId::attention,
        (true, false, _) => ShaderId::attention_q8,
        (false, true, false) => ShaderId::attention_rope,
        (true, true, false) => ShaderId::attention_rope_q8,
        (false, true, true) => ShaderId::attention_rope_lora,
        (true, true, true) => ShaderId::attention_rope_lora_q8,
    };
    if let Some(f) = &fold {
        rope_fold_support(rec.caps(), u64::from(d), u64::from(f.n_dims), u64::from(n))
            .map_err(|e| Error::Unsupported(format!("attention with RoPE folded: {e}")))?;
        if let Some(l) = &f.lora {
            lora_fold_support(rec.caps(), l.rank)
                .map_err(|e| Error::Unsupported(format!("attention with LoRA folded: {e}")))?;
        }
    }
    if d == 0 || d % 8 != 0 || d > MAX_HEAD_DIM {
        return Err(Error::Unsupported(format!(
            "attention: head size {d} (the Vulkan kernel needs a multiple of 8 up to \
             {MAX_HEAD_DIM})"
        )));
    }
    let caps = rec.caps();
    // f16 elements: K is read as uvec4 (8 halves), V as uint (2 halves).
    let ops = bind_operands(
        caps,
        [&q, &k, &v, &span, &dst],
        4,
        d,
        n_head,
        n_head_kv,
        n,
        n_kv,
        scale,
    )?;
    let (rq, rk, rv, rp, rd, nq) = (ops.q, ops.k, ops.v, ops.span, ops.dst, ops.nq);
    let (rpart, rcnt, part_off, cnt_off, nz, spec_shape) = match &split {
        None => (rd, rd, 0, 0, 1, None),
        Some((scratch, sh)) => {
            let group = n_head / n_head_kv;
            if sh.nz < 2
                || sh.nz > MAX_NZ
                || !sh.qb.is_power_of_two()
                || group % sh.qb != 0
                || !sh.sub_blocks.is_power_of_two()
                || sh.sub_blocks * TILE > caps.max_compute_work_group_invocations
                || shared_bytes(d, sh.sub_blocks, sh.qb) > caps.max_compute_shared_memory_size
                || sh.nz > caps.max_compute_work_group_count[2]
            {
                return Err(Error::Unsupported(format!(
                    "attention: split shape {sh:?} does not fit d={d}, h={n_head}/{n_head_kv} \
                     on {}",
                    caps.name
                )));
            }
            let (words, floats) = sh.scratch_words(d, n_head, n);
            let (rs, s_off) = bind(caps, scratch, 4, words + floats, "attention scratch")?;
            let part_off = count_u32(u64::from(s_off) + words, "attention scratch")?;
            if part_off % 4 != 0 {
                return Err(Error::Usage(
                    "attention: the split-K scratch must start at a multiple of 16 bytes".into(),
                ));
            }
            (
                rs,
                rs,
                part_off,
                s_off,
                sh.nz,
                Some((sh.sub_blocks, sh.qb, sh.preload_v)),
            )
        }
    };
    let (rq8, q8_off, rs8, q8s_off) = super::norm::bind_q8(caps, q8, rd, d, nq, shader)?;
    let push = Push {
        head: ops.head,
        part_off,
        cnt_off,
        q8_off,
        q8s_off,
        pad: 0,
    };
    if n == 0 || n_head == 0 {
        return Ok(());
    }
    let [max_x, max_y, _] = caps.max_compute_work_group_count;
    if n_head > max_x || n > max_y {
        return Err(Error::Unsupported(format!(
            "attention: {n_head} heads x {n} tokens exceed {}'s workgroup count limits \
             ({max_x} x {max_y})",
            caps.name
        )));
    }
    // Specialization: 0 = head size (loops over it unroll), 1 = workgroup width,
    // 2 = query heads per workgroup; ROPE: 3 = NEOX, 4 = HNORM; 5 = VPRE.
    let (mut nsplit, qb, split_vpre) = spec_shape.unwrap_or_else(|| {
        let rows = plan_rows.map_or(n_kv, |r| r.clamp(1, n_kv.max(1)));
        let (s, qb) = shape(caps, d, n_head / n_head_kv, n_head, n, rows);
        (s, qb, false)
    });
    if fold.is_some() {
        // The folded variant's partial sums need room too: fewer sub-blocks if not.
        let max = caps.max_compute_shared_memory_size;
        while shared_bytes(d, nsplit, qb) + fold_shared_bytes(d, nsplit, qb) > max {
            if nsplit == 1 || spec_shape.is_some() {
                return Err(Error::Unsupported(format!(
                    "attention with RoPE folded: {nsplit} sub-blocks of {qb} heads exceed {}'s \
                     shared memory",
                    caps.name
                )));
            }
            nsplit /= 2;
        }
    }
    // Unsplit decode over a short cache (narrow workgroups, registers to spare): V
    // preloaded, so a tile's K and V loads are one memory round trip, not two.
    let vpre = split_vpre || (split.is_none() && n <= 8 && nsplit * TILE <= PRELOAD_V_MAX_WIDTH);
    let groups = [n_head / qb, n, nz];
    let bindings = [rq, rk, rv, rp, rd, rpart, rcnt, rq8, rs8];
    let Some(f) = fold else {
        return rec.dispatch(
            shader,
            &[d, nsplit * TILE, qb, 0, 0, u32::from(vpre)],
            &bindings,
            bytemuck::bytes_of(&push),
            groups,
        );
    };
    let nkv_new = u64::from(d) * u64::from(n_head_kv) * u64::from(n);
    let (rpos, pos_off) = bind(caps, &f.pos, 4, u64::from(n), "attention pos")?;
    let (rcell, cell_off) = bind(caps, &f.cells, 4, u64::from(n), "attention cells")?;
    let (rkn, knew_off) = bind(caps, &f.k_new, 4, nkv_new, "attention new k")?;
    let (rvn, vnew_off) = bind(caps, &f.v_new, 4, nkv_new, "attention new v")?;
    let (rqw, qw_off, rkw, kw_off, eps) = match &f.norm {
        Some((qw, kw, eps)) => {
            let (a, ao) = bind(caps, qw, 4, u64::from(d), "attention q norm")?;
            let (b, bo) = bind(caps, kw, 4, u64::from(d), "attention k norm")?;
            (a, ao, b, bo, *eps)
        }
        None => (rq, 0, rq, 0, 0.0),
    };
    let rope = RopeFields {
        pos_off,
        cell_off,
        knew_off,
        vnew_off,
        qw_off,
        kw_off,
        n_dims: f.n_dims,
        freq_base: f.freq_base,
        freq_scale: f.freq_scale,
        eps,
    };
    let mut all = bindings.to_vec();
    all.extend([rpos, rcell, rkn, rvn, rqw, rkw]);
    let mut spec = vec![
        d,
        nsplit * TILE,
        qb,
        u32::from(f.neox),
        u32::from(f.norm.is_some()),
        u32::from(vpre),
    ];
    let Some(l) = &f.lora else {
        let rpush = RopePush {
            base: push,
            rope,
            pad: [0; 2],
        };
        return rec.dispatch(shader, &spec, &all, bytemuck::bytes_of(&rpush), groups);
    };
    // The B factors and A products: [r, rows] and [r] of each adapted target (q: every
    // head's rows, k and v: the kv heads'), unused bindings holding q.
    let (mut lb_off, mut la_off, mut scales) = ([0u32; 3], [0u32; 3], [0u32; 3]);
    let belem = if l.f16 { 2 } else { 4 };
    let rows = [
        u64::from(d) * u64::from(n_head),
        u64::from(d) * u64::from(n_head_kv),
        u64::from(d) * u64::from(n_head_kv),
    ];
    for (i, t) in l.targets.iter().enumerate() {
        let Some((b, a, s)) = t else {
            all.extend([rq, rq]);
            continue;
        };
        let what = ["q", "k", "v"][i];
        let (rb, bo) = bind(
            caps,
            b,
            belem,
            rows[i] * u64::from(l.rank),
            &format!("attention LoRA B of {what}"),
        )?;
        let (ra, ao) = bind(
            caps,
            a,
            4,
            u64::from(l.rank),
            &format!("attention LoRA A·x of {what}"),
        )?;
        all.extend([rb, ra]);
        (lb_off[i], la_off[i], scales[i]) = (bo, ao, s.to_bits());
    }
    spec.extend([l.rank, scales[0], scales[1], scales[2], u32::from(l.f16)]);
    let lpush = RopeLoraPush {
        base: push,
        rope,
        lb_off,
        la_off,
    };
    rec.dispatch(shader, &spec, &all, bytemuck::bytes_of(&lpush), groups)
}

/// Why the LoRA-folded attention (`attention_rope_lora.comp`) cannot take rank `rank` on
/// this device (plan time, beside [`rope_fold_support`]).
pub fn lora_fold_support(
    caps: &crate::backend::vulkan::Caps,
    rank: u32,
) -> std::result::Result<(), String> {
    if rank == 0 || rank > MAX_LORA_RANK {
        return Err(format!(
            "rank {rank} (the folded attention takes 1..={MAX_LORA_RANK})"
        ));
    }
    if caps.max_storage_buffers_per_stage < LORA_BINDINGS {
        return Err(format!(
            "{} binds {} storage buffers per shader stage, the kernel {LORA_BINDINGS}",
            caps.name, caps.max_storage_buffers_per_stage
        ));
    }
    Ok(())
}

/// Widest unsplit decode workgroup that preloads V (`VPRE`).
const PRELOAD_V_MAX_WIDTH: u32 = 256;
/// Rows per tile = invocations per sub-block (`T` in the shader).
const TILE: u32 = 64;
/// Most sub-blocks per workgroup.
const MAX_SUB_BLOCKS: u32 = 16;
/// Most query heads per workgroup (H200, pp512, 32/8 heads: 1 → 276 us, 2 → 222 us,
/// 4 → 399 us: more heads cost registers than the shared K/V loads save).
const MAX_HEADS_PER_GROUP: u32 = 2;

/// (sub-blocks per workgroup, query heads per workgroup), both powers of two.
///
/// Few workgroups (decode: one per head) get wide ones so that each keeps many cache
/// rows in flight, one head each. Many workgroups (prefill) already fill the device:
/// they get one sub-block (no idle invocations on short causal ranges) and two query
/// heads of one kv head when the group size allows, so each K/V row read serves both.
/// Never more rows per round than the cache has, and within the device's workgroup
/// size and shared-memory limits. Tuned on an H200 (see `perf` in tests/vk_ops.rs).
fn shape(
    caps: &crate::backend::vulkan::Caps,
    d: u32,
    group: u32,
    n_head: u32,
    n: u32,
    n_kv: u32,
) -> (u32, u32) {
    let decode = u64::from(n_head) * u64::from(n) <= 256;
    let (want_split, want_qb) = if decode {
        (MAX_SUB_BLOCKS, 1)
    } else {
        (1, MAX_HEADS_PER_GROUP)
    };
    let by_rows = n_kv.div_ceil(TILE).next_power_of_two();
    let by_size = (caps
        .max_compute_work_group_invocations
        .min(caps.max_compute_work_group_size[0])
        / TILE)
        .max(1);
    let mut s = floor_pow2(want_split.min(by_rows).min(by_size));
    // Largest power of two dividing the group size, at most want_qb.
    let mut qb = (group & group.wrapping_neg()).min(want_qb).max(1);
    while shared_bytes(d, s, qb) > caps.max_compute_shared_memory_size && (s > 1 || qb > 1) {
        // Sharing K/V between heads saves more than a second sub-block.
        if s > 1 {
            s /= 2;
        } else {
            qb /= 2;
        }
    }
    (s, qb)
}

/// Workgroups along the context for `n_kv` planned rows: enough that each takes at most
/// `rows_per_split` rows (one round of its sub-blocks) for every length up to `n_kv`, at
/// most `max_nz`. Rounding down instead left a cache of 4,192 rows (`bench -d 4096`: the
/// depth, the generated tokens and the margin) with 32 splits of 131 rows — two rounds
/// each, the second a third full — whenever the context passed 4,096.
fn split_count(n_kv: u32, rows_per_split: u32, max_nz: u32) -> u32 {
    n_kv.div_ceil(rows_per_split.max(1)).min(max_nz)
}

/// Largest power of two not above `x` (x ≥ 1).
fn floor_pow2(x: u32) -> u32 {
    1 << (31 - x.max(1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shader's rows per split for a range of `len` rows over `nz` splits.
    fn shader_rows(len: u32, nz: u32) -> u32 {
        len.div_ceil(nz).div_ceil(TILE) * TILE
    }

    #[test]
    fn every_length_up_to_the_plan_takes_one_round() {
        for rps in [TILE, 2 * TILE] {
            for n_kv in [512u32, 1000, 2048, 4096, 4192, 4160, 8192, 8200] {
                if n_kv.div_ceil(rps) > MAX_NZ {
                    continue; // capped: see below
                }
                let nz = split_count(n_kv, rps, MAX_NZ);
                for len in [n_kv / 2 + 1, n_kv - 1, n_kv] {
                    assert!(
                        shader_rows(len, nz) <= rps,
                        "n_kv {n_kv}, {rps} rows per split: {nz} splits give {} rows at {len}",
                        shader_rows(len, nz)
                    );
                }
            }
        }
        // The cap wins over one round: more rows per split, never more workgroups.
        assert_eq!(split_count(16384, 2 * TILE, MAX_NZ), MAX_NZ);
        assert_eq!(split_count(4192, 2 * TILE, MAX_NZ), 33);
    }
}
