//! Whole forward passes on every Vulkan device against the CPU reference: tiny models
//! of every arch and of matching-type and mixed-type schemes, in every QKV mode, with
//! the validation layer (synchronization validation on) reporting nothing; a forced
//! CPU fallback still gives the same logits and the split is visible in the dump.

mod common;
mod models;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use models::{nmse, prompt, tiny_model};
use vkgraph::backend::cpu::CpuBackend;
use vkgraph::backend::vulkan::{enumerate_devices, ContextOptions, VulkanBackend, VulkanContext};
use vkgraph::backend::Backend;
use vkgraph::graph::Op;
use vkgraph::model::Model;
use vkgraph::passes::{FusionLevel, QkvMode};
use vkgraph::sched::session::{Session, SessionOptions};

const N_CTX: usize = 32;

/// The reference: the CPU backend, every op its own node (no fusion of any kind).
fn cpu_logits(m: &Arc<Model>, steps: &[Vec<u32>]) -> Vec<Vec<f32>> {
    let mut s = Session::new(
        m.clone(),
        vec![Box::new(CpuBackend::new(m.clone()))],
        SessionOptions {
            qkv: QkvMode::Off,
            fusion: FusionLevel::None,
            n_ctx: N_CTX,
            ..Default::default()
        },
    );
    steps.iter().map(|t| s.forward(t, true).unwrap()).collect()
}

/// One validated context per device for the whole test binary (the NVIDIA driver
/// refused new instances after a few dozen in one process).
fn context(dev: usize) -> Arc<VulkanContext> {
    static CTX: OnceLock<Mutex<HashMap<usize, Arc<VulkanContext>>>> = OnceLock::new();
    let mut map = CTX
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(dev)
        .or_insert_with(|| {
            let ctx = VulkanContext::new(&ContextOptions {
                device_index: Some(dev),
                validation: true,
                ..Default::default()
            })
            .unwrap();
            common::check_validation(&format!("Vulkan device {dev}"), &ctx);
            Arc::new(ctx)
        })
        .clone()
}

fn vk_backend(m: &Arc<Model>, dev: usize) -> VulkanBackend {
    VulkanBackend::with_context(m.clone(), context(dev))
}

/// Asserts the validation layer reported nothing so far on device `dev`'s shared context.
fn assert_device_clean(dev: usize, case: &str) {
    let ctx = context(dev);
    let log = ctx.validation_log();
    assert!(
        log.errors() + log.warnings() == 0,
        "{case}: validation:\n{}",
        log.messages().join("\n")
    );
}

fn assert_clean(vk: &VulkanBackend, case: &str) {
    let log = vk.context().validation_log();
    assert!(
        log.errors() + log.warnings() == 0,
        "{case}: validation:\n{}",
        log.messages().join("\n")
    );
}

/// Logit NMSE allowed against the exact CPU reference: 1e-4 (f32 summation order), or
/// 1e-3 where decode matmuls take the integer-dot path (q8_1 activations; measured up to
/// 7e-4 on the q4_k_m tiny models, see tiny_models_match_cpu_on_forced_decode_paths) or
/// prompt matmuls the cooperative-matrix one (f16 activations, a finer rounding than q8_1;
/// judged against llama.cpp's own spread by tests/parity.rs).
fn cpu_bound(vk: &VulkanBackend) -> f64 {
    if vk.int8_mat_vec() || vk.coopmat_prefill() {
        1e-3
    } else {
        1e-4
    }
}

/// The graph of `n_tokens` for `m`, passes run for `mode` at fusion level `Ops`.
fn planned(
    m: &Arc<Model>,
    mode: QkvMode,
    n_tokens: usize,
    logits_all: bool,
    limits: &vkgraph::passes::SiblingLimits,
) -> vkgraph::graph::Graph {
    planned_with(
        m,
        mode,
        n_tokens,
        logits_all,
        limits,
        FusionLevel::Ops,
        None,
    )
}

/// [`planned`] at fusion level `fusion`, decode-layer fusion asking `vk`.
fn planned_with(
    m: &Arc<Model>,
    mode: QkvMode,
    n_tokens: usize,
    logits_all: bool,
    limits: &vkgraph::passes::SiblingLimits,
    fusion: FusionLevel,
    vk: Option<&VulkanBackend>,
) -> vkgraph::graph::Graph {
    let mut g = vkgraph::model::build_graph(
        m,
        &vkgraph::model::BuildOpts {
            n_tokens,
            n_ctx: N_CTX,
            n_outputs: if logits_all { n_tokens } else { 1 },
        },
    )
    .unwrap();
    let fusable = |g: &vkgraph::graph::Graph, n| match vk {
        Some(vk) => vk.fuses_mat_vec(g, n),
        None => Ok(()),
    };
    let groupable =
        |g: &vkgraph::graph::Graph, nodes: &[petgraph::stable_graph::NodeIndex]| match vk {
            Some(vk) => vk.groups_mat_vec(g, nodes),
            None => Ok(true),
        };
    vkgraph::passes::run(&mut g, mode, limits, fusion, &fusable, &groupable);
    g
}

