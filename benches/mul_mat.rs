//! Criterion benches of the matmul kernels per weight type at llama-8B shapes
//! (ffn_down: m = 4096, k = 14336), mat-vec (n = 1) and tiled (n = 512), on the first
//! Vulkan device. Time is GPU time from timestamp queries (`iter_custom`), so the
//! reported throughput is the kernel's own: bytes of weights per second for n = 1,
//! and criterion's element throughput = flops for n = 512.
//!
//! `cargo bench --bench mul_mat`; set `VKGRAPH_BENCH_SMALL=1` on lavapipe (its 128 MiB
//! storage range cannot hold the f32 and f16 matrices of this shape).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vkgraph::backend::vulkan::dispatch::mul_mat::{mul_mat, supports};
use vkgraph::backend::vulkan::{ContextOptions, MemoryLocation, VulkanContext};
use vkgraph::quant::{self, GgmlType};

fn bench(c: &mut Criterion) {
    let ctx = match VulkanContext::new(&ContextOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mul_mat bench: no Vulkan device ({e})");
            return;
        }
    };
    let small = std::env::var_os("VKGRAPH_BENCH_SMALL").is_some();
    let (m, k) = if small { (512, 2048) } else { (4096, 14336) };
    let max = ctx.caps().max_storage_buffer_range;
    let mut group = c.benchmark_group(format!("mul_mat[{}]", ctx.caps().short_name()));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for ty in GgmlType::WEIGHT_TYPES {
        if !supports(ty) {
            continue;
        }
        let wbytes = ty.row_bytes(k).unwrap() * m;
        if wbytes as u64 > max {
            eprintln!("skip {ty}: {wbytes} bytes exceed the storage-buffer range");
            continue;
        }
        // Quantize one row and repeat it: content does not change the kernel's cost.
        let row: Vec<f32> = (0..k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let q = quant::quantize(ty, &row).unwrap();
        let w_data: Vec<u8> = q.iter().copied().cycle().take(wbytes).collect();
        let w = ctx
            .create_buffer(wbytes as u64, MemoryLocation::Device, "w")
            .unwrap();
        ctx.upload(&w, 0, &w_data).unwrap();
        for n in [1usize, 512] {
            let x = ctx
                .create_buffer((k * n * 4) as u64, MemoryLocation::Device, "x")
                .unwrap();
            ctx.upload(&x, 0, &vec![0u8; k * n * 4]).unwrap();
            let d = ctx
                .create_buffer((m * n * 4) as u64, MemoryLocation::Device, "d")
                .unwrap();
            if n == 1 {
                group.throughput(Throughput::Bytes(wbytes as u64));
            } else {
                group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            }
            let name = if n == 1 { "mul_mat_vec" } else { "mul_mat" };
            group.bench_function(
                BenchmarkId::new(name, format!("type={ty},m={m},k={k},n={n}")),
                |b| {
                    b.iter_custom(|iters| {
                        let mut rec = ctx.recorder().unwrap();
                        rec.begin().unwrap();
                        rec.timestamp("start").unwrap();
                        for _ in 0..iters {
                            mul_mat(
                                &mut rec,
                                ty,
                                w.whole(),
                                x.whole(),
                                d.whole(),
                                k as u32,
                                m as u32,
                                n as u32,
                                &[],
                            )
                            .unwrap();
                            rec.barrier().unwrap();
                        }
                        rec.timestamp("end").unwrap();
                        rec.submit_and_wait().unwrap();
                        let ts = rec.timestamps();
                        Duration::from_nanos((ts[1].ns - ts[0].ns) as u64)
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
