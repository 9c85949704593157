//! Reference implementations of every graph op on plain slices. They are the
//! oracle for the Vulkan kernels' tests, so they favour accuracy over speed:
//! f64 accumulation for reductions, exact formulas (no running products).
//! Shapes follow ggml order; see [`crate::graph::Op`] for each op's meaning.

use half::f16;

use crate::graph::RopeMode;
use crate::quant::{self, GgmlType};
use crate::{Error, Result};

/// `dst[i*ne0..][..ne0]` = row `ids[i]` of `table` (type `ty`, rows of `ne0`).
pub fn get_rows(
    ty: GgmlType,
    table: &[u8],
    ne0: usize,
    ids: &[i32],
    dst: &mut [f32],
) -> Result<()> {
    let rb = ty.row_bytes(ne0).expect("whole blocks");
    let nrows = table.len() / rb;
    for (i, &id) in ids.iter().enumerate() {
        if id < 0 || id as usize >= nrows {
            return Err(crate::Error::Usage(format!(
                "token id {id} out of range (vocabulary has {nrows} rows)"
            )));
        }
        let row = &table[id as usize * rb..][..rb];
        quant::dequantize(ty, row, &mut dst[i * ne0..][..ne0])?;
    }
    Ok(())
}

/// Each row of `x` divided by its root mean square.
pub fn rms_norm(x: &[f32], ne0: usize, eps: f32, dst: &mut [f32]) {
    for (xr, dr) in x.chunks(ne0).zip(dst.chunks_mut(ne0)) {
        let ss: f64 = xr.iter().map(|&v| v as f64 * v as f64).sum();
        let scale = 1.0 / (ss / ne0 as f64 + eps as f64).sqrt();
        for (d, &v) in dr.iter_mut().zip(xr) {
            *d = (v as f64 * scale) as f32;
        }
    }
}

/// Element-wise binary op with row broadcast of `b` (row `r` of `a` uses row `r % rows(b)`).
pub fn binary(add: bool, a: &[f32], b: &[f32], ne0: usize, dst: &mut [f32]) {
    let nb = b.len() / ne0;
    for (r, (ar, dr)) in a.chunks(ne0).zip(dst.chunks_mut(ne0)).enumerate() {
        let br = &b[(r % nb) * ne0..][..ne0];
        for ((d, &x), &y) in dr.iter_mut().zip(ar).zip(br) {
            *d = if add { x + y } else { x * y };
        }
    }
}

/// `x * s`.
pub fn scale(x: &[f32], s: f32, dst: &mut [f32]) {
    for (d, &v) in dst.iter_mut().zip(x) {
        *d = v * s;
    }
}

/// `silu(g) * u`.
pub fn swiglu(g: &[f32], u: &[f32], dst: &mut [f32]) {
    for ((d, &a), &b) in dst.iter_mut().zip(g).zip(u) {
        let s = a as f64 / (1.0 + (-(a as f64)).exp());
        *d = (s * b as f64) as f32;
    }
}

/// `Op::TopK`: per row of `v` logits, its max, log-sum-exp (f64 sums) and the `k` largest
/// as (id, logit) pairs, largest first, ties to the lower id.
pub fn top_k(l: &[f32], v: usize, k: usize, dst: &mut [f32]) {
    for (row, out) in l.chunks(v).zip(dst.chunks_mut(2 + 2 * k)) {
        let top = crate::sample::top_k_sorted(row, k);
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = row.iter().map(|&x| ((x - mx) as f64).exp()).sum();
        out[0] = mx;
        out[1] = (mx as f64 + sum.ln()) as f32;
        for (i, (id, x)) in top.into_iter().enumerate() {
            out[2 + 2 * i] = id as f32;
            out[3 + 2 * i] = x;
        }
    }
}

