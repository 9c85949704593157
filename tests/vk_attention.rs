//! The attention kernel (`attention.comp`) on every Vulkan device against the CPU
//! reference: prefill and decode shapes, GQA groupings, split-K (flash-decoding) at
//! several context lengths, its q8 epilogue, and the shapes it must refuse; spans that
//! start past row 0 (a later sequence's cells). Tolerances
//! and guards as in vk_ops.rs (`tests/common/io.rs`).

mod common;

use common::io::{check, nmse, run, Input, Output};
use common::{for_each_device, values};
use half::f16;
use vkgraph::backend::cpu::ops;
use vkgraph::backend::vulkan::dispatch::{attention, attention_coopmat};

/// The cells each token attends: `0..=pos` for even tokens, `pos/2..=pos` for odd ones
/// (a sequence whose cells start later in the cache, as `kv::KvCache` slots do), so both
/// ends of every span are exercised.
fn spans(pos: &[i32]) -> Vec<i32> {
    pos.iter()
        .enumerate()
        .flat_map(|(t, &p)| [if t % 2 == 1 { p / 2 } else { 0 }, p])
        .collect()
}

/// A K and a V cache of `n_kv + 5` rows (kv heads `nkv`, head size `d`) of which only the
/// first `n_kv` are valid: the rows past them hold huge values that would dominate the
/// softmax if they were ever read.
fn cache(d: usize, nkv: usize, n_kv: usize, seed: u64) -> (Vec<f16>, Vec<f16>) {
    let kv_len = d * nkv * (n_kv + 5);
    let table = |s| {
        let mut t: Vec<f16> = values(kv_len, s)
            .iter()
            .map(|&v| f16::from_f32(v))
            .collect();
        t[d * nkv * n_kv..].fill(f16::from_f32(3e4));
        t
    };
    (table(seed + 1), table(seed + 2))
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
            let (k, v) = cache(d, nkv, n_kv, seed);
            let qin = Input::f32(gpu, "q", &q, 1);
            let kin = Input::f16(gpu, "k", &k, 8); // 16 bytes in: k is read 8 halves at a time
            let vin = Input::f16(gpu, "v", &v, 6);
            let pin = Input::i32(gpu, "span", &spans(&pos), 3);
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
            ops::attention(&q, d, nh, kr, vr, nkv, n_kv, &spans(&pos), scale, &mut want);
            check(gpu, &case, &out.read(gpu, &case), &want);
            if n <= 8 {
                // The launch sized for fewer rows than the range holds (the executor's
                // planned length: one 64-row sub-block): the width is a hint only.
                let case = format!("{case},plan_rows=64");
                let out = Output::new(gpu, "dst", d * nh * n);
                run(gpu, &case, |rec| {
                    attention::attention_with(
                        rec,
                        qin.range(4),
                        kin.range(2),
                        vin.range(2),
                        pin.range(4),
                        out.range(),
                        None,
                        None,
                        None,
                        d as u32,
                        nh as u32,
                        nkv as u32,
                        n as u32,
                        n_kv as u32,
                        Some(64),
                        scale,
                    )
                });
                check(gpu, &case, &out.read(gpu, &case), &want);
            }
        }
    });
}

/// NMSE bound of the cooperative-matrix prompt attention: q (scaled) and the softmax
/// weights p enter the products as f16 (relative rounding 2^-11), so scores and weights
/// carry ~2.4e-4 relative error each; the output's NMSE is of order (2.4e-4)^2 times a
/// few terms, ~1e-7 — 1e-5 leaves two orders for the worst case over the shapes below.
const NMSE_COOPMAT: f64 = 1e-5;

