//! Launch-shape sweep of the decode mat-vecs at a small model's shapes (qwen3-0.6B: k =
//! 1024 QKV and gate/up with the norm prologue, attn_output and ffn_down with the residual
//! epilogue): µs per dispatch (GPU timestamps, a barrier after each, median of `REPS`) of
//! `mul_mat_vec_layer` for every (workgroup width × rows) in `SHAPES`, and of the plain
//! mat-vec at its default shape, for q4_0 and q4_K. What `VKGRAPH_MMV_SHAPE` and the
//! per-shape defaults in `dispatch::mul_mat` are chosen from. `cargo bench --bench
//! decode_shapes`. It measures; it asserts nothing about speed.

use vkgraph::backend::vulkan::dispatch::mul_mat::{
    mul_mat, mul_mat_vec_layer, LayerEpi, LayerParts, MatVecShape,
};
use vkgraph::backend::vulkan::{ContextOptions, MemoryLocation, VulkanContext};
use vkgraph::quant::{self, GgmlType};

#[path = "common/gpu_time.rs"]
mod gpu_time;

const REPS: usize = 50;
const SHAPES: [(u32, u32); 8] = [
    (32, 2),
    (64, 2),
    (128, 2),
    (32, 4),
    (64, 4),
    (128, 4),
    (32, 8),
    (64, 8),
];

fn main() {
    let ctx = match VulkanContext::new(&ContextOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("decode_shapes bench: no Vulkan device ({e})");
            return;
        }
    };
    let caps = ctx.caps().clone();
    println!(
        "# decode mat-vec shapes on {} ({})",
        caps.name, caps.driver_info
    );
    // (label, k, rows per segment, segments, norm, epilogue 0/1/2)
    let cases: [(&str, u32, u32, u32, bool, u8); 4] = [
        ("gate/up + norm + swiglu", 1024, 3072, 2, true, 2),
        ("qkv + norm", 1024, 1024, 4, true, 0),
        ("ffn_down + add", 3072, 1024, 1, false, 1),
        ("attn_output + add", 2048, 1024, 1, false, 1),
    ];
    let mut head = String::from("| type | case | plain (default) |");
    for (wg, r) in SHAPES {
        head += &format!(" {wg}x{r} |");
    }
    println!("{head}\n|---|---|---:|{}", "---:|".repeat(SHAPES.len()));
    for ty in [GgmlType::Q4_0, GgmlType::Q4K] {
        for (label, k, m, segs, norm, epi) in cases {
            let rows = m * segs;
            let row: Vec<f32> = (0..k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let q = quant::quantize(ty, &row).unwrap();
            let wbytes = q.len() * rows as usize;
            let w_data: Vec<u8> = q.iter().copied().cycle().take(wbytes).collect();
            let buf = |bytes: usize, name: &str| {
                ctx.create_buffer(bytes as u64, MemoryLocation::Device, name)
                    .unwrap()
            };
            let w = buf(wbytes, "w");
            ctx.upload(&w, 0, &w_data).unwrap();
            let f32s = |n: u32| -> Vec<u8> {
                (0..n)
                    .flat_map(|i| (((i * 13) % 17) as f32 / 17.0 - 0.5).to_le_bytes())
                    .collect()
            };
            let x = buf(4 * k as usize, "x");
            ctx.upload(&x, 0, &f32s(k)).unwrap();
            let nw = buf(4 * k as usize, "nw");
            ctx.upload(&nw, 0, &f32s(k)).unwrap();
            let r = buf(4 * rows as usize, "r");
            ctx.upload(&r, 0, &f32s(rows)).unwrap();
            let d = buf(4 * rows as usize, "d");
            let split: Vec<u32> = if segs > 1 {
                vec![m; segs as usize]
            } else {
                vec![]
            };
            let plain = gpu_time::time(&ctx, REPS, &|rec| {
                mul_mat(rec, ty, w.whole(), x.whole(), d.whole(), k, rows, 1, &split)
            });
            let mut line = format!(
                "| {ty} | {label} (k={k}, m={rows}) | {} |",
                plain.map_or("—".into(), |v| format!("{v:.2}"))
            );
            for (wg, nr) in SHAPES {
                let us = gpu_time::time(&ctx, REPS, &|rec| {
                    let parts = LayerParts {
                        norm: norm.then(|| (nw.whole(), 1e-6)),
                        epi: match epi {
                            1 => LayerEpi::Add(r.whole()),
                            2 => LayerEpi::SwiGlu,
                            _ => LayerEpi::None,
                        },
                        scale: 1.0,
                        int8: None,
                    };
                    mul_mat_vec_layer(
                        rec,
                        ty,
                        w.whole(),
                        x.whole(),
                        parts,
                        d.whole(),
                        k,
                        rows,
                        1,
                        &split,
                        Some(MatVecShape { wg, rows: nr }),
                    )
                });
                line += &format!(" {} |", us.map_or("—".into(), |v| format!("{v:.2}")));
            }
            println!("{line}");
        }
    }
}