/// Matrix multiplication `dst = W·x` over weight segments (see `Op::MulMat`).
/// `segs[s]` holds `split[s]` rows of `k` values in type `ty`; an unfused weight is
/// one segment. Output: segment `s` is a contiguous `[split[s], n]` block.
/// Rows are spread over the available cores.
pub fn mul_mat(
    ty: GgmlType,
    segs: &[&[u8]],
    split: &[usize],
    k: usize,
    x: &[f32],
    n: usize,
    dst: &mut [f32],
) -> Result<()> {
    let rb = ty.row_bytes(k).expect("whole blocks");
    // (segment bytes, rows, dst block) per segment
    let mut blocks = Vec::new();
    let mut rest = &mut dst[..];
    for (s, &rows) in segs.iter().zip(split) {
        let (blk, r) = rest.split_at_mut(rows * n);
        rest = r;
        blocks.push((*s, rows, blk));
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    for (w, rows, blk) in blocks {
        // Split this segment's rows into chunks; each thread writes disjoint rows of
        // every token column, so collect per-thread results and scatter afterwards.
        let chunk = rows.div_ceil(threads).max(1);
        let results: Vec<Result<Vec<f32>>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..rows)
                .step_by(chunk)
                .map(|r0| {
                    let r1 = (r0 + chunk).min(rows);
                    sc.spawn(move || -> Result<Vec<f32>> {
                        let mut out = vec![0f32; (r1 - r0) * n];
                        let mut wrow = vec![0f32; k];
                        for r in r0..r1 {
                            let row = &w[r * rb..][..rb];
                            if n <= 2 {
                                // dot_row decodes block by block with f64 partial sums.
                                for j in 0..n {
                                    out[(r - r0) * n + j] =
                                        quant::dot_row(ty, row, &x[j * k..][..k]);
                                }
                                continue;
                            }
                            quant::dequantize(ty, row, &mut wrow)?;
                            for j in 0..n {
                                let xr = &x[j * k..][..k];
                                let acc: f64 = wrow
                                    .iter()
                                    .zip(xr)
                                    .map(|(&a, &b)| a as f64 * b as f64)
                                    .sum();
                                out[(r - r0) * n + j] = acc as f32;
                            }
                        }
                        Ok(out)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("worker")).collect()
        });
        for (ci, res) in results.into_iter().enumerate() {
            let out = res?;
            let r0 = ci * chunk;
            let nr = out.len() / n.max(1);
            for rr in 0..nr {
                for j in 0..n {
                    blk[j * rows + r0 + rr] = out[rr * n + j];
                }
            }
        }
    }
    Ok(())
}

/// Rotary embedding; `x` is `[head_dim, n_head, n]`, `pos` has `n` entries.
#[allow(clippy::too_many_arguments)]
pub fn rope(
    x: &[f32],
    head_dim: usize,
    n_head: usize,
    pos: &[i32],
    mode: RopeMode,
    n_dims: usize,
    freq_base: f32,
    freq_scale: f32,
    dst: &mut [f32],
) {
    dst.copy_from_slice(x);
    let half = n_dims / 2;
    for (t, &p) in pos.iter().enumerate() {
        for h in 0..n_head {
            let base = (t * n_head + h) * head_dim;
            for i in 0..half {
                let theta = p as f64
                    * freq_scale as f64
                    * (freq_base as f64).powf(-2.0 * i as f64 / n_dims as f64);
                let (s, c) = theta.sin_cos();
                let (i0, i1) = match mode {
                    RopeMode::Normal => (base + 2 * i, base + 2 * i + 1),
                    RopeMode::Neox => (base + i, base + i + half),
                };
                let (x0, x1) = (x[i0] as f64, x[i1] as f64);
                dst[i0] = (x0 * c - x1 * s) as f32;
                dst[i1] = (x0 * s + x1 * c) as f32;
            }
        }
    }
}

/// f32 → f16 (round to nearest even), for KV-cache writes.
pub fn f32_to_f16(src: &[f32], dst: &mut [u8]) {
    for (d, &v) in dst.chunks_exact_mut(2).zip(src) {
        d.copy_from_slice(&f16::from_f32(v).to_le_bytes());
    }
}

/// The cache rows `lo..hi` token `t` attends (see `Op::Attention`): `span[2t] ..=
/// span[2t+1]` clamped to `0..n_kv`, never empty. The Vulkan kernel computes the same.
pub fn kv_range(span: &[i32], t: usize, n_kv: usize) -> (usize, usize) {
    let hi = ((span[2 * t + 1].max(0) as usize) + 1).min(n_kv);
    let lo = (span[2 * t].max(0) as usize).min(hi.saturating_sub(1));
    (lo, hi)
}

/// The spans of one sequence whose cells start at row 0: token t attends `0..=pos[t]`.
pub fn causal_spans(pos: &[i32]) -> Vec<i32> {
    pos.iter().flat_map(|&p| [0, p]).collect()
}

/// Causal attention with GQA (see `Op::Attention`). `q` is `[d, n_head, n]`;
/// `k`, `v` are f16 `[d, n_head_kv, n_kv]`; `span` i32 `[2, n]`; output `[d, n_head, n]`.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    d: usize,
    n_head: usize,
    k: &[f16],
    v: &[f16],
    n_head_kv: usize,
    n_kv: usize,
    span: &[i32],
    scale: f32,
    dst: &mut [f32],
) {
    let group = n_head / n_head_kv;
    let mut scores = vec![0f64; n_kv];
    for t in 0..span.len() / 2 {
        let (lo, hi) = kv_range(span, t, n_kv);
        let len = hi - lo;
        for h in 0..n_head {
            let kh = h / group;
            let qv = &q[(t * n_head + h) * d..][..d];
            let mut mx = f64::NEG_INFINITY;
            for (j, sc) in scores[..len].iter_mut().enumerate() {
                let kr = &k[((lo + j) * n_head_kv + kh) * d..][..d];
                let dot: f64 = qv.iter().zip(kr).map(|(&a, b)| a as f64 * b.to_f64()).sum();
                *sc = dot * scale as f64;
                mx = mx.max(*sc);
            }
            let mut sum = 0.0;
            for sc in &mut scores[..len] {
                *sc = (*sc - mx).exp();
                sum += *sc;
            }
            let out = &mut dst[(t * n_head + h) * d..][..d];
            for (i, o) in out.iter_mut().enumerate() {
                let mut acc = 0.0;
                for (j, &w) in scores[..len].iter().enumerate() {
                    acc += w * v[((lo + j) * n_head_kv + kh) * d + i].to_f64();
                }
                *o = (acc / sum) as f32;
            }
        }
    }
}

