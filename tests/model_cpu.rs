//! The CPU reference backend on tiny generated models of every arch: finite,
//! non-degenerate logits; a batch of n tokens equals n single-token steps through the
//! KV cache; every QKV mode gives the same logits; pre-fused `attn_qkv` files work.

mod models;

use models::{nmse, prompt, tiny_model};
use vkgraph::backend::cpu::CpuBackend;
use vkgraph::passes::QkvMode;
use vkgraph::sched::session::{Session, SessionOptions};

fn session(arch: &str, quant: &str, qkv: QkvMode) -> Session {
    let m = tiny_model(arch, quant);
    let cpu = Box::new(CpuBackend::new(m.clone()));
    Session::new(
        m,
        vec![cpu],
        SessionOptions {
            qkv,
            n_ctx: 64,
            ..Default::default()
        },
    )
}

#[test]
fn logits_finite_and_spread_every_arch() {
    for arch in ["llama", "qwen2", "qwen3", "qwen3moe"] {
        let mut s = session(arch, "q8_0", QkvMode::Off);
        let l = s.forward(&prompt(4), false).unwrap();
        assert_eq!(l.len(), s.model.hp.n_vocab, "{arch}");
        assert!(l.iter().all(|v| v.is_finite()), "{arch}: non-finite logits");
        let (mn, mx) = l
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(mx - mn > 1e-2, "{arch}: degenerate logits {mn}..{mx}");
    }
}

#[test]
fn batch_equals_single_steps() {
    for arch in ["llama", "qwen2", "qwen3", "qwen3moe"] {
        let toks = prompt(5);
        let mut a = session(arch, "q4_0", QkvMode::Off);
        let batch = a.forward(&toks, true).unwrap();
        let mut b = session(arch, "q4_0", QkvMode::Off);
        let mut steps = Vec::new();
        for &t in &toks {
            steps.extend(b.forward(&[t], false).unwrap());
        }
        let e = nmse(&steps, &batch);
        assert!(e < 1e-10, "{arch}: batch vs steps NMSE {e:e}");
        assert_eq!(b.n_past(), 5);
    }
}

#[test]
fn every_qkv_mode_same_logits_on_cpu() {
    for (arch, quant) in [("llama", "q4_0"), ("qwen2", "q2_k"), ("qwen3", "q4_k_m")] {
        let toks = prompt(3);
        let mut base = session(arch, quant, QkvMode::Off);
        let want = base.forward(&toks, true).unwrap();
        for mode in [
            QkvMode::Fuse,
            QkvMode::Reorder,
            QkvMode::Group,
            QkvMode::Auto,
        ] {
            let mut s = session(arch, quant, mode);
            let got = s.forward(&toks, true).unwrap();
            let e = nmse(&got, &want);
            assert!(e < 1e-12, "{arch} {quant} {mode}: NMSE {e:e} vs off");
        }
    }
}

#[test]
fn context_full_is_an_error() {
    let mut s = session("llama", "q4_0", QkvMode::Auto);
    let err = s.forward(&prompt(65), false).unwrap_err();
    assert!(matches!(err, vkgraph::Error::ContextFull(_)), "{err}");
    let err = s.forward(&[5000], false).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}