/// Writes the token ids and positions of a graph run directly on a backend.
fn set_inputs(vk: &mut VulkanBackend, g: &vkgraph::graph::Graph, ids: &[i32], pos: &[i32]) {
    for (name, data) in [("inp_tokens", ids), ("inp_pos", pos)] {
        let t = g.tensors.iter().position(|t| t.name == name).unwrap();
        vk.set_tensor(
            g,
            vkgraph::graph::TensorId(t as u32),
            bytemuck::cast_slice(data),
        )
        .unwrap();
    }
}

/// Prefill of 5 tokens, then two single-token steps.
fn steps() -> Vec<Vec<u32>> {
    let p = prompt(7);
    vec![p[..5].to_vec(), vec![p[5]], vec![p[6]]]
}

fn devices() -> Vec<(usize, String)> {
    let devs = enumerate_devices().expect("Vulkan loader");
    assert!(!devs.is_empty(), "no Vulkan device: CI must have lavapipe");
    devs.iter()
        .map(|c| (c.index, format!("Vulkan/{}", c.short_name())))
        .collect()
}

#[test]
fn tiny_models_match_cpu_in_every_mode() {
    // Every arch × the schemes of the issue (matching types: q4_0, q8_0; mixed: q2_k,
    // q4_k_m), plus f16.
    let mut cases = vec![("qwen3", "f16")];
    for arch in ["llama", "qwen2", "qwen3", "qwen3moe"] {
        for quant in ["q4_0", "q8_0", "q2_k", "q4_k_m"] {
            cases.push((arch, quant));
        }
    }
    for (dev, label) in devices() {
        for &(arch, quant) in &cases {
            let m = tiny_model(arch, quant);
            let want = cpu_logits(&m, &steps());
            let mut by_mode: Vec<Vec<f32>> = Vec::new();
            // Every QKV mode at the default fusion level (layer), and auto at the others.
            let runs = QkvMode::ALL
                .iter()
                .map(|&m| (m, FusionLevel::Layer))
                .chain([
                    (QkvMode::Auto, FusionLevel::None),
                    (QkvMode::Auto, FusionLevel::Ops),
                ]);
            for (mode, fusion) in runs {
                let case = format!("[{label}] forward({arch},{quant},qkv={mode},fusion={fusion})");
                let vk = vk_backend(&m, dev);
                let limits = vk.sibling_limits();
                let bound = cpu_bound(&vk);
                let mut s = Session::new(
                    m.clone(),
                    vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))],
                    SessionOptions {
                        qkv: mode,
                        fusion,
                        n_ctx: N_CTX,
                        limits,
                        ..Default::default()
                    },
                );
                let (_, a) = s.plan(5, true).unwrap();
                assert_eq!(a.splits.len(), 1, "{case}: everything runs on Vulkan");
                let mut all = Vec::new();
                for (i, t) in steps().iter().enumerate() {
                    let got = s.forward(t, true).unwrap();
                    assert!(
                        got.iter().all(|v| v.is_finite()),
                        "{case}: non-finite logits"
                    );
                    let e = nmse(&got, &want[i]);
                    assert!(e <= bound, "{case} step {i}: NMSE vs CPU {e:e}");
                    all.extend(got);
                }
                by_mode.push(all);
                drop(s);
            }
            for (i, run) in by_mode.iter().enumerate().skip(1) {
                let e = nmse(run, &by_mode[0]);
                assert!(
                    e <= 1e-5,
                    "[{label}] {arch} {quant}: run {i} (see `runs`) vs off NMSE {e:e}"
                );
            }
        }
    }
}

