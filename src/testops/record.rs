//! One case end to end: upload its deterministic inputs, compute the CPU reference
//! (`backend::cpu::ops`, from the same quantized bytes), record the Vulkan dispatches, run
//! them (timed with `perf`) and read the output back.

use half::f16;

use super::{values, Case, Io};
use crate::backend::cpu::ops;
use crate::backend::vulkan::dispatch;
use crate::backend::vulkan::{Recorder, VulkanContext};
use crate::graph::RopeMode;
use crate::quant;
use crate::{Error, Result};

/// Records a case's dispatches into a recorder, reading its buffers from an [`Io`].
pub(super) type Recording = Box<dyn Fn(&mut Recorder, &Io) -> Result<()>>;

/// (GPU output, reference, µs per dispatch when timed).
pub(super) fn run_inner(
    ctx: &VulkanContext,
    c: &Case,
    perf: bool,
) -> Result<(Vec<f32>, Vec<f32>, Option<f64>)> {
    let mut io = Io {
        ctx,
        bufs: Vec::new(),
    };
    let seed = c
        .name()
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    // Each arm uploads inputs, computes the reference, and returns the recording closure's
    // output buffer and element count.
    let (want, out, record): (Vec<f32>, usize, Recording) = match *c {
        Case::MulMat { ty, m, k, n } | Case::MulMatVecq { ty, m, k, n } => {
            let w = quant::quantize(ty, &values((m * k) as usize, seed))?;
            let x = values((k * n) as usize, seed + 1);
            let mut want = vec![0f32; (m * n) as usize];
            ops::mul_mat(
                ty,
                &[&w],
                &[m as usize],
                k as usize,
                &x,
                n as usize,
                &mut want,
            )?;
            let (wb, xb, db) = (io.put(&w)?, io.f32s(&x)?, io.zeros((m * n) as usize)?);
            if matches!(c, Case::MulMat { .. }) {
                (
                    want,
                    db,
                    Box::new(move |r, io| {
                        let b = &io.bufs;
                        dispatch::mul_mat::mul_mat(
                            r,
                            ty,
                            b[wb].whole(),
                            b[xb].whole(),
                            b[db].whole(),
                            k,
                            m,
                            n,
                            &[],
                        )
                    }),
                )
            } else {
                use dispatch::mul_mat_vecq::{mul_mat_vecq, quantize_q8_1, supports, xq_bytes, XQ};
                if !supports(ctx.caps(), ty, k, n) {
                    return Err(Error::Unsupported(format!(
                        "no integer-dot mat-vec for {ty} on {}",
                        ctx.caps().name
                    )));
                }
                let (cb, sb) = xq_bytes(k, n);
                let (qc, qs) = (
                    io.put(&vec![0u8; cb as usize])?,
                    io.put(&vec![0u8; sb as usize])?,
                );
                (
                    want,
                    db,
                    Box::new(move |r, io| {
                        let b = &io.bufs;
                        let xq = XQ {
                            codes: b[qc].whole(),
                            scales: b[qs].whole(),
                        };
                        quantize_q8_1(r, b[xb].whole(), xq, k, n)?;
                        r.barrier()?;
                        let xq = XQ {
                            codes: b[qc].whole(),
                            scales: b[qs].whole(),
                        };
                        mul_mat_vecq(r, ty, b[wb].whole(), xq, b[db].whole(), k, m, n, &[], None)
                    }),
                )
            }
        }
        Case::TopK {
            v,
            k,
            n,
            ties,
            periodic,
        } => {
            let mut l = values((v * n) as usize, seed);
            if periodic {
                for (i, x) in l.iter_mut().enumerate() {
                    *x = -((i % v as usize % 1000) as f32);
                }
            }
            if ties {
                // Few distinct values (both zeros among them): ties decide the order.
                for x in &mut l {
                    *x = (*x * 0.75).round() * 0.5;
                }
            }
            let out = (2 + 2 * k) * n;
            let mut want = vec![0f32; out as usize];
            ops::top_k(&l, v as usize, k as usize, &mut want);
            let (lb, db) = (io.f32s(&l)?, io.zeros(out as usize)?);
            // As the executor runs it: rows of 512 logits or more split into chunks.
            let sbytes = dispatch::top_k::scratch_bytes(v, k, n) as usize;
            let sc = (sbytes > 0).then(|| io.zeros(sbytes / 4)).transpose()?;
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    let scratch = sc.map(|i| b[i].whole());
                    dispatch::top_k::top_k_chunked(
                        r,
                        b[lb].whole(),
                        b[db].whole(),
                        scratch,
                        v,
                        k,
                        n,
                    )
                }),
            )
        }
        Case::MulMatLayer {
            ty,
            m,
            k,
            n,
            norm,
            epi,
            segs,
            int8,
            qout,
        } => {
            use dispatch::mul_mat::{mul_mat_vec_layer, LayerEpi, LayerParts, LayerQ8, LayerQ8Out};
            use dispatch::mul_mat_vecq::{quantize_q8_1_norm, xq_bytes, QuantNorm, XQ};
            let rows = m * segs;
            let w = quant::quantize(ty, &values((rows * k) as usize, seed))?;
            let x = values((k * n) as usize, seed + 1);
            let nw = values(k as usize, seed + 2);
            let r = values((m * n) as usize, seed + 3);
            // epi 4 / 5: a gate/up output, gate block then up block.
            let gu = values((2 * m * n) as usize, seed + 7);
            // The reference: the unfused ops in sequence.
            let mut xn = x.clone();
            if norm {
                let mut t = vec![0f32; x.len()];
                ops::rms_norm(&x, k as usize, 1e-6, &mut t);
                ops::binary(false, &t, &nw, k as usize, &mut xn);
            }
            let split = vec![m as usize; segs as usize];
            let rb = ty.row_bytes(k as usize).expect("whole blocks");
            let parts: Vec<&[u8]> = w.chunks(m as usize * rb).collect();
            let mut y = vec![0f32; (rows * n) as usize];
            ops::mul_mat(ty, &parts, &split, k as usize, &xn, n as usize, &mut y)?;
            let scale = if norm { 1.0 } else { 0.5 };
            for v in &mut y {
                *v *= scale;
            }
            let mut want = vec![0f32; if epi == 2 { (m * n) as usize } else { y.len() }];
            let bias = values(rows as usize, seed + 4);
            match epi {
                1 => ops::binary(true, &y, &r, m as usize, &mut want),
                3 => {
                    // Segment s is a [m, n] block; its row i gets bias[s·m + i].
                    for (at, w) in want.iter_mut().enumerate() {
                        let (seg, rest) = (at / (m * n) as usize, at % (m * n) as usize);
                        *w = y[at] + bias[seg * m as usize + rest % m as usize];
                    }
                }
                2 => {
                    let (gate, up) = y.split_at(y.len() / 2);
                    ops::swiglu(gate, up, &mut want)
                }
                4 | 5 => {
                    // MUL_MAT_ADD into one half, then SWIGLU.
                    let (gate, up) = gu.split_at(gu.len() / 2);
                    let mut p = vec![0f32; y.len()];
                    ops::binary(
                        true,
                        &y,
                        if epi == 5 { gate } else { up },
                        m as usize,
                        &mut p,
                    );
                    if epi == 5 {
                        ops::swiglu(&p, up, &mut want)
                    } else {
                        ops::swiglu(gate, &p, &mut want)
                    }
                }
                _ => want.copy_from_slice(&y),
            }
            // qout: a second fused mat-vec (32 rows, the norm) reads the epilogue's copy.
            let m_out = want.len() as u32 / n;
            let w2 = if qout {
                quant::quantize(ty, &values((32 * m_out) as usize, seed + 5))?
            } else {
                vec![0u8; 4]
            };
            let nw2 = values(m_out as usize, seed + 6);
            if qout {
                let mut t = vec![0f32; want.len()];
                ops::rms_norm(&want, m_out as usize, 1e-6, &mut t);
                let mut xn2 = vec![0f32; want.len()];
                ops::binary(false, &t, &nw2, m_out as usize, &mut xn2);
                let mut y2 = vec![0f32; (32 * n) as usize];
                ops::mul_mat(
                    ty,
                    &[w2.as_slice()],
                    &[32],
                    m_out as usize,
                    &xn2,
                    n as usize,
                    &mut y2,
                )?;
                want = y2;
            }
            let (wb, xb, nb, rbuf) = (io.put(&w)?, io.f32s(&x)?, io.f32s(&nw)?, io.f32s(&r)?);
            let bbuf = io.f32s(&bias)?;
            let gubuf = io.f32s(&gu)?;
            let (w2b, nw2b) = (io.put(&w2)?, io.f32s(&nw2)?);
            let d1 = io.zeros((m_out * n) as usize)?;
            let db = if qout { io.zeros(want.len())? } else { d1 };
            // The q8_1 scratch: x's codes, (d, s), sums of squares; the epilogue's codes,
            // (d, s), sums of squares and counters (zero), each 256-byte aligned.
            let mut at = 0u64;
            let mut take = |b: u64| {
                let o = at;
                at += b.div_ceil(256) * 256;
                o
            };
            let (cb, sb) = xq_bytes(k, n);
            let (xc, xs, xss) = (take(cb), take(sb), take(sb / 2));
            let (ob, osb) = xq_bytes(m_out, n);
            let (oc, os, oss, ocnt) = (
                take(ob),
                take(osb),
                take(osb / 2),
                take(u64::from(m_out / 32) * 4),
            );
            let sc = if int8 {
                io.put(&vec![0u8; at as usize])?
            } else {
                db
            };
            let split32: Vec<u32> = if segs > 1 {
                vec![m; segs as usize]
            } else {
                vec![]
            };
            (
                want,
                db,
                Box::new(move |rec, io| {
                    let b = &io.bufs;
                    let scr = &b[sc];
                    let q8 = if int8 {
                        let norm_in = norm.then(|| QuantNorm {
                            nw: b[nb].whole(),
                            ss: scr.range(xss, sb / 2),
                        });
                        let xq = || XQ {
                            codes: scr.range(xc, cb),
                            scales: scr.range(xs, sb),
                        };
                        quantize_q8_1_norm(rec, b[xb].whole(), xq(), k, n, norm_in)?;
                        rec.barrier()?;
                        Some(LayerQ8 {
                            x: xq(),
                            scratch: scr.whole(),
                            ss: norm.then_some(xss),
                            out: qout.then(|| LayerQ8Out {
                                codes: oc,
                                scales: os,
                                cnt: ocnt,
                                norm: Some((b[nw2b].whole(), oss)),
                            }),
                        })
                    } else {
                        None
                    };
                    let parts = LayerParts {
                        norm: norm.then(|| (b[nb].whole(), 1e-6)),
                        epi: match epi {
                            1 => LayerEpi::Add(b[rbuf].whole()),
                            2 => LayerEpi::SwiGlu,
                            3 => LayerEpi::Bias(b[bbuf].whole()),
                            4 | 5 => LayerEpi::AddSwiGlu {
                                gu: b[gubuf].whole(),
                                gate: epi == 5,
                            },
                            _ => LayerEpi::None,
                        },
                        scale,
                        int8: q8,
                    };
                    mul_mat_vec_layer(
                        rec,
                        ty,
                        b[wb].whole(),
                        b[xb].whole(),
                        parts,
                        b[d1].whole(),
                        k,
                        rows,
                        n,
                        &split32,
                        None,
                    )?;
                    if !qout {
                        return Ok(());
                    }
                    rec.barrier()?;
                    let parts = LayerParts {
                        norm: Some((b[nw2b].whole(), 1e-6)),
                        epi: LayerEpi::None,
                        scale: 1.0,
                        int8: Some(LayerQ8 {
                            x: XQ {
                                codes: scr.range(oc, ob),
                                scales: scr.range(os, osb),
                            },
                            scratch: scr.whole(),
                            ss: Some(oss),
                            out: None,
                        }),
                    };
                    mul_mat_vec_layer(
                        rec,
                        ty,
                        b[w2b].whole(),
                        b[d1].whole(),
                        parts,
                        b[db].whole(),
                        m_out,
                        32,
                        n,
                        &[],
                        None,
                    )
                }),
            )
        }
        Case::MulMatGroup {
            types,
            rows,
            k,
            n,
            norm,
        } => {
            use dispatch::mul_mat_group::{mul_mat_group_each, mul_mat_vec_group, GroupSegment};
            // The weight: the segments back to back, each quantized to its own type.
            let mut w = Vec::new();
            let mut want = Vec::new();
            let x = values((k * n) as usize, seed + 1);
            let nw = values(k as usize, seed + 2);
            let mut xn = x.clone();
            if norm {
                let mut t = vec![0f32; x.len()];
                ops::rms_norm(&x, k as usize, 1e-6, &mut t);
                ops::binary(false, &t, &nw, k as usize, &mut xn);
            }
            // The reference: one product per segment, each a contiguous [rows, n] block.
            for (s, (&ty, &r)) in types.iter().zip(&rows).enumerate() {
                let q = quant::quantize(ty, &values((r * k) as usize, seed + 10 + s as u64))?;
                let mut y = vec![0f32; (r * n) as usize];
                ops::mul_mat(
                    ty,
                    &[&q],
                    &[r as usize],
                    k as usize,
                    &xn,
                    n as usize,
                    &mut y,
                )?;
                want.extend(y);
                w.extend(q);
            }
            let segs: Vec<GroupSegment> = types
                .iter()
                .zip(&rows)
                .map(|(&ty, &r)| GroupSegment { ty, rows: r })
                .collect();
            // Odd token counts (all on the grouped mat-vec) add a per-row bias too.
            let bias = n % 2 == 1;
            let bvals = values(want.len() / n as usize, seed + 7);
            if bias {
                let (mut at, mut start) = (0, 0);
                for &r in &rows {
                    for _ in 0..n {
                        for i in 0..r as usize {
                            want[at] += bvals[start + i];
                            at += 1;
                        }
                    }
                    start += r as usize;
                }
            }
            let (wb, xb, nb) = (io.put(&w)?, io.f32s(&x)?, io.f32s(&nw)?);
            let bb = io.f32s(&bvals)?;
            let db = io.zeros(want.len())?;
            (
                want,
                db,
                Box::new(move |rec, io| {
                    let b = &io.bufs;
                    if n <= dispatch::mul_mat::MAT_VEC_MAX_N {
                        mul_mat_vec_group(
                            rec,
                            &segs,
                            b[wb].whole(),
                            b[xb].whole(),
                            norm.then(|| (b[nb].whole(), 1e-6)),
                            bias.then(|| b[bb].whole()),
                            1.0,
                            b[db].whole(),
                            k,
                            n,
                            None,
                        )
                    } else {
                        mul_mat_group_each(
                            rec,
                            &segs,
                            b[wb].whole(),
                            b[xb].whole(),
                            b[db].whole(),
                            k,
                            n,
                            None,
                            dispatch::mul_mat::TiledKernel::Auto,
                        )
                    }
                }),
            )
        }
        Case::GetRows { ty, ne0, n } => {
            let rows = 9u32;
            let table = quant::quantize(ty, &values((rows * ne0) as usize, seed))?;
            let ids: Vec<i32> = (0..n as i32).map(|i| (i * 5 + 3) % rows as i32).collect();
            let mut want = vec![0f32; (ne0 * n) as usize];
            ops::get_rows(ty, &table, ne0 as usize, &ids, &mut want)?;
            let (tb, ib, db) = (
                io.put(&table)?,
                io.put(bytemuck::cast_slice(&ids))?,
                io.zeros((ne0 * n) as usize)?,
            );
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::get_rows::get_rows(
                        r,
                        ty,
                        b[tb].whole(),
                        b[ib].whole(),
                        b[db].whole(),
                        ne0,
                        n,
                    )
                }),
            )
        }
        Case::RmsNorm { ne0, rows } => {
            let x = values((ne0 * rows) as usize, seed);
            let mut want = vec![0f32; x.len()];
            ops::rms_norm(&x, ne0 as usize, 1e-6, &mut want);
            let (xb, db) = (io.f32s(&x)?, io.zeros(x.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::norm::rms_norm(r, b[xb].whole(), b[db].whole(), ne0, rows, 1e-6)
                }),
            )
        }
        Case::Add { ne0, rows } => {
            let (a, bv) = (
                values((ne0 * rows) as usize, seed),
                values(ne0 as usize, seed + 1),
            );
            let mut want = vec![0f32; a.len()];
            ops::binary(true, &a, &bv, ne0 as usize, &mut want);
            let (ab, bb, db) = (io.f32s(&a)?, io.f32s(&bv)?, io.zeros(a.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::binary::add(
                        r,
                        b[ab].whole(),
                        b[bb].whole(),
                        b[db].whole(),
                        ne0,
                        rows,
                        1,
                    )
                }),
            )
        }
        Case::Swiglu { n } => {
            let (g, u) = (values(n as usize, seed), values(n as usize, seed + 1));
            let mut want = vec![0f32; g.len()];
            ops::swiglu(&g, &u, &mut want);
            let (gb, ub, db) = (io.f32s(&g)?, io.f32s(&u)?, io.zeros(g.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::glu::swiglu(r, b[gb].whole(), b[ub].whole(), b[db].whole(), n)
                }),
            )
        }
        Case::Scale { n } => {
            let a = values(n as usize, seed);
            let want: Vec<f32> = a.iter().map(|&x| x * 1.5 - 0.25).collect();
            let (ab, db) = (io.f32s(&a)?, io.zeros(a.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::scale::scale(
                        r,
                        b[ab].whole(),
                        b[db].whole(),
                        u64::from(n),
                        1.5,
                        -0.25,
                    )
                }),
            )
        }
        Case::Rope {
            head_dim,
            n_dims,
            n_head,
            n,
            neox,
        } => {
            let x = values((head_dim * n_head * n) as usize, seed);
            let pos: Vec<i32> = (0..n as i32).map(|i| i * 37 + 5).collect();
            let mode = if neox {
                RopeMode::Neox
            } else {
                RopeMode::Normal
            };
            let mut want = vec![0f32; x.len()];
            ops::rope(
                &x,
                head_dim as usize,
                n_head as usize,
                &pos,
                mode,
                n_dims as usize,
                1e4,
                1.0,
                &mut want,
            );
            let (xb, pb, db) = (
                io.f32s(&x)?,
                io.put(bytemuck::cast_slice(&pos))?,
                io.zeros(x.len())?,
            );
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::rope::rope(
                        r,
                        b[xb].whole(),
                        b[pb].whole(),
                        b[db].whole(),
                        head_dim,
                        n_head,
                        n,
                        neox,
                        n_dims,
                        1e4,
                        1.0,
                    )
                }),
            )
        }
        Case::Attention {
            d,
            n_head,
            n_head_kv,
            n,
            n_kv,
        } => {
            let q = values((d * n_head * n) as usize, seed);
            let kv = |s| f16_values((d * n_head_kv * n_kv) as usize, s);
            let (k, v) = (kv(seed + 1), kv(seed + 2));
            // The last n tokens of one sequence whose cells start at row 0.
            let pos: Vec<i32> = (0..n as i32)
                .map(|i| (n_kv as i32 - n as i32 + i).max(0))
                .collect();
            let span = ops::causal_spans(&pos);
            let scale = 1.0 / (d as f32).sqrt();
            let mut want = vec![0f32; q.len()];
            ops::attention(
                &q,
                d as usize,
                n_head as usize,
                &k,
                &v,
                n_head_kv as usize,
                n_kv as usize,
                &span,
                scale,
                &mut want,
            );
            let (qb, kb, vb) = (
                io.f32s(&q)?,
                io.put(bytemuck::cast_slice(&k))?,
                io.put(bytemuck::cast_slice(&v))?,
            );
            let (sb, db) = (io.put(bytemuck::cast_slice(&span))?, io.zeros(q.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::attention::attention(
                        r,
                        b[qb].whole(),
                        b[kb].whole(),
                        b[vb].whole(),
                        b[sb].whole(),
                        b[db].whole(),
                        d,
                        n_head,
                        n_head_kv,
                        n,
                        n_kv,
                        scale,
                    )
                }),
            )
        }
        Case::AttentionRope {
            d,
            n_head,
            n_head_kv,
            n_kv,
            neox,
            norm,
            lora,
        } => {
            use crate::graph::RopeMode;
            let (du, hk) = (d as usize, n_head_kv as usize);
            let q0 = values((d * n_head) as usize, seed);
            let k0_new = values((d * n_head_kv) as usize, seed + 3);
            let v0_new = values((d * n_head_kv) as usize, seed + 4);
            // LoRA (`lora` 1: q, v; 2: q, k, v in f16): per target B [r, rows] and a [r],
            // the reference adding s · B·a (f64 sums of the stored B values) first.
            let (rank, f16b) = match lora {
                1 => (16usize, false),
                2 => (8, true),
                _ => (0, false),
            };
            let adapted = [lora > 0, lora == 2, lora > 0];
            let scales = [0.5f32, 1.5, 0.75];
            let mut lb: Vec<Vec<u8>> = Vec::new();
            let mut la: Vec<Vec<f32>> = Vec::new();
            let mut fixed = [q0.clone(), k0_new.clone(), v0_new.clone()];
            for (i, base) in fixed.iter_mut().enumerate() {
                if !adapted[i] {
                    lb.push(vec![0u8; 4]);
                    la.push(vec![0f32; 1]);
                    continue;
                }
                let rows = base.len();
                let bv = values(rank * rows, seed + 10 + i as u64);
                let (bytes, bq): (Vec<u8>, Vec<f32>) = if f16b {
                    let h: Vec<f16> = bv.iter().map(|&x| f16::from_f32(x)).collect();
                    (
                        bytemuck::cast_slice(&h).to_vec(),
                        h.iter().map(|x| x.to_f32()).collect(),
                    )
                } else {
                    (bytemuck::cast_slice(&bv).to_vec(), bv)
                };
                let av = values(rank, seed + 20 + i as u64);
                for (r, x) in base.iter_mut().enumerate() {
                    let dot: f64 = (0..rank)
                        .map(|j| f64::from(bq[r * rank + j]) * f64::from(av[j]))
                        .sum();
                    *x += scales[i] * dot as f32;
                }
                lb.push(bytes);
                la.push(av);
            }
            let [q, k_new, v_new] = fixed;
            let (qw, kw) = (values(du, seed + 5), values(du, seed + 6));
            let kv = |s| f16_values((d * n_head_kv * n_kv) as usize, s);
            let (mut k, mut v) = (kv(seed + 1), kv(seed + 2));
            // One token at the last cell (position n_kv - 1 + 7: positions need not be cells).
            let cell = n_kv as i32 - 1;
            let pos = [cell + 7];
            let span = [0, cell];
            let mode = if neox {
                RopeMode::Neox
            } else {
                RopeMode::Normal
            };
            let n_dims = du - 16;
            let (base, fscale, eps) = (10000.0f32, 1.0f32, 1e-6f32);
            // The reference: the folded nodes' work, then the attention.
            let prep = |x: &[f32], heads: usize, w: &[f32]| {
                let mut x = x.to_vec();
                if norm {
                    let mut t = vec![0f32; x.len()];
                    ops::rms_norm(&x, du, eps, &mut t);
                    ops::binary(false, &t, w, du, &mut x);
                }
                let mut out = vec![0f32; x.len()];
                ops::rope(&x, du, heads, &pos, mode, n_dims, base, fscale, &mut out);
                out
            };
            let qr = prep(&q, n_head as usize, &qw);
            let kr = prep(&k_new, hk, &kw);
            let row = cell as usize * du * hk;
            let (k0, v0) = (k.clone(), v.clone());
            for i in 0..du * hk {
                k[row + i] = f16::from_f32(kr[i]);
                v[row + i] = f16::from_f32(v_new[i]);
            }
            let scale = 1.0 / (d as f32).sqrt();
            let mut want = vec![0f32; q.len()];
            ops::attention(
                &qr,
                du,
                n_head as usize,
                &k,
                &v,
                hk,
                n_kv as usize,
                &span,
                scale,
                &mut want,
            );
            // The device starts from the cache without the new row, and from the base
            // projections (the LoRA products are its to add).
            let (q, k_new, v_new) = if lora > 0 {
                (q0, k0_new, v0_new)
            } else {
                (q, k_new, v_new)
            };
            let lbb: Vec<usize> = lb.iter().map(|b| io.put(b)).collect::<Result<_>>()?;
            let lab: Vec<usize> = la.iter().map(|a| io.f32s(a)).collect::<Result<_>>()?;
            let (qb, kb, vb) = (
                io.f32s(&q)?,
                io.put(bytemuck::cast_slice(&k0))?,
                io.put(bytemuck::cast_slice(&v0))?,
            );
            let (sb, pb, cb) = (
                io.put(bytemuck::cast_slice(&span))?,
                io.put(bytemuck::cast_slice(&pos))?,
                io.put(bytemuck::cast_slice(&[cell]))?,
            );
            let (knb, vnb, qwb, kwb) = (
                io.f32s(&k_new)?,
                io.f32s(&v_new)?,
                io.f32s(&qw)?,
                io.f32s(&kw)?,
            );
            let db = io.zeros(q.len())?;
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    let fold = dispatch::attention::RopeFold {
                        pos: b[pb].whole(),
                        cells: b[cb].whole(),
                        k_new: b[knb].whole(),
                        v_new: b[vnb].whole(),
                        norm: norm.then(|| (b[qwb].whole(), b[kwb].whole(), eps)),
                        neox,
                        n_dims: n_dims as u32,
                        freq_base: base,
                        freq_scale: fscale,
                        lora: (lora > 0).then(|| dispatch::attention::LoraFold {
                            targets: std::array::from_fn(|i| {
                                adapted[i]
                                    .then(|| (b[lbb[i]].whole(), b[lab[i]].whole(), scales[i]))
                            }),
                            rank: rank as u32,
                            f16: f16b,
                        }),
                    };
                    dispatch::attention::attention_rope(
                        r,
                        b[qb].whole(),
                        b[kb].whole(),
                        b[vb].whole(),
                        b[sb].whole(),
                        b[db].whole(),
                        fold,
                        d,
                        n_head,
                        n_head_kv,
                        n_kv,
                        scale,
                    )
                }),
            )
        }
        Case::MoeRoute { .. }
        | Case::MoeRouterTopK { .. }
        | Case::MulMatId { .. }
        | Case::MoeSum { .. }
        | Case::MoeSumNorm { .. } => super::record_moe::record(ctx, &mut io, c, seed)?,
    };
    let n_out = want.len();
    let mut rec = ctx.recorder()?;
    rec.begin()?;
    record(&mut rec, &io)?;
    rec.submit_and_wait()?;
    let got = io.read(out, n_out)?;
    let us = if perf {
        const REPS: usize = 10;
        let mut rec = ctx.recorder()?;
        rec.begin()?;
        rec.timestamp("start")?;
        for _ in 0..REPS {
            record(&mut rec, &io)?;
            rec.barrier()?;
        }
        rec.timestamp("end")?;
        rec.submit_and_wait()?;
        let t = rec.timestamps();
        (t.len() == 2).then(|| (t[1].ns - t[0].ns) / 1e3 / REPS as f64)
    } else {
        None
    };
    Ok((got, want, us))
}

/// `n` pseudo-random values (as [`values`]) rounded to f16: a KV cache.
fn f16_values(n: usize, seed: u64) -> Vec<f16> {
    values(n, seed).iter().map(|&v| f16::from_f32(v)).collect()
}