/// The cooperative-matrix prompt attention (`attention_coopmat.comp`) against the CPU
/// reference where the device has it (with `VKGRAPH_EXPECT_COOPMAT=1` a device without
/// it fails the test): head sizes 64 and 128, GQA groups 1, 2, 3, 4 and 16 (rows of a
/// workgroup span several tokens, and with 3 a token's heads straddle two subgroups),
/// batch sizes that leave the last workgroup partly empty, spans that start past row 0
/// (odd tokens), batches that start deep in the cache, and cache rows past n_kv holding
/// huge values. `attention::attention` must pick the kernel for such a batch too.
#[test]
fn attention_coopmat() {
    for_each_device("attention_coopmat", |gpu| {
        let caps = gpu.ctx.caps();
        let expect = std::env::var("VKGRAPH_EXPECT_COOPMAT").is_ok_and(|v| v == "1");
        if let Err(why) = attention_coopmat::support(caps, 128) {
            assert!(!expect, "VKGRAPH_EXPECT_COOPMAT=1 but {why}");
            eprintln!(
                "{}: {why} -- the cooperative-matrix attention is NOT TESTED on this device",
                gpu.case("attention_coopmat")
            );
            return;
        }
        let mut cases: Vec<(usize, usize, usize, Vec<i32>, usize)> = Vec::new();
        for d in [64usize, 128] {
            for (nh, nkv) in [(4usize, 2usize), (8, 2), (8, 8), (12, 4), (16, 1)] {
                for (p0, n) in [(0i32, 16i32), (0, 37), (50, 100)] {
                    let pos: Vec<i32> = (p0..p0 + n).collect();
                    cases.push((d, nh, nkv, pos, (p0 + n) as usize));
                }
            }
        }
        // Positions not increasing, into a cache with more rows than the batch reaches.
        cases.push((128, 8, 2, (0..20).rev().map(|i| 3 * i).collect(), 70));
        for (i, (d, nh, nkv, pos, n_kv)) in cases.into_iter().enumerate() {
            let n = pos.len();
            let case = format!(
                "attention_coopmat(d={d},h={nh}/{nkv},n={n},n_kv={n_kv},pos0={})",
                pos[0]
            );
            let scale = 1.0 / (d as f32).sqrt();
            let seed = 7000 + i as u64;
            let q = values(d * nh * n, seed);
            let (k, v) = cache(d, nkv, n_kv, seed);
            let qin = Input::f32(gpu, "q", &q, 1);
            let kin = Input::f16(gpu, "k", &k, 8);
            let vin = Input::f16(gpu, "v", &v, 8);
            let pin = Input::i32(gpu, "span", &spans(&pos), 3);
            let mut want = vec![0f32; d * nh * n];
            let (kr, vr) = (&k[..d * nkv * n_kv], &v[..d * nkv * n_kv]);
            ops::attention(&q, d, nh, kr, vr, nkv, n_kv, &spans(&pos), scale, &mut want);
            assert!(
                attention_coopmat::takes(
                    caps,
                    d as u32,
                    n as u32,
                    kin.range(2).offset,
                    vin.range(2).offset
                ),
                "{case}: attention::attention would not take the kernel"
            );
            for auto in [false, true] {
                let out = Output::new(gpu, "dst", d * nh * n);
                run(gpu, &case, |rec| {
                    let args = (
                        qin.range(4),
                        kin.range(2),
                        vin.range(2),
                        pin.range(4),
                        out.range(),
                    );
                    let dims = (d as u32, nh as u32, nkv as u32, n as u32, n_kv as u32);
                    if auto {
                        attention::attention(
                            rec, args.0, args.1, args.2, args.3, args.4, dims.0, dims.1, dims.2,
                            dims.3, dims.4, scale,
                        )
                    } else {
                        attention_coopmat::attention_coopmat(
                            rec, args.0, args.1, args.2, args.3, args.4, dims.0, dims.1, dims.2,
                            dims.3, dims.4, scale,
                        )
                    }
                });
                let got = out.read(gpu, &case);
                if let Some(j) = got.iter().position(|x| !x.is_finite()) {
                    panic!("{}: non-finite output {} at {j}", gpu.case(&case), got[j]);
                }
                let e = nmse(&got, &want);
                eprintln!("{}: NMSE {e:.2e}", gpu.case(&case));
                assert!(
                    e <= NMSE_COOPMAT,
                    "{}: NMSE {e:.3e} > {NMSE_COOPMAT:e}",
                    gpu.case(&case)
                );
            }
        }
    });
}

