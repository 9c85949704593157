//! MUL_MAT on every Vulkan device, every weight type, against the CPU
//! reference (`backend::cpu::ops`), which uses the same quantized bytes.
//!
//! - mul_mat: NMSE ≤ 5e-4 (the GPU sums in f32 in another order; a wrong index or a
//!   wrong dequantization gives NMSE ~1), no NaN/Inf, and the destination buffer's bytes
//!   before and after the output keep their sentinel (guard bytes). Shapes: odd m,
//!   k = 3 blocks (not a multiple of any workgroup), one k = 4096 case, n = 1, 2, 5
//!   (mat-vec) and 17 (tiled), fused weights with 3 segments (split on write), and
//!   unaligned operand offsets.
//!
//! (GET_ROWS and the coopmat tiles' f16 dequantization: tests/vk_get_rows.rs.)
//!
//! - mul_mat_coopmat: the cooperative-matrix tiled kernel, forced (not left to `Auto`),
//!   every type × m ∈ {1, 7, 33, 257, 300} × n ∈ {9, 17, 64, 100} × k ∈ {3 blocks, 4096},
//!   3 segments, unaligned offsets, same NMSE/guard checks. On a device without a usable
//!   shape it checks that forcing the path is `Error::Unsupported` and prints loudly that
//!   the kernel is NOT tested there.
//! - `VKGRAPH_LARGE_TESTS=1` adds llama-8B's ffn_down shape (m = 4096, k = 14336).
//! - `perf_mul_mat_vec` (ignored; run with `--ignored`) prints µs and GB/s per type at
//!   m = 4096, k = 14336 from GPU timestamps, and TFLOPS of the scalar and (where usable)
//!   cooperative-matrix tiled kernels at n = 512. It measures; it asserts nothing about speed.
//!
//! Case names: `[Vulkan/<device>] mul_mat_vec(type=q4_K,m=33,k=768,n=1)`.

mod common;

use common::{check_guards, f32s, for_each_device, guarded, quantized, values, words, Gpu, GUARD};
use vkgraph::backend::cpu::ops;
use vkgraph::backend::vulkan::dispatch::mul_mat::{
    coopmat_shape, CoopScratch, MatVecShape, SplitK, TiledKernel, SPLIT_K_GRID,
};
use vkgraph::backend::vulkan::{dispatch, Buffer, BufferRange, MemoryLocation, Recorder};
use vkgraph::quant::{self, GgmlType};

const NMSE_MAX: f64 = 5e-4;

fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let mut num = 0.0f64;
    let mut den = 0.0f64;
    for (&a, &b) in got.iter().zip(want) {
        num += (a as f64 - b as f64).powi(2);
        den += (b as f64).powi(2);
    }
    if den == 0.0 {
        num
    } else {
        num / den
    }
}

/// Kernel block of `ty` (what k must be a multiple of).
fn qk(ty: GgmlType) -> usize {
    if ty.is_quantized() {
        ty.block_size()
    } else {
        16
    }
}

/// Operand placement inside their buffers (exercises the offset/alignment paths).
#[derive(Clone, Copy)]
struct Offsets {
    /// Bytes before the weights (even; a multiple of 4 for f32).
    w: usize,
    /// f32 elements before x and before dst.
    x: usize,
    d: usize,
}

const ALIGNED: Offsets = Offsets {
    w: 0,
    x: 0,
    d: GUARD,
};

/// Runs one mul_mat case and compares with the CPU reference.
#[allow(clippy::too_many_arguments)]
fn mul_mat_case(
    gpu: &Gpu,
    ty: GgmlType,
    w: &[u8],
    k: usize,
    split: &[usize],
    n: usize,
    off: Offsets,
    label: &str,
    shape: Option<MatVecShape>,
    tiled: TiledKernel,
) {
    let name = if n as u32 <= dispatch::mul_mat::MAT_VEC_MAX_N {
        "mul_mat_vec"
    } else if tiled == TiledKernel::Coopmat {
        "mul_mat_coopmat"
    } else {
        "mul_mat"
    };
    mul_mat_case_with(
        gpu,
        ty,
        w,
        k,
        split,
        n,
        off,
        name,
        label,
        &|rec, wr, xr, dr, sp| {
            let (k32, m32, n32) = (k as u32, wr_rows(split), n as u32);
            match shape {
                None => {
                    dispatch::mul_mat::mul_mat_tiled(rec, ty, wr, xr, dr, k32, m32, n32, sp, tiled)
                }
                Some(sh) => dispatch::mul_mat::mul_mat_with_shape(
                    rec, ty, wr, xr, dr, k32, m32, n32, sp, sh,
                ),
            }
        },
    );
}

