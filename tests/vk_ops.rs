//! Vulkan kernels of the transformer-block ops (rms_norm, rope, swiglu, their q8
//! epilogues; attention is in vk_attention.rs) against the CPU reference
//! (`backend::cpu::ops`, the oracle), on every Vulkan device; helpers in tests/common/io.rs.
//!
//! Every case checks: NMSE ≤ 1e-6 (these ops are exact up to f32 rounding), no NaN/Inf in
//! the output, and guard values before and after the output range left bit-for-bit
//! untouched. Inputs and outputs sit at non-zero element offsets inside larger buffers,
//! so the helpers' offset handling is exercised too. Case names say the device and the
//! shape: `[Vulkan/llvmpipe] rope(mode=neox,head_dim=128,h=4,n=3)`. Shapes are kept small
//! enough to run quickly on lavapipe.

mod common;

use common::io::{check, run, xq, Input, Output, GUARD_N};
use common::{for_each_device, values, Gpu};
use half::f16;
use vkgraph::backend::cpu::ops;
use vkgraph::backend::vulkan::dispatch::{attention, glu, norm, rope};
use vkgraph::backend::vulkan::Recorder;
use vkgraph::graph::RopeMode;

#[test]
fn rms_norm() {
    for_each_device("rms_norm", |gpu| {
        let paths = [norm::Reduce::Shared, norm::Reduce::Subgroup];
        for (ne0, rows) in [(1, 3), (7, 5), (64, 4), (256, 3), (1000, 6)] {
            for reduce in paths {
                if reduce == norm::Reduce::Subgroup
                    && norm::Reduce::best(gpu.ctx.caps()) != norm::Reduce::Subgroup
                {
                    eprintln!("{}: no subgroup arithmetic, path not run", gpu.label);
                    continue;
                }
                let red = match reduce {
                    norm::Reduce::Subgroup => "subgroup",
                    norm::Reduce::Shared => "shared",
                };
                let eps = 1e-5f32;
                let n = ne0 * rows;
                let mut x = values(n, 11 + ne0 as u64);
                // One row of tiny values: eps matters there.
                x[..ne0].iter_mut().for_each(|v| *v *= 1e-3);
                let w = values(ne0 * 2, 23);
                let xin = Input::f32(gpu, "x", &x, 5);
                let win = Input::f32(gpu, "w", &w, 3);

                // plain
                let case = format!("rms_norm(ne0={ne0},rows={rows},{red})");
                let out = Output::new(gpu, "dst", n);
                run(gpu, &case, |rec| {
                    let (ne0, rows) = (ne0 as u32, rows as u32);
                    norm::rms_norm_with(
                        rec,
                        reduce,
                        xin.range(4),
                        None,
                        out.range(),
                        ne0,
                        rows,
                        eps,
                    )
                });
                let mut want = vec![0f32; n];
                ops::rms_norm(&x, ne0, eps, &mut want);
                check(gpu, &case, &out.read(gpu, &case), &want);

                // fused with the multiplication by a weight (1 row, and 2 rows broadcast)
                let w_rows = if rows % 2 == 0 { 2 } else { 1 };
                let case = format!("rms_norm_mul(ne0={ne0},rows={rows},w_rows={w_rows},{red})");
                let out = Output::new(gpu, "dst", n);
                run(gpu, &case, |rec| {
                    let wr = win.buf.range(3 * 4, (ne0 * w_rows * 4) as u64);
                    let w = Some((wr, w_rows as u32));
                    let (ne0, rows) = (ne0 as u32, rows as u32);
                    norm::rms_norm_with(rec, reduce, xin.range(4), w, out.range(), ne0, rows, eps)
                });
                let mut normed = vec![0f32; n];
                ops::rms_norm(&x, ne0, eps, &mut normed);
                let mut want = vec![0f32; n];
                ops::binary(false, &normed, &w[..ne0 * w_rows], ne0, &mut want);
                check(gpu, &case, &out.read(gpu, &case), &want);
            }
        }
        // The public entry points (best path) write the same as the explicit ones.
        let (ne0, rows) = (100usize, 2usize);
        let x = values(ne0 * rows, 5);
        let xin = Input::f32(gpu, "x", &x, 0);
        let out = Output::new(gpu, "dst", ne0 * rows);
        let case = format!("rms_norm(ne0={ne0},rows={rows},best)");
        run(gpu, &case, |rec| {
            norm::rms_norm(
                rec,
                xin.range(4),
                out.range(),
                ne0 as u32,
                rows as u32,
                1e-6,
            )
        });
        let mut want = vec![0f32; ne0 * rows];
        ops::rms_norm(&x, ne0, 1e-6, &mut want);
        check(gpu, &case, &out.read(gpu, &case), &want);
    });
}

