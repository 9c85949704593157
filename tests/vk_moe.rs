//! The expert-indexed decode kernel's epilogues on every Vulkan device, checked beyond
//! what test-ops compares (its f32 output against the CPU): the SwiGLU form's q8_1
//! epilogue (`MUL_MAT_ID_SWIGLU` on `mul_mat_vecq_id.comp`, `QOUT`), which the down
//! experts read instead of a quantize_q8_1 dispatch.
//!
//! - The q8_1 blocks it writes are those of its own f32 output, bit-exact: codes and `d`
//!   as a CPU q8_1 quantizer written from llama.cpp's definition gives them for the
//!   values the kernel wrote, the block sums up to summation order.
//! - The f32 output matches the CPU reference (`silu(gate)·up` of the expert matmuls on
//!   the same quantized bytes, x exact) within the integer-dot path's NMSE (5e-4), and a
//!   pair whose expert id is out of range gets zeros (and still counts in its blocks).
//! - The block counters are back at zero afterwards, so the next dispatch starts clean.
//!
//! And the MoE routing and expert-sum kernels beyond test-ops: `moe_router_topk`'s expert
//! ids bit for bit (ties included), `moe_sum_rms_norm_mul`'s output and q8_1 epilogue.

mod common;

use common::io::{check, run, xq, Input, Output};
use common::{for_each_device, values};
use vkgraph::backend::cpu::ops;
use vkgraph::backend::vulkan::dispatch;
use vkgraph::backend::vulkan::dispatch::moe::{IdEpilogue, IdQ8Out};
use vkgraph::backend::vulkan::dispatch::norm;
use vkgraph::quant::{self, GgmlType};

fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let (mut e, mut s) = (0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        e += (f64::from(g) - f64::from(w)).powi(2);
        s += f64::from(w).powi(2);
    }
    e / s.max(1e-30)
}