/// The decode kernels that are not every device's default, forced: the integer-dot
/// mat-vec (q8_1 activations; NMSE vs the exact CPU within 1e-3, q8 rounding) with the
/// decode-layer folds in its own kernel (`mul_mat_vecq_layer`, its q8_1 epilogues
/// quantizing the next matmul's input) and without
/// (`set_mat_vecq_layer(false)`: the folded ops as stages of their own), and the split-K
/// attention (exact), alone and together, on every arch and mix, under validation.
#[test]
fn tiny_models_match_cpu_on_forced_decode_paths() {
    use vkgraph::backend::vulkan::MatVecPath;
    let mut cases = Vec::new();
    for arch in ["llama", "qwen2", "qwen3"] {
        for quant in ["q4_0", "q8_0", "q2_k", "q4_k_m"] {
            cases.push((arch, quant));
        }
    }
    // qwen3moe: the expert matmuls take the integer-dot MUL_MAT_ID (mul_mat_vecq_id.comp).
    cases.push(("qwen3moe", "q4_0"));
    for (dev, label) in devices() {
        for &(arch, quant) in &cases {
            let m = tiny_model(arch, quant);
            let want = cpu_logits(&m, &steps());
            // The last field: MoE experts routing themselves (else the router + top-k).
            for (path, split, bound, layer, route) in [
                (MatVecPath::Int8, false, 1e-3, true, true),
                (MatVecPath::Float, true, 1e-4, true, true),
                (MatVecPath::Int8, true, 1e-3, true, false),
                (MatVecPath::Int8, false, 1e-3, false, true),
            ] {
                // The integer-dot split also preloads K and V before the RoPE prologue
                // (VPRE / KPRE: the owner's new row then comes from shared memory).
                let vpre = split && path == MatVecPath::Int8;
                let case = format!(
                    "[{label}] forward({arch},{quant},mat_vec={path:?},split_k={split},\
                     vpre={vpre},qb1={},vecq_layer={layer},route={route})",
                    split && !vpre
                );
                let mut vk = vk_backend(&m, dev);
                vk.set_mat_vec(path);
                vk.set_mat_vecq_layer(layer);
                vk.set_moe_route(route);
                vk.force_attention_split(split);
                vk.set_attn_split_vpre(Some(vpre));
                // The float split also with one query head per workgroup (more
                // workgroups, the scratch sized for them).
                vk.set_attn_split_qb((split && !vpre).then_some(1));
                let limits = vk.sibling_limits();
                if path == MatVecPath::Int8 && layer {
                    // With the folds in the integer-dot kernel, a decode layer is as short
                    // as on the float path (norm, RoPE / KV write and residual adds and
                    // SwiGLU folded: Q/K/V, attention, output, gate/up, down), and every
                    // q8_1 copy but the first layer's input (GET_ROWS has no q8 epilogue)
                    // is written by its producer: the attention's, the fused mat-vecs'.
                    // A MoE layer: Q/K/V, attention, output + residual, ffn norm beside
                    // the router + top-k (which normalizes x itself), gate/up experts with
                    // SwiGLU (MUL_MAT_ID_SWIGLU, writing the down experts' q8_1 copy), down
                    // experts, expert sum + residual + the next norm — 7 stages.
                    let moe = arch == "qwen3moe";
                    let g = planned_with(
                        &m,
                        QkvMode::Auto,
                        1,
                        true,
                        &limits,
                        FusionLevel::Layer,
                        Some(&vk),
                    );
                    vk.prepare(&g).unwrap();
                    let copies = vk.q8_copies(&g);
                    let layers = m.hp.n_layer;
                    let apart = copies.iter().filter(|c| c.1.is_none()).count();
                    let by_glu = copies
                        .iter()
                        .filter(|c| c.1 == Some("MUL_MAT_ID_SWIGLU"))
                        .count();
                    assert_eq!(copies.len(), 4 * layers + 1, "{case}: q8 copies {copies:?}");
                    assert_eq!(apart, 1, "{case}: q8 copies {copies:?}");
                    assert_eq!(by_glu, if moe { layers } else { 0 }, "{case}: {copies:?}");
                    // MoE: the gate/up experts rank the router's logits themselves
                    // (route), beside the MOE_TOPK; the router is a plain matmul then.
                    // Without routing the router + top-k kernel picks the experts.
                    let routed = g
                        .order()
                        .filter(|&n| matches!(g.node(n).op, Op::MulMatId { route: Some(_), .. }))
                        .count();
                    let router_topk = g
                        .order()
                        .filter(|&n| matches!(g.node(n).op, Op::MoeRouterTopK { .. }))
                        .count();
                    let (want_routed, want_rt) = match (moe, route) {
                        (false, _) => (0, 0),
                        (true, true) => (layers, 0),
                        (true, false) => (0, layers),
                    };
                    assert_eq!(routed, want_routed, "{case}: routed");
                    assert_eq!(router_topk, want_rt, "{case}: router + top-k");
                    let per_layer = if moe { 7 } else { 5 };
                    assert!(
                        g.schedule.len() <= per_layer * layers + 2,
                        "{case}: {} stages for {layers} layers",
                        g.schedule.len()
                    );
                }
                if path == MatVecPath::Int8 {
                    // Which q8_1 copies the decode graph needs and who writes them: every
                    // norm, attention and SwiGLU output through its kernel's q8 epilogue,
                    // so decode needs no quantize_q8_1 dispatch (qwen3moe: the ffn norm's
                    // copy feeds the experts' gate/up, the SwiGLU's their down).
                    // (Planned as the session will: this backend refuses to group Q/K/V
                    // whose members take the int8 path.)
                    let g = planned_with(
                        &m,
                        QkvMode::Auto,
                        1,
                        true,
                        &limits,
                        FusionLevel::Ops,
                        Some(&vk),
                    );
                    vk.prepare(&g).unwrap();
                    let copies = vk.q8_copies(&g);
                    let layers = m.hp.n_layer;
                    let by_epilogue = copies.iter().filter(|c| c.1.is_some()).count();
                    assert_eq!(copies.len(), 4 * layers + 1, "{case}: q8 copies {copies:?}");
                    assert_eq!(by_epilogue, copies.len(), "{case}: q8 copies {copies:?}");
                }
                let mut s = Session::new(
                    m.clone(),
                    vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))],
                    SessionOptions {
                        qkv: QkvMode::Auto,
                        n_ctx: N_CTX,
                        limits,
                        ..Default::default()
                    },
                );
                let mut flipped = 0;
                for (i, t) in steps().iter().enumerate() {
                    let got = s.forward(t, true).unwrap();
                    assert!(
                        got.iter().all(|v| v.is_finite()),
                        "{case}: non-finite logits"
                    );
                    // qwen3moe: the q8 rounding of the attention projections alone moves
                    // near-tied router logits enough to swap an expert in the tiny model
                    // at one step (NMSE 1.3e-2 at step 0 on lavapipe even with the experts
                    // on the float kernel; the other steps ~2e-4). So one step may reach
                    // 5e-2, the others keep the bound; the expert kernel itself is checked
                    // per type by test-ops' mul_mat_vecq_id cases (NMSE <= 5e-4). A wrong
                    // expert kernel gives NMSE ~1 at every step.
                    let e = nmse(&got, &want[i]);
                    if arch == "qwen3moe" && path == MatVecPath::Int8 && e > bound {
                        flipped += 1;
                        assert!(
                            e <= 5e-2 && flipped <= 1,
                            "{case} step {i}: NMSE vs CPU {e:e} ({flipped} steps over {bound:e})"
                        );
                    } else {
                        assert!(e <= bound, "{case} step {i}: NMSE vs CPU {e:e}");
                    }
                    eprintln!("{case} step {i}: ok (NMSE {e:.2e})");
                }
                if split && !vpre {
                    // One head per split workgroup as capped (VKGRAPH_ATTN_QB): the cap
                    // reaches the plan that sized the scratch and recorded the launch
                    // (the tiny models' GQA groups are larger than 1).
                    let (g, a) = s.plan(1, false).unwrap();
                    let text: String = s
                        .describe_kernels(&g, &a)
                        .iter()
                        .map(|(_, k)| k.as_str())
                        .collect();
                    assert!(m.hp.n_head > m.hp.n_head_kv, "{case}: no GQA group");
                    assert!(text.contains(" 1 heads per group"), "{case}: {text}");
                }
                drop(s);
                assert_device_clean(dev, &case);
            }
        }
    }
}