#[test]
fn rope() {
    for_each_device("rope", |gpu| {
        // (head_dim, n_dims, n_head, positions)
        let shapes: [(usize, usize, usize, &[i32]); 4] = [
            (64, 64, 3, &[37, 38, 39, 40, 41]),
            (128, 128, 2, &[37, 40, 52, 0, 4097]),
            (128, 64, 2, &[5, 1, 37, 900]),
            (64, 32, 4, &[0]),
        ];
        for (head_dim, n_dims, n_head, pos) in shapes {
            for mode in [RopeMode::Normal, RopeMode::Neox] {
                let (freq_base, freq_scale) = (10000.0f32, 1.0f32);
                let m = if mode == RopeMode::Neox {
                    "neox"
                } else {
                    "normal"
                };
                let n = pos.len();
                let case = format!(
                    "rope(mode={m},head_dim={head_dim},n_dims={n_dims},h={n_head},n={n},pos0={})",
                    pos[0]
                );
                let total = head_dim * n_head * n;
                let x = values(total, 7 + head_dim as u64);
                let xin = Input::f32(gpu, "x", &x, 1);
                let pin = Input::i32(gpu, "pos", pos, 2);
                let out = Output::new(gpu, "dst", total);
                run(gpu, &case, |rec| {
                    rope::rope(
                        rec,
                        xin.range(4),
                        pin.range(4),
                        out.range(),
                        head_dim as u32,
                        n_head as u32,
                        n as u32,
                        mode == RopeMode::Neox,
                        n_dims as u32,
                        freq_base,
                        freq_scale,
                    )
                });
                let mut want = vec![0f32; total];
                ops::rope(
                    &x, head_dim, n_head, pos, mode, n_dims, freq_base, freq_scale, &mut want,
                );
                let got = out.read(gpu, &case);
                check(gpu, &case, &got, &want);
                // Dims past n_dims are copied exactly.
                for (r, (g, xr)) in got.chunks(head_dim).zip(x.chunks(head_dim)).enumerate() {
                    assert_eq!(&g[n_dims..], &xr[n_dims..], "{}: row {r}", gpu.case(&case));
                }
            }
        }
        // freq_scale != 1 and another base (llama3-style long-context settings).
        let (head_dim, n_head, pos) = (64usize, 2usize, [3i32, 250, 77]);
        let total = head_dim * n_head * pos.len();
        let x = values(total, 99);
        let xin = Input::f32(gpu, "x", &x, 0);
        let pin = Input::i32(gpu, "pos", &pos, 0);
        let out = Output::new(gpu, "dst", total);
        let case = "rope(mode=neox,head_dim=64,freq_base=1e6,freq_scale=0.25)";
        run(gpu, case, |rec| {
            let n = pos.len() as u32;
            rope::rope(
                rec,
                xin.range(4),
                pin.range(4),
                out.range(),
                64,
                2,
                n,
                true,
                64,
                1e6,
                0.25,
            )
        });
        let mut want = vec![0f32; total];
        ops::rope(
            &x,
            head_dim,
            n_head,
            &pos,
            RopeMode::Neox,
            64,
            1e6,
            0.25,
            &mut want,
        );
        check(gpu, case, &out.read(gpu, case), &want);
    });
}

