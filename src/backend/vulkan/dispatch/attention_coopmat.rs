//! `attention_coopmat.comp`: causal multi-head attention with GQA for prompt batches on
//! cooperative matrices (`Op::Attention`, the same operands and result as
//! [`super::attention::attention`]).
//!
//! A workgroup takes one kv head and 64 (token, query head) rows of it, so the query heads
//! of a GQA group share every K/V load; it walks the union of its rows' spans in tiles of
//! 32 cache rows, computing q·kᵀ and p·v as 16 × 8 × 16 f16 products with f32
//! accumulation, in one pass with an online softmax (the accumulators are rescaled by a
//! matrix holding each row's factor, component-wise: KHR cooperative matrices have no
//! per-row access). Decode
//! (a few tokens) keeps `attention.comp` and its split-K form: a prompt has enough rows
//! to fill the matrices.
//!
//! Used where [`support`] passes: the device has the 16 × 8 × 16 f16 · f16 + f32 shape
//! (the prompt matmul's, [`super::mul_mat::coopmat_shape`]), subgroup shuffles and votes, subgroups
//! of 16–64; `d` a multiple of 16 up to [`MAX_HEAD_DIM`]; `k` and `v` start at multiples
//! of 16 bytes (both are read 8 halves at a time).

use bytemuck::{Pod, Zeroable};

use super::attention::PushHead;
use crate::backend::vulkan::{BufferRange, Caps, Recorder, ShaderId};
use crate::{Error, Result};

/// Largest head size: the subgroup holds its q rows as `d / 16` matrices and its output
/// as `d / 8` accumulators in registers.
pub const MAX_HEAD_DIM: u32 = 128;
/// Prompt batches from this many tokens take the kernel (fewer: `attention.comp`).
pub const MIN_TOKENS: u32 = 16;
/// (token, head) rows per workgroup and cache rows per tile (`ROWS`, `BC` in the shader).
const ROWS: u32 = 64;
const BC: u32 = 32;
/// Subgroups per workgroup (`NSG`).
const NSG: u32 = 4;

/// Push constants of `shaders/attention_coopmat.comp` (must match its `Push` block:
/// `attention.comp`'s head, then a pad word).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    head: PushHead,
    pad: u32,
}
// `// push: 48` in attention_coopmat.comp.
const _: () = assert!(std::mem::size_of::<Push>() == 48);

/// Shared memory of a workgroup for head size `d`: the K and V tiles (also the q
/// staging), the score and weight blocks, the rescale matrices, three words per row.
fn shared_bytes(d: u32) -> u32 {
    2 * BC * (d + 8) * 2
        + NSG * 16 * (BC + 4) * 4
        + NSG * 16 * (BC + 8) * 2
        + NSG * 16 * 8 * 4
        + 3 * ROWS * 4
}

/// Why this device cannot run the kernel for head size `d` (`Ok`: it can).
pub fn support(caps: &Caps, d: u32) -> std::result::Result<(), String> {
    use ash::vk::SubgroupFeatureFlags as F;
    if super::mul_mat::coopmat_shape(caps).is_none() {
        return Err(format!(
            "{} lacks the 16x8x16 f16 cooperative-matrix shape",
            caps.name
        ));
    }
    if !caps.subgroup_ops.contains(F::BASIC | F::SHUFFLE | F::VOTE) {
        return Err(format!("{} lacks subgroup shuffles or votes", caps.name));
    }
    let sg = caps.subgroup_size;
    if !(16..=64).contains(&sg) || !sg.is_power_of_two() {
        return Err(format!("subgroups of {sg} (the kernel takes 16, 32 or 64)"));
    }
    let wg = NSG * sg;
    if wg > caps.max_compute_work_group_invocations || wg > caps.max_compute_work_group_size[0] {
        return Err(format!("workgroups of {wg}"));
    }
    if d == 0 || d % 16 != 0 || d > MAX_HEAD_DIM {
        return Err(format!(
            "head size {d} (the kernel takes multiples of 16 up to {MAX_HEAD_DIM})"
        ));
    }
    if shared_bytes(d) > caps.max_compute_shared_memory_size {
        return Err(format!(
            "{} B of shared memory for head size {d}",
            shared_bytes(d)
        ));
    }
    Ok(())
}

/// Whether a prompt attention of `n` tokens, head size `d`, with `k` / `v` at these byte
/// offsets takes this kernel on `caps`.
pub fn takes(caps: &Caps, d: u32, n: u32, k_offset: u64, v_offset: u64) -> bool {
    n >= MIN_TOKENS && k_offset % 16 == 0 && v_offset % 16 == 0 && support(caps, d).is_ok()
}

/// `dst = softmax(q·kᵀ·scale, causal by span) · v` per head on cooperative matrices (see
/// the module docs; layouts as [`super::attention::attention`]). `Error::Unsupported`
/// where [`support`] fails.
#[allow(clippy::too_many_arguments)]
pub fn attention_coopmat(
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
    let caps = rec.caps();
    support(caps, d)
        .map_err(|e| Error::Unsupported(format!("cooperative-matrix attention: {e}")))?;
    // K and V both read as uvec4s of 8 halves.
    let ops = super::attention::bind_operands(
        caps,
        [&q, &k, &v, &span, &dst],
        16,
        d,
        n_head,
        n_head_kv,
        n,
        n_kv,
        scale,
    )?;
    if n == 0 || n_head == 0 {
        return Ok(());
    }
    let rows = u64::from(n) * u64::from(n_head / n_head_kv);
    let blocks = rows.div_ceil(u64::from(ROWS));
    let [max_x, max_y, _] = caps.max_compute_work_group_count;
    if n_head_kv > max_x || blocks > u64::from(max_y) {
        return Err(Error::Unsupported(format!(
            "attention: {n_head_kv} kv heads x {blocks} row blocks exceed {}'s workgroup \
             count limits ({max_x} x {max_y})",
            caps.name
        )));
    }
    let push = Push {
        head: ops.head,
        pad: 0,
    };
    // Specialization: 0 = head size, 1 = workgroup size (NSG subgroups).
    rec.dispatch(
        ShaderId::attention_coopmat,
        &[d, NSG * caps.subgroup_size],
        &[ops.q, ops.k, ops.v, ops.span, ops.dst],
        bytemuck::bytes_of(&push),
        [n_head_kv, blocks as u32, 1],
    )
}