fn wr_rows(split: &[usize]) -> u32 {
    split.iter().sum::<usize>() as u32
}

/// A [`RecordFn`] for `mul_mat_with` on the tiled kernel `tiled` with coopmat scratch
/// `range` (the f16 x, then with `split` the split-K partial blocks). `m` is the weight
/// rows of all segments: the recorder's `sp` is empty for a single segment, so it cannot
/// give m (summing it did, and recorded an empty matmul: the NaN poison at output 0 on
/// the H100, 2026-12-07j call 4).
#[allow(clippy::too_many_arguments)]
fn coop_with<'s>(
    ty: GgmlType,
    tiled: TiledKernel,
    k: usize,
    m: usize,
    n: usize,
    range: BufferRange<'s>,
    split: Option<SplitK>,
) -> Box<RecordFn<'s>> {
    Box::new(move |rec, wr, xr, dr, sp| {
        let m = m as u32;
        let scratch = CoopScratch { range, split };
        dispatch::mul_mat::mul_mat_with(
            rec,
            ty,
            wr,
            xr,
            dr,
            k as u32,
            m,
            n as u32,
            sp,
            None,
            tiled,
            Some(scratch),
        )
    })
}

/// Records one matmul: (recorder, weights, x, dst, split) → dispatches.
type RecordFn<'f> = dyn Fn(
        &mut Recorder,
        BufferRange<'_>,
        BufferRange<'_>,
        BufferRange<'_>,
        &[u32],
    ) -> vkgraph::Result<()>
    + 'f;

/// One matmul case recorded by `record`, against the CPU reference (NMSE, NaN, guards).
#[allow(clippy::too_many_arguments)]
fn mul_mat_case_with(
    gpu: &Gpu,
    ty: GgmlType,
    w: &[u8],
    k: usize,
    split: &[usize],
    n: usize,
    off: Offsets,
    name: &str,
    label: &str,
    record: &RecordFn<'_>,
) {
    let m: usize = split.iter().sum();
    let case = gpu.case(&format!("{name}(type={ty},m={m},k={k},n={n}{label})"));
    let rb = ty.row_bytes(k).unwrap();
    assert_eq!(w.len(), m * rb);
    let x = values(k * n, 1000 + n as u64);

    // CPU oracle.
    let mut segs = Vec::new();
    let mut at = 0;
    for &rows in split {
        segs.push(&w[at..at + rows * rb]);
        at += rows * rb;
    }
    let mut want = vec![0f32; m * n];
    ops::mul_mat(ty, &segs, split, k, &x, n, &mut want).expect("cpu mul_mat");

    // GPU.
    let mut wbytes = vec![0xa5u8; off.w];
    wbytes.extend_from_slice(w);
    let wbuf = gpu.buffer_from("w", &wbytes);
    let mut xbytes = words(&vec![f32::NAN; off.x]);
    xbytes.extend_from_slice(&words(&x));
    let xbuf = gpu.buffer_from("x", &xbytes);
    let dbuf = guarded(gpu, "dst", off.d, &vec![0u8; m * n * 4]);
    // Poison the output area too, so an unwritten element cannot pass as a zero.
    gpu.ctx
        .upload(&dbuf, (off.d * 4) as u64, &words(&vec![f32::NAN; m * n]))
        .expect("poison dst");

    let split_u32: Vec<u32> = if split.len() > 1 {
        split.iter().map(|&s| s as u32).collect()
    } else {
        vec![]
    };
    let mut rec = gpu.ctx.recorder().expect("recorder");
    rec.begin().expect("begin");
    let (wr, xr, dr) = (
        wbuf.range(off.w as u64, w.len() as u64),
        xbuf.range((off.x * 4) as u64, (k * n * 4) as u64),
        dbuf.range((off.d * 4) as u64, (m * n * 4) as u64),
    );
    record(&mut rec, wr, xr, dr, &split_u32).unwrap_or_else(|e| panic!("{case}: {e}"));
    rec.submit_and_wait()
        .unwrap_or_else(|e| panic!("{case}: {e}"));

    let got = gpu.read_f32(&dbuf, off.d, m * n);
    if let Some(i) = got.iter().position(|v| !v.is_finite()) {
        // How many, and the last: a whole tile left unwritten (the NaN poison) reads
        // differently from a stray value.
        let bad = got.iter().filter(|v| !v.is_finite()).count();
        let last = got.iter().rposition(|v| !v.is_finite()).unwrap_or(i);
        panic!(
            "{case}: non-finite output {} at {i} (want {}); {bad} of {} non-finite, the \
             last at {last}",
            got[i],
            want[i],
            got.len()
        );
    }
    let e = nmse(&got, &want);
    assert!(
        e <= NMSE_MAX,
        "{case}: NMSE {e:.3e} > {NMSE_MAX:e}; first values got {:?} want {:?}",
        &got[..got.len().min(6)],
        &want[..want.len().min(6)]
    );
    check_guards(gpu, &dbuf, off.d, m * n, &case);
    eprintln!("{case}: ok (NMSE {e:.2e})");
}

