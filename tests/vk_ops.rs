//! Vulkan kernels of the transformer-block ops (rms_norm, rope, swiglu, attention)
//! against the CPU reference (`backend::cpu::ops`, the oracle), on every Vulkan device.
//!
//! Every case checks: NMSE ≤ 1e-6 (these ops are exact up to f32 rounding), no NaN/Inf in
//! the output, and guard values before and after the output range left bit-for-bit
//! untouched. Inputs and outputs sit at non-zero element offsets inside larger buffers,
//! so the helpers' offset handling is exercised too. Case names say the device and the
//! shape: `[Vulkan/llvmpipe] attention(d=128,h=4/2,n=1,n_kv=300)`. Shapes are kept small
//! enough to run quickly on lavapipe.

mod common;

use common::{for_each_device, values, Gpu};
use half::f16;
use vkgraph::backend::cpu::ops;
use vkgraph::backend::vulkan::dispatch::{attention, glu, norm, rope};
use vkgraph::backend::vulkan::{Buffer, BufferRange, Recorder};
use vkgraph::graph::RopeMode;

/// Tolerance for exact (non-quantized) ops, as docs/testing.md and DESIGN.md state.
const NMSE_EXACT: f64 = 1e-6;
/// Guard pattern around outputs: a signalling-NaN bit pattern no kernel computes.
const GUARD: u32 = 0x7fa5_5a5a;
/// Guard elements before and after each output.
const GUARD_N: usize = 19;

/// Normalized mean squared error `Σ(a−b)² / Σb²`.
fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += (g as f64 - w as f64).powi(2);
        den += (w as f64).powi(2);
    }
    if den == 0.0 {
        num
    } else {
        num / den
    }
}

/// An f32 input at element offset `pre` of a larger buffer.
struct Input {
    buf: Buffer,
    pre: usize,
    len: usize,
}

impl Input {
    fn f32(gpu: &Gpu, name: &str, data: &[f32], pre: usize) -> Input {
        Self::bytes(gpu, name, bytemuck::cast_slice(data), 4, pre)
    }

    fn i32(gpu: &Gpu, name: &str, data: &[i32], pre: usize) -> Input {
        Self::bytes(gpu, name, bytemuck::cast_slice(data), 4, pre)
    }

    fn f16(gpu: &Gpu, name: &str, data: &[f16], pre: usize) -> Input {
        let bytes: Vec<u8> = data.iter().flat_map(|h| h.to_le_bytes()).collect();
        Self::bytes(gpu, name, &bytes, 2, pre)
    }

    /// `pre` elements of `elem` bytes of filler, the data, then 64 bytes of filler.
    fn bytes(gpu: &Gpu, name: &str, data: &[u8], elem: usize, pre: usize) -> Input {
        let mut all = vec![0xEEu8; pre * elem];
        all.extend_from_slice(data);
        all.extend_from_slice(&[0xEE; 64]);
        Input {
            buf: gpu.buffer_from(name, &all),
            pre,
            len: data.len() / elem,
        }
    }

    /// Reads an f16 input back (kernels that write into an input table).
    fn read_f16(&self, gpu: &Gpu) -> Vec<f16> {
        let bytes_total = self.pre * 2 + self.len * 2 + 64;
        let all = gpu.read_f32(&self.buf, 0, bytes_total / 4);
        let bytes: &[u8] = bytemuck::cast_slice(&all);
        bytes[self.pre * 2..][..self.len * 2]
            .chunks(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    fn range(&self, elem: u64) -> BufferRange<'_> {
        self.buf
            .range(self.pre as u64 * elem, self.len as u64 * elem)
    }
}

/// An f32 output of `len` elements between two runs of [`GUARD`] values.
struct Output {
    buf: Buffer,
    len: usize,
}

impl Output {
    fn new(gpu: &Gpu, name: &str, len: usize) -> Output {
        let fill = vec![f32::from_bits(GUARD); len + 2 * GUARD_N];
        Output {
            buf: gpu.buffer_from(name, bytemuck::cast_slice(&fill)),
            len,
        }
    }

    fn range(&self) -> BufferRange<'_> {
        self.buf.range(GUARD_N as u64 * 4, self.len as u64 * 4)
    }

