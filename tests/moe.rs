//! The mixture-of-experts ops (qwen3moe) against their definitions (`graph::Op`): top-k
//! routing, routing weights, the expert-indexed matmul and the weighted sum, on the CPU
//! reference; and the sibling pass fusing a layer's gate and up experts.
//! Whole-model checks (every QKV mode, batch = single steps, Vulkan vs CPU) run in
//! tests/model_cpu.rs and tests/model_vulkan.rs with the other archs.

mod models;

use vkgraph::backend::cpu::ops;
use vkgraph::quant::{self, GgmlType};

fn values(n: usize, seed: u64) -> Vec<f32> {
    vkgraph::testops::values(n, seed)
}

#[test]
fn topk_is_largest_first_ties_to_lower_index() {
    let logits = [
        0.5f32, 2.0, -1.0, 2.0, 0.7, /* token 2 */ 3.0, 3.0, 3.0, 1.0, 0.0,
    ];
    let mut ids = [0i32; 6];
    ops::moe_topk(&logits, 5, 3, &mut ids);
    assert_eq!(ids, [1, 3, 4, 0, 1, 2]);
}

#[test]
fn weights_are_the_softmax_of_the_chosen_logits_and_sum_to_one() {
    let ne = 8;
    let logits = values(ne * 3, 7);
    let mut ids = vec![0i32; 2 * 3];
    ops::moe_topk(&logits, ne, 2, &mut ids);
    let mut w = vec![0f32; 6];
    ops::moe_weights(&logits, ne, &ids, 2, &mut w);
    for t in 0..3 {
        let (a, b) = (
            logits[t * ne + ids[2 * t] as usize],
            logits[t * ne + ids[2 * t + 1] as usize],
        );
        assert!(a >= b);
        // Full softmax over all experts, then renormalized over the chosen two.
        let z: f64 = logits[t * ne..][..ne]
            .iter()
            .map(|&l| (l as f64).exp())
            .sum();
        let (pa, pb) = ((a as f64).exp() / z, (b as f64).exp() / z);
        let want = [pa / (pa + pb), pb / (pa + pb)];
        for s in 0..2 {
            assert!(
                (w[2 * t + s] as f64 - want[s]).abs() < 1e-6,
                "token {t} slot {s}"
            );
        }
        assert!(((w[2 * t] + w[2 * t + 1]) as f64 - 1.0).abs() < 1e-6);
    }
}

/// MUL_MAT_ID equals, slot by slot, the plain matmul of the chosen expert's matrix, for
/// every weight type, shared (nx = 1) and per-slot (nx = n_used) inputs, and experts that
/// receive no token.
#[test]
fn mul_mat_id_equals_per_expert_matmul_every_type() {
    let (n_expert, n_used, n) = (5usize, 2usize, 3usize);
    for ty in GgmlType::WEIGHT_TYPES {
        let k = ty.block_size().max(32) * 2;
        let m = 7;
        let w: Vec<f32> = values(k * m * n_expert, 11);
        let Ok(wq) = quant::quantize(ty, &w) else {
            continue;
        };
        let rb = ty.row_bytes(k).unwrap();
        // Expert 2 and 4 get no token.
        let ids = [3i32, 0, 1, 3, 0, 1];
        for nx in [1usize, n_used] {
            let x = values(k * nx * n, 13);
            let mut got = vec![0f32; m * n_used * n];
            ops::mul_mat_id(ty, &wq, k, m, &x, nx, &ids, n_used, &mut got).unwrap();
            for t in 0..n {
                for s in 0..n_used {
                    let e = ids[t * n_used + s] as usize;
                    let we = &wq[e * m * rb..][..m * rb];
                    let xr = &x[(t * nx + s % nx) * k..][..k];
                    let mut want = vec![0f32; m];
                    ops::mul_mat(ty, &[we], &[m], k, xr, 1, &mut want).unwrap();
                    let row = &got[(t * n_used + s) * m..][..m];
                    for i in 0..m {
                        let d = (row[i] - want[i]).abs();
                        assert!(
                            d <= 1e-5 * (1.0 + want[i].abs()),
                            "{ty} nx={nx} t={t} s={s} row {i}: {} vs {}",
                            row[i],
                            want[i]
                        );
                    }
                }
            }
        }
        let mut out = vec![0f32; m * n_used * n];
        let bad = [0i32, 5, 1, 1, 0, 0];
        let e = ops::mul_mat_id(ty, &wq, k, m, &values(k * n, 1), 1, &bad, n_used, &mut out);
        assert!(e.unwrap_err().to_string().contains("expert id 5"), "{ty}");
    }
}

#[test]
fn moe_sum_weights_each_slot() {
    let (ne0, n_used, n) = (4usize, 3usize, 2usize);
    let y = values(ne0 * n_used * n, 3);
    let w = values(n_used * n, 4);
    let mut got = vec![0f32; ne0 * n];
    ops::moe_sum(&y, ne0, n_used, &w, &mut got);
    for t in 0..n {
        for i in 0..ne0 {
            let want: f32 = (0..n_used)
                .map(|s| w[t * n_used + s] * y[(t * n_used + s) * ne0 + i])
                .sum();
            assert!((got[t * ne0 + i] - want).abs() < 1e-5, "t {t} i {i}");
        }
    }
}