/// Decode-layer fusion (norm prologue, residual and SwiGLU epilogues) changes dispatches,
/// not results: every arch × mix, every QKV mode, the CPU reference gives the same logits
/// at fusion levels none, ops and layer (decode steps and a prompt), and at `layer` with
/// sibling fusion each decode layer has its SWIGLU, residual ADDs and norms folded.
#[test]
fn layer_fusion_keeps_logits() {
    use vkgraph::passes::FusionLevel;
    for arch in ["llama", "qwen2", "qwen3", "qwen3moe"] {
        for quant in ["q4_0", "q2_k", "q4_k_m"] {
            let m = tiny_model(arch, quant);
            let run = |mode: QkvMode, fusion: FusionLevel| {
                let mut s = Session::new(
                    m.clone(),
                    vec![Box::new(CpuBackend::new(m.clone()))],
                    SessionOptions {
                        qkv: mode,
                        fusion,
                        n_ctx: 16,
                        ..Default::default()
                    },
                );
                let toks = prompt(6);
                let mut out = s.forward(&toks[..4], true).unwrap();
                for &t in &toks[4..] {
                    out.extend(s.forward(&[t], true).unwrap());
                }
                let (g, _) = s.plan(1, false).unwrap();
                (out, g)
            };
            let (want, _) = run(QkvMode::Off, FusionLevel::None);
            for mode in QkvMode::ALL {
                for fusion in FusionLevel::ALL {
                    let (got, g) = run(mode, fusion);
                    let e = nmse(&got, &want);
                    assert!(
                        e < 1e-12,
                        "{arch} {quant} {mode} {fusion}: NMSE {e:e} vs none"
                    );
                    let ops: Vec<&str> = g.order().map(|n| g.node(n).op.name()).collect();
                    let count = |name: &str| ops.iter().filter(|&&o| o == name).count();
                    let layers = m.hp.n_layer;
                    if fusion == FusionLevel::Layer {
                        // Residual ADDs: all folded (MoE layers keep ffn's: MOE_SUM writes it;
                        // qwen2's Q/K/V bias ADDs fold too, except on a fused output's views).
                        let adds = match arch {
                            "qwen3moe" => layers,
                            "qwen2" => 3 * layers,
                            _ => 0,
                        };
                        assert!(count("ADD") <= adds, "{arch} {quant} {mode}: {ops:?}");
                        // MoE's ffn_norm feeds the router and MUL_MAT_ID too: it stays.
                        let norms = if arch == "qwen3moe" { layers } else { 0 };
                        assert_eq!(
                            count("RMS_NORM_MUL"),
                            norms,
                            "{arch} {quant} {mode}: {ops:?}"
                        );
                        let fused_ffn = mode == QkvMode::Fuse || mode == QkvMode::Auto;
                        if fused_ffn && arch != "qwen3moe" {
                            assert_eq!(count("SWIGLU"), 0, "{arch} {quant} {mode}: {ops:?}");
                            assert_eq!(count("RMS_NORM_MUL_MAT_SWIGLU"), layers, "{ops:?}");
                        }
                        assert!(!g.fusions.is_empty());
                    } else {
                        assert!(g.fusions.is_empty(), "{arch} {fusion}: {:?}", g.fusions);
                    }
                    if fusion == FusionLevel::None {
                        assert_eq!(count("RMS_NORM_MUL"), 0, "{ops:?}");
                        assert!(count("RMS_NORM") > 0, "{ops:?}");
                    }
                }
            }
        }
    }
}

/// Op fusion (rms_norm+mul, add+rms_norm+mul, rope+set_rows, head norm+rope, moe_sum+add)
/// changes
/// dispatches, not results: the
/// builder's raw graph and the fused one give the same logits on the CPU reference.
#[test]
fn op_fusion_keeps_logits() {
    use vkgraph::backend::Backend;
    use vkgraph::graph::{Graph, TensorId};
    use vkgraph::model::{build_graph, BuildOpts};

    fn eval(m: &std::sync::Arc<vkgraph::model::Model>, g: &Graph) -> Vec<f32> {
        let mut cpu = CpuBackend::new(m.clone());
        cpu.prepare(g).unwrap();
        let ids: Vec<i32> = prompt(4).iter().map(|&t| t as i32).collect();
        let pos: Vec<i32> = (0..4).collect();
        for (name, data) in [("inp_tokens", &ids), ("inp_pos", &pos)] {
            let t = g.tensors.iter().position(|t| t.name == name).unwrap();
            cpu.set_tensor(g, TensorId(t as u32), bytemuck::cast_slice(data))
                .unwrap();
        }
        cpu.compute(g, &g.schedule.clone()).unwrap();
        bytemuck::pod_collect_to_vec(&cpu.get_tensor(g, g.outputs[0]).unwrap())
    }

    for arch in ["llama", "qwen2", "qwen3", "qwen3moe"] {
        let m = tiny_model(arch, "q8_0");
        let raw = build_graph(
            &m,
            &BuildOpts {
                n_tokens: 4,
                n_ctx: 16,
                n_outputs: 4,
            },
        )
        .unwrap();
        let mut fused = raw.clone();
        vkgraph::passes::run(
            &mut fused,
            QkvMode::Off,
            &Default::default(),
            vkgraph::passes::FusionLevel::Ops,
            &vkgraph::passes::any_backend,
            &vkgraph::passes::any_group,
        );
        let ops: Vec<&str> = fused.order().map(|n| fused.node(n).op.name()).collect();
        // qwen3's (and qwen3moe's) per-head q_norm / k_norm fold into the ropes after them.
        let expect: &[&str] = if arch == "qwen3" || arch == "qwen3moe" {
            &[
                "RMS_NORM_MUL",
                "ADD_RMS_NORM_MUL",
                "RMS_NORM_MUL_ROPE",
                "RMS_NORM_MUL_ROPE_SET_ROWS",
            ]
        } else {
            &["RMS_NORM_MUL", "ADD_RMS_NORM_MUL", "ROPE_SET_ROWS"]
        };
        for op in expect {
            assert!(ops.contains(op), "{arch}: no {op} in {ops:?}");
        }
        assert!(!ops.contains(&"RMS_NORM"), "{arch}: unfused norm left");
        if arch == "qwen3moe" {
            // Each layer's residual ADD folds into its MOE_SUM.
            let n = ops.iter().filter(|&&o| o == "MOE_SUM_ADD").count();
            assert_eq!(n, m.hp.n_layer, "{arch}: MOE_SUM_ADD per layer in {ops:?}");
            assert!(!ops.contains(&"MOE_SUM"), "{arch}: unfolded MOE_SUM");
            // The next norm (each later layer's attn_norm, then result_norm) reads the
            // MOE_SUM_ADD's operands and runs in its stage.
            let n = ops
                .iter()
                .filter(|&&o| o == "MOE_SUM_ADD_RMS_NORM_MUL")
                .count();
            assert_eq!(
                n, m.hp.n_layer,
                "{arch}: MOE_SUM_ADD_RMS_NORM_MUL per layer in {ops:?}"
            );
            // Staged by DAG levels (not `off`'s one node per stage): one stage holds both.
            let mut staged = raw.clone();
            vkgraph::passes::run(
                &mut staged,
                QkvMode::Fuse,
                &Default::default(),
                vkgraph::passes::FusionLevel::Ops,
                &vkgraph::passes::any_backend,
                &vkgraph::passes::any_group,
            );
            let mut paired = 0;
            for stage in &staged.schedule {
                paired += vkgraph::passes::fusion::residual_add_folds(&staged, stage)
                    .iter()
                    .filter(|&&(m, _)| staged.node(m).op.name() == "MOE_SUM_ADD_RMS_NORM_MUL")
                    .count();
                let here: Vec<&str> = stage.iter().map(|&n| staged.node(n).op.name()).collect();
                if here.contains(&"MOE_SUM_ADD_RMS_NORM_MUL") {
                    assert!(
                        here.contains(&"MOE_SUM_ADD"),
                        "{arch}: norm not beside its sum: {here:?}"
                    );
                }
            }
            // ... and the Vulkan executor records each pair as one dispatch.
            assert_eq!(paired, m.hp.n_layer, "{arch}: MOE_SUM_ADD folds");
            // Each layer's MOE_TOPK reads the router's operands (4 tokens: a decode-sized
            // batch), beside the router MUL_MAT, which the executor records inside it.
            let n = ops.iter().filter(|&&o| o == "MOE_ROUTER_TOPK").count();
            assert_eq!(
                n, m.hp.n_layer,
                "{arch}: MOE_ROUTER_TOPK per layer in {ops:?}"
            );
            let routers: usize = staged
                .schedule
                .iter()
                .map(|stage| vkgraph::passes::fusion::router_topk_folds(&staged, stage).len())
                .sum();
            assert_eq!(routers, m.hp.n_layer, "{arch}: router folds");
        }
        let e = nmse(&eval(&m, &fused), &eval(&m, &raw));
        assert!(e < 1e-12, "{arch}: fused vs raw NMSE {e:e}");
    }
}