/// k for a type's small cases: 3 kernel blocks of 32 (floats, legacy) or 256 (k-quants).
fn small_k(ty: GgmlType) -> usize {
    3 * qk(ty).max(32)
}

#[test]
fn mul_mat_all_types() {
    for_each_device("mul_mat_all_types", |gpu| {
        for ty in GgmlType::WEIGHT_TYPES {
            let k = small_k(ty);
            for (mi, &m) in [1usize, 7, 33, 257].iter().enumerate() {
                let w = quantized(ty, m, k, 7 + mi as u64);
                for &n in &[1usize, 2, 5, 16, 17] {
                    mul_mat_case(
                        gpu,
                        ty,
                        &w,
                        k,
                        &[m],
                        n,
                        ALIGNED,
                        "",
                        None,
                        TiledKernel::Scalar,
                    );
                }
            }
        }
    });
}

#[test]
fn mul_mat_k4096() {
    for_each_device("mul_mat_k4096", |gpu| {
        for ty in GgmlType::WEIGHT_TYPES {
            let w = quantized(ty, 33, 4096, 11);
            for &n in &[1usize, 17] {
                mul_mat_case(
                    gpu,
                    ty,
                    &w,
                    4096,
                    &[33],
                    n,
                    ALIGNED,
                    "",
                    None,
                    TiledKernel::Scalar,
                );
            }
        }
    });
}

#[test]
fn mul_mat_split_3_segments() {
    for_each_device("mul_mat_split", |gpu| {
        for ty in GgmlType::WEIGHT_TYPES {
            let k = small_k(ty);
            let split = [7usize, 33, 16];
            let w = quantized(ty, split.iter().sum(), k, 21);
            for &n in &[1usize, 5, 17, 70] {
                mul_mat_case(
                    gpu,
                    ty,
                    &w,
                    k,
                    &split,
                    n,
                    ALIGNED,
                    ",split=[7,33,16]",
                    None,
                    TiledKernel::Scalar,
                );
            }
        }
    });
}

#[test]
fn mul_mat_unaligned_offsets() {
    for_each_device("mul_mat_offsets", |gpu| {
        for ty in GgmlType::WEIGHT_TYPES {
            let k = small_k(ty);
            let w = quantized(ty, 9, k, 31);
            let off = Offsets {
                w: if ty == GgmlType::F32 { 4 } else { 2 },
                x: 1,
                d: 3,
            };
            for &n in &[1usize, 3, 17] {
                mul_mat_case(
                    gpu,
                    ty,
                    &w,
                    k,
                    &[9],
                    n,
                    off,
                    ",offsets=w+2B/x+1/d+3",
                    None,
                    TiledKernel::Scalar,
                );
            }
        }
    });
}