    /// Reads the output back, panicking (with the case name) if a guard was overwritten.
    fn read(&self, gpu: &Gpu, case: &str) -> Vec<f32> {
        let all = gpu.read_f32(&self.buf, 0, self.len + 2 * GUARD_N);
        let (before, rest) = all.split_at(GUARD_N);
        let (out, after) = rest.split_at(self.len);
        for (side, g) in [("before", before), ("after", after)] {
            if let Some(i) = g.iter().position(|v| v.to_bits() != GUARD) {
                panic!(
                    "{}: guard {side} the output overwritten at guard element {i} ({})",
                    gpu.case(case),
                    g[i]
                );
            }
        }
        out.to_vec()
    }
}

/// Records `f` into a fresh recorder, submits and waits.
fn run(gpu: &Gpu, case: &str, f: impl FnOnce(&mut Recorder) -> vkgraph::Result<()>) {
    let mut rec = gpu
        .ctx
        .recorder()
        .unwrap_or_else(|e| panic!("{}: recorder: {e}", gpu.case(case)));
    rec.begin().expect("begin");
    f(&mut rec).unwrap_or_else(|e| panic!("{}: dispatch: {e}", gpu.case(case)));
    rec.submit_and_wait()
        .unwrap_or_else(|e| panic!("{}: submit: {e}", gpu.case(case)));
}

/// NaN/Inf and NMSE checks of `got` against the reference `want`.
fn check(gpu: &Gpu, case: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    if let Some(i) = got.iter().position(|v| !v.is_finite()) {
        panic!("{}: non-finite output {} at {i}", gpu.case(case), got[i]);
    }
    let e = nmse(got, want);
    if e.is_nan() || e > NMSE_EXACT {
        let (i, _) = got
            .iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs())
            .enumerate()
            .fold((0, 0f32), |b, (i, d)| if d > b.1 { (i, d) } else { b });
        panic!(
            "{}: NMSE {e:.3e} > {NMSE_EXACT:e} (worst at {i}: got {}, want {})",
            gpu.case(case),
            got[i],
            want[i]
        );
    }
    eprintln!("{}: ok (NMSE {e:.2e})", gpu.case(case));
}

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

#[test]
fn attention() {
    for_each_device("attention", |gpu| {
        let mut cases: Vec<(usize, usize, usize, Vec<i32>, usize)> = Vec::new();
        for d in [64usize, 128] {
            for (nh, nkv) in [(4usize, 2usize), (4, 4), (8, 1)] {
                for n_kv in [1usize, 13, 300] {
                    cases.push((d, nh, nkv, vec![n_kv as i32 - 1], n_kv)); // decode
                }
                for p0 in [0i32, 20] {
                    let n = 7;
                    let pos: Vec<i32> = (p0..p0 + n).collect();
                    cases.push((d, nh, nkv, pos, (p0 + n) as usize)); // prefill
                }
            }
        }
        // Decode into a cache with more rows than n_kv, and a batch whose positions are
        // not increasing (each token's causal range is its own).
        cases.push((128, 8, 2, vec![70], 100));
        cases.push((64, 4, 2, vec![5, 0, 129, 64], 130));
        // Batches of more than 256 (head, token) pairs take the prefill shape: query heads
        // sharing a kv head in one workgroup (2, 2 and 1 of them here).
        cases.push((128, 16, 2, (20..40).collect(), 40));
        cases.push((64, 8, 2, (0..40).collect(), 40));
        cases.push((64, 12, 4, (0..30).collect(), 30));
        // Long enough for the widest workgroup (16 sub-blocks), decode and prefill.
        cases.push((64, 4, 2, vec![1099], 1100));
        cases.push((64, 4, 2, (1000..1007).collect(), 1007));
        for (d, nh, nkv, pos, n_kv) in cases {
            let n = pos.len();
            let case = if n == 1 {
                format!(
                    "attention(d={d},h={nh}/{nkv},n=1,n_kv={n_kv},pos={})",
                    pos[0]
                )
            } else {
                format!(
                    "attention(d={d},h={nh}/{nkv},n={n},n_kv={n_kv},pos0={})",
                    pos[0]
                )
            };
            let scale = 1.0 / (d as f32).sqrt();
            let seed = (d * 1000 + nh * 100 + nkv * 10 + n) as u64 + n_kv as u64;
            let q = values(d * nh * n, seed);
            // The cache is allocated for `cap` rows; only n_kv are valid. Unused rows hold
            // huge values that would dominate the softmax if they were ever read.
            let cap = n_kv + 5;
            let kv_len = d * nkv * cap;
            let mut k: Vec<f16> = values(kv_len, seed + 1)
                .iter()
                .map(|&v| f16::from_f32(v))
                .collect();
            let mut v: Vec<f16> = values(kv_len, seed + 2)
                .iter()
                .map(|&v| f16::from_f32(v))
                .collect();
            k[d * nkv * n_kv..].fill(f16::from_f32(3e4));
            v[d * nkv * n_kv..].fill(f16::from_f32(3e4));
            let qin = Input::f32(gpu, "q", &q, 1);
            let kin = Input::f16(gpu, "k", &k, 8); // 16 bytes in: k is read 8 halves at a time
            let vin = Input::f16(gpu, "v", &v, 6);
            let pin = Input::i32(gpu, "pos", &pos, 3);
            let out = Output::new(gpu, "dst", d * nh * n);
            run(gpu, &case, |rec| {
                attention::attention(
                    rec,
                    qin.range(4),
                    kin.range(2),
                    vin.range(2),
                    pin.range(4),
                    out.range(),
                    d as u32,
                    nh as u32,
                    nkv as u32,
                    n as u32,
                    n_kv as u32,
                    scale,
                )
            });
            let mut want = vec![0f32; d * nh * n];
            let (kr, vr) = (&k[..d * nkv * n_kv], &v[..d * nkv * n_kv]);
            ops::attention(&q, d, nh, kr, vr, nkv, n_kv, &pos, scale, &mut want);
            check(gpu, &case, &out.read(gpu, &case), &want);
        }
    });
}