/// A copy of a tiny model with one metadata key replaced (or added).
fn with_metadata(arch: &str, key: &str, v: vkgraph::gguf::Value) -> std::path::PathBuf {
    use vkgraph::gguf::{GgufFile, GgufWriter};
    let src = GgufFile::open(models::tiny(arch, "q4_0")).unwrap();
    let mut w = GgufWriter::new();
    w.set_alignment(src.alignment);
    let mut replaced = false;
    for (k, val) in &src.metadata {
        if k == key {
            w.add(k, v.clone());
            replaced = true;
        } else if k != "general.alignment" {
            w.add(k, val.clone());
        }
    }
    if !replaced {
        w.add(key, v);
    }
    for t in &src.tensors {
        w.add_tensor(&t.name, t.ty, &t.ne).unwrap();
    }
    let path = std::env::temp_dir().join(format!(
        "vkgraph-bad-{arch}-{}-{}.gguf",
        key.replace('.', "_"),
        std::process::id()
    ));
    w.write(&path, |i, _, out| {
        out.write_all(src.tensor_data(&src.tensors[i]))
            .map_err(|e| vkgraph::Error::io(&path, e))
    })
    .unwrap();
    path
}

/// Hyper-parameters that contradict the tensor shapes are refused at load with the key
/// named (a rope dimension beyond the head size panicked the CPU backend before).
#[test]
fn bad_rope_dimension_is_a_load_error() {
    for arch in ["llama", "qwen3"] {
        let head = vkgraph::model::Model::open(models::tiny(arch, "q4_0"))
            .unwrap()
            .hp
            .head_dim as u32;
        for bad in [head * 2, head + 2, head - 1, 0] {
            let key = format!("{arch}.rope.dimension_count");
            let path = with_metadata(arch, &key, vkgraph::gguf::Value::U32(bad));
            let r = vkgraph::model::Model::open(&path);
            let _ = std::fs::remove_file(&path);
            match r {
                Err(e) => assert!(
                    e.to_string().contains("rope.dimension_count"),
                    "{arch} {bad}: {e}"
                ),
                Ok(_) => panic!("{arch}: rope.dimension_count {bad} (head {head}) accepted"),
            }
        }
    }
}
