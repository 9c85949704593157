//! The decode attention benchmark: one query token (`n` = 1) over an f16 KV cache at
//! llama-8B's heads (d = 128, 32 query / 8 kv heads) and qwen3-0.6B's (16 / 8), at
//! several context lengths, in two modes:
//!
//! - `L2`: one cache, attended again and again (up to ~60 MB it may stay in the
//!   last-level cache — the tests/vk_ops.rs `perf` figures are of this kind);
//! - `DRAM`: a rotation through copies of the cache whose total exceeds 4x the cache
//!   (`VKGRAPH_BENCH_L2_MB`, default 60 = the H200's L2), so every dispatch streams its
//!   K and V rows from device memory, as a layer's attention does in a decode step.
//!
//! Per case it times the launch the executor plans (`split_shape` at the cache's rows:
//! `default`), the split count the eighteenth session rounded down (`floor`, where it
//! differs: a 4,192-row cache attended past 4,096 rows took two rounds per workgroup),
//! 64 rows per split workgroup (`rows64`, `VKGRAPH_ATTN_SPLIT_ROWS=64`), the first
//! tile's K and V rows loaded before q (`vpre`, `VKGRAPH_ATTN_VPRE=1`), one query head
//! per workgroup (`qb1`), four sub-blocks of 64 rows per workgroup with half the splits
//! (`sb4`) and one workgroup per head group (`unsplit`). Each figure is the median of `REPS` dispatches timed by GPU timestamps
//! with a barrier after each; GB/s counts the K and V bytes of the attended rows; the
//! reference is the fastest 1 GiB copy in the same run (`benches/common/dram.rs`; bytes
//! read + written).
//! `cargo bench --bench attention` (`VKGRAPH_BENCH_SMALL=1`: small caches, for lavapipe).
//! It measures; it asserts nothing about speed.

use vkgraph::backend::vulkan::dispatch::attention::{self, SplitShape};
use vkgraph::backend::vulkan::{Buffer, ContextOptions, MemoryLocation, VulkanContext};

#[path = "common/dram.rs"]
mod dram;
#[path = "common/gpu_time.rs"]
mod gpu_time;

const REPS: usize = 40;
const D: u32 = 128;

/// A buffer holding `bytes`, uploaded (contents matter only as far as they stay finite).
fn filled(ctx: &VulkanContext, bytes: &[u8], name: &str) -> Buffer {
    let b = ctx
        .create_buffer(bytes.len() as u64, MemoryLocation::Device, name)
        .unwrap();
    ctx.upload(&b, 0, bytes).unwrap();
    b
}

