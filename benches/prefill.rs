//! The prefill matmul benchmark (issue 11's kernel table): every weight type at llama-8B's
//! prompt shapes (m × k = 4096 × 14336 ffn_down, 4096 × 4096 attn_q/attn_output, 14336 ×
//! 4096 ffn_gate), n = 512 tokens (`VKGRAPH_BENCH_N` changes it), on the scalar tiled
//! kernel (`mul_mat.comp`) and, where the device has the shape, the cooperative-matrix one
//! (`mul_mat_coopmat.comp`) twice: x read as f32, and x converted to f16 first (the
//! conversion dispatch and its barrier included in the time: what the executor records
//! for a prompt matmul). Each figure is the median of `REPS` dispatches timed by GPU
//! timestamps with a barrier after each; TFLOPS counts 2·m·k·n. `cargo bench --bench
//! prefill` (on lavapipe, `VKGRAPH_BENCH_SMALL=1` shrinks the shapes;
//! `VKGRAPH_BENCH_TYPES=q4_0,q4_K` keeps only those types). It measures; it asserts
//! nothing about speed.

use vkgraph::backend::vulkan::dispatch::mul_mat::{
    coopmat_shape, mul_mat_with, CoopScratch, TiledKernel,
};
use vkgraph::backend::vulkan::{ContextOptions, MemoryLocation, Recorder, VulkanContext};
use vkgraph::quant::{self, GgmlType};

#[path = "common/gpu_time.rs"]
mod gpu_time;

const REPS: usize = 20;

fn main() {
    // VKGRAPH_PIPELINE_STATS=1: print the driver's statistics of each pipeline at the end
    // (a bench sets the option itself; crate::options reads the variable for the CLI).
    let stats = std::env::var("VKGRAPH_PIPELINE_STATS").is_ok_and(|v| v == "1");
    let ctx = match VulkanContext::new(&ContextOptions {
        pipeline_stats: stats,
        ..Default::default()
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("prefill bench: no Vulkan device ({e})");
            return;
        }
    };
    let caps = ctx.caps().clone();
    let small = std::env::var_os("VKGRAPH_BENCH_SMALL").is_some();
    let n: usize = std::env::var("VKGRAPH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if small { 64 } else { 512 });
    let shapes: &[(usize, usize)] = if small {
        &[(256, 1024)]
    } else {
        &[(4096, 14336), (4096, 4096), (14336, 4096)]
    };
    let coop = coopmat_shape(&caps).is_some();
    println!(
        "# prefill matmul on {} ({}), n = {n}",
        caps.name, caps.driver_info
    );
    println!("| type | m | k | n | kernel | µs | TFLOPS |");
    println!("|---|---:|---:|---:|---|---:|---:|");
    let only: Option<Vec<String>> = std::env::var("VKGRAPH_BENCH_TYPES")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    for ty in GgmlType::WEIGHT_TYPES {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|t| t == ty.name()))
        {
            continue;
        }
        for &(m, k) in shapes {
            let Some(row_bytes) = ty.row_bytes(k) else {
                continue;
            };
            let wbytes = row_bytes * m;
            if wbytes as u64 > caps.max_storage_buffer_range
                || (k * n * 4) as u64 > caps.max_storage_buffer_range
            {
                continue;
            }
            // One quantized row repeated: content does not change the kernel's cost.
            let row: Vec<f32> = (0..k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let Ok(q) = quant::quantize(ty, &row) else {
                continue;
            };
            let w_data: Vec<u8> = q.iter().copied().cycle().take(wbytes).collect();
            let w = ctx
                .create_buffer(wbytes as u64, MemoryLocation::Device, "w")
                .unwrap();
            ctx.upload(&w, 0, &w_data).unwrap();
            let x = ctx
                .create_buffer((k * n * 4) as u64, MemoryLocation::Device, "x")
                .unwrap();
            let xs: Vec<u8> = (0..k * n)
                .flat_map(|i| (((i * 13) % 17) as f32 / 17.0 - 0.5).to_le_bytes())
                .collect();
            ctx.upload(&x, 0, &xs).unwrap();
            let d = ctx
                .create_buffer((m * n * 4) as u64, MemoryLocation::Device, "d")
                .unwrap();
            // Room for x in f16: the coopmat kernel's x16 path converts x into it first (a
            // dispatch and a barrier, timed with it), as the executor records prompt matmuls.
            let x16 = ctx
                .create_buffer((k * n * 2) as u64, MemoryLocation::Device, "x16")
                .unwrap();
            let kernels: &[(TiledKernel, bool, &str)] = if coop {
                &[
                    (TiledKernel::Scalar, false, "mul_mat"),
                    (TiledKernel::Coopmat, false, "mul_mat_coopmat (x f32)"),
                    (
                        TiledKernel::Coopmat,
                        true,
                        "mul_mat_coopmat (x f16, incl. convert)",
                    ),
                ]
            } else {
                &[(TiledKernel::Scalar, false, "mul_mat")]
            };
            for &(kernel, half, name) in kernels {
                let f = |rec: &mut Recorder| {
                    let (k, m, n) = (k as u32, m as u32, n as u32);
                    mul_mat_with(
                        rec,
                        ty,
                        w.whole(),
                        x.whole(),
                        d.whole(),
                        k,
                        m,
                        n,
                        &[],
                        None,
                        kernel,
                        half.then(|| CoopScratch {
                            range: x16.whole(),
                            split: None,
                        }),
                    )
                    .unwrap();
                    Ok(())
                };
                let Some(us) = gpu_time::time(&ctx, REPS, &f) else {
                    println!("no timestamps on this device");
                    return;
                };
                let tflops = 2.0 * (m * k * n) as f64 / (us * 1e6);
                println!("| {ty} | {m} | {k} | {n} | {name} | {us:.1} | {tflops:.1} |");
            }
        }
    }
    for line in ctx.pipeline_stats() {
        println!("pipeline {line}");
    }
}
