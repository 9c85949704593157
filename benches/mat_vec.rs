//! The decode matmul benchmark (issue: "an honest benchmark"): every weight type at
//! llama-8B's ffn_down (m = 4096, k = 14336) and attention (m = k = 4096) shapes, n = 1
//! and 8 tokens, on the float mat-vec (`mul_mat_vec.comp`) and, where the device has it,
//! the integer-dot one (`mul_mat_vecq.comp`, x already quantized), in two modes:
//!
//! - `L2`: one matrix, dispatched again and again (it may stay in the last-level cache);
//! - `DRAM`: a rotation through copies of the matrix whose total exceeds 4x the cache
//!   (`VKGRAPH_BENCH_L2_MB`, default 60 = the H200's L2), so every dispatch streams its
//!   weights from device memory, as decode does.
//!
//! Every weight type runs in a process of its own (a long sweep in one process drifted:
//! see `run_per_type`); `VKGRAPH_BENCH_TYPES=q4_0,q6_K` runs the listed types in one.
//!
//! Each figure is the median of `REPS` dispatches timed by GPU timestamps, with a barrier
//! after each (as between decode stages); GB/s counts weight bytes. The reference
//! bandwidth is measured in the same run: the fastest 1 GiB copy of three
//! (`vkCmdCopyBuffer`, `copy.comp` one float and 16 bytes per invocation; bytes read +
//! written per second). `cargo bench --bench mat_vec` (on lavapipe, `VKGRAPH_BENCH_SMALL=1`
//! shrinks the shapes and the copy). It measures; it asserts nothing about speed.

use vkgraph::backend::vulkan::dispatch::mul_mat::{mul_mat, MatVecShape};
use vkgraph::backend::vulkan::dispatch::mul_mat_vecq::{self, XQ};
use vkgraph::backend::vulkan::{Buffer, ContextOptions, MemoryLocation, Recorder, VulkanContext};
use vkgraph::quant::{self, GgmlType};

const REPS: usize = 40;

#[path = "common/dram.rs"]
mod dram;
#[path = "common/gpu_time.rs"]
mod gpu_time;

/// `f(rec, i)` (repetition `i`: the rotation index) timed by [`gpu_time::time_indexed`]
/// (the GPU kept busy first, `REPS` untimed and `REPS` timed repetitions); the median µs.
fn time(ctx: &VulkanContext, f: &dyn Fn(&mut Recorder, usize)) -> Option<f64> {
    gpu_time::time_indexed(ctx, REPS, &|rec, i| {
        f(rec, i);
        Ok(())
    })
}

/// Runs the bench once per weight type, each in a fresh process (this executable with
/// `VKGRAPH_BENCH_TYPES` set to the one type), and prints the first run's header and
/// every run's table rows. In one process a sweep drifts: on an H100 (fifteenth session,
/// docs/BENCHMARKS.md) its types from about the fifth on ran 1.1–4× slower than the same
/// types alone (q6_K int8 84–97 µs vs 26), with or without the weight copies reallocated
/// per type; the cause is not known, so each type gets a process of its own.
fn run_per_type() -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    for (i, ty) in GgmlType::WEIGHT_TYPES.iter().enumerate() {
        let out = std::process::Command::new(&exe)
            .env("VKGRAPH_BENCH_TYPES", ty.name())
            .args(std::env::args().skip(1))
            .output();
        let Ok(out) = out else {
            return false;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            let row = line.starts_with(&format!("| {} |", ty.name()))
                || line.starts_with("| (quantize_q8_1");
            if i == 0 || row {
                println!("{line}");
            }
        }
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            return true;
        }
    }
    true
}