/// The executor records one dispatch per node, except that each ADD_RMS_NORM_MUL also
/// writes its residual ADD's sum (the ADD records nothing) outside the `off` baseline, and
/// each MOE_SUM_ADD_RMS_NORM_MUL its MOE_SUM_ADD's (qwen3moe on the integer-dot mat-vec,
/// where the attention norm stays a node of its own to write q8_1 for Q/K/V), and each
/// MOE_ROUTER_TOPK its router MUL_MAT's.
#[test]
fn residual_adds_fold_into_their_norms() {
    use vkgraph::backend::vulkan::MatVecPath;
    for (dev, label) in devices() {
        for arch in ["llama", "qwen3", "qwen3moe"] {
            let m = tiny_model(arch, "q4_0");
            for mode in [QkvMode::Off, QkvMode::Auto] {
                let mut vk = vk_backend(&m, dev);
                let moe = arch == "qwen3moe";
                vk.set_mat_vec(if moe {
                    MatVecPath::Int8
                } else {
                    MatVecPath::Float
                });
                let limits = vk.sibling_limits();
                // Planned as a session plans (this backend does not group Q/K/V whose
                // members take the int8 path).
                let g = planned_with(&m, mode, 1, false, &limits, FusionLevel::Ops, Some(&vk));
                vk.prepare(&g).unwrap();
                let ids = [3i32];
                let pos = [0i32];
                set_inputs(&mut vk, &g, &ids[..], &pos[..]);
                let stages = g.schedule.clone();
                vk.compute(&g, &stages).unwrap();
                let nodes = g.order().count() as u32;
                let norms = g
                    .order()
                    .filter(|&n| {
                        matches!(
                            g.node(n).op,
                            vkgraph::graph::Op::AddRmsNormMul { .. }
                                | vkgraph::graph::Op::MoeSumRmsNormMul { .. }
                        )
                    })
                    .count() as u32;
                let count = |f: fn(&vkgraph::graph::Op) -> bool| {
                    g.order().filter(|&n| f(&g.node(n).op)).count() as u32
                };
                let moe_norms =
                    count(|op| matches!(op, vkgraph::graph::Op::MoeSumRmsNormMul { .. }));
                let routers = count(|op| matches!(op, vkgraph::graph::Op::MoeRouterTopK { .. }));
                if moe {
                    assert!(
                        moe_norms > 0,
                        "[{label}] {arch}: no MOE_SUM_ADD_RMS_NORM_MUL"
                    );
                    assert!(routers > 0, "[{label}] {arch}: no MOE_ROUTER_TOPK");
                }
                let want = if mode == QkvMode::Off {
                    nodes
                } else {
                    nodes - norms - routers
                };
                let (dispatches, _) = vk.last_recorded_counts();
                assert!(
                    norms > 0,
                    "[{label}] {arch}: no ADD_RMS_NORM_MUL to fold into"
                );
                assert_eq!(
                    dispatches, want,
                    "[{label}] {arch} {mode}: {nodes} nodes, {norms} norms"
                );
            }
        }
    }
}