/// Top-k expert ids of each token's router logits (see `Op::MoeTopK`): `logits` is
/// `[n_expert, n]`, `ids` `[k, n]`.
pub fn moe_topk(logits: &[f32], n_expert: usize, k: usize, ids: &mut [i32]) {
    for (l, out) in logits.chunks(n_expert).zip(ids.chunks_mut(k)) {
        let mut order: Vec<usize> = (0..n_expert).collect();
        // Stable sort, descending: equal logits keep the lower index first.
        order.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
        for (o, &e) in out.iter_mut().zip(&order) {
            *o = e as i32;
        }
    }
}

/// Routing weights of the chosen experts (see `Op::MoeWeights`): softmax of the chosen
/// logits, in f64.
pub fn moe_weights(logits: &[f32], n_expert: usize, ids: &[i32], k: usize, dst: &mut [f32]) {
    for ((l, id), out) in logits
        .chunks(n_expert)
        .zip(ids.chunks(k))
        .zip(dst.chunks_mut(k))
    {
        let v: Vec<f64> = id.iter().map(|&e| l[e as usize] as f64).collect();
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = v.iter().map(|&x| (x - max).exp()).sum();
        for (o, &x) in out.iter_mut().zip(&v) {
            *o = ((x - max).exp() / sum) as f32;
        }
    }
}

/// The expert-indexed matmul (see `Op::MulMatId`): `w` holds `n_expert` matrices of
/// `m` rows of `k` values in `ty`, back to back; `x` is `[k, nx, n]`, `ids` `[n_used, n]`,
/// `dst` `[m, n_used, n]`. An id outside `0..n_expert` is an error naming it.
#[allow(clippy::too_many_arguments)]
pub fn mul_mat_id(
    ty: GgmlType,
    w: &[u8],
    k: usize,
    m: usize,
    x: &[f32],
    nx: usize,
    ids: &[i32],
    n_used: usize,
    dst: &mut [f32],
) -> Result<()> {
    let rb = ty.row_bytes(k).expect("whole blocks");
    let n_expert = w.len() / (rb * m);
    for (ts, out) in dst.chunks_mut(m).enumerate() {
        let (t, s) = (ts / n_used, ts % n_used);
        let e = ids[ts];
        if e < 0 || e as usize >= n_expert {
            return Err(Error::Usage(format!(
                "MUL_MAT_ID: expert id {e} outside 0..{n_expert}"
            )));
        }
        let xr = &x[(t * nx + s % nx) * k..][..k];
        let we = &w[e as usize * m * rb..][..m * rb];
        for (i, o) in out.iter_mut().enumerate() {
            *o = quant::dot_row(ty, &we[i * rb..][..rb], xr);
        }
    }
    Ok(())
}

/// The weighted sum of the experts' outputs (see `Op::MoeSum`): `y` is
/// `[ne0, n_used, n]`, `w` `[n_used, n]`, `dst` `[ne0, n]`; f64 accumulation.
pub fn moe_sum(y: &[f32], ne0: usize, n_used: usize, w: &[f32], dst: &mut [f32]) {
    for (t, out) in dst.chunks_mut(ne0).enumerate() {
        for (i, o) in out.iter_mut().enumerate() {
            let acc: f64 = (0..n_used)
                .map(|s| w[t * n_used + s] as f64 * y[(t * n_used + s) * ne0 + i] as f64)
                .sum();
            *o = acc as f32;
        }
    }
}