#[test]
fn swiglu_q8_epilogue_quantizes_its_own_output() {
    for_each_device("mul_mat_id swiglu q8", |gpu| {
        // Gate and up stacks of 4 experts, 64 rows each (2 q8_1 blocks per pair), k = 256;
        // 3 tokens x 2 slots; pair 5's id is out of range.
        let (k, m, n_expert, n_used, n) = (256usize, 64usize, 4usize, 2usize, 3usize);
        let pairs = n_used * n;
        for ty in [GgmlType::Q4_0, GgmlType::Q4K, GgmlType::Q6K] {
            let case = format!(
                "[{}] mul_mat_vecq_id(type={ty},m={m}+{m},swiglu,q8)",
                gpu.label
            );
            if !dispatch::moe::vecq_id_supports(gpu.ctx.caps(), ty, k as u32, n as u32) {
                panic!("{case}: no integer-dot expert mat-vec here: NOT TESTED");
            }
            let gate = quant::quantize(ty, &values(m * k * n_expert, 5)).unwrap();
            let up = quant::quantize(ty, &values(m * k * n_expert, 6)).unwrap();
            let x = values(k * n, 7);
            let mut ids: Vec<i32> = (0..pairs)
                .map(|p| ((p * 3 + 1) % n_expert) as i32)
                .collect();
            ids[5] = n_expert as i32;
            // CPU: the two products, then silu(gate)·up; zeros for the bad pair.
            let mut ok_ids = ids.clone();
            ok_ids[5] = 0;
            let (mut g, mut u) = (vec![0f32; m * pairs], vec![0f32; m * pairs]);
            ops::mul_mat_id(ty, &gate, k, m, &x, 1, &ok_ids, n_used, &mut g).unwrap();
            ops::mul_mat_id(ty, &up, k, m, &x, 1, &ok_ids, n_used, &mut u).unwrap();
            let mut want = vec![0f32; m * pairs];
            ops::swiglu(&g, &u, &mut want);
            want[5 * m..6 * m].fill(0.0);

            let w: Vec<u8> = [gate, up].concat();
            let wbuf = gpu.buffer_from("w", &w);
            let xbuf = gpu.buffer_from("x", bytemuck::cast_slice(&x));
            let ibuf = gpu.buffer_from("ids", bytemuck::cast_slice(&ids));
            let dbuf = gpu.buffer_from("dst", &vec![0xffu8; 4 * m * pairs]);
            // x's q8_1 copy, then the epilogue's slot: codes, (d, s), counters (zero).
            let (xcb, xsb) = dispatch::mul_mat_vecq::xq_bytes(k as u32, n as u32);
            let (ocb, osb) = dispatch::mul_mat_vecq::xq_bytes(m as u32, pairs as u32);
            let nb = m / 32 * pairs;
            let (o_codes, o_scales, o_cnt) = (0u64, 1024u64, 2048u64);
            assert!(ocb <= 1024 && osb <= 1024);
            let xq_buf = gpu.buffer_from("xq", &vec![0u8; 4096 + xsb as usize]);
            let mut slot = vec![0xffu8; 2048];
            slot.extend(vec![0u8; 4 * nb]);
            let sbuf = gpu.buffer_from("slot", &slot);
            let xq = dispatch::mul_mat_vecq::XQ {
                codes: xq_buf.range(0, xcb),
                scales: xq_buf.range(4096, xsb),
            };
            let mut rec = gpu.ctx.recorder().expect("recorder");
            rec.begin().expect("begin");
            dispatch::mul_mat_vecq::quantize_q8_1(&mut rec, xbuf.whole(), xq, k as u32, n as u32)
                .expect("quantize");
            rec.barrier().expect("barrier");
            dispatch::moe::mul_mat_id_with(
                &mut rec,
                ty,
                wbuf.whole(),
                xbuf.whole(),
                ibuf.whole(),
                false,
                dbuf.whole(),
                k as u32,
                2 * m as u32,
                n_expert as u32,
                1,
                n_used as u32,
                n as u32,
                &[m as u32, m as u32],
                IdEpilogue {
                    glu: true,
                    q8_out: Some(IdQ8Out {
                        scratch: sbuf.whole(),
                        codes: o_codes,
                        scales: o_scales,
                        cnt: o_cnt,
                    }),
                },
                None,
                None,
                Some((xq, None)),
            )
            .unwrap_or_else(|e| panic!("{case}: {e}"));
            rec.submit_and_wait().expect("submit");
            gpu.assert_clean(&case);

            let got = gpu.read_f32(&dbuf, 0, m * pairs);
            let e = nmse(&got, &want);
            assert!(e <= 5e-4, "{case}: NMSE vs CPU {e:e}");
            assert!(
                got[5 * m..6 * m].iter().all(|&v| v == 0.0),
                "{case}: bad pair not 0"
            );
            let words = gpu.read_f32(&sbuf, 0, 512 + nb);
            let codes: &[u8] = bytemuck::cast_slice(&words[..(ocb as usize / 4)]);
            let ds = &words[256..256 + 2 * nb];
            common::assert_q8_1_blocks(&case, &got, codes, ds);
            let cnt = &words[512..512 + nb];
            assert!(
                cnt.iter().all(|c| c.to_bits() == 0),
                "{case}: counters left {cnt:?}"
            );
            eprintln!("{case}: ok (NMSE {e:.1e}, {nb} blocks exact)");
        }
    });
}