/// The head-norm folds (qwen3's q_norm / k_norm before the rope): `rope_with` and
/// `rope_set_rows_with` with a `RowNorm` against RMS_NORM_MUL then ROPE (then f16 rows) of
/// the CPU reference; full and partial rotation, both modes, several rows per workgroup
/// and rows that end a workgroup early (head_dim 96: 2 rows of 48 in 256 invocations).
#[test]
fn rope_with_head_norm() {
    for_each_device("rope_with_head_norm", |gpu| {
        let shapes: [(usize, usize, usize, &[i32]); 4] = [
            (128, 128, 3, &[37, 0, 5]),
            (64, 64, 5, &[2]),
            (128, 64, 2, &[7, 900]),
            (96, 96, 3, &[1, 2, 3, 4]),
        ];
        for (head_dim, n_dims, n_head, pos) in shapes {
            for mode in [RopeMode::Normal, RopeMode::Neox] {
                let n = pos.len();
                let total = head_dim * n_head * n;
                let (eps, neox) = (1e-6f32, mode == RopeMode::Neox);
                let x = values(total, 31 + head_dim as u64);
                let w = values(head_dim, 5);
                let (xin, win) = (Input::f32(gpu, "x", &x, 1), Input::f32(gpu, "w", &w, 3));
                let pin = Input::i32(gpu, "pos", pos, 2);
                let mut normed = vec![0f32; total];
                let mut t = vec![0f32; total];
                ops::rms_norm(&x, head_dim, eps, &mut t);
                ops::binary(false, &t, &w, head_dim, &mut normed);
                let mut want = vec![0f32; total];
                ops::rope(
                    &normed, head_dim, n_head, pos, mode, n_dims, 10000.0, 1.0, &mut want,
                );
                let case = format!(
                    "rope_rms(neox={neox},head_dim={head_dim},n_dims={n_dims},h={n_head},n={n})"
                );
                let out = Output::new(gpu, "dst", total);
                let (hd, nh, nn, nd) = (head_dim as u32, n_head as u32, n as u32, n_dims as u32);
                run(gpu, &case, |rec| {
                    let norm = Some(rope::RowNorm {
                        w: win.range(4),
                        eps,
                    });
                    rope::rope_with(
                        rec,
                        xin.range(4),
                        pin.range(4),
                        out.range(),
                        norm,
                        hd,
                        nh,
                        nn,
                        neox,
                        nd,
                        10000.0,
                        1.0,
                    )
                });
                check(gpu, &case, &out.read(gpu, &case), &want);
                // The same into f16 rows of a table (the KV-cache write), rows at pos.
                let rows = 1 + *pos.iter().max().unwrap() as usize;
                let table = Input::f16(gpu, "table", &vec![f16::ZERO; rows * head_dim * n_head], 8);
                let case = format!("{case}+set_rows");
                run(gpu, &case, |rec| {
                    let norm = Some(rope::RowNorm {
                        w: win.range(4),
                        eps,
                    });
                    rope::rope_set_rows_with(
                        rec,
                        xin.range(4),
                        pin.range(4),
                        pin.range(4),
                        table.range(2),
                        norm,
                        hd,
                        nh,
                        nn,
                        neox,
                        nd,
                        10000.0,
                        1.0,
                        rows as u32,
                    )
                });
                let got = table.read_f16(gpu);
                let row = head_dim * n_head;
                for (tok, &p) in pos.iter().enumerate() {
                    let g: Vec<f32> = got[p as usize * row..][..row]
                        .iter()
                        .map(|h| h.to_f32())
                        .collect();
                    let wv = &want[tok * row..][..row];
                    let e = common::io::nmse(&g, wv);
                    assert!(e < 1e-5, "{}: token {tok} row NMSE {e:e}", gpu.case(&case));
                }
                eprintln!("{}: ok", gpu.case(&case));
            }
        }
    });
}

#[test]
fn swiglu() {
    for_each_device("swiglu", |gpu| {
        for n in [1usize, 7, 255, 257, 1000, 4099] {
            let case = format!("swiglu(n={n})");
            let mut g = values(n, 3 + n as u64);
            // Large |g|: exp(-g) overflows / underflows; silu must stay finite. (Not for
            // n = 1: a lone denormal result would make the NMSE meaningless.)
            if n > 1 {
                g[0] = -100.0;
                g[1] = 95.0;
            }
            let u = values(n, 4 + n as u64);
            // g and u in one buffer, as the fused gate/up matmul writes them.
            let gu: Vec<f32> = g.iter().chain(&u).copied().collect();
            let gin = Input::f32(gpu, "gate_up", &gu, 3);
            let out = Output::new(gpu, "dst", n);
            run(gpu, &case, |rec| {
                let gr = gin.buf.range(3 * 4, n as u64 * 4);
                let ur = gin.buf.range((3 + n) as u64 * 4, n as u64 * 4);
                glu::swiglu(rec, gr, ur, out.range(), n as u32)
            });
            let mut want = vec![0f32; n];
            ops::swiglu(&g, &u, &mut want);
            check(gpu, &case, &out.read(gpu, &case), &want);
        }
    });
}