fn main() {
    let ctx = match VulkanContext::new(&ContextOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("attention bench: no Vulkan device ({e})");
            return;
        }
    };
    let caps = ctx.caps().clone();
    let small = std::env::var_os("VKGRAPH_BENCH_SMALL").is_some();
    let (l2_mb, dram_total) = dram::dram_rotation();
    // Reference bandwidth: copy.comp over a large buffer (bytes read + written).
    let copy_bytes: u64 = if small { 64 << 20 } else { 1 << 30 };
    let Some(us) = dram::copy_times(&ctx, copy_bytes, 5) else {
        eprintln!("attention bench: no GPU timestamps on {}", caps.name);
        return;
    };
    let gbs = us.map(|u| 2.0 * copy_bytes as f64 / (u * 1e3));
    let bw = gbs.into_iter().fold(0.0, f64::max);
    println!(
        "# decode attention on {} ({}); copy of {} MiB (read + write): vkCmdCopyBuffer \
         {:.0} GB/s, copy.comp {:.0}, copy_vec4 {:.0}; reference (the fastest) {bw:.0} GB/s; \
         L2 taken as {l2_mb} MB: DRAM mode rotates >= {} MB",
        caps.name,
        caps.driver_info,
        copy_bytes >> 20,
        gbs[0],
        gbs[1],
        gbs[2],
        dram_total >> 20
    );
    println!("| heads | cache rows | attended | launch | mode | µs | GB/s | % of copy |");
    println!("|---|---:|---:|---|---|---:|---:|---:|");

    // (cache rows, attended rows): power-of-two lengths, and bench -d 4096's cache
    // (4,096 + 64 generated + 32 spare rows) attended past 4,096.
    let cases: &[(u32, u32)] = if small {
        &[(256, 256), (700, 650)]
    } else {
        &[
            (512, 512),
            (2048, 2048),
            (4096, 4096),
            (4192, 4160),
            (8192, 8192),
        ]
    };
    for &(nh, nkv) in &[(32u32, 8u32), (16, 8)] {
        let scale = 1.0 / (D as f32).sqrt();
        let qv: Vec<f32> = (0..D * nh).map(|i| ((i % 13) as f32 - 6.0) / 6.0).collect();
        let q = filled(&ctx, bytemuck::cast_slice(&qv), "q");
        let dst = ctx
            .create_buffer(u64::from(D * nh) * 4, MemoryLocation::Device, "dst")
            .unwrap();
        for &(n_kv, len) in cases {
            // K then V, each [d, nkv, n_kv] f16, in one buffer per copy.
            let half_bytes = u64::from(D * nkv * n_kv) * 2;
            let kv: Vec<u16> = (0..2 * D * nkv * n_kv)
                .map(|i| half::f16::from_f32(((i * 37 % 101) as f32 - 50.0) / 100.0).to_bits())
                .collect();
            let copies = (dram_total.div_ceil(2 * half_bytes) as usize).max(2);
            let caches: Vec<Buffer> = (0..copies)
                .map(|i| filled(&ctx, bytemuck::cast_slice(&kv), &format!("kv{i}")))
                .collect();
            let span = filled(&ctx, bytemuck::cast_slice(&[0i32, len as i32 - 1]), "span");
            let plan = |rows: u32| {
                attention::split_shape(
                    &caps,
                    D,
                    nh,
                    nkv,
                    1,
                    n_kv,
                    // Small (lavapipe) runs split too, where a CPU device would not.
                    small,
                    attention::MIN_SPLIT_ROWS,
                    rows,
                )
            };
            let mut launches: Vec<(&str, Option<SplitShape>)> = Vec::new();
            if let Some(sh) = plan(attention::ROWS_PER_SPLIT) {
                launches.push(("default", Some(sh)));
                let floor = (n_kv / attention::ROWS_PER_SPLIT).min(attention::MAX_NZ);
                if floor != sh.nz && floor >= 2 {
                    launches.push(("floor", Some(SplitShape { nz: floor, ..sh })));
                }
                launches.push((
                    "vpre",
                    Some(SplitShape {
                        preload_v: true,
                        ..sh
                    }),
                ));
                if sh.qb > 1 {
                    launches.push(("qb1", Some(SplitShape { qb: 1, ..sh })));
                }
                // Four sub-blocks: 256 rows per workgroup in one round, half the splits
                // (at most two heads per workgroup: shared memory).
                launches.push((
                    "sb4",
                    Some(SplitShape {
                        sub_blocks: 4,
                        qb: sh.qb.min(2),
                        nz: n_kv.div_ceil(4 * 64).clamp(2, attention::MAX_NZ),
                        ..sh
                    }),
                ));
            }
            if let Some(sh) = plan(64) {
                launches.push(("rows64", Some(sh)));
            }
            launches.push(("unsplit", None));
            let bytes = 2.0 * f64::from(D * nkv * len) * 2.0;
            for (name, shape) in launches {
                let scratch_bytes = shape.map_or(16, |s| s.scratch_bytes(D, nh, 1));
                let scratch = filled(&ctx, &vec![0u8; scratch_bytes as usize], "scratch");
                for (mode, rot) in [("L2", 1usize), ("DRAM", copies)] {
                    let us = gpu_time::time_indexed(&ctx, REPS, &|rec, i| {
                        let c = &caches[i % rot];
                        let (k, v) = (c.range(0, half_bytes), c.range(half_bytes, half_bytes));
                        match shape {
                            Some(sh) => attention::attention_split(
                                rec,
                                q.whole(),
                                k,
                                v,
                                span.whole(),
                                dst.whole(),
                                scratch.whole(),
                                sh,
                                D,
                                nh,
                                nkv,
                                1,
                                n_kv,
                                scale,
                            ),
                            None => attention::attention(
                                rec,
                                q.whole(),
                                k,
                                v,
                                span.whole(),
                                dst.whole(),
                                D,
                                nh,
                                nkv,
                                1,
                                n_kv,
                                scale,
                            ),
                        }
                    });
                    let Some(us) = us else {
                        println!("| {nh}/{nkv} | {n_kv} | {len} | {name} | {mode} | failed | | |");
                        continue;
                    };
                    let gbs = bytes / (us * 1e3);
                    let launch = match shape {
                        Some(s) => format!(
                            "{name} (nz {}, qb {}, {} sub-blocks)",
                            s.nz, s.qb, s.sub_blocks
                        ),
                        None => name.to_string(),
                    };
                    println!(
                        "| {nh}/{nkv} | {n_kv} | {len} | {launch} | {mode} | {us:.1} | {gbs:.0} | {:.0} % |",
                        100.0 * gbs / bw
                    );
                }
            }
        }
    }
}