fn main() {
    // Without VKGRAPH_BENCH_TYPES every type runs in its own process (see run_per_type).
    if std::env::var_os("VKGRAPH_BENCH_TYPES").is_none() && run_per_type() {
        return;
    }
    let ctx = match VulkanContext::new(&ContextOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mat_vec bench: no Vulkan device ({e})");
            return;
        }
    };
    let caps = ctx.caps().clone();
    let small = std::env::var_os("VKGRAPH_BENCH_SMALL").is_some();
    let (l2_mb, dram_total) = dram::dram_rotation();
    println!(
        "# mat_vec on {} ({}), L2 taken as {l2_mb} MB: DRAM mode rotates >= {} MB",
        caps.name,
        caps.driver_info,
        dram_total >> 20
    );

    // Reference bandwidth: a large copy, by the driver's buffer copy and by a compute
    // shader at one float and at 16 bytes per invocation (copy.comp), in case one is not
    // the fastest way to move memory; the fastest is the reference.
    let copy_bytes: u64 = if small { 64 << 20 } else { 1 << 30 };
    let Some(us) = dram::copy_times(&ctx, copy_bytes, REPS) else {
        println!("no timestamps on this device");
        return;
    };
    let gbs = us.map(|u| 2.0 * copy_bytes as f64 / (u * 1e3));
    let bw = gbs.into_iter().fold(0.0, f64::max);
    println!(
        "copy {} MiB: vkCmdCopyBuffer {:.1} µs = {:.0} GB/s, copy.comp {:.1} µs = {:.0} GB/s, \
         copy_vec4 {:.1} µs = {:.0} GB/s (read + write); reference {bw:.0} GB/s\n",
        copy_bytes >> 20,
        us[0],
        gbs[0],
        us[1],
        gbs[1],
        us[2],
        gbs[2]
    );
    println!("| type | m | k | n | path | mode | µs | GB/s | % of copy |");
    println!("|---|---:|---:|---:|---|---|---:|---:|---:|");

    // VKGRAPH_BENCH_SHAPES="4096x4096,4096x14336" and VKGRAPH_BENCH_TYPES="q4_0,q6_K"
    // narrow the run (order as given).
    let shapes: Vec<(usize, usize)> = match std::env::var("VKGRAPH_BENCH_SHAPES") {
        Ok(v) => v
            .split(',')
            .filter_map(|s| s.split_once('x'))
            .filter_map(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
            .collect(),
        Err(_) if small => vec![(512, 2048)],
        Err(_) => vec![(4096, 14336), (4096, 4096)],
    };
    let types: Vec<GgmlType> = match std::env::var("VKGRAPH_BENCH_TYPES") {
        Ok(v) => GgmlType::WEIGHT_TYPES
            .into_iter()
            .filter(|t| v.split(',').any(|n| n.trim() == t.name()))
            .collect(),
        Err(_) => GgmlType::WEIGHT_TYPES.to_vec(),
    };
    for &(m, k) in &shapes {
        for &ty in &types {
            let wbytes = ty.row_bytes(k).unwrap() * m;
            if wbytes as u64
                > caps
                    .max_storage_buffer_range
                    .min(caps.max_memory_allocation_size)
            {
                println!("| {ty} | {m} | {k} | - | - | - | does not fit one buffer | | |");
                continue;
            }
            // Real quantized rows (content does not change the cost).
            let rows = 16.min(m);
            let vals: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let q = quant::quantize(ty, &vals).unwrap();
            let data: Vec<u8> = q.iter().copied().cycle().take(wbytes).collect();
            let copies = (dram_total as usize).div_ceil(wbytes).max(2);
            let ws: Vec<Buffer> = (0..copies)
                .map(|i| {
                    let w = ctx
                        .create_buffer(wbytes as u64, MemoryLocation::Device, &format!("w{i}"))
                        .unwrap();
                    ctx.upload(&w, 0, &data).unwrap();
                    w
                })
                .collect();
            for n in [1usize, 8] {
                let x = ctx
                    .create_buffer((k * n * 4) as u64, MemoryLocation::Device, "x")
                    .unwrap();
                let xv: Vec<f32> = (0..k * n).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
                ctx.upload(&x, 0, bytemuck::cast_slice(&xv)).unwrap();
                let d = ctx
                    .create_buffer((m * n * 4) as u64, MemoryLocation::Device, "d")
                    .unwrap();
                let (cb, sb) = mul_mat_vecq::xq_bytes(k as u32, n as u32);
                let xq_buf = ctx
                    .create_buffer(cb.div_ceil(256) * 256 + sb, MemoryLocation::Device, "xq")
                    .unwrap();
                let xq = XQ {
                    codes: xq_buf.range(0, cb),
                    scales: xq_buf.range(cb.div_ceil(256) * 256, sb),
                };
                let vecq = mul_mat_vecq::supports(&caps, ty, k as u32, n as u32);
                if vecq {
                    let mut rec = ctx.recorder().unwrap();
                    rec.begin().unwrap();
                    mul_mat_vecq::quantize_q8_1(&mut rec, x.whole(), xq, k as u32, n as u32)
                        .unwrap();
                    rec.submit_and_wait().unwrap();
                }
                let (k32, m32, n32) = (k as u32, m as u32, n as u32);
                for (path, on) in [("float", true), ("int8", vecq)] {
                    if !on {
                        continue;
                    }
                    for (mode, rot) in [("L2", 1usize), ("DRAM", copies)] {
                        let us = time(&ctx, &|rec, i| {
                            let w = ws[i % rot].whole();
                            if path == "float" {
                                mul_mat(rec, ty, w, x.whole(), d.whole(), k32, m32, n32, &[])
                                    .unwrap()
                            } else {
                                mul_mat_vecq::mul_mat_vecq(
                                    rec,
                                    ty,
                                    w,
                                    xq,
                                    d.whole(),
                                    k32,
                                    m32,
                                    n32,
                                    &[],
                                    shape_from_env(),
                                )
                                .unwrap()
                            }
                        })
                        .unwrap();
                        let gbs = wbytes as f64 / (us * 1e3);
                        println!(
                            "| {ty} | {m} | {k} | {n} | {path} | {mode} | {us:.1} | {gbs:.0} | {:.0} % |",
                            100.0 * gbs / bw
                        );
                    }
                }
                if vecq && ty == GgmlType::Q4_0 {
                    let us = time(&ctx, &|rec, _| {
                        mul_mat_vecq::quantize_q8_1(rec, x.whole(), xq, k32, n32).unwrap()
                    })
                    .unwrap();
                    println!("| (quantize_q8_1 of x) | | {k} | {n} | int8 | | {us:.1} | | |");
                }
            }
        }
    }
}

/// `VKGRAPH_BENCH_VECQ_SHAPE=WGxROWS` overrides the integer-dot launch shape (tuning).
fn shape_from_env() -> Option<MatVecShape> {
    let s = std::env::var("VKGRAPH_BENCH_VECQ_SHAPE").ok()?;
    let (a, b) = s.split_once('x')?;
    Some(MatVecShape {
        wg: a.trim().parse().ok()?,
        rows: b.trim().parse().ok()?,
    })
}