/// A model and context larger than the device's budget are refused before anything is
/// allocated, with the sizes in the message (here an artificially small budget).
#[test]
fn too_large_for_the_device_is_refused_with_sizes() {
    for (dev, label) in devices() {
        let m = tiny_model("llama", "q4_0");
        let mut vk = vk_backend(&m, dev);
        vk.set_memory_budget(Some(64 << 10));
        let limits = vk.sibling_limits();
        let g = planned(&m, QkvMode::Auto, 1, false, &limits);
        match vk.prepare(&g) {
            Err(vkgraph::Error::OutOfDeviceMemory(msg)) => {
                assert!(
                    msg.contains("MiB of weights") && msg.contains("KV cache"),
                    "[{label}] {msg}"
                );
                eprintln!("[{label}] refused: {msg}");
            }
            Err(e) => panic!("[{label}] expected OutOfDeviceMemory, got {e}"),
            Ok(()) => panic!("[{label}] a 64 KiB budget accepted the model"),
        }
        assert_eq!(vk.arena_bytes(), 0, "[{label}] allocated before refusing");
        vk.set_memory_budget(None);
        vk.prepare(&g).unwrap();
    }
}

#[test]
fn validation_clean_in_every_mode() {
    for (dev, label) in devices() {
        let m = tiny_model("qwen3", "q2_k");
        for mode in QkvMode::ALL {
            let case = format!("[{label}] validation(qwen3,q2_k,qkv={mode})");
            let mut vk = vk_backend(&m, dev);
            let limits = vk.sibling_limits();
            // Run through the backend directly so the log stays reachable afterwards; one
            // decode-sized graph with layer fusion, one prompt.
            let g1 = planned_with(&m, mode, 1, true, &limits, FusionLevel::Layer, Some(&vk));
            vk.prepare(&g1).unwrap();
            set_inputs(&mut vk, &g1, &[3], &[0]);
            vk.compute(&g1, &g1.schedule.clone()).unwrap();
            let g = planned_with(&m, mode, 4, true, &limits, FusionLevel::Layer, Some(&vk));
            vk.prepare(&g).unwrap();
            let ids: Vec<i32> = prompt(4).iter().map(|&t| t as i32).collect();
            let pos: Vec<i32> = (0..4).collect();
            set_inputs(&mut vk, &g, &ids, &pos);
            // Lifetime-planned arena: activations share memory.
            let all: usize = g
                .tensors
                .iter()
                .filter(|t| matches!(t.kind, vkgraph::graph::TensorKind::Activation))
                .map(|t| t.nbytes())
                .sum();
            assert!(
                (vk.arena_bytes() as usize) < all / 2,
                "{case}: arena {} of {all} bytes",
                vk.arena_bytes()
            );
            let stages = g.schedule.clone();
            vk.compute(&g, &stages).unwrap();
            let out = vk.get_tensor(&g, g.outputs[0]).unwrap();
            assert_eq!(out.len(), 4 * m.hp.n_vocab * 4, "{case}");
            assert_clean(&vk, &case);
        }
    }
}

/// A session of `vk` (some op disabled) and the CPU, `auto`, at fusion level `fusion`, and
/// the NMSE bound its logits must keep against the CPU reference.
fn fallback_session(m: &Arc<Model>, vk: VulkanBackend, fusion: FusionLevel) -> (Session, f64) {
    let bound = cpu_bound(&vk);
    let s = Session::new(
        m.clone(),
        vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))],
        SessionOptions {
            qkv: QkvMode::Auto,
            fusion,
            n_ctx: N_CTX,
            ..Default::default()
        },
    );
    (s, bound)
}

/// Runs [`steps`] in `s`, each step's logits within `bound` (NMSE) of `want`'s.
fn assert_steps_match(s: &mut Session, want: &[Vec<f32>], bound: f64, case: &str) {
    for (i, t) in steps().iter().enumerate() {
        let got = s.forward(t, true).unwrap();
        let e = nmse(&got, &want[i]);
        assert!(e <= bound, "{case} step {i}: NMSE {e:e}");
    }
}

#[test]
fn forced_cpu_fallback_matches() {
    for (dev, label) in devices() {
        let m = tiny_model("llama", "q4_k_m");
        let want = cpu_logits(&m, &steps());
        for disabled in ["MUL_MAT:q6_K", "RMS_NORM_MUL", "SWIGLU"] {
            let case = format!("[{label}] fallback(disable={disabled})");
            let mut vk = vk_backend(&m, dev);
            vk.disable(disabled);
            let (mut s, bound) = fallback_session(&m, vk, SessionOptions::default().fusion);
            let (g, a) = s.plan(5, true).unwrap();
            assert!(a.splits.len() > 1, "{case}: expected CPU splits");
            let dump = vkgraph::sched::dump::dump(&g, &a);
            assert!(
                dump.contains("[CPU]") && dump.contains(": CPU #"),
                "{case}: dump shows no CPU split:\n{dump}"
            );
            assert_steps_match(&mut s, &want, bound, &case);
        }
    }
}