/// Records quantize_q8_1 of `xr` into a scratch buffer, a barrier, and the integer-dot
/// mat-vec reading it.
#[allow(clippy::too_many_arguments)]
fn record_vecq(
    gpu: &Gpu,
    rec: &mut Recorder,
    ty: GgmlType,
    wr: BufferRange<'_>,
    xr: BufferRange<'_>,
    dr: BufferRange<'_>,
    k: u32,
    m: u32,
    n: u32,
    split: &[u32],
    shape: Option<MatVecShape>,
    scratch: &Buffer,
) -> vkgraph::Result<()> {
    let _ = gpu;
    let (cb, sb) = dispatch::mul_mat_vecq::xq_bytes(k, n);
    let xq = dispatch::mul_mat_vecq::XQ {
        codes: scratch.range(0, cb),
        scales: scratch.range(cb.div_ceil(256) * 256, sb),
    };
    dispatch::mul_mat_vecq::quantize_q8_1(rec, xr, xq, k, n)?;
    rec.barrier()?;
    dispatch::mul_mat_vecq::mul_mat_vecq(rec, ty, wr, xq, dr, k, m, n, split, shape)
}

/// (k, split, n, offsets, label, launch shape) of one mul_mat_vecq case.
type VecqCase = (
    usize,
    Vec<usize>,
    usize,
    Offsets,
    String,
    Option<MatVecShape>,
);

/// The integer-dot mat-vec (q8_1 activations) for every quantized type: odd m, k of 3
/// blocks and 4096, every n 1..8, 3 segments, unaligned weight/dst offsets, and launch
/// shapes other than the default; NMSE ≤ 5e-4 against the exact f32 reference (the
/// q8_1 rounding of x costs ~1e-5). Runs wherever the device has shaderIntegerDotProduct
/// (lavapipe emulates it), whether or not the path is the device's default.
#[test]
fn mul_mat_vecq_all_types() {
    for_each_device("mul_mat_vecq_all_types", |gpu| {
        let caps = gpu.ctx.caps();
        if !dispatch::mul_mat_vecq::supports(caps, GgmlType::Q4_0, 32, 1) {
            panic!(
                "{}: no shaderIntegerDotProduct/subgroup arithmetic: mul_mat_vecq NOT TESTED",
                gpu.label
            );
        }
        let scratch = gpu.buffer_from("xq", &vec![0u8; 4096 * 8 * 2 + 4096]);
        for ty in GgmlType::WEIGHT_TYPES {
            if !dispatch::mul_mat_vecq::supports(caps, ty, 4096, 1) {
                assert!(
                    !ty.is_quantized(),
                    "{ty}: quantized type without a vecq kernel"
                );
                continue;
            }
            let mut cases: Vec<VecqCase> = Vec::new();
            let k = small_k(ty);
            for &m in &[1usize, 7, 33, 257] {
                for n in [1usize, 2, 5, 8, 16] {
                    cases.push((k, vec![m], n, ALIGNED, String::new(), None));
                }
            }
            cases.push((4096, vec![33], 1, ALIGNED, String::new(), None));
            cases.push((4096, vec![33], 3, ALIGNED, String::new(), None));
            for n in [1usize, 4] {
                cases.push((
                    k,
                    vec![7, 33, 16],
                    n,
                    ALIGNED,
                    ",split=[7,33,16]".into(),
                    None,
                ));
            }
            let off = Offsets { w: 2, x: 0, d: 3 };
            cases.push((k, vec![9], 2, off, ",offsets=w+2B/d+3".into(), None));
            for (wg, rows) in [(32u32, 1u32), (64, 3), (256, 8)] {
                let sh = MatVecShape { wg, rows };
                cases.push((
                    k,
                    vec![37],
                    3,
                    ALIGNED,
                    format!(",wg={wg},rows={rows}"),
                    Some(sh),
                ));
            }
            for (ci, (k, split, n, off, label, shape)) in cases.into_iter().enumerate() {
                let m: usize = split.iter().sum();
                let w = quantized(ty, m, k, 50 + ci as u64);
                mul_mat_case_with(
                    gpu,
                    ty,
                    &w,
                    k,
                    &split,
                    n,
                    off,
                    "mul_mat_vecq",
                    &label,
                    &|rec, wr, xr, dr, sp| {
                        let (k, m, n) = (k as u32, m as u32, n as u32);
                        record_vecq(gpu, rec, ty, wr, xr, dr, k, m, n, sp, shape, &scratch)
                    },
                );
            }
        }
    });
}

