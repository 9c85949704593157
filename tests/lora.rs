//! LoRA adapters (`model::lora`): logits on Vulkan equal the CPU reference in every QKV
//! mode with the base siblings still fused; bad adapters are typed errors naming the
//! file and tensor. Parity with llama.cpp's `--lora`: tests/parity.rs.

mod models;

use std::path::PathBuf;
use std::sync::Arc;

use models::{nmse, prompt};
use vkgraph::backend::cpu::CpuBackend;
use vkgraph::backend::vulkan::{enumerate_devices, ContextOptions, VulkanBackend};
use vkgraph::backend::Backend;
use vkgraph::model::gen::{generate_lora, generate_lora_as};
use vkgraph::model::Model;
use vkgraph::passes::{FusionLevel, QkvMode};
use vkgraph::quant::GgmlType;
use vkgraph::sched::session::{Session, SessionOptions};

fn adapter(base: &std::path::Path, targets: &[&str], tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("vkgraph-lora-{}-{tag}.gguf", std::process::id()));
    generate_lora(&Model::open(base).unwrap(), targets, 16, 32.0, 7, &p).unwrap();
    p
}

/// [`adapter`] with factors of type `ty` and rank `rank`, alpha 4·rank (a scale of 4: a
/// change in k's correction moves the logits past the tests' bound, as q's and v's do at 2).
fn adapter_as(
    base: &std::path::Path,
    targets: &[&str],
    rank: usize,
    ty: GgmlType,
    tag: &str,
) -> PathBuf {
    let p = std::env::temp_dir().join(format!("vkgraph-lora-{}-{tag}.gguf", std::process::id()));
    let m = Model::open(base).unwrap();
    generate_lora_as(&m, targets, rank, 4.0 * rank as f32, 7, ty, &p).unwrap();
    p
}

fn logits(
    m: &Arc<Model>,
    backends: Vec<Box<dyn Backend>>,
    mode: QkvMode,
    limits: vkgraph::passes::SiblingLimits,
) -> Vec<f32> {
    logits_at(m, backends, mode, limits, FusionLevel::Layer)
}

/// [`logits`] on Vulkan device `index` (the CPU beside it for what it refuses), validated
/// where the test run asks for it.
fn vk_logits(m: &Arc<Model>, index: usize, mode: QkvMode) -> Vec<f32> {
    let opts = ContextOptions {
        device_index: Some(index),
        validation: std::env::var("VKGRAPH_REQUIRE_VALIDATION").is_ok_and(|v| v == "1"),
        ..Default::default()
    };
    let vk = VulkanBackend::new(m.clone(), &opts).unwrap();
    let limits = vk.sibling_limits();
    logits(
        m,
        vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))],
        mode,
        limits,
    )
}

/// [`logits`] at fusion level `fusion`.
fn logits_at(
    m: &Arc<Model>,
    backends: Vec<Box<dyn Backend>>,
    mode: QkvMode,
    limits: vkgraph::passes::SiblingLimits,
    fusion: FusionLevel,
) -> Vec<f32> {
    let mut s = Session::new(
        m.clone(),
        backends,
        SessionOptions {
            qkv: mode,
            fusion,
            n_ctx: 32,
            limits,
            ..Default::default()
        },
    );
    let mut out = s.forward(&prompt(12), true).unwrap();
    out.extend(s.forward(&[5], true).unwrap());
    out
}

/// The sibling pass's decision lines for a one-token graph of `m` in `mode`.
fn decisions(m: &Arc<Model>, mode: QkvMode) -> Vec<String> {
    passes_of(m, mode).0
}

/// The decode graph's stages per layer at fusion level `layer`: (stages, layers).
fn stages(m: &Arc<Model>) -> (usize, usize) {
    let g = passes_of(m, QkvMode::Auto).1;
    (g.schedule.len(), m.hp.n_layer)
}

/// A one-token graph of `m` after the passes (fusion layer, any backend): the sibling
/// pass's decisions, the graph (its `fusions` hold the layer pass's lines).
fn passes_of(m: &Arc<Model>, mode: QkvMode) -> (Vec<String>, vkgraph::graph::Graph) {
    let mut g = vkgraph::model::build_graph(
        m,
        &vkgraph::model::BuildOpts {
            n_tokens: 1,
            n_ctx: 8,
            n_outputs: 1,
        },
    )
    .unwrap();
    vkgraph::passes::run(
        &mut g,
        mode,
        &Default::default(),
        vkgraph::passes::FusionLevel::Layer,
        &vkgraph::passes::any_backend,
        &vkgraph::passes::any_group,
    );
    (g.decisions.iter().map(|d| d.text.clone()).collect(), g)
}