/// `moe_router_topk` (MOE_ROUTER_TOPK: the router matmul and the top-k in one dispatch)
/// chooses exactly the CPU's experts in the CPU's order — ids compared bit for bit, since
/// the op suite checks them through the weights, which equal logits cannot tell apart —
/// and exactly what the separate `moe_topk` picks from the logits it wrote. Whole-number
/// operands make many logits tie exactly (on both sides); the tie rule (lower id first)
/// decides. The dispatch runs twice on one counter (the last workgroup resets it).
#[test]
fn moe_router_topk_ids_exact() {
    use vkgraph::backend::vulkan::dispatch::moe;
    use vkgraph::quant::GgmlType;
    for (k_dim, n_expert, k, n, whole) in [
        (64usize, 60usize, 4usize, 5usize, true),
        (256, 128, 8, 8, true),
        (2048, 128, 8, 3, false),
    ] {
        for_each_device("moe_router_topk_ids", |gpu| {
            let case = format!("moe_router_topk(k_dim={k_dim},experts={n_expert},k={k},n={n})");
            let (mut w, mut x) = (values(k_dim * n_expert, 7), values(k_dim * n, 8));
            if whole {
                w.iter_mut().for_each(|v| *v = (*v * 0.5).floor());
                x.iter_mut().for_each(|v| *v = (*v * 0.5).floor());
            }
            let mut logits = vec![0f32; n_expert * n];
            let wb: &[u8] = bytemuck::cast_slice(&w);
            ops::mul_mat(GgmlType::F32, &[wb], &[n_expert], k_dim, &x, n, &mut logits).unwrap();
            let mut want = vec![0i32; k * n];
            ops::moe_topk(&logits, n_expert, k, &mut want);
            let (win, xin) = (Input::f32(gpu, "w", &w, 0), Input::f32(gpu, "x", &x, 0));
            let scratch = moe::router_topk_scratch_bytes(n_expert as u32, n as u32) as usize / 4;
            let cnt = Input::f32(gpu, "scratch", &vec![0f32; scratch], 0);
            let (lg, ids, again, sep) = (
                Output::new(gpu, "logits", n_expert * n),
                Output::new(gpu, "ids", k * n),
                Output::new(gpu, "ids again", k * n),
                Output::new(gpu, "moe_topk ids", k * n),
            );
            let (kd, ne, ku, nu) = (k_dim as u32, n_expert as u32, k as u32, n as u32);
            run(gpu, &case, |rec| {
                moe::moe_router_topk(
                    rec,
                    win.range(4),
                    xin.range(4),
                    lg.range(),
                    ids.range(),
                    cnt.range(4),
                    kd,
                    ne,
                    ku,
                    nu,
                    None,
                )?;
                rec.barrier()?;
                moe::moe_router_topk(
                    rec,
                    win.range(4),
                    xin.range(4),
                    lg.range(),
                    again.range(),
                    cnt.range(4),
                    kd,
                    ne,
                    ku,
                    nu,
                    None,
                )?;
                rec.barrier()?;
                moe::moe_topk(rec, lg.range(), sep.range(), ne, ku, nu)
            });
            let bits = |v: Vec<f32>| v.iter().map(|f| f.to_bits() as i32).collect::<Vec<i32>>();
            let got = bits(ids.read(gpu, &case));
            assert_eq!(got, want, "{}: ids differ from the CPU's", gpu.case(&case));
            assert_eq!(
                bits(again.read(gpu, &case)),
                want,
                "{}: second dispatch",
                gpu.case(&case)
            );
            assert_eq!(
                bits(sep.read(gpu, &case)),
                want,
                "{}: moe_topk of the logits",
                gpu.case(&case)
            );
            eprintln!("{}: ok", gpu.case(&case));
        });
    }
}