/// The two MoE folds where the device does not take the fused node (forced off here, as a
/// device without the kernel's needs would refuse it at plan time): MOE_ROUTER_TOPK or
/// MOE_SUM_ADD_RMS_NORM_MUL runs on the CPU — computing the router product or the expert
/// sum itself — while its partner node stays on the GPU, and the logits match the CPU's.
/// At fusion `ops` (the norms stay nodes of their own) on the float mat-vec.
#[test]
fn moe_folds_fall_back_to_the_cpu() {
    for (dev, label) in devices() {
        let m = tiny_model("qwen3moe", "q4_0");
        let want = cpu_logits(&m, &steps());
        for disabled in ["MOE_ROUTER_TOPK", "MOE_SUM_ADD_RMS_NORM_MUL"] {
            let case = format!("[{label}] moe fallback(disable={disabled})");
            let mut vk = vk_backend(&m, dev);
            vk.set_mat_vec(vkgraph::backend::vulkan::MatVecPath::Float);
            vk.disable(disabled);
            let (mut s, bound) = fallback_session(&m, vk, FusionLevel::Ops);
            let (g, a) = s.plan(1, true).unwrap();
            assert!(a.splits.len() > 1, "{case}: expected CPU splits");
            let dump = vkgraph::sched::dump::dump(&g, &a);
            assert!(
                dump.lines()
                    .any(|l| l.contains(&format!("({disabled})")) && l.contains("[CPU]")),
                "{case}: no {disabled} node on the CPU:\n{dump}"
            );
            assert_steps_match(&mut s, &want, bound, &case);
            eprintln!("{case}: ok");
        }
        assert_device_clean(dev, "moe fallback");
    }
}

/// Decode attention without a split (the device's own choice: lavapipe never splits)
/// is planned for the current length too — its workgroup width — and re-planned when the
/// context outgrows it: a 250-token prompt, then decode steps past 256 in a cache of 600
/// cells, logits against the CPU at every step, the kernel line naming the new length.
/// (A graph first planned unsplit used to keep that plan however long the context grew.)
#[test]
fn unsplit_attention_replans_as_the_context_grows() {
    let m = tiny_model("llama", "q4_0");
    let opts = SessionOptions {
        qkv: QkvMode::Auto,
        n_ctx: 600,
        ..Default::default()
    };
    let mut cpu = Session::new(
        m.clone(),
        vec![Box::new(CpuBackend::new(m.clone()))],
        opts.clone(),
    );
    for (dev, label) in devices() {
        let vk = vk_backend(&m, dev);
        let mut s = Session::new(
            m.clone(),
            vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))],
            opts.clone(),
        );
        cpu.reset();
        let mut want = cpu.forward(&prompt(250), false).unwrap();
        let mut got = s.forward(&prompt(250), false).unwrap();
        let text = |s: &Session| {
            let (g, a) = s.plan(1, false).unwrap();
            let k = s.describe_kernels(&g, &a);
            k.iter().map(|(_, k)| k.clone()).collect::<String>()
        };
        for step in 0..10 {
            let e = nmse(&got, &want);
            assert!(e <= 1e-3, "[{label}] step {step}: NMSE vs CPU {e:e}");
            let t = models::argmax(&want);
            want = cpu.forward(&[t], false).unwrap();
            got = s.forward(&[t], false).unwrap();
            if step == 2 {
                let k = text(&s);
                assert!(k.contains("width for 256 rows"), "[{label}] {k}");
            }
        }
        // 512 rows: a GPU splits the context there, lavapipe never does.
        let k = text(&s);
        assert!(
            k.contains("width for 512 rows") || k.contains("planned for 512 rows"),
            "[{label}] {k}"
        );
    }
}

/// Split-K attention planned for the current context length, re-planned as it grows
/// (256, 512, … rows): 300 decode steps in a cache of 600 cells, forced split, every
/// step's logits against the CPU reference, under validation. Crossing 256 re-plans and
/// re-records mid-generation.
#[test]
fn split_attention_replans_as_the_context_grows() {
    let m = tiny_model("llama", "q4_0");
    let n_ctx = 600;
    let opts = |n_ctx| SessionOptions {
        qkv: QkvMode::Off,
        n_ctx,
        ..Default::default()
    };
    let mut cpu = Session::new(
        m.clone(),
        vec![Box::new(CpuBackend::new(m.clone()))],
        opts(n_ctx),
    );
    for (dev, label) in devices() {
        let mut vk = vk_backend(&m, dev);
        vk.force_attention_split(true);
        let mut s = Session::new(
            m.clone(),
            vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))],
            opts(n_ctx),
        );
        cpu.reset();
        let mut want = cpu.forward(&prompt(3), false).unwrap();
        let mut got = s.forward(&prompt(3), false).unwrap();
        for step in 0..300 {
            let e = nmse(&got, &want);
            assert!(e <= 1e-4, "[{label}] step {step}: NMSE vs CPU {e:e}");
            let t = models::argmax(&want);
            want = cpu.forward(&[t], false).unwrap();
            got = s.forward(&[t], false).unwrap();
        }
        let (g, a) = s.plan(1, false).unwrap();
        let kernels = s.describe_kernels(&g, &a);
        let text: String = kernels.iter().map(|(_, k)| k.as_str()).collect();
        assert!(text.contains("planned for 512 rows"), "[{label}] {text}");
        let log = context(dev);
        let log = log.validation_log();
        assert_eq!(
            log.errors() + log.warnings(),
            0,
            "[{label}] {:?}",
            log.messages()
        );
    }
}

