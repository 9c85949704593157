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

mod common;

use common::{for_each_device, values};
use vkgraph::backend::cpu::ops;
use vkgraph::backend::vulkan::dispatch;
use vkgraph::backend::vulkan::dispatch::moe::{IdEpilogue, IdQ8Out};
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