/// `moe_sum_rms_norm_mul` (MOE_SUM_ADD_RMS_NORM_MUL: the next layer's norm over a
/// mixture-of-experts layer's output, fused) against the CPU's MOE_SUM_ADD, RMS_NORM and
/// MUL; with its extra outputs as the executor records it: the sum (the MOE_SUM_ADD
/// node's value, against the GPU's own moe_sum_add of the same operands) and the q8_1
/// blocks (against quantize_q8_1 of its f32 output), the f32 output bit-identical to the
/// plain variant's.
#[test]
fn moe_sum_rms_norm_mul() {
    use vkgraph::backend::vulkan::dispatch::moe;
    use vkgraph::backend::vulkan::dispatch::mul_mat_vecq::{quantize_q8_1, xq_bytes};
    // (2048, 1, 8): a 30B-A3B decode row, the wide variants on GPUs.
    for (ne0, rows, n_used) in [(96usize, 3usize, 2usize), (2048, 1, 8), (2048, 2, 8)] {
        for_each_device("moe_sum_rms_norm_mul", |gpu| {
            let case = format!("moe_sum_rms_norm_mul(ne0={ne0},rows={rows},used={n_used})");
            let n = ne0 * rows;
            let (y, wts, r, w) = (
                values(n * n_used, 3),
                values(n_used * rows, 4),
                values(n, 5),
                values(ne0, 6),
            );
            let yin = Input::f32(gpu, "y", &y, 4);
            let win = Input::f32(gpu, "wts", &wts, 1);
            let rin = Input::f32(gpu, "r", &r, 2);
            let nin = Input::f32(gpu, "w", &w, 0);
            let (plain, fused, sum, gpu_sum) = (
                Output::new(gpu, "plain", n),
                Output::new(gpu, "fused", n),
                Output::new(gpu, "sum", n),
                Output::new(gpu, "moe_sum_add", n),
            );
            let (cb, sb) = xq_bytes(ne0 as u32, rows as u32);
            let so = cb.div_ceil(512) * 512;
            let xq_buf = |name: &str| gpu.buffer_from(name, &vec![0xabu8; (so + sb) as usize]);
            let (ep, re) = (xq_buf("epilogue"), xq_buf("requantized"));
            let (ne0u, rowsu, usedu) = (ne0 as u32, rows as u32, n_used as u32);
            run(gpu, &case, |rec| {
                norm::moe_sum_rms_norm_mul(
                    rec,
                    rin.range(4),
                    yin.range(4),
                    win.range(4),
                    usedu,
                    nin.range(4),
                    plain.range(),
                    None,
                    None,
                    ne0u,
                    rowsu,
                    1,
                    1e-6,
                )?;
                norm::moe_sum_rms_norm_mul(
                    rec,
                    rin.range(4),
                    yin.range(4),
                    win.range(4),
                    usedu,
                    nin.range(4),
                    fused.range(),
                    Some(xq(&ep, cb, sb)),
                    Some(sum.range()),
                    ne0u,
                    rowsu,
                    1,
                    1e-6,
                )?;
                moe::moe_sum(
                    rec,
                    yin.range(4),
                    win.range(4),
                    Some(rin.range(4)),
                    gpu_sum.range(),
                    ne0u,
                    usedu,
                    rowsu,
                )
            });
            let mut want_sum = vec![0f32; n];
            ops::moe_sum(&y, ne0, n_used, &wts, &mut want_sum);
            want_sum.iter_mut().zip(&r).for_each(|(o, r)| *o += r);
            let mut normed = vec![0f32; n];
            ops::rms_norm(&want_sum, ne0, 1e-6, &mut normed);
            let mut want = vec![0f32; n];
            ops::binary(false, &normed, &w, ne0, &mut want);
            let (p, f) = (plain.read(gpu, &case), fused.read(gpu, &case));
            check(gpu, &case, &p, &want);
            assert!(
                p.iter().zip(&f).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{}: the q8/sum variant's f32 output differs from the plain one's",
                gpu.case(&case)
            );
            let got_sum = sum.read(gpu, &case);
            check(gpu, &format!("{case} sum"), &got_sum, &want_sum);
            check(
                gpu,
                &format!("{case} sum vs moe_sum_add"),
                &got_sum,
                &gpu_sum.read(gpu, &case),
            );
            let again = Input::f32(gpu, "again", &f, 0);
            run(gpu, &case, |rec| {
                quantize_q8_1(rec, again.range(4), xq(&re, cb, sb), ne0u, rowsu)
            });
            common::io::assert_q8_same(gpu, &case, &ep, &re, cb, sb, so as usize);
            eprintln!("{}: ok", gpu.case(&case));
        });
    }
}