/// The q8 epilogues of rms_norm_mul, add_rms_norm_mul and swiglu: their f32 output is
/// bit-identical to the plain kernel's, and their q8_1 blocks to quantize_q8_1's of it;
/// add_rms_norm_mul's residual-sum output is the exact a + b.
#[test]
fn q8_epilogues_match_quantize() {
    use vkgraph::backend::vulkan::dispatch::mul_mat_vecq::{quantize_q8_1, xq_bytes};
    // (4096, 1): a decode row, which the wide (1024-invocation) norm variants take on GPUs.
    for (ne0, rows) in [(96usize, 3usize), (4096, 1)] {
        for_each_device("q8_epilogues", |gpu| {
            let n = ne0 * rows;
            let a = Input::f32(gpu, "a", &values(n, 3), 4);
            let b = Input::f32(gpu, "b", &values(n, 4), 4);
            let w = Input::f32(gpu, "w", &values(ne0, 5), 4);
            let (cb, sb) = xq_bytes(ne0 as u32, rows as u32);
            // The scales start at the first multiple of 512 bytes after the codes.
            let so = cb.div_ceil(512) * 512;
            let xq_buf = |name: &str| gpu.buffer_from(name, &vec![0xabu8; (so + sb) as usize]);
            for kernel in ["rms_norm_mul", "add_rms_norm_mul", "swiglu"] {
                let case = format!("{kernel}_q8(ne0={ne0},rows={rows})");
                let plain = Output::new(gpu, "plain", n);
                let fused = Output::new(gpu, "fused", n);
                let (ep, re) = (xq_buf("epilogue"), xq_buf("requantized"));
                // add_rms_norm_mul's SUM output: the residual a + b, written by the same dispatch.
                let sum = Output::new(gpu, "sum", n);
                let (ne0u, rowsu) = (ne0 as u32, rows as u32);
                run(gpu, &case, |rec| {
                    match kernel {
                        "rms_norm_mul" => {
                            norm::rms_norm_mul(
                                rec,
                                a.range(4),
                                w.range(4),
                                plain.range(),
                                ne0u,
                                rowsu,
                                1,
                                1e-6,
                            )?;
                            norm::rms_norm_mul_q8(
                                rec,
                                a.range(4),
                                w.range(4),
                                fused.range(),
                                xq(&ep, cb, sb),
                                ne0u,
                                rowsu,
                                1,
                                1e-6,
                            )?;
                        }
                        "add_rms_norm_mul" => {
                            norm::add_rms_norm_mul(
                                rec,
                                a.range(4),
                                b.range(4),
                                w.range(4),
                                plain.range(),
                                ne0u,
                                rowsu,
                                1,
                                1e-6,
                            )?;
                            norm::add_rms_norm_mul_with(
                                rec,
                                a.range(4),
                                b.range(4),
                                w.range(4),
                                fused.range(),
                                Some(xq(&ep, cb, sb)),
                                Some(sum.range()),
                                ne0u,
                                rowsu,
                                1,
                                1e-6,
                            )?;
                        }
                        _ => {
                            glu::swiglu(rec, a.range(4), b.range(4), plain.range(), n as u32)?;
                            glu::swiglu_with(
                                rec,
                                a.range(4),
                                b.range(4),
                                fused.range(),
                                Some(xq(&ep, cb, sb)),
                                n as u32,
                            )?;
                        }
                    }
                    Ok(())
                });
                let (p, f) = (plain.read(gpu, &case), fused.read(gpu, &case));
                if kernel == "add_rms_norm_mul" {
                    let (av, bv) = (values(n, 3), values(n, 4));
                    let got = sum.read(gpu, &case);
                    for i in 0..n {
                        assert_eq!(
                            got[i].to_bits(),
                            (av[i] + bv[i]).to_bits(),
                            "{}: sum[{i}]",
                            gpu.case(&case)
                        );
                    }
                }
                // quantize_q8_1 reads 16-byte aligned x: a copy of the fused output at offset 0.
                let again = Input::f32(gpu, "again", &f, 0);
                run(gpu, &case, |rec| {
                    quantize_q8_1(rec, again.range(4), xq(&re, cb, sb), ne0u, rowsu)
                });
                assert!(
                    p.iter().zip(&f).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{}: q8 variant's f32 output differs from the plain kernel's",
                    gpu.case(&case)
                );
                common::io::assert_q8_same(gpu, &case, &ep, &re, cb, sb, so as usize);
                eprintln!("{}: ok", gpu.case(&case));
            }
        });
    }
}