/// Prompts long enough for the tiled matmuls (17 tokens, n > 16; qwen3moe's expert
/// matmuls grouped by expert): the device's default prompt path (the cooperative-matrix kernel where the device has it: f16 products,
/// NMSE vs the exact CPU within 1e-3) and the scalar kernel (f32, within 1e-4), on every
/// arch and mix, logits at every position, under validation. With
/// `VKGRAPH_EXPECT_COOPMAT=1` (the GPU machine's runs) a device without the
/// cooperative-matrix path fails instead of testing the scalar one twice.
#[test]
fn prompt_matmuls_match_cpu_on_both_tiled_paths() {
    let expect_coop = std::env::var("VKGRAPH_EXPECT_COOPMAT").is_ok_and(|v| v == "1");
    let cases = [
        ("llama", "q4_0"),
        ("qwen2", "q8_0"),
        ("qwen3", "q4_k_m"),
        ("llama", "q2_k"),
        ("qwen3", "f16"),
        // MUL_MAT_ID of 17 tokens x 2 slots: grouped by expert (moe_group, then the
        // expert-indexed tile of each path); gate/up fused, down apart.
        ("qwen3moe", "q4_0"),
        ("qwen3moe", "q4_k_m"),
    ];
    for (dev, label) in devices() {
        for &(arch, quant) in &cases {
            let m = tiny_model(arch, quant);
            // 17 tokens: just past the mat-vec's 16; then one; then 12 (the mat-vec's
            // multi-token decode batches, as serving's parallel sequences give).
            let steps = vec![prompt(17), vec![7], prompt(12)];
            let want = cpu_logits(&m, &steps);
            for coopmat in [true, false] {
                let mut vk = vk_backend(&m, dev);
                vk.set_coopmat(coopmat);
                let on = vk.coopmat_prefill();
                if coopmat && expect_coop {
                    assert!(on, "[{label}] VKGRAPH_EXPECT_COOPMAT=1 but no coopmat path");
                }
                let bound = if on { 1e-3 } else { cpu_bound(&vk) };
                let case = format!("[{label}] prompt({arch},{quant},coopmat={on})");
                let limits = vk.sibling_limits();
                let mut s = Session::new(
                    m.clone(),
                    vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))],
                    SessionOptions {
                        qkv: QkvMode::Auto,
                        n_ctx: N_CTX,
                        limits,
                        ..Default::default()
                    },
                );
                if arch == "qwen3moe" {
                    // The expert matmuls of the 17-token step take the grouped path.
                    let (g, a) = s.plan(17, true).unwrap();
                    let kernels: String = s
                        .describe_kernels(&g, &a)
                        .into_iter()
                        .map(|(_, lines)| lines)
                        .collect();
                    let path = if on {
                        "moe_group + mul_mat_id_coopmat"
                    } else {
                        "moe_group + mul_mat_id_tiled"
                    };
                    let ids: Vec<&str> = kernels
                        .lines()
                        .filter(|l| l.contains("MUL_MAT_ID"))
                        .collect();
                    assert!(
                        ids.len() >= 4 && ids.iter().all(|l| l.contains(path)),
                        "{case}: every expert matmul (2 layers x gate/up, down) should run \
                         `{path}`:\n{kernels}"
                    );
                }
                for (i, t) in steps.iter().enumerate() {
                    let got = s.forward(t, true).unwrap();
                    let e = nmse(&got, &want[i]);
                    assert!(e <= bound, "{case} step {i}: NMSE vs CPU {e:e}");
                    eprintln!("{case} step {i}: ok (NMSE {e:.2e}, bound {bound:e})");
                }
                drop(s);
                assert_device_clean(dev, &case);
                if !on && coopmat {
                    eprintln!("[{label}] no cooperative-matrix path: the scalar kernel ran");
                }
            }
        }
    }
}