/// quantize_q8_1 against a CPU q8_1 quantizer written from llama.cpp's definition:
/// codes bit-exact, d and the f32 block sums exact up to summation order.
#[test]
fn quantize_q8_1_matches_cpu() {
    for_each_device("quantize_q8_1", |gpu| {
        if !dispatch::mul_mat_vecq::supports(gpu.ctx.caps(), GgmlType::Q4_0, 32, 1) {
            panic!(
                "{}: mul_mat_vecq unsupported: quantize_q8_1 NOT TESTED",
                gpu.label
            );
        }
        let (k, n) = (96usize, 3usize);
        let mut x = values(k * n, 77);
        x[32..64].fill(0.0); // an all-zero block: d = 0, codes 0
        x[70] = 5.0; // a block dominated by one value
        let xbuf = gpu.buffer_from("x", &words(&x));
        let (cb, sb) = dispatch::mul_mat_vecq::xq_bytes(k as u32, n as u32);
        let scratch = gpu.buffer_from("xq", &vec![0xffu8; 1024 + sb as usize]);
        let xq = dispatch::mul_mat_vecq::XQ {
            codes: scratch.range(0, cb),
            scales: scratch.range(1024, sb),
        };
        let mut rec = gpu.ctx.recorder().expect("recorder");
        rec.begin().expect("begin");
        dispatch::mul_mat_vecq::quantize_q8_1(&mut rec, xbuf.whole(), xq, k as u32, n as u32)
            .expect("quantize");
        rec.submit_and_wait().expect("submit");
        let codes = gpu.read_f32(&scratch, 0, cb as usize / 4);
        let codes: &[u8] = bytemuck::cast_slice(&codes);
        let ds = gpu.read_f32(&scratch, 256, sb as usize / 4);
        common::assert_q8_1_blocks(&gpu.label, &x, codes, &ds);
        eprintln!("[{}] quantize_q8_1(k={k},n={n}): ok", gpu.label);
    });
}

/// Mat-vec launch shapes other than the default: rows per workgroup that do not divide
/// m, narrow and wide workgroups, all 8 tokens.
#[test]
fn mul_mat_vec_shapes() {
    for_each_device("mul_mat_vec_shapes", |gpu| {
        for ty in [
            GgmlType::F16,
            GgmlType::Q4_0,
            GgmlType::Q5_1,
            GgmlType::Q4K,
            GgmlType::Q6K,
        ] {
            let k = small_k(ty);
            let split = [5usize, 32];
            let w = quantized(ty, 37, k, 71);
            for (wg, rows) in [(16u32, 3u32), (32, 4), (256, 1)] {
                for &n in &[1usize, 8] {
                    let label = format!(",split=[5,32],wg={wg},rows={rows}");
                    let shape = Some(MatVecShape { wg, rows });
                    mul_mat_case(
                        gpu,
                        ty,
                        &w,
                        k,
                        &split,
                        n,
                        ALIGNED,
                        &label,
                        shape,
                        TiledKernel::Scalar,
                    );
                }
            }
        }
    });
}

