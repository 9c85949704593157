//! `top_k.comp`: the `k` largest logits of each row and the row's log-sum-exp (see
//! [`crate::graph::Op::TopK`]), one workgroup per row by radix select, so sampling reads
//! back `2 + 2k` floats per row instead of the vocabulary.
//!
//! Limits: `1 <= k <= MAX_K`, `k <= v`; `v` below 2^24 (ids travel as f32).

use bytemuck::{Pod, Zeroable};

use super::{bind, count_u32};
use crate::backend::vulkan::{BufferRange, Caps, Recorder, ShaderId};
use crate::{Error, Result};

/// Largest `k` the kernel takes (`KMAX` in `shaders/top_k.comp`).
pub const MAX_K: u32 = 64;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    v: u32,
    k: u32,
    l_off: u32,
    d_off: u32,
}

/// The workgroup width for `caps`: the widest power of two up to 1024 the device runs
/// whose shared arrays (a 4096-bin histogram, four arrays of the width) fit.
fn width(caps: &Caps) -> Option<u32> {
    let mut wg = 1024u32;
    while wg >= 64 {
        let shared = 4 * 4096 + 4 * 4 * wg + 8 * MAX_K + 8;
        if wg <= caps.max_compute_work_group_invocations
            && wg <= caps.max_compute_work_group_size[0]
            && shared <= caps.max_compute_shared_memory_size
        {
            return Some(wg);
        }
        wg /= 2;
    }
    None
}

/// Why this device cannot run TOP_K with `k` over rows of `v`, or `Ok` (plan time).
pub fn support(caps: &Caps, v: u64, k: u64) -> std::result::Result<(), String> {
    if k == 0 || k > u64::from(MAX_K) || k > v {
        return Err(format!(
            "k = {k} outside 1..={} (v = {v})",
            MAX_K.min(v as u32)
        ));
    }
    if v >= 1 << 24 {
        return Err(format!(
            "{v} logits per row: ids past 2^24 are not exact in f32"
        ));
    }
    width(caps)
        .map(|_| ())
        .ok_or_else(|| format!("{} has too little shared memory", caps.name))
}

/// Records TOP_K: `logits` f32 `[v, n]` → `dst` f32 `[2 + 2k, n]` (max, log-sum-exp, then
/// (id, logit) pairs, largest first, ties to the lower id).
pub fn top_k(
    rec: &mut Recorder,
    logits: BufferRange<'_>,
    dst: BufferRange<'_>,
    v: u32,
    k: u32,
    n: u32,
) -> Result<()> {
    let caps = rec.caps();
    support(caps, u64::from(v), u64::from(k))
        .map_err(|e| Error::Unsupported(format!("top_k: {e}")))?;
    let nl = u64::from(v) * u64::from(n);
    let nd = u64::from(2 + 2 * k) * u64::from(n);
    count_u32(nl, "top_k")?;
    let (rl, l_off) = bind(caps, &logits, 4, nl, "top_k logits")?;
    let (rd, d_off) = bind(caps, &dst, 4, nd, "top_k dst")?;
    if n == 0 {
        return Ok(());
    }
    if n > caps.max_compute_work_group_count[0] {
        return Err(Error::Unsupported(format!(
            "top_k: {n} rows exceed the grid"
        )));
    }
    let wg = width(caps).expect("checked by support");
    let push = Push { v, k, l_off, d_off };
    rec.dispatch(
        ShaderId::top_k,
        &[wg],
        &[rl, rd],
        bytemuck::bytes_of(&push),
        [n, 1, 1],
    )
}