/// Perf mode (ggml `test-backend-ops perf` style): not a timed test — it asserts only that
/// outputs are finite and prints microseconds per dispatch and effective GB/s from GPU
/// timestamps. Run with `cargo test --release --test vk_ops -- --ignored perf --nocapture`.
#[test]
#[ignore]
fn perf() {
    const REPS: usize = 20;
    // Without validation (it would dominate the timings); the harness insists on it.
    let all = vkgraph::backend::vulkan::enumerate_devices().expect("no Vulkan");
    for caps in all.into_iter().filter(|c| c.usable().is_ok()) {
        let opts = vkgraph::backend::vulkan::ContextOptions {
            device_index: Some(caps.index),
            ..Default::default()
        };
        let ctx = vkgraph::backend::vulkan::VulkanContext::new(&opts).expect("open device");
        let gpu = Gpu {
            ctx,
            label: format!("Vulkan/{}", caps.short_name()),
        };
        let time = |name: &str, bytes: f64, out: &Output, f: &dyn Fn(&mut Recorder)| {
            let mut rec = gpu.ctx.recorder().expect("recorder");
            // Warm-up: pipeline creation, caches, and GPU clocks: while the host builds the
            // next case's inputs the GPU idles and drops its clocks (an H200 timed the same
            // attention 4x slower late in a run than early), so the case first runs for
            // >= 50 ms of wall time before it is timed.
            let t0 = std::time::Instant::now();
            while t0.elapsed() < std::time::Duration::from_millis(50) {
                rec.begin().expect("begin");
                for _ in 0..REPS {
                    f(&mut rec);
                    rec.barrier().expect("barrier");
                }
                rec.submit_and_wait().expect("submit");
            }
            rec.begin().expect("begin");
            f(&mut rec);
            rec.barrier().expect("barrier");
            rec.timestamp("start").expect("timestamp");
            for _ in 0..REPS {
                f(&mut rec);
                rec.barrier().expect("barrier");
            }
            rec.timestamp("end").expect("timestamp");
            rec.submit_and_wait().expect("submit");
            let got = gpu.read_f32(&out.buf, GUARD_N, out.len.min(4096));
            assert!(
                got.iter().all(|v| v.is_finite()),
                "{}: non-finite",
                gpu.case(name)
            );
            match rec.timestamps() {
                [a, b] => {
                    let us = (b.ns - a.ns) / 1e3 / REPS as f64;
                    let gbs = bytes / (us * 1e3);
                    eprintln!("{}: {us:9.1} us/run {gbs:8.1} GB/s", gpu.case(name));
                }
                _ => eprintln!("{}: no timestamps on this device", gpu.case(name)),
            }
        };

        // attention, Llama-3-8B-like heads (d = 128, 32 query heads, 8 kv heads) and
        // Qwen3-0.6B-like ones (16 / 8): the default path, then at 4,096 rows every split
        // shape (rows per split, query heads per workgroup, V preloaded or not).
        let d = 128usize;
        for (nh, nkv, n, n_kv) in [
            (32usize, 8usize, 1usize, 512usize),
            (32, 8, 1, 4096),
            (16, 8, 1, 4096),
            (32, 8, 1, 32768),
            (32, 8, 512, 512),
        ] {
            let q = Input::f32(&gpu, "q", &values(d * nh * n, 1), 0);
            let kv: Vec<f16> = values(d * nkv * n_kv, 2)
                .iter()
                .map(|&v| f16::from_f32(v * 0.25))
                .collect();
            let k = Input::f16(&gpu, "k", &kv, 0);
            let v = Input::f16(&gpu, "v", &kv, 0);
            let pos: Vec<i32> = (0..n as i32).map(|i| (n_kv - n) as i32 + i).collect();
            let spans: Vec<i32> = pos.iter().flat_map(|&p| [0, p]).collect();
            let p = Input::i32(&gpu, "span", &spans, 0);
            let out = Output::new(&gpu, "dst", d * nh * n);
            // K/V bytes read once per query head group (what a perfect kernel streams).
            let bytes = (2 * d * nkv * n_kv * 2 + 2 * d * nh * n * 4) as f64;
            let name = format!("attention(d={d},h={nh}/{nkv},n={n},n_kv={n_kv})");
            let scale = 1.0 / (d as f32).sqrt();
            time(&name, bytes, &out, &|rec: &mut Recorder| {
                attention::attention(
                    rec,
                    q.range(4),
                    k.range(2),
                    v.range(2),
                    p.range(4),
                    out.range(),
                    d as u32,
                    nh as u32,
                    nkv as u32,
                    n as u32,
                    n_kv as u32,
                    scale,
                )
                .expect("attention")
            });
            let Some(default) = attention::split_shape(
                gpu.ctx.caps(),
                d as u32,
                nh as u32,
                nkv as u32,
                n as u32,
                n_kv as u32,
                false,
                attention::MIN_SPLIT_ROWS,
                attention::ROWS_PER_SPLIT,
            ) else {
                continue;
            };
            let mut shapes = vec![default];
            if n_kv == 4096 {
                for rows in [64u32, 128, 256] {
                    // (4 heads x 4 sub-blocks exceed 48 KiB of shared memory.)
                    let fits = |b: u32| (nh / nkv) as u32 % b == 0 && b * rows / 64 <= 8;
                    for qb in [1u32, 2, 4].into_iter().filter(|&b| fits(b)) {
                        for preload_v in [false, true] {
                            shapes.push(attention::SplitShape {
                                nz: (n_kv as u32 / rows).min(64),
                                sub_blocks: rows / 64,
                                qb,
                                preload_v,
                            });
                        }
                    }
                }
            }
            for shape in shapes {
                let sbytes = shape.scratch_bytes(d as u32, nh as u32, n as u32) as usize;
                let scratch = gpu.buffer_from("scratch", &vec![0u8; sbytes]);
                let name = format!("{name} split {shape:?}");
                time(&name, bytes, &out, &|rec: &mut Recorder| {
                    attention::attention_split(
                        rec,
                        q.range(4),
                        k.range(2),
                        v.range(2),
                        p.range(4),
                        out.range(),
                        scratch.whole(),
                        shape,
                        d as u32,
                        nh as u32,
                        nkv as u32,
                        n as u32,
                        n_kv as u32,
                        scale,
                    )
                    .expect("attention_split")
                });
            }
        }

        // TOP_K of a qwen3 vocabulary row (what a sampled decode step adds), k = 40 and 1.
        let v = 151_936usize;
        let logits = Input::f32(&gpu, "logits", &values(v, 8), 0);
        // One workgroup per row, then chunked (what the executor records).
        use vkgraph::backend::vulkan::dispatch::top_k;
        for k in [40u32, 1] {
            let out = Output::new(&gpu, "dst", 2 + 2 * k as usize);
            let sbytes = top_k::scratch_bytes(v as u32, k, 1) as usize;
            let scratch = gpu.buffer_from("scratch", &vec![0u8; sbytes.max(4)]);
            for chunked in [false, true] {
                let nch = if chunked {
                    top_k::chunks(v as u32, k)
                } else {
                    1
                };
                time(
                    &format!("top_k(v={v},k={k},n=1) chunks={nch}"),
                    (v * 4) as f64,
                    &out,
                    &|rec: &mut Recorder| {
                        let sc = chunked.then(|| scratch.whole());
                        top_k::top_k_chunked(rec, logits.range(4), out.range(), sc, v as u32, k, 1)
                            .expect("top_k")
                    },
                );
            }
        }

        let (ne0, rows) = (4096usize, 512usize);
        let x = Input::f32(&gpu, "x", &values(ne0 * rows, 3), 0);
        let w = Input::f32(&gpu, "w", &values(ne0, 4), 0);
        let out = Output::new(&gpu, "dst", ne0 * rows);
        time(
            &format!("rms_norm_mul(ne0={ne0},rows={rows})"),
            (3 * ne0 * rows * 4) as f64,
            &out,
            &|rec: &mut Recorder| {
                let (a, b) = (ne0 as u32, rows as u32);
                norm::rms_norm_mul(rec, x.range(4), w.range(4), out.range(), a, b, 1, 1e-6)
                    .expect("rms_norm")
            },
        );

        let (hd, nh, n) = (128usize, 32usize, 512usize);
        let x = Input::f32(&gpu, "x", &values(hd * nh * n, 5), 0);
        let pos: Vec<i32> = (0..n as i32).collect();
        let p = Input::i32(&gpu, "pos", &pos, 0);
        let out = Output::new(&gpu, "dst", hd * nh * n);
        time(
            &format!("rope(mode=neox,head_dim={hd},h={nh},n={n})"),
            (2 * hd * nh * n * 4) as f64,
            &out,
            &|rec: &mut Recorder| {
                let (a, b, c) = (hd as u32, nh as u32, n as u32);
                rope::rope(
                    rec,
                    x.range(4),
                    p.range(4),
                    out.range(),
                    a,
                    b,
                    c,
                    true,
                    a,
                    1e4,
                    1.0,
                )
                .expect("rope")
            },
        );

        let ne = 12288 * 512;
        let g = Input::f32(&gpu, "g", &values(ne, 6), 0);
        let u = Input::f32(&gpu, "u", &values(ne, 7), 0);
        let out = Output::new(&gpu, "dst", ne);
        time(
            &format!("swiglu(n={ne})"),
            (3 * ne * 4) as f64,
            &out,
            &|rec: &mut Recorder| {
                glu::swiglu(rec, g.range(4), u.range(4), out.range(), ne as u32).expect("swiglu")
            },
        );
    }
}