/// The cooperative-matrix kernel, forced, on every device that lists its shape.
#[test]
fn mul_mat_coopmat() {
    for_each_device("mul_mat_coopmat", |gpu| {
        let case = gpu.case("mul_mat_coopmat");
        let caps = gpu.ctx.caps();
        let Some(shape) = coopmat_shape(caps) else {
            // Forcing the path must be refused, not silently run another kernel.
            let buf = gpu.buffer_from("b", &[0u8; 65536]);
            let mut rec = gpu.ctx.recorder().expect("recorder");
            rec.begin().expect("begin");
            let r = buf.range(0, 65536);
            let e = dispatch::mul_mat::mul_mat_tiled(
                &mut rec,
                GgmlType::F16,
                r,
                r,
                r,
                64,
                16,
                32,
                &[],
                TiledKernel::Coopmat,
            );
            assert!(
                matches!(e, Err(vkgraph::Error::Unsupported(_))),
                "{case}: forcing coopmat without a shape gave {e:?}"
            );
            rec.submit_and_wait().expect("empty submit");
            eprintln!(
                "{case}: device has no usable cooperative-matrix shape \
                 (cooperative matrix: {:?}) -- the coopmat kernel is NOT TESTED on this device",
                caps.cooperative_matrix
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            );
            return;
        };
        eprintln!(
            "{case}: testing with shape {shape}, subgroup {}",
            caps.subgroup_size
        );
        let cm = TiledKernel::Coopmat;
        for ty in GgmlType::WEIGHT_TYPES {
            for k in [small_k(ty), 4096] {
                for (mi, &m) in [1usize, 7, 33, 257, 300].iter().enumerate() {
                    let w = quantized(ty, m, k, 101 + mi as u64);
                    // n > MAT_VEC_MAX_N (else the mat-vec runs); 200 spans two 128-token tiles.
                    for &n in &[17usize, 64, 100, 200] {
                        mul_mat_case(gpu, ty, &w, k, &[m], n, ALIGNED, "", None, cm);
                    }
                }
            }
            let k = small_k(ty);
            // Segments crossing the 128-row tile.
            let split = [7usize, 150, 16];
            let w = quantized(ty, split.iter().sum(), k, 121);
            for &n in &[17usize, 64, 200] {
                let label = ",split=[7,150,16]";
                mul_mat_case(gpu, ty, &w, k, &split, n, ALIGNED, label, None, cm);
            }
            // x at an odd element (scalar x loads), dst and weights off alignment.
            let w = quantized(ty, 40, k, 131);
            let off = Offsets {
                w: if ty == GgmlType::F32 { 4 } else { 2 },
                x: 1,
                d: 3,
            };
            let label = ",offsets=w+2B/x+1/d+3";
            mul_mat_case(gpu, ty, &w, k, &[40], 70, off, label, None, cm);
            // x converted to f16 once (the executor's path: `x16`), the kernel reading
            // halves; 16 bytes into its buffer, several row and token tiles, a split.
            for (split, n) in [(vec![257usize], 200usize), (vec![7, 150, 16], 17)] {
                let w = quantized(ty, split.iter().sum(), k, 141);
                let x16 = gpu.buffer_from("x16", &vec![0u8; 16 + 2 * k * n]);
                let x16r = x16.range(16, (2 * k * n) as u64);
                mul_mat_case_with(
                    gpu,
                    ty,
                    &w,
                    k,
                    &split,
                    n,
                    ALIGNED,
                    "mul_mat_coopmat",
                    ",x=f16",
                    &*coop_with(ty, cm, k, split.iter().sum(), n, x16r, None),
                );
            }
            // Split-K (dispatch::mul_mat::split_k): grids too small to fill the device
            // split k over workgroups along z, whose partial blocks follow the f16 x in
            // the scratch; a k that leaves the last split short. Forced coopmat keeps the
            // wide tile (one workgroup for 40 rows x 200 tokens); `Auto` takes the small
            // tile for 300 rows (35 workgroups).
            let k = 4352;
            for (m, n, tiled) in [(40usize, 200usize, cm), (300, 100, TiledKernel::Auto)] {
                let (k32, m32, n32) = (k as u32, m as u32, n as u32);
                let sk = dispatch::mul_mat::split_k(caps, tiled, k32, m32, n32, 1, SPLIT_K_GRID)
                    .unwrap_or_else(|| panic!("{case}: m={m}, n={n}, k={k} does not split k"));
                let bytes = dispatch::mul_mat::tiled_scratch_bytes(k32, m32, n32, Some(sk));
                let scratch = gpu.buffer_from("x16", &vec![0u8; 16 + bytes as usize]);
                let sr = scratch.range(16, bytes);
                let w = quantized(ty, m, k, 151);
                let label = format!(",x=f16,split-k={}x{}", sk.ks, sk.kc);
                let name = if tiled == cm {
                    "mul_mat_coopmat"
                } else {
                    "mul_mat_coopmat_small"
                };
                mul_mat_case_with(
                    gpu,
                    ty,
                    &w,
                    k,
                    &[m],
                    n,
                    ALIGNED,
                    name,
                    &label,
                    &*coop_with(ty, tiled, k, m, n, sr, Some(sk)),
                );
            }
        }
    });
}