/// Split-K attention (flash-decoding) against the CPU reference: context lengths 1, 17,
/// 128, 129 (two 64-row tiles, and one row more), 1,000 (4,096 and 16,384 with
/// `VKGRAPH_LARGE_TESTS=1`), splits that leave workgroups empty, every head grouping,
/// decode batches of 1 and 3 tokens. Each case runs twice on one scratch buffer (the
/// counters must come back to zero) and checks them after.
/// The default split-K launch for decode (forced, so lavapipe's CPU device plans one too):
/// at most two query heads of a GQA group per workgroup, V (and the first tile's K)
/// preloaded for head sizes up to 128 — the H100 measurements behind
/// `attention::SPLIT_MAX_QB` / `SPLIT_PRELOAD_MAX_D`; groups of one stay at one head.
#[test]
fn default_split_shape() {
    for gpu in common::devices() {
        let caps = gpu.ctx.caps();
        // (d, heads, kv heads) -> (qb, preload_v): llama-8B, qwen3-0.6B, no GQA, d = 256.
        for ((d, nh, nkv), want) in [
            ((128, 32, 8), (2, true)),
            ((128, 16, 8), (2, true)),
            ((128, 8, 8), (1, true)),
            ((256, 16, 4), (2, false)),
        ] {
            let sh = attention::split_shape(
                caps,
                d,
                nh,
                nkv,
                1,
                4096,
                true,
                attention::MIN_SPLIT_ROWS,
                attention::ROWS_PER_SPLIT,
            )
            .unwrap_or_else(|| panic!("{}: no split for d={d} {nh}/{nkv}", gpu.label));
            assert_eq!(
                (sh.qb, sh.preload_v),
                want,
                "{}: d={d} {nh}/{nkv}",
                gpu.label
            );
            assert!(sh.nz >= 2, "{}: {sh:?}", gpu.label);
        }
    }
}

#[test]
fn attention_split() {
    for_each_device("attention_split", |gpu| {
        let large = std::env::var("VKGRAPH_LARGE_TESTS").is_ok_and(|v| v == "1");
        let mut lens = vec![1usize, 17, 128, 129, 1000];
        if large {
            lens.extend([4096, 16384]);
        }
        let mut cases: Vec<(usize, usize, usize, Vec<i32>, usize, attention::SplitShape)> =
            Vec::new();
        let sh = |nz, sub_blocks, qb| attention::SplitShape {
            nz,
            sub_blocks,
            qb,
            preload_v: nz % 2 == 0,
        };
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
        if let Some(s) = attention::split_shape(
            gpu.ctx.caps(),
            128,
            32,
            8,
            1,
            4096,
            true,
            attention::MIN_SPLIT_ROWS,
            attention::ROWS_PER_SPLIT,
        ) {
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
            let pin = Input::i32(gpu, "span", &spans(&pos), 3);
            let sbytes = shape.scratch_bytes(d as u32, nh as u32, n as u32) as usize;
            let scratch = gpu.buffer_from("scratch", &vec![0u8; sbytes]);
            let mut want = vec![0f32; d * nh * n];
            ops::attention(&q, d, nh, &k, &v, nkv, n_kv, &spans(&pos), scale, &mut want);
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
        let p = Input::i32(gpu, "span", &spans(&pos), 3);
        let (cb, sb) = xq_bytes((d * nh) as u32, n as u32);
        let split = attention::SplitShape {
            nz: 3,
            sub_blocks: 2,
            qb: 2,
            preload_v: true,
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
                    None,
                    args.0,
                    args.1,
                    args.2,
                    args.3,
                    args.4,
                    None,
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
                    None,
                    args.0,
                    args.1,
                    args.2,
                    args.3,
                    args.4,
                    None,
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
            common::io::assert_q8_same(gpu, &case, &ep, &re, cb, sb, 1024);
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