#[test]
fn adapters_on_vulkan_match_cpu_in_every_mode_and_keep_fusion() {
    let targets = vkgraph::model::lora::TARGETS;
    for (arch, quant) in [("qwen3", "q4_0"), ("llama", "q4_k_m")] {
        let base = models::tiny(arch, quant);
        let ad = adapter(&base, &targets, &format!("{arch}-{quant}"));
        let m = Arc::new(Model::open_with_lora(&base, &[(ad.clone(), 0.7)]).unwrap());
        let plain = Arc::new(Model::open(&base).unwrap());
        let want = logits(
            &m,
            vec![Box::new(CpuBackend::new(m.clone()))],
            QkvMode::Off,
            Default::default(),
        );
        let without = logits(
            &plain,
            vec![Box::new(CpuBackend::new(plain.clone()))],
            QkvMode::Off,
            Default::default(),
        );
        assert!(
            nmse(&without, &want) > 1e-3,
            "{arch}: the adapter changes nothing"
        );
        for dev in enumerate_devices().unwrap() {
            for mode in QkvMode::ALL {
                let got = vk_logits(&m, dev.index, mode);
                let e = nmse(&got, &want);
                assert!(
                    e <= 1e-4,
                    "[{}] {arch} {quant} qkv={mode}: NMSE vs CPU {e:e}",
                    dev.short_name()
                );
            }
        }
        // Decode stages an adapter on every projection adds per layer: attn_output's and
        // ffn_down's B products (each a MUL_MAT_ADD a stage after its base matmul, which
        // keeps its residual epilogue and runs beside A), gate's and up's B factors, and the
        // SWIGLU neither can take (their B factors read different A products); Q/K/V's go
        // into the attention.
        if quant == "q4_0" {
            let plain_m = Arc::new(Model::open(&base).unwrap());
            let (base_stages, layers) = stages(&plain_m);
            assert_eq!(
                stages(&m).0,
                base_stages + 4 * layers,
                "{arch}: every projection adapted"
            );
        }
        // Fusion kicks in with the adapter: Q/K/V and gate/up, and the adapters' A factors.
        let d = decisions(&m, QkvMode::Fuse);
        let qkv = d
            .iter()
            .find(|t| t.contains("blk.0") && t.contains("attn_qkv"))
            .unwrap_or_else(|| panic!("{d:?}"));
        assert!(qkv.contains("attn_qkv.weight.lora_a = "), "{qkv}");
        // group: a mixed-type Q/K/V (q4_k_m's layer 1: attn_v q6_K) is grouped without
        // its adapters' A factors, which fuse among themselves beside it.
        if quant == "q4_k_m" {
            let d = decisions(&m, QkvMode::Group);
            let qkv = d
                .iter()
                .find(|t| t.contains("blk.1") && t.contains("attn_qkv"))
                .unwrap_or_else(|| panic!("{d:?}"));
            assert!(
                qkv.starts_with(
                    "grouped blk.1 attn_qkv = attn_q (q4_K) + attn_k (q4_K) + attn_v (q6_K) — 1 \
                     dispatch instead of 3; attn_qkv.weight.lora_a = "
                ),
                "{qkv}"
            );
        }
        let _ = std::fs::remove_file(&ad);
    }
}

/// The layer pass's lines for `m`'s decode graph that contain `what`, one per layer.
fn fold_lines(m: &Arc<Model>, what: &str, layers: usize, tag: &str) -> Vec<String> {
    let g = passes_of(m, QkvMode::Auto).1;
    let folds: Vec<String> = g
        .fusions
        .iter()
        .map(|d| d.text.clone())
        .filter(|t| t.contains(what))
        .collect();
    assert_eq!(folds.len(), layers, "{tag}: {:?}", g.fusions);
    folds
}

/// `m`'s folded decode (CPU, and every Vulkan device) against the CPU's unfused path
/// (fusion none, qkv off), which must differ from the plain model's.
fn folded_matches_unfused(m: &Arc<Model>, plain: &Arc<Model>, tag: &str) {
    let unfused = |ms: &Arc<Model>| {
        logits_at(
            ms,
            vec![Box::new(CpuBackend::new(ms.clone()))],
            QkvMode::Off,
            Default::default(),
            FusionLevel::None,
        )
    };
    let want = unfused(m);
    assert!(
        nmse(&unfused(plain), &want) > 1e-3,
        "{tag}: the adapter changes nothing"
    );
    let cpu = logits(
        m,
        vec![Box::new(CpuBackend::new(m.clone()))],
        QkvMode::Auto,
        Default::default(),
    );
    let e = nmse(&cpu, &want);
    assert!(e <= 1e-8, "{tag}: CPU folded vs unfused NMSE {e:e}");
    for dev in enumerate_devices().unwrap() {
        let e = nmse(&vk_logits(m, dev.index, QkvMode::Auto), &want);
        assert!(e <= 1e-4, "[{}] {tag}: NMSE vs CPU {e:e}", dev.short_name());
    }
}