/// `add_rms_norm_mul` (ADD_RMS_NORM_MUL: a norm of a residual sum, fused) against
/// ADD, RMS_NORM and MUL of the CPU reference.
#[test]
fn add_rms_norm_mul() {
    for_each_device("add_rms_norm_mul", |gpu| {
        // (4096, 1) and (2048, 2): decode rows, the wide variants on GPUs.
        for (ne0, nrows, w_rows) in [
            (7usize, 1usize, 1usize),
            (256, 3, 1),
            (1000, 4, 2),
            (4096, 1, 1),
            (2048, 2, 1),
        ] {
            let case = format!("add_rms_norm_mul(ne0={ne0},rows={nrows},w_rows={w_rows})");
            let n = ne0 * nrows;
            let (a, b, w) = (values(n, 3), values(n, 4), values(ne0 * w_rows, 5));
            let ain = Input::f32(gpu, "a", &a, 1);
            let bin = Input::f32(gpu, "b", &b, 3);
            let win = Input::f32(gpu, "w", &w, 0);
            let out = Output::new(gpu, "dst", n);
            let eps = 1e-6;
            run(gpu, &case, |rec| {
                norm::add_rms_norm_mul(
                    rec,
                    ain.range(4),
                    bin.range(4),
                    win.range(4),
                    out.range(),
                    ne0 as u32,
                    nrows as u32,
                    w_rows as u32,
                    eps,
                )
            });
            let mut sum = vec![0f32; n];
            ops::binary(true, &a, &b, ne0, &mut sum);
            let mut normed = vec![0f32; n];
            ops::rms_norm(&sum, ne0, eps, &mut normed);
            let mut want = vec![0f32; n];
            ops::binary(false, &normed, &w, ne0, &mut want);
            check(gpu, &case, &out.read(gpu, &case), &want);
        }
    });
}

