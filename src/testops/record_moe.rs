//! test-ops' mixture-of-experts cases (routing, the router + top-k, the expert-indexed
//! matmul, the experts' weighted sum): inputs, CPU reference and recording, as
//! [`super::record`] does for the others.

use super::record::Recording;
use super::{values, Case, Io};
use crate::backend::cpu::ops;
use crate::backend::vulkan::dispatch;
use crate::backend::vulkan::{Buffer, BufferRange, Recorder, VulkanContext};
use crate::quant;
use crate::{Error, Result};

/// (reference, output buffer, recording) of a MoE case.
pub(super) fn record(
    ctx: &VulkanContext,
    io: &mut Io,
    c: &Case,
    seed: u64,
) -> Result<(Vec<f32>, usize, Recording)> {
    Ok(match *c {
        Case::MoeRoute { n_expert, k, n } => {
            let mut logits = values((n_expert * n) as usize, seed);
            if n_expert == 60 {
                // Whole numbers only: many equal logits, so the tie rule (lower index
                // first) decides which experts are chosen and in what order.
                logits.iter_mut().for_each(|l| *l = l.floor());
            }
            let mut ids = vec![0i32; (k * n) as usize];
            ops::moe_topk(&logits, n_expert as usize, k as usize, &mut ids);
            let mut want = vec![0f32; ids.len()];
            ops::moe_weights(&logits, n_expert as usize, &ids, k as usize, &mut want);
            want.extend(ids_as_f32(&ids));
            let (lb, ib, db, tb) = (
                io.f32s(&logits)?,
                io.zeros(ids.len())?,
                io.zeros(want.len())?,
                io.f32s(&id_table(n_expert))?,
            );
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::moe::moe_topk(r, b[lb].whole(), b[ib].whole(), n_expert, k, n)?;
                    r.barrier()?;
                    let (l, i) = (b[lb].whole(), b[ib].whole());
                    weights_and_ids(r, l, i, &b[db], b[tb].whole(), n_expert, k, n)
                }),
            )
        }
        Case::MoeRouterTopK {
            k_dim,
            n_expert,
            k,
            n,
            norm,
        } => {
            let (ku, eu, nu) = (k_dim as usize, n_expert as usize, n as usize);
            let mut w = values(ku * eu, seed);
            let mut x = values(ku * nu, seed + 1);
            if n_expert == 60 {
                // Small whole numbers: exact dot products, many of them equal.
                w.iter_mut().for_each(|v| *v = (*v * 0.5).floor());
                x.iter_mut().for_each(|v| *v = (*v * 0.5).floor());
            } else {
                // Logits of order 1, so all k weights matter (not one near 1, the rest ~0).
                let s = 1.0 / (4.0 * (k_dim as f32).sqrt());
                w.iter_mut().for_each(|v| *v *= s);
            }
            let wb8: &[u8] = bytemuck::cast_slice(&w);
            let mut logits = vec![0f32; eu * nu];
            // With the norm: x scaled far from unit RMS (the norm must undo it) and a
            // weight around 1; the router reads rms_norm(x)·nw.
            let eps = 1e-6f32;
            let nw: Vec<f32> = values(ku, seed + 2).iter().map(|v| 1.0 + 0.5 * v).collect();
            let xr = if norm {
                x.iter_mut().for_each(|v| *v *= 7.0);
                let mut t = vec![0f32; x.len()];
                ops::rms_norm(&x, ku, eps, &mut t);
                let mut normed = vec![0f32; x.len()];
                ops::binary(false, &t, &nw, ku, &mut normed);
                normed
            } else {
                x.clone()
            };
            ops::mul_mat(
                quant::GgmlType::F32,
                &[wb8],
                &[eu],
                ku,
                &xr,
                nu,
                &mut logits,
            )?;
            let mut ids = vec![0i32; k as usize * nu];
            ops::moe_topk(&logits, eu, k as usize, &mut ids);
            let mut want = vec![0f32; ids.len()];
            ops::moe_weights(&logits, eu, &ids, k as usize, &mut want);
            want.extend(ids_as_f32(&ids));
            let scratch = dispatch::moe::router_topk_scratch_bytes(n_expert, n) as usize / 4;
            let (wb, xb, lb, ib, sb, db, nb) = (
                io.f32s(&w)?,
                io.f32s(&x)?,
                io.zeros(logits.len())?,
                io.zeros(ids.len())?,
                io.zeros(scratch)?,
                io.zeros(want.len())?,
                io.f32s(&nw)?,
            );
            let tb = io.f32s(&id_table(n_expert))?;
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    let (l, i) = (b[lb].whole(), b[ib].whole());
                    dispatch::moe::moe_router_topk(
                        r,
                        b[wb].whole(),
                        b[xb].whole(),
                        l,
                        i,
                        b[sb].whole(),
                        k_dim,
                        n_expert,
                        k,
                        n,
                        norm.then(|| (b[nb].whole(), eps)),
                    )?;
                    r.barrier()?;
                    weights_and_ids(r, l, i, &b[db], b[tb].whole(), n_expert, k, n)
                }),
            )
        }
        Case::MulMatId {
            ty,
            m,
            k,
            n_expert,
            n_used,
            nx,
            n,
            fused,
            q8,
            glu,
            route,
        } => {
            if q8 && !dispatch::moe::vecq_id_supports(ctx.caps(), ty, k, n) {
                return Err(Error::Unsupported(format!(
                    "no integer-dot mat-vec for {ty} on {}",
                    ctx.caps().name
                )));
            }
            // Member stacks (one, or two of m and m + 5 rows), stored one after the other.
            let split: Vec<u32> = match (fused, glu) {
                (_, true) => vec![m, m],
                (true, false) => vec![m, m + 5],
                (false, false) => vec![m],
            };
            let mut w = Vec::new();
            let mut stacks = Vec::new();
            for (i, &rows) in split.iter().enumerate() {
                let q = quant::quantize(
                    ty,
                    &values((rows * k * n_expert) as usize, seed + 7 * i as u64),
                )?;
                stacks.push((w.len(), q.len(), rows));
                w.extend_from_slice(&q);
            }
            let m_all: u32 = split.iter().sum();
            let x = values((k * nx * n) as usize, seed + 1);
            // Experts n_expert-2 and n_expert-1 receive no token. With `route` the kernel
            // reads whole-number logits (many ties: the index decides) and the ids are
            // MOE_TOPK's of them.
            let logits: Vec<f32> = values((n_expert * n) as usize, seed + 3)
                .iter()
                .map(|v| v.floor())
                .collect();
            let mut ids: Vec<i32> = (0..n * n_used)
                .map(|i| ((i * 3 + i / n_used) % (n_expert - 2)) as i32)
                .collect();
            if route {
                ops::moe_topk(&logits, n_expert as usize, n_used as usize, &mut ids);
            }
            let pairs = (n_used * n) as usize;
            let mut want = vec![0f32; m_all as usize * pairs];
            let mut rest = &mut want[..];
            for &(off, len, rows) in &stacks {
                let (blk, r) = rest.split_at_mut(rows as usize * pairs);
                rest = r;
                ops::mul_mat_id(
                    ty,
                    &w[off..off + len],
                    k as usize,
                    rows as usize,
                    &x,
                    nx as usize,
                    &ids,
                    n_used as usize,
                    blk,
                )?;
            }
            // Ids out of range (-1 and n_expert; MOE_TOPK never writes them) give 0: every
            // kernel's guard (the per-pair ones, and the grouping's last bucket).
            for (p, bad) in [(1usize, -1i32), (pairs - 1, n_expert as i32)] {
                if route || p == 0 || p >= pairs || (p == 1 && pairs < 3) {
                    continue;
                }
                ids[p] = bad;
                let mut at = 0;
                for &(_, _, rows) in &stacks {
                    let rows = rows as usize;
                    want[at + p * rows..at + (p + 1) * rows].fill(0.0);
                    at += rows * pairs;
                }
            }
            if glu {
                // silu(gate)·up of the two [m, n_used, n] blocks.
                let (gate, up) = want.split_at(want.len() / 2);
                let mut act = vec![0f32; gate.len()];
                ops::swiglu(gate, up, &mut act);
                want = act;
            }
            let split = if fused { split } else { vec![] };
            // dst starts as 7.0 everywhere: a value a kernel leaves unwritten fails.
            let (wb, xb, ib, db) = (
                io.put(&w)?,
                io.f32s(&x)?,
                if route {
                    io.f32s(&logits)?
                } else {
                    io.put(bytemuck::cast_slice(&ids))?
                },
                io.f32s(&vec![7.0; want.len()])?,
            );
            // Prompt batches run grouped by expert (where the device takes it) and need
            // the grouping's scratch, as the executor plans it.
            let words = dispatch::moe::grouping_words(n_expert, n_used * n);
            let gb = io.zeros(words as usize)?;
            // Room for x in f16, which the coopmat grouped kernel reads (as the executor plans).
            let hb = io.zeros(((k * nx * n) as usize).div_ceil(2))?;
            // q8: x's q8_1 copy (every row of [k, nx, n]), quantized first.
            let (cb, sb) = dispatch::mul_mat_vecq::xq_bytes(k, nx * n);
            let (qc, qs) = (
                io.put(&vec![0u8; cb as usize])?,
                io.put(&vec![0u8; sb as usize])?,
            );
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    let xq = || dispatch::mul_mat_vecq::XQ {
                        codes: b[qc].whole(),
                        scales: b[qs].whole(),
                    };
                    if q8 {
                        dispatch::mul_mat_vecq::quantize_q8_1(r, b[xb].whole(), xq(), k, nx * n)?;
                        r.barrier()?;
                    }
                    dispatch::moe::mul_mat_id_with(
                        r,
                        ty,
                        b[wb].whole(),
                        b[xb].whole(),
                        b[ib].whole(),
                        route,
                        b[db].whole(),
                        k,
                        m_all,
                        n_expert,
                        nx,
                        n_used,
                        n,
                        &split,
                        dispatch::moe::IdEpilogue { glu, q8_out: None },
                        Some(dispatch::moe::Grouping {
                            scratch: b[gb].whole(),
                            tiled: dispatch::mul_mat::TiledKernel::Auto,
                            x16: Some(b[hb].whole()),
                        }),
                        None,
                        q8.then(|| (xq(), None)),
                    )
                }),
            )
        }
        Case::MoeSum {
            ne0,
            n_used,
            n,
            residual,
        } => {
            let y = values((ne0 * n_used * n) as usize, seed);
            let wv = values((n_used * n) as usize, seed + 1);
            let rv = values((ne0 * n) as usize, seed + 2);
            let mut want = vec![0f32; (ne0 * n) as usize];
            ops::moe_sum(&y, ne0 as usize, n_used as usize, &wv, &mut want);
            if residual {
                want.iter_mut().zip(&rv).for_each(|(o, r)| *o += r);
            }
            let (yb, wb, rb, db) = (
                io.f32s(&y)?,
                io.f32s(&wv)?,
                io.f32s(&rv)?,
                io.zeros(want.len())?,
            );
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    let (y, w, d) = (b[yb].whole(), b[wb].whole(), b[db].whole());
                    let res = residual.then(|| b[rb].whole());
                    dispatch::moe::moe_sum(r, y, w, res, d, ne0, n_used, n)
                }),
            )
        }
        Case::MoeSumNorm { ne0, n_used, n } => {
            let y = values((ne0 * n_used * n) as usize, seed);
            let wv = values((n_used * n) as usize, seed + 1);
            let rv = values((ne0 * n) as usize, seed + 2);
            let nw = values(ne0 as usize, seed + 3);
            let mut sum = vec![0f32; (ne0 * n) as usize];
            ops::moe_sum(&y, ne0 as usize, n_used as usize, &wv, &mut sum);
            sum.iter_mut().zip(&rv).for_each(|(o, r)| *o += r);
            let mut normed = vec![0f32; sum.len()];
            ops::rms_norm(&sum, ne0 as usize, 1e-6, &mut normed);
            let mut want = vec![0f32; sum.len()];
            ops::binary(false, &normed, &nw, ne0 as usize, &mut want);
            let (yb, wb, rb, nb, db, sb) = (
                io.f32s(&y)?,
                io.f32s(&wv)?,
                io.f32s(&rv)?,
                io.f32s(&nw)?,
                io.zeros(want.len())?,
                io.zeros(want.len())?,
            );
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::norm::moe_sum_rms_norm_mul(
                        r,
                        b[rb].whole(),
                        b[yb].whole(),
                        b[wb].whole(),
                        n_used,
                        b[nb].whole(),
                        b[db].whole(),
                        None,
                        Some(b[sb].whole()),
                        ne0,
                        n,
                        1,
                        1e-6,
                    )
                }),
            )
        }
        _ => return Err(Error::Usage(format!("{} is not a MoE case", c.name()))),
    })
}