/// Split-K attention (flash-decoding) against the CPU reference: context lengths 1, 17,
/// 1,000 (4,096 and 16,384 with `VKGRAPH_LARGE_TESTS=1`), splits that leave workgroups
/// empty, every head grouping, decode batches of 1 and 3 tokens. Each case runs twice
/// on one scratch buffer (the counters must come back to zero) and checks them after.
#[test]
fn attention_split() {
    for_each_device("attention_split", |gpu| {
        let large = std::env::var("VKGRAPH_LARGE_TESTS").is_ok_and(|v| v == "1");
        let mut lens = vec![1usize, 17, 1000];
        if large {
            lens.extend([4096, 16384]);
        }
        let mut cases: Vec<(usize, usize, usize, Vec<i32>, usize, attention::SplitShape)> =
            Vec::new();
        let sh = |nz, sub_blocks, qb| attention::SplitShape { nz, sub_blocks, qb };
        for &len in &lens {
            // (d, heads, kv heads, shape): GQA groups of 4, 2 and 1.
            for (d, nh, nkv, shape) in [
                (128usize, 8usize, 2usize, sh(7, 2, 4)),
                (64, 4, 2, sh(2, 1, 2)),
                (128, 4, 4, sh(64, 2, 1)),
            ] {
                cases.push((d, nh, nkv, vec![len as i32 - 1], len + 3, shape));
            }
        }
        // Three tokens of different lengths in one batch; the default shape where it splits.
        cases.push((64, 4, 2, vec![700, 3, 250], 1000, sh(5, 2, 2)));
        if let Some(s) = attention::split_shape(gpu.ctx.caps(), 128, 32, 8, 1, 4096, true) {
            cases.push((128, 32, 8, vec![2999], 4096, s));
        }
        for (d, nh, nkv, pos, n_kv, shape) in cases {
            let n = pos.len();
            let case = format!(
                "attention_split(d={d},h={nh}/{nkv},n={n},n_kv={n_kv},pos={pos:?},nz={},sb={},qb={})",
                shape.nz, shape.sub_blocks, shape.qb
            );
            let scale = 1.0 / (d as f32).sqrt();
            let seed = (d * 1000 + nh * 100 + nkv * 10 + n) as u64 + n_kv as u64;
            let q = values(d * nh * n, seed);
            let kv_len = d * nkv * n_kv;
            let k: Vec<f16> = values(kv_len, seed + 1)
                .iter()
                .map(|&v| f16::from_f32(v))
                .collect();
            let v: Vec<f16> = values(kv_len, seed + 2)
                .iter()
                .map(|&v| f16::from_f32(v))
                .collect();
            let qin = Input::f32(gpu, "q", &q, 1);
            let kin = Input::f16(gpu, "k", &k, 8);
            let vin = Input::f16(gpu, "v", &v, 6);
            let pin = Input::i32(gpu, "pos", &pos, 3);
            let sbytes = shape.scratch_bytes(d as u32, nh as u32, n as u32) as usize;
            let scratch = gpu.buffer_from("scratch", &vec![0u8; sbytes]);
            let mut want = vec![0f32; d * nh * n];
            ops::attention(&q, d, nh, &k, &v, nkv, n_kv, &pos, scale, &mut want);
            for round in 0..2 {
                let out = Output::new(gpu, "dst", d * nh * n);
                run(gpu, &case, |rec| {
                    attention::attention_split(
                        rec,
                        qin.range(4),
                        kin.range(2),
                        vin.range(2),
                        pin.range(4),
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
                });
                check(
                    gpu,
                    &format!("{case} round {round}"),
                    &out.read(gpu, &case),
                    &want,
                );
            }
            let counters = (nh / shape.qb as usize) * n;
            let words = gpu.read_f32(&scratch, 0, counters);
            assert!(
                words.iter().all(|w| w.to_bits() == 0),
                "{}: split counters not reset",
                gpu.case(&case)
            );
        }
    });
}

/// The q8 epilogues of rms_norm_mul, add_rms_norm_mul and swiglu: their f32 output is
/// bit-identical to the plain kernel's, and their q8_1 blocks to quantize_q8_1's of it.
#[test]
fn q8_epilogues_match_quantize() {
    use vkgraph::backend::vulkan::dispatch::mul_mat_vecq::{quantize_q8_1, xq_bytes, XQ};
    for_each_device("q8_epilogues", |gpu| {
        let (ne0, rows) = (96usize, 3usize);
        let n = ne0 * rows;
        let a = Input::f32(gpu, "a", &values(n, 3), 4);
        let b = Input::f32(gpu, "b", &values(n, 4), 4);
        let w = Input::f32(gpu, "w", &values(ne0, 5), 4);
        let (cb, sb) = xq_bytes(ne0 as u32, rows as u32);
        assert!(cb <= 512);
        let xq_buf = |name: &str| gpu.buffer_from(name, &vec![0xabu8; 512 + sb as usize]);
        fn xq(buf: &Buffer, cb: u64, sb: u64) -> XQ<'_> {
            XQ {
                codes: buf.range(0, cb),
                scales: buf.range(512, sb),
            }
        }
        for kernel in ["rms_norm_mul", "add_rms_norm_mul", "swiglu"] {
            let case = format!("{kernel}_q8(ne0={ne0},rows={rows})");
            let plain = Output::new(gpu, "plain", n);
            let fused = Output::new(gpu, "fused", n);
            let (ep, re) = (xq_buf("epilogue"), xq_buf("requantized"));
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
            let words = (512 + sb as usize) / 4;
            let (e, r) = (gpu.read_f32(&ep, 0, words), gpu.read_f32(&re, 0, words));
            // Codes and d bit-exact; the f32 block sums s to rounding (summation order
            // may differ between the two kernels' compiled code).
            let codes = |v: &[f32]| -> Vec<u32> {
                v[..cb as usize / 4].iter().map(|x| x.to_bits()).collect()
            };
            assert_eq!(
                codes(&e),
                codes(&r),
                "{}: q8_1 codes differ",
                gpu.case(&case)
            );
            for (blk, (pe, pr)) in e[128..].chunks(2).zip(r[128..].chunks(2)).enumerate() {
                assert_eq!(
                    pe[0].to_bits(),
                    pr[0].to_bits(),
                    "{}: block {blk} d",
                    gpu.case(&case)
                );
                assert!(
                    (pe[1] - pr[1]).abs() <= 1e-6 * (1.0 + pr[1].abs()),
                    "{}: block {blk} sum {} vs {}",
                    gpu.case(&case),
                    pe[1],
                    pr[1]
                );
            }
            eprintln!("{}: ok", gpu.case(&case));
        }
    });
}