/// `rope_set_rows` (ROPE_SET_ROWS: the rope of K at the token positions written as f16
/// into the KV-cache rows of the tokens' cells, which differ from the positions here, as in
/// a later sequence's slot) against the CPU rope + f16 conversion; rows not addressed
/// keep their sentinel.
#[test]
fn rope_set_rows() {
    for_each_device("rope_set_rows", |gpu| {
        for (mode, head_dim, n_head, pos) in [
            (RopeMode::Normal, 64usize, 2usize, vec![0i32, 1, 2]),
            (RopeMode::Neox, 128, 3, vec![9, 4]),
        ] {
            let neox = mode == RopeMode::Neox;
            let n_rows = 12usize;
            let row = head_dim * n_head;
            let case =
                format!("rope_set_rows(neox={neox},head_dim={head_dim},h={n_head},pos={pos:?})");
            let x = values(row * pos.len(), 11);
            let xin = Input::f32(gpu, "x", &x, 2);
            let pin = Input::i32(gpu, "pos", &pos, 1);
            // Cells 2 rows past the positions (a slot starting at row 2).
            let cells: Vec<i32> = pos.iter().map(|&p| p + 2).collect();
            let rin = Input::i32(gpu, "cells", &cells, 3);
            let sentinel = f16::from_f32(-7.5);
            let table = Input::f16(gpu, "cache", &vec![sentinel; row * n_rows], 4);
            run(gpu, &case, |rec| {
                rope::rope_set_rows(
                    rec,
                    xin.range(4),
                    pin.range(4),
                    rin.range(4),
                    table.range(2),
                    head_dim as u32,
                    n_head as u32,
                    pos.len() as u32,
                    neox,
                    head_dim as u32,
                    10000.0,
                    1.0,
                    n_rows as u32,
                )
            });
            let mut roped = vec![0f32; x.len()];
            ops::rope(
                &x, head_dim, n_head, &pos, mode, head_dim, 10000.0, 1.0, &mut roped,
            );
            let cache = table.read_f16(gpu);
            let (mut got, mut want) = (Vec::new(), Vec::new());
            for (r, chunk) in cache.chunks(row).enumerate() {
                match cells.iter().position(|&c| c as usize == r) {
                    Some(t) => {
                        got.extend(chunk.iter().map(|h| h.to_f32()));
                        want.extend_from_slice(&roped[t * row..][..row]);
                    }
                    None => assert!(
                        chunk.iter().all(|&h| h == sentinel),
                        "{}: row {r} written",
                        gpu.case(&case)
                    ),
                }
            }
            check(gpu, &case, &got, &want);
        }
    });
}

