//! `attention.comp`: causal multi-head attention with GQA over an f16 KV cache
//! (see `Op::Attention`), flash-attention style.
//!
//! One workgroup per (query head, query token) streams the cache rows
//! `0..min(max(pos[t], 0) + 1, n_kv)` in tiles with an online softmax (f32 running
//! max and sum), so memory use does not grow with the context. Works for decode
//! (`n` = 1) and prefill (`n` > 1, causal through the positions alike).
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
    rec.dispatch(
        shader,
        &[],
        &[rq, rk, rv, rp, rd],
        bytemuck::bytes_of(&push),
        [n_head, n, 1],
    )
}