/// attention's q8 epilogue, unsplit and split-K: the f32 output bit-identical to the
/// plain kernel's, the q8_1 blocks quantize_q8_1's of it (sums to rounding).
#[test]
fn attention_q8_epilogue() {
    use vkgraph::backend::vulkan::dispatch::mul_mat_vecq::{quantize_q8_1, xq_bytes, XQ};
    for_each_device("attention_q8", |gpu| {
        let (d, nh, nkv, n_kv) = (64usize, 4usize, 2usize, 300usize);
        let pos = vec![299i32, 150];
        let n = pos.len();
        let q = Input::f32(gpu, "q", &values(d * nh * n, 1), 1);
        let kv: Vec<f16> = values(d * nkv * n_kv, 2)
            .iter()
            .map(|&v| f16::from_f32(v))
            .collect();
        let k = Input::f16(gpu, "k", &kv, 8);
        let v = Input::f16(gpu, "v", &kv, 6);
        let p = Input::i32(gpu, "pos", &pos, 3);
        let (cb, sb) = xq_bytes((d * nh) as u32, n as u32);
        let split = attention::SplitShape {
            nz: 3,
            sub_blocks: 2,
            qb: 2,
        };
        let scratch = gpu.buffer_from(
            "scratch",
            &vec![0u8; split.scratch_bytes(d as u32, nh as u32, n as u32) as usize],
        );
        for split_k in [false, true] {
            let case = format!("attention_q8(d={d},h={nh}/{nkv},n={n},split_k={split_k})");
            let plain = Output::new(gpu, "plain", d * nh * n);
            let fused = Output::new(gpu, "fused", d * nh * n);
            let ep = gpu.buffer_from("ep", &vec![0u8; 1024 + sb as usize]);
            let re = gpu.buffer_from("re", &vec![0u8; 1024 + sb as usize]);
            run(gpu, &case, |rec| {
                let sp = split_k.then(|| (scratch.whole(), split));
                let args = (
                    d as u32,
                    nh as u32,
                    nkv as u32,
                    n as u32,
                    n_kv as u32,
                    0.125f32,
                );
                attention::attention_with(
                    rec,
                    q.range(4),
                    k.range(2),
                    v.range(2),
                    p.range(4),
                    plain.range(),
                    sp,
                    None,
                    args.0,
                    args.1,
                    args.2,
                    args.3,
                    args.4,
                    args.5,
                )?;
                rec.barrier()?;
                let x = XQ {
                    codes: ep.range(0, cb),
                    scales: ep.range(1024, sb),
                };
                attention::attention_with(
                    rec,
                    q.range(4),
                    k.range(2),
                    v.range(2),
                    p.range(4),
                    fused.range(),
                    sp,
                    Some(x),
                    args.0,
                    args.1,
                    args.2,
                    args.3,
                    args.4,
                    args.5,
                )
            });
            let (pl, f) = (plain.read(gpu, &case), fused.read(gpu, &case));
            assert!(
                pl.iter().zip(&f).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{}: q8 variant's f32 output differs",
                gpu.case(&case)
            );
            let again = Input::f32(gpu, "again", &f, 0);
            run(gpu, &case, |rec| {
                let x = XQ {
                    codes: re.range(0, cb),
                    scales: re.range(1024, sb),
                };
                quantize_q8_1(rec, again.range(4), x, (d * nh) as u32, n as u32)
            });
            let words = (1024 + sb as usize) / 4;
            let (e, r) = (gpu.read_f32(&ep, 0, words), gpu.read_f32(&re, 0, words));
            let cw = cb as usize / 4;
            assert!(
                e[..cw]
                    .iter()
                    .zip(&r[..cw])
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{}: codes differ",
                gpu.case(&case)
            );
            for (pe, pr) in e[256..].chunks(2).zip(r[256..].chunks(2)) {
                assert_eq!(
                    pe[0].to_bits(),
                    pr[0].to_bits(),
                    "{}: d differs",
                    gpu.case(&case)
                );
                assert!(
                    (pe[1] - pr[1]).abs() <= 1e-6 * (1.0 + pr[1].abs()),
                    "{}: sum",
                    gpu.case(&case)
                );
            }
            eprintln!("{}: ok", gpu.case(&case));
        }
    });
}