/// The sibling pass fuses a MoE layer's gate and up experts (same type) into one
/// MUL_MAT_ID over both stacks in `fuse` and `auto`, says so in the dump, and leaves them
/// apart in `off` and `reorder`; at fusion `layer` the SwiGLU that reads both halves is
/// folded into it (MUL_MAT_ID_SWIGLU, a decision line per layer).
#[test]
fn gate_up_experts_fuse_in_fuse_and_auto() {
    use vkgraph::passes::QkvMode;
    let m = models::tiny_model("qwen3moe", "q4_k_m");
    for mode in QkvMode::ALL {
        let g = layer_fused(&m, 3, 3, mode);
        // At fusion `layer` the fused gate/up also takes the SwiGLU in its epilogue.
        let fused = g
            .order()
            .filter(|&n| g.node(n).op.name() == "MUL_MAT_ID_SWIGLU")
            .count();
        let apart = g
            .order()
            .filter(|&n| g.node(n).op.name() == "MUL_MAT_ID_FUSED")
            .count();
        assert_eq!(
            apart, 0,
            "{mode}: a fused gate/up without its SwiGLU epilogue"
        );
        let folds = g
            .fusions
            .iter()
            .filter(|d| {
                d.text.starts_with("folded blk.")
                    && d.text
                        .contains("ffn_gate_up_exps + SWIGLU → MUL_MAT_ID_SWIGLU")
            })
            .count();
        assert_eq!(folds, fused, "{mode}: {:?}", g.fusions);
        let lines: Vec<&str> = g
            .decisions
            .iter()
            .map(|d| d.text.as_str())
            .filter(|t| t.contains("experts"))
            .collect();
        assert_eq!(lines.len(), m.hp.n_layer, "{mode}: {lines:?}");
        let want_fused = matches!(mode, QkvMode::Fuse | QkvMode::Group | QkvMode::Auto);
        assert_eq!(fused, if want_fused { m.hp.n_layer } else { 0 }, "{mode}");
        if want_fused {
            assert!(
                lines[0].starts_with("fused  blk.0 experts ffn_gate_up_exps = ffn_gate_exps (q4_K), ffn_up_exps (q4_K)"),
                "{mode}: {}",
                lines[0]
            );
        }
    }
}

/// Decode batches' gate/up experts route themselves (`Op::MulMatId { route }`: they read
/// the router's logits, not MOE_TOPK's ids), in every mode — fused with SwiGLU or two
/// stacks apart — with a `routed` line each; the down experts (one x row per slot) keep
/// the ids; batches of more than `ROUTE_MAX_N` tokens do not route, and say why.
#[test]
fn decode_gate_up_experts_route_themselves() {
    use vkgraph::graph::Op;
    use vkgraph::passes::{self, QkvMode};
    let m = models::tiny_model("qwen3moe", "q4_k_m");
    for n_tokens in [1usize, 8, 9] {
        for mode in QkvMode::ALL {
            let g = layer_fused(&m, n_tokens, 1, mode);
            let routed: Vec<_> = g
                .order()
                .filter(|&n| matches!(g.node(n).op, Op::MulMatId { route: Some(_), .. }))
                .collect();
            let apart = !matches!(mode, QkvMode::Fuse | QkvMode::Group | QkvMode::Auto);
            let per_layer = if apart { 2 } else { 1 };
            let want = if n_tokens <= passes::layer::ROUTE_MAX_N {
                per_layer * m.hp.n_layer
            } else {
                0
            };
            assert_eq!(routed.len(), want, "{mode} n={n_tokens}: {:?}", g.fusions);
            for &n in &routed {
                let node = g.node(n);
                // The third source is the router's logits [n_expert, n], f32.
                let l = g.tensor(node.srcs[2]);
                assert_eq!(l.ne[1], n_tokens, "{mode}");
                assert!(
                    g.tensor(node.srcs[1]).ne[1] == 1,
                    "{mode}: a down expert routed"
                );
            }
            let lines = g
                .fusions
                .iter()
                .filter(|d| d.text.starts_with("routed blk."))
                .count();
            assert_eq!(lines, want, "{mode} n={n_tokens}");
            if n_tokens > passes::layer::ROUTE_MAX_N {
                assert!(
                    g.fusions
                        .iter()
                        .any(|d| d.text.contains("after its MOE_TOPK")
                            && d.text.contains("decode batches")),
                    "{mode}: {:?}",
                    g.fusions
                );
            }
        }
    }
}

/// `m`'s graph for `n_tokens` tokens (`n_outputs` of them with logits), through every
/// pass at fusion `layer` in `mode`, for any backend.
fn layer_fused(
    m: &vkgraph::model::Model,
    n_tokens: usize,
    n_outputs: usize,
    mode: vkgraph::passes::QkvMode,
) -> vkgraph::graph::Graph {
    use vkgraph::model::{build_graph, BuildOpts};
    use vkgraph::passes;
    let o = BuildOpts {
        n_tokens,
        n_ctx: 16,
        n_outputs,
    };
    let mut g = build_graph(m, &o).unwrap();
    passes::run(
        &mut g,
        mode,
        &Default::default(),
        passes::FusionLevel::Layer,
        &passes::any_backend,
        &passes::any_group,
    );
    g
}