/// `set_rows_f16` (SET_ROWS: the V-cache write) puts f16 rows at the given indices and
/// leaves the other rows alone.
#[test]
fn set_rows() {
    for_each_device("set_rows", |gpu| {
        let (ne0, n_rows) = (96usize, 10usize);
        let idx = [7i32, 0, 3];
        let case = format!("set_rows_f16(ne0={ne0},rows={n_rows},idx={idx:?})");
        let x = values(ne0 * idx.len(), 21);
        let xin = Input::f32(gpu, "x", &x, 1);
        let iin = Input::i32(gpu, "idx", &idx, 2);
        let sentinel = f16::from_f32(3.25);
        let table = Input::f16(gpu, "table", &vec![sentinel; ne0 * n_rows], 2);
        run(gpu, &case, |rec| {
            vkgraph::backend::vulkan::dispatch::set_rows::set_rows_f16(
                rec,
                xin.range(4),
                iin.range(4),
                table.range(2),
                ne0 as u32,
                idx.len() as u32,
                n_rows as u32,
            )
        });
        let rows = table.read_f16(gpu);
        let (mut got, mut want) = (Vec::new(), Vec::new());
        for (r, chunk) in rows.chunks(ne0).enumerate() {
            match idx.iter().position(|&i| i as usize == r) {
                Some(t) => {
                    got.extend(chunk.iter().map(|h| h.to_f32()));
                    want.extend_from_slice(&x[t * ne0..][..ne0]);
                }
                None => assert!(
                    chunk.iter().all(|&h| h == sentinel),
                    "{}: row {r} written",
                    gpu.case(&case)
                ),
            }
        }
        check(gpu, &case, &got, &want);
    });
}