#[test]
fn attention_rejects_bad_shapes() {
    for_each_device("attention_rejects_bad_shapes", |gpu| {
        let buf = gpu.buffer_from("b", &[0u8; 4096]);
        let r = buf.whole();
        let mut rec = gpu.ctx.recorder().expect("recorder");
        rec.begin().expect("begin");
        // (d, n_head, n_head_kv, n_kv): head size not a multiple of 8, too large, heads
        // not a multiple of kv heads, empty cache.
        for (d, nh, nkv, n_kv) in [
            (60u32, 4u32, 2u32, 4u32),
            (512, 1, 1, 1),
            (64, 3, 2, 4),
            (64, 2, 2, 0),
        ] {
            let e = attention::attention(&mut rec, r, r, r, r, r, d, nh, nkv, 1, n_kv, 0.1);
            assert!(
                e.is_err(),
                "{}: d={d} h={nh}/{nkv} n_kv={n_kv} accepted",
                gpu.label
            );
        }
        // K not 16-byte aligned.
        let k = buf.range(4, 1024);
        let e = attention::attention(&mut rec, r, k, r, r, r, 8, 1, 1, 1, 1, 0.1);
        assert!(e.is_err(), "{}: misaligned k accepted", gpu.label);
        // Output range too small.
        let small = buf.range(0, 16);
        let e = attention::attention(&mut rec, r, r, r, r, small, 64, 1, 1, 1, 1, 0.1);
        assert!(e.is_err(), "{}: small dst accepted", gpu.label);
        assert_eq!(rec.dispatch_count(), 0);
        rec.submit_and_wait().expect("submit");
    });
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
            rec.begin().expect("begin");
            f(&mut rec); // warm-up (pipeline creation, caches)
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

        // attention, Llama-3-8B-like heads: d = 128, 32 query heads, 8 kv heads.
        let (d, nh, nkv) = (128usize, 32usize, 8usize);
        for (n, n_kv) in [(1usize, 512usize), (1, 4096), (1, 32768), (512, 512)] {
            let q = Input::f32(&gpu, "q", &values(d * nh * n, 1), 0);
            let kv: Vec<f16> = values(d * nkv * n_kv, 2)
                .iter()
                .map(|&v| f16::from_f32(v * 0.25))
                .collect();
            let k = Input::f16(&gpu, "k", &kv, 0);
            let v = Input::f16(&gpu, "v", &kv, 0);
            let pos: Vec<i32> = (0..n as i32).map(|i| (n_kv - n) as i32 + i).collect();
            let p = Input::i32(&gpu, "pos", &pos, 0);
            let out = Output::new(&gpu, "dst", d * nh * n);
            // K/V bytes read once per query head group (what a perfect kernel streams).
            let bytes = (2 * d * nkv * n_kv * 2 + 2 * d * nh * n * 4) as f64;
            let name = format!("attention(d={d},h={nh}/{nkv},n={n},n_kv={n_kv})");
            time(&name, bytes, &out, &|rec: &mut Recorder| {
                let scale = 1.0 / (d as f32).sqrt();
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
            let Some(shape) = attention::split_shape(
                gpu.ctx.caps(),
                d as u32,
                nh as u32,
                nkv as u32,
                n as u32,
                n_kv as u32,
                false,
            ) else {
                continue;
            };
            let sbytes = shape.scratch_bytes(d as u32, nh as u32, n as u32) as usize;
            let scratch = gpu.buffer_from("scratch", &vec![0u8; sbytes]);
            let name = format!("{name} split {shape:?}");
            time(&name, bytes, &out, &|rec: &mut Recorder| {
                let scale = 1.0 / (d as f32).sqrt();
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
        for (ne0, nrows, w_rows) in [(7usize, 1usize, 1usize), (256, 3, 1), (1000, 4, 2)] {
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

/// `rope_set_rows` (ROPE_SET_ROWS: the rope of K written as f16 into KV-cache rows at the
/// token positions) against the CPU rope + f16 conversion; rows not addressed keep
/// their sentinel.
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
            let sentinel = f16::from_f32(-7.5);
            let table = Input::f16(gpu, "cache", &vec![sentinel; row * n_rows], 4);
            run(gpu, &case, |rec| {
                rope::rope_set_rows(
                    rec,
                    xin.range(4),
                    pin.range(4),
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
                match pos.iter().position(|&p| p as usize == r) {
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