#[test]
fn mul_mat_large() {
    if std::env::var("VKGRAPH_LARGE_TESTS").as_deref() != Ok("1") {
        eprintln!("mul_mat_large: set VKGRAPH_LARGE_TESTS=1 to run (m=4096, k=14336)");
        return;
    }
    for_each_device("mul_mat_large", |gpu| {
        for ty in GgmlType::WEIGHT_TYPES {
            let w = quantized(ty, 4096, 14336, 41);
            for &n in &[1usize, 8, 64] {
                mul_mat_case(
                    gpu,
                    ty,
                    &w,
                    14336,
                    &[4096],
                    n,
                    ALIGNED,
                    "",
                    None,
                    TiledKernel::Scalar,
                );
            }
        }
    });
}

#[test]
fn mul_mat_errors() {
    for_each_device("mul_mat_errors", |gpu| {
        let buf = gpu.buffer_from("b", &[0u8; 4096]);
        let mut rec = gpu.ctx.recorder().expect("recorder");
        rec.begin().expect("begin");
        let r = buf.range(0, 4096);
        let case = gpu.case("mul_mat_errors");
        // k not a multiple of the block.
        let e = dispatch::mul_mat::mul_mat(&mut rec, GgmlType::Q4_0, r, r, r, 48, 1, 1, &[]);
        assert!(
            matches!(e, Err(vkgraph::Error::Unsupported(_))),
            "{case}: {e:?}"
        );
        // split not summing to m.
        let e = dispatch::mul_mat::mul_mat(&mut rec, GgmlType::Q4_0, r, r, r, 32, 4, 1, &[1, 2]);
        assert!(matches!(e, Err(vkgraph::Error::Usage(_))), "{case}: {e:?}");
        // weights too small.
        let e = dispatch::mul_mat::mul_mat(&mut rec, GgmlType::F32, r, r, r, 1024, 2, 1, &[]);
        assert!(matches!(e, Err(vkgraph::Error::Usage(_))), "{case}: {e:?}");
        assert!(!dispatch::mul_mat::supports(GgmlType::I32), "{case}");
        rec.submit_and_wait().expect("empty submit");
    });
}

/// Timing at llama-8B ffn_down shape (m = 4096, k = 14336): mat-vec at n = 1 (default and
/// `VKGRAPH_PERF_SHAPES` launch shapes) and the tiled kernel at n = 512.
/// Prints per type: µs per dispatch (median of 20) and weight GB/s. Asserts nothing
/// about speed (correctness is the other tests' job); checks the output once.
#[test]
#[ignore]
fn perf_mul_mat_vec() {
    let (m, k) = (4096usize, 14336usize);
    for_each_device("perf_mul_mat_vec", |gpu| {
        eprintln!("{}: m={m} k={k}", gpu.label);
        for ty in GgmlType::WEIGHT_TYPES {
            let w = quantized(ty, m, k, 61);
            for shape in perf_shapes() {
                perf_case(gpu, ty, &w, m, k, 1, shape, TiledKernel::Auto);
            }
            perf_case(gpu, ty, &w, m, k, 512, None, TiledKernel::Scalar);
            if coopmat_shape(gpu.ctx.caps()).is_some() {
                perf_case(gpu, ty, &w, m, k, 512, None, TiledKernel::Coopmat);
            }
        }
    });
}

