//! `top_k.comp`: the `k` largest logits of each row and the row's log-sum-exp (see
//! [`crate::graph::Op::TopK`]) by radix select, so sampling reads back `2 + 2k` floats per
//! row instead of the vocabulary. With a scratch range ([`top_k_chunked`]) a row is split
//! into [`chunks`] workgroups whose last to finish merges their results (one workgroup
//! per 152k-logit row took ~150 us on an H200); without one, one workgroup per row.
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
    chunk: u32,
    part_off: u32,
    cnt_off: u32,
    pad: u32,
}

/// Fewest logits per chunk (at least `MAX_K`, so every chunk has k candidates; small
/// enough that the tiny test models' 1,024-entry vocabularies take the chunked path too).
const MIN_CHUNK: u32 = 256;
/// Most chunks per row.
const MAX_CHUNKS: u32 = 64;
/// Most candidates a merge selects from: chunks × k (`MAXC` in the shader). The merge runs
/// the chunks' radix select over them (on an H200, 152k logits: one workgroup per row
/// 153 us, 64 chunks × k = 1 19 us; an earlier merge that ranked all 51 × 40 candidates
/// against each other took 159).
const MAX_CANDIDATES: u32 = 1024;

/// Workgroups a row of `v` logits is split into for `k` (1: not split). Every chunk
/// holds at least `MIN_CHUNK` ≥ `k` logits.
pub fn chunks(v: u32, k: u32) -> u32 {
    (v / MIN_CHUNK)
        .min(MAX_CHUNKS)
        .min(MAX_CANDIDATES / k.max(1))
        .max(1)
}

/// Scratch bytes [`top_k_chunked`] needs for `n` rows: a counter word per row (padded
/// to 4), then `chunks × (2 + 2k)` floats per row. 0 when rows are not split.
pub fn scratch_bytes(v: u32, k: u32, n: u32) -> u64 {
    let nch = chunks(v, k);
    if nch == 1 {
        return 0;
    }
    let words = u64::from(n).div_ceil(4) * 4;
    4 * (words + u64::from(n) * u64::from(nch) * u64::from(2 + 2 * k))
}

/// The workgroup width for `caps`: the widest power of two up to 1024 the device runs
/// whose shared arrays (a 4096-bin histogram, four arrays of the width) fit.
fn width(caps: &Caps) -> Option<u32> {
    let mut wg = 1024u32;
    while wg >= 64 {
        let shared = 4 * 4096 + 4 * 4 * wg + 8 * MAX_K + 8 * MAX_CANDIDATES + 12;
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
/// (id, logit) pairs, largest first, ties to the lower id), one workgroup per row.
pub fn top_k(
    rec: &mut Recorder,
    logits: BufferRange<'_>,
    dst: BufferRange<'_>,
    v: u32,
    k: u32,
    n: u32,
) -> Result<()> {
    top_k_chunked(rec, logits, dst, None, v, k, n)
}

/// [`top_k`] with each row split into [`chunks`] workgroups when `scratch` is given (at
/// least [`scratch_bytes`] bytes, starting at a multiple of 16, its counter words zero;
/// the dispatch leaves them zero). Same result.
pub fn top_k_chunked(
    rec: &mut Recorder,
    logits: BufferRange<'_>,
    dst: BufferRange<'_>,
    scratch: Option<BufferRange<'_>>,
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
    if n > caps.max_compute_work_group_count[1] {
        return Err(Error::Unsupported(format!(
            "top_k: {n} rows exceed the grid"
        )));
    }
    let wg = width(caps).expect("checked by support");
    let nch = if scratch.is_some() { chunks(v, k) } else { 1 };
    let (rp, rc, part_off, cnt_off) = match scratch.filter(|_| nch > 1) {
        None => (rd, rd, 0, 0),
        Some(sc) => {
            let words = u64::from(n).div_ceil(4) * 4;
            let total = scratch_bytes(v, k, n) / 4;
            let (rs, s_off) = bind(caps, &sc, 4, total, "top_k scratch")?;
            let part_off = count_u32(u64::from(s_off) + words, "top_k scratch")?;
            (rs, rs, part_off, s_off)
        }
    };
    let push = Push {
        v,
        k,
        l_off,
        d_off,
        chunk: v / nch,
        part_off,
        cnt_off,
        pad: 0,
    };
    rec.dispatch(
        ShaderId::top_k,
        &[wg],
        &[rl, rd, rp, rc],
        bytemuck::bytes_of(&push),
        [nch, n, 1],
    )
}