/// An adapted ffn_up (or ffn_gate) without the other: its B factor adds its product to
/// that half of the fused gate/up output and applies the SwiGLU itself
/// (MUL_MAT_ADD_SWIGLU, `passes::layer`): the adapter costs one stage per layer (its B
/// factor), not two; logits on the CPU and on Vulkan equal the CPU's unfused path (MUL_MAT,
/// ADD and SWIGLU apart: fusion none).
#[test]
fn an_adapted_ffn_up_or_gate_applies_the_swiglu_in_its_b_factor() {
    let base = models::tiny("qwen3", "q4_0");
    let plain = Arc::new(Model::open(&base).unwrap());
    let (base_stages, layers) = stages(&plain);
    for (targets, half) in [
        (&["attn_q", "attn_v", "ffn_up"][..], "up"),
        (&["ffn_gate"][..], "gate"),
    ] {
        let ad = adapter(&base, targets, &format!("swiglu-{half}"));
        let m = Arc::new(Model::open_with_lora(&base, &[(ad.clone(), 0.7)]).unwrap());
        let folds = fold_lines(&m, "MUL_MAT_ADD_SWIGLU", layers, half);
        assert!(
            folds[0].contains(&format!("to {half}, then writes silu(gate)·up")),
            "{}",
            folds[0]
        );
        // One stage per layer for ffn_up's (or ffn_gate's) B factor; none for the SwiGLU,
        // none for Q/V's B factors (the attention adds their products:
        // attention_adapters_fold_into_the_attention).
        assert_eq!(stages(&m).0, base_stages + layers, "{half}");
        folded_matches_unfused(&m, &plain, half);
        let _ = std::fs::remove_file(&ad);
    }
}

/// Adapters on the attention's projections only (q and v; q, k and v): at decode the
/// RoPE-folded attention adds their B factors' products to its base projections itself
/// (`attention_rope_lora`), so such an adapter adds no stage; logits on the CPU and on
/// Vulkan equal the CPU's unfused path.
#[test]
fn attention_adapters_fold_into_the_attention() {
    let base = models::tiny("qwen3", "q4_0");
    let plain = Arc::new(Model::open(&base).unwrap());
    let (base_stages, layers) = stages(&plain);
    // f32 factors of rank 16; f16 factors of rank 32 (the kernel's f16 views, another
    // rank); rank 8, below the Vulkan mat-vecs' 16-value blocks, so the backend keeps the
    // builder's B MUL_MAT / SCALE / ADD apart (on the CPU) and the attention takes those.
    for (targets, rank, ty) in [
        (&["attn_q", "attn_v"][..], 16, GgmlType::F32),
        (&["attn_q", "attn_k", "attn_v"][..], 16, GgmlType::F32),
        (&["attn_k", "attn_v"][..], 32, GgmlType::F16),
        (&["attn_q", "attn_v"][..], 8, GgmlType::F32),
    ] {
        let tag = format!("{}-r{rank}-{ty}", targets.join("-"));
        let ad = if rank == 16 {
            adapter(&base, targets, &tag)
        } else {
            adapter_as(&base, targets, rank, ty, &tag)
        };
        let m = Arc::new(Model::open_with_lora(&base, &[(ad.clone(), 0.7)]).unwrap());
        let folds = fold_lines(&m, "the attention adds their products", layers, &tag);
        let members: Vec<String> = targets
            .iter()
            .map(|t| format!("blk.0 {t}.weight.lora_b"))
            .collect();
        let want = format!("folded {} into kqv_out-0", members.join(" + "));
        assert!(folds[0].starts_with(&want), "{}", folds[0]);
        assert_eq!(stages(&m).0, base_stages, "{tag}: the adapter adds stages");
        folded_matches_unfused(&m, &plain, &tag);
        let _ = std::fs::remove_file(&ad);
    }
}

#[test]
fn bad_adapters_are_typed_errors_naming_file_and_tensor() {
    let base = models::tiny("qwen3", "q4_0");
    // Not an adapter at all: the base model itself.
    let e = Model::open_with_lora(&base, &[(base.clone(), 1.0)])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("general.type") && e.contains("not an adapter"),
        "{e}"
    );
    // An adapter made for another architecture / shape.
    let other = adapter(&models::tiny("llama", "q4_0"), &["attn_q"], "llama");
    let e = Model::open_with_lora(&base, &[(other.clone(), 1.0)])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("general.architecture") && e.contains("llama"),
        "{e}"
    );
    let _ = std::fs::remove_file(&other);
    // An adapter for a weight the model does not have: another model's tensor shapes.
    let moe = models::tiny("qwen3moe", "q4_0");
    let ad = adapter(&base, &["ffn_up"], "ffn");
    let e = Model::open_with_lora(&moe, &[(ad.clone(), 1.0)])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("general.architecture") || e.contains("ffn_up"),
        "{e}"
    );
    let _ = std::fs::remove_file(&ad);
    // Missing file.
    let e = Model::open_with_lora(&base, &[(PathBuf::from("/nonexistent/a.gguf"), 1.0)])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/a.gguf"), "{e}");
}