/// The device's TOP_K output (what `run` and `bench` read back per token) holds exactly
/// the k largest of the logits the same session computes without it, ties to the lower
/// id, with the max and log-sum-exp of those logits, on every device, under validation.
#[test]
fn top_k_output_matches_the_full_logits() {
    // The tiny vocabulary (1,024) must take the chunked kernel (chunks and their merge,
    // counters reused over the steps), as a real vocabulary does.
    assert!(
        vkgraph::backend::vulkan::dispatch::top_k::chunks(1024, 40) > 1,
        "the tiny models' TOP_K would not exercise the chunked path"
    );
    for (dev, label) in devices() {
        for arch in ["llama", "qwen3"] {
            let m = tiny_model(arch, "q4_0");
            let vk = vk_backend(&m, dev);
            let mut s = Session::new(
                m.clone(),
                vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))],
                SessionOptions {
                    n_ctx: N_CTX,
                    ..Default::default()
                },
            );
            let p = prompt(6);
            let (g, a) = s.plan_top_k(1, 1, Some(40)).unwrap();
            let last = g.order().last().unwrap();
            assert_eq!(g.node(last).op.name(), "TOP_K");
            assert_eq!(
                a.backend_of[&last], 0,
                "[{label}] {arch}: TOP_K runs on Vulkan"
            );
            let mut full = Vec::new();
            let mut rows = Vec::new();
            for &t in &p {
                full = s.forward(&[t], false).unwrap();
                rows.push(full.clone());
            }
            // The decode loop's row lent from the device's read-back memory (no copy):
            // the same bits at every step, not the last step's.
            s.reset();
            for (i, &t) in p.iter().enumerate() {
                let lent = s.forward_logits(&[t]).unwrap();
                assert!(
                    lent == rows[i].as_slice(),
                    "[{label}] {arch}: lent row, step {i}"
                );
            }
            s.reset();
            let mut top = Vec::new();
            for &t in &p {
                top = s.forward_top_k(&[0], &[t], 1, 40).unwrap();
            }
            let want = vkgraph::sample::top_k_sorted(&full, 40);
            let got: Vec<(u32, f32)> = top[2..].chunks(2).map(|c| (c[0] as u32, c[1])).collect();
            assert_eq!(got, want, "[{label}] {arch}");
            let mx = full.iter().copied().fold(f32::MIN, f32::max);
            let lse = mx as f64
                + full
                    .iter()
                    .map(|&x| ((x - mx) as f64).exp())
                    .sum::<f64>()
                    .ln();
            assert_eq!(top[0], mx, "[{label}] {arch}: max");
            assert!(
                (f64::from(top[1]) - lse).abs() < 1e-4,
                "[{label}] {arch}: lse {} vs {lse}",
                top[1]
            );
            drop(s);
            assert_device_clean(dev, &format!("[{label}] top_k({arch})"));
        }
    }
}

/// MoE prompt chunks (their expert matmuls grouped by expert: the grouping is written to
/// scratch) interleaved with decode steps whose kernels keep counters in scratch — split-K
/// attention (forced) and the chunked TOP_K — on every device, under validation: the
/// decode logits match the CPU's and the device's top-k matches those logits. The second
/// chunk runs after the decode graphs have sized the scratch, so a grouping written where
/// those kernels expect zero counters would show.
#[test]
fn moe_prompt_then_split_attention_and_top_k_decode() {
    let m = tiny_model("qwen3moe", "q4_0");
    let p = prompt(40);
    let steps: Vec<Vec<u32>> = vec![
        p[..17].to_vec(),
        vec![p[17]],
        p[18..35].to_vec(),
        vec![p[35]],
        vec![p[36]],
        vec![p[37]],
    ];
    let n_ctx = 64;
    let want: Vec<Vec<f32>> = {
        let mut s = Session::new(
            m.clone(),
            vec![Box::new(CpuBackend::new(m.clone()))],
            SessionOptions {
                qkv: QkvMode::Off,
                fusion: FusionLevel::None,
                n_ctx,
                ..Default::default()
            },
        );
        steps.iter().map(|t| s.forward(t, false).unwrap()).collect()
    };
    for (dev, label) in devices() {
        for top_k in [false, true] {
            let mut vk = vk_backend(&m, dev);
            vk.force_attention_split(true);
            let bound = cpu_bound(&vk);
            let mut s = Session::new(
                m.clone(),
                vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))],
                SessionOptions {
                    n_ctx,
                    ..Default::default()
                },
            );
            let case = format!("[{label}] moe prompts and decode (top_k={top_k})");
            for (i, t) in steps.iter().enumerate() {
                let want = &want[i];
                if t.len() > 1 {
                    s.forward(t, false).unwrap();
                } else if top_k {
                    let top = s.forward_top_k(&[0], t, 1, 40).unwrap();
                    let got: Vec<(u32, f32)> =
                        top[2..].chunks(2).map(|c| (c[0] as u32, c[1])).collect();
                    let cpu = vkgraph::sample::top_k_sorted(want, 40);
                    // The device's logits differ from the CPU's by rounding: rank by rank
                    // the ids agree, or the CPU's logits of the two are a near-tie, and
                    // the device's values are the CPU's within 1e-2.
                    for (j, (&(gid, gv), &(cid, cv))) in got.iter().zip(&cpu).take(8).enumerate() {
                        let tie = (want[gid as usize] - cv).abs() < 1e-2;
                        assert!(
                            gid == cid || tie,
                            "{case} step {i}: rank {j} id {gid} where the CPU has {cid}"
                        );
                        assert!(
                            (gv - want[gid as usize]).abs() < 1e-2,
                            "{case} step {i}: rank {j} logit {gv} vs CPU {}",
                            want[gid as usize]
                        );
                    }
                } else {
                    let got = s.forward(t, false).unwrap();
                    let e = nmse(&got, want);
                    assert!(e <= bound, "{case} step {i}: NMSE vs CPU {e:e}");
                }
            }
            drop(s);
            assert_device_clean(dev, &case);
        }
    }
}
