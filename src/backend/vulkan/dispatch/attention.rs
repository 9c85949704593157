//! `attention.comp`: causal multi-head attention with GQA over an f16 KV cache
//! (see `Op::Attention`), flash-attention style.
//!
//! One workgroup per (query head, query token) streams the cache rows
//! `0..min(max(pos[t], 0) + 1, n_kv)` in tiles with an online softmax (f32 running
//! max and sum), so memory use does not grow with the context; its sub-blocks take
//! interleaved tiles and merge their partial softmax results at the end. Works for
//! decode (`n` = 1) and prefill (`n` > 1, causal through the positions alike).
//!
//! Layouts: `q`, `dst` f32 `[d, n_head, n]`; `k`, `v` f16 `[d, n_head_kv, ≥ n_kv]`
//! (a cache with more rows is fine: rows past `n_kv` are never read); `pos` i32 `[n]`.
//! Limits: `d % 8 == 0`, `d ≤ 256`, `n_head % n_head_kv == 0`; `k` must start at a
//! multiple of 16 bytes (it is read 8 halves at a time), `v` at a multiple of 4.

use bytemuck::{Pod, Zeroable};

use super::{bind, count_u32};
use crate::backend::vulkan::{BufferRange, Recorder, ShaderId};
use crate::{Error, Result};

/// Largest head size the kernel holds (`D_MAX` in `shaders/attention.comp`).
pub const MAX_HEAD_DIM: u32 = 256;

/// Push constants of `shaders/attention.comp` (must match its `Push` block).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    d: u32,
    n_head: u32,
    n_head_kv: u32,
    n: u32,
    n_kv: u32,
    scale: f32,
    q_off: u32,
    k_off: u32,
    v_off: u32,
    pos_off: u32,
    d_off: u32,
    pad: u32,
}

/// `dst = softmax(q·kᵀ·scale, causal by pos) · v` per head.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    rec: &mut Recorder,
    q: BufferRange<'_>,
    k: BufferRange<'_>,
    v: BufferRange<'_>,
    pos: BufferRange<'_>,
    dst: BufferRange<'_>,
    d: u32,
    n_head: u32,
    n_head_kv: u32,
    n: u32,
    n_kv: u32,
    scale: f32,
) -> Result<()> {
    let shader = ShaderId::attention;
    if d == 0 || d % 8 != 0 || d > MAX_HEAD_DIM {
        return Err(Error::Unsupported(format!(
            "attention: head size {d} (the Vulkan kernel needs a multiple of 8 up to \
             {MAX_HEAD_DIM})"
        )));
    }
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
    let caps = rec.caps();
    let (rq, q_off) = bind(caps, &q, 4, nq, "attention q")?;
    // f16 elements: K is read as uvec4 (8 halves), V as uint (2 halves).
    let (rk, k_off) = bind(caps, &k, 16, nkv / 8, "attention k")?;
    let (rv, v_off) = bind(caps, &v, 4, nkv / 2, "attention v")?;
    let (rp, pos_off) = bind(caps, &pos, 4, u64::from(n), "attention pos")?;
    let (rd, d_off) = bind(caps, &dst, 4, nq, "attention dst")?;
    let push = Push {
        d,
        n_head,
        n_head_kv,
        n,
        n_kv,
        scale,
        q_off,
        k_off,
        v_off,
        pos_off,
        d_off,
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
    // Specialization: 0 = head size (loops over it unroll), 1 = workgroup width.
    let nsplit = sub_blocks(caps, d, n_head, n, n_kv);
    rec.dispatch(
        shader,
        &[d, nsplit * TILE],
        &[rq, rk, rv, rp, rd],
        bytemuck::bytes_of(&push),
        [n_head, n, 1],
    )
}

/// Rows per tile = invocations per sub-block (`T` in the shader).
const TILE: u32 = 64;
/// Most sub-blocks per workgroup.
const MAX_SUB_BLOCKS: u32 = 16;

/// Sub-blocks per workgroup (a power of two). Few workgroups (decode: one per head)
/// get wide ones so that each keeps many cache rows in flight; many workgroups
/// (prefill) already fill the device, and narrow ones waste fewer idle invocations
/// on short causal ranges. Never more rows per round than the cache has, and within
/// the device's workgroup size and shared-memory limits.
fn sub_blocks(caps: &crate::backend::vulkan::Caps, d: u32, n_head: u32, n: u32, n_kv: u32) -> u32 {
    let want = if u64::from(n_head) * u64::from(n) <= 256 {
        MAX_SUB_BLOCKS
    } else {
        4
    };
    let by_rows = n_kv.div_ceil(TILE).next_power_of_two();
    let by_size = (caps
        .max_compute_work_group_invocations
        .min(caps.max_compute_work_group_size[0])
        / TILE)
        .max(1);
    let mut s = want.min(by_rows).min(by_size);
    // Shared memory: q (4d), scores and weights (2 * 4 * width), per sub-block m, l and
    // partial outputs (8 + 4d) and partial dot products (T rows x 9 floats).
    let shared = |s: u32| 4 * d + 8 * s * TILE + s * (8 + 4 * d) + s * TILE * 9 * 4;
    while s > 1 && shared(s) > caps.max_compute_shared_memory_size {
        s /= 2;
    }
    // Largest power of two not above s.
    1 << (31 - s.leading_zeros())
}