/// Mat-vec launch shapes to time: the default, plus `VKGRAPH_PERF_SHAPES="128x2,256x4"`.
fn perf_shapes() -> Vec<Option<MatVecShape>> {
    let mut v = vec![None];
    if let Ok(s) = std::env::var("VKGRAPH_PERF_SHAPES") {
        for item in s.split(',') {
            if let Some((a, b)) = item.split_once('x') {
                if let (Ok(wg), Ok(rows)) = (a.trim().parse(), b.trim().parse()) {
                    v.push(Some(MatVecShape { wg, rows }));
                }
            }
        }
    }
    v
}

#[allow(clippy::too_many_arguments)]
fn perf_case(
    gpu: &Gpu,
    ty: GgmlType,
    w: &[u8],
    m: usize,
    k: usize,
    n: usize,
    shape: Option<MatVecShape>,
    tiled: TiledKernel,
) {
    let x = values(k * n, 5);
    let wbuf = gpu.buffer_from("w", w);
    let xbuf = gpu.buffer_from("x", &words(&x));
    let dbuf = gpu
        .ctx
        .create_buffer((m * n * 4) as u64, MemoryLocation::Device, "dst")
        .expect("dst");
    let reps = 20;
    let mut rec = gpu.ctx.recorder().expect("recorder");
    rec.begin().expect("begin");
    let run = |rec: &mut vkgraph::backend::vulkan::Recorder| {
        let (w, x, d) = (wbuf.whole(), xbuf.whole(), dbuf.whole());
        let (k, m, n) = (k as u32, m as u32, n as u32);
        match shape {
            None => dispatch::mul_mat::mul_mat_tiled(rec, ty, w, x, d, k, m, n, &[], tiled),
            Some(s) => dispatch::mul_mat::mul_mat_with_shape(rec, ty, w, x, d, k, m, n, &[], s),
        }
        .expect("mul_mat")
    };
    run(&mut rec); // warm-up (pipeline creation is outside the timed part anyway)
    rec.barrier().expect("barrier");
    rec.timestamp("start").expect("ts");
    for i in 0..reps {
        run(&mut rec);
        rec.barrier().expect("barrier");
        rec.timestamp(&format!("{i}")).expect("ts");
    }
    rec.submit_and_wait().expect("submit");
    let ts = rec.timestamps();
    if ts.len() < 2 {
        eprintln!("  {ty}: no timestamps on this device");
        return;
    }
    let mut us: Vec<f64> = ts.windows(2).map(|p| (p[1].ns - p[0].ns) / 1e3).collect();
    us.sort_by(f64::total_cmp);
    let med = us[us.len() / 2];
    let gbs = w.len() as f64 / (med * 1e3);
    let tflops = 2.0 * (m * k * n) as f64 / (med * 1e6);
    eprintln!(
        "  {:<5} n={n:<4} {:<8} {med:>9.1} µs  {gbs:>7.0} GB/s weights  {tflops:>6.2} TFLOPS",
        ty.name(),
        match (shape, n as u32 > dispatch::mul_mat::MAT_VEC_MAX_N) {
            (_, true) => format!("{tiled:?}").to_lowercase(),
            (None, false) => "default".to_string(),
            (Some(s), false) => format!("{}x{}", s.wg, s.rows),
        }
    );
    // A sanity check of the timed result on a few rows.
    let got = f32s(&{
        let mut b = vec![0u8; 16];
        gpu.ctx.download(&dbuf, 0, &mut b).expect("download");
        b
    });
    let mut want = vec![0f32; 4];
    let rb = ty.row_bytes(k).unwrap();
    for (i, v) in want.iter_mut().enumerate() {
        let mut row = vec![0f32; k];
        quant::dequantize(ty, &w[i * rb..][..rb], &mut row).unwrap();
        *v = row
            .iter()
            .zip(&x)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum::<f64>() as f32;
    }
    assert!(
        nmse(&got, &want) <= NMSE_MAX,
        "{ty}: perf output wrong: {got:?} vs {want:?}"
    );
}