/// The MoE routing cases' output: the routing weights of `ids` (from `logits`) in the
/// first `k·n` floats of `out`, then the ids themselves read back as f32 through GET_ROWS
/// of [`id_table`] (`table`), 4 per id.
#[allow(clippy::too_many_arguments)]
fn weights_and_ids(
    r: &mut Recorder,
    logits: BufferRange<'_>,
    ids: BufferRange<'_>,
    out: &Buffer,
    table: BufferRange<'_>,
    n_expert: u32,
    k: u32,
    n: u32,
) -> Result<()> {
    let kn = u64::from(k * n);
    dispatch::moe::moe_weights(r, logits, ids, out.range(0, 4 * kn), n_expert, k, n)?;
    let as_f32 = out.range(4 * kn, 16 * kn);
    dispatch::get_rows::get_rows(r, quant::GgmlType::F32, table, ids, as_f32, 4, k * n)
}

/// An f32 table whose row e is [e, e, e, e] (the MoE cases read the chosen ids back through
/// GET_ROWS of it, after the routing weights, so they are checked exactly).
fn id_table(n_expert: u32) -> Vec<f32> {
    (0..n_expert).flat_map(|e| [e as f32; 4]).collect()
}

/// What GET_ROWS of [`id_table`] gives for `ids`.
fn ids_as_f32(ids: &[i32]) -> Vec<f32> {
    ids.iter().flat_map(|&e| [e as f32; 4]).collect()
}
