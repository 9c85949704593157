//! Decode-layer fusion (DESIGN.md decision 13): element-wise work folded into the
//! matmuls around it, so a decode layer runs fewer dispatches and stages. Four folds,
//! each into an [`Op::MulMatLayer`]:
//! - **SwiGLU epilogue**: SWIGLU(gate, up) over the two halves of a fused gate/up
//!   MUL_MAT (the sibling pass's `ffn_gate_up`) becomes that matmul's epilogue; likewise
//!   over a fused gate/up MUL_MAT_ID (qwen3moe's `ffn_gate_up_exps`), which becomes a
//!   MUL_MAT_ID with `glu` (MUL_MAT_ID_SWIGLU) rather than an [`Op::MulMatLayer`];
//! - **scale epilogue**: SCALE(MUL_MAT(W, x)) (a LoRA adapter's `s·B·(A·x)`) becomes
//!   the matmul's factor on its product;
//! - **residual epilogue**: ADD(MUL_MAT(W, x), r) — attention output and ffn_down plus
//!   the residual stream, or a LoRA product plus the base output it corrects — becomes
//!   `W·x + r` in the matmul;
//! - **LoRA SwiGLU epilogue**: SWIGLU(gate, MUL_MAT_ADD(B, a, up)) — an adapted
//!   ffn_up's correction `s·B·(A·x)` added to the up half of a fused gate/up output,
//!   which then keeps its SwiGLU apart — becomes one matmul that adds its product to
//!   that half and writes `silu(gate)·up` ([`Epilogue::AddSwiGlu`]); likewise for an
//!   adapted ffn_gate;
//! - **bias epilogue**: the ADDs of a fused (or grouped) matmul's segments with a 1-D
//!   bias each — qwen2's Q/K/V biases — become `W·x + b` in the matmul, the biases
//!   placed back to back at load time as one fused bias tensor (the mmap untouched);
//! - **norm prologue**: an RMS_NORM_MUL whose every reader is a matmul (attn_norm →
//!   Q/K/V, ffn_norm → gate/up, result_norm → the head) disappears into those matmuls'
//!   prologue (the mat-vec sums x² while it reads x anyway); a MoE layer's ffn norm,
//!   which the experts keep reading, goes into its router's prologue only (the router
//!   then runs beside the norm: one stage fewer).
//!
//! and one into the attention ([`Op::Attention`] with `rope: Some`):
//! - **RoPE / KV-cache prologue**: a one-token graph's ROPE of q, ROPE_SET_ROWS of k and
//!   SET_ROWS of v (each head-normalized first in qwen3) — a stage of three small
//!   dispatches — become the attention's prologue: the workgroup that attends the new
//!   cache row computes it (normalized, rotated) and writes it to the cache itself, and
//!   every workgroup rotates its q rows as it loads them. Only one token: with several,
//!   a token's range would hold rows that other workgroups of the same dispatch write;
//! - **LoRA B factors into the attention**: a folded attention whose q, k_new or v_new is
//!   a MUL_MAT_ADD of a LoRA B factor (f32 / f16) reads the base projection and adds
//!   `s · B·a` itself before the norm and rotation (`AttnRope::lora`,
//!   `attention_rope_lora.comp`): an adapter on Q/K/V adds no stage at decode.
//!
//! A fold happens only where the backend that runs the matmul says it can take it
//! (`Backend::fuses_mat_vec`: on Vulkan, float mat-vecs of ≤ 16 tokens — a matmul on the
//! integer-dot path or a prompt batch keeps its own kernel) and the intermediate result
//! has no other reader. Every fold, and every candidate kept with its reason, is a line
//! in `Graph::fusions` for the dump. [`FusionLevel`] switches the folds for the A/B.

use std::collections::HashMap;

use petgraph::stable_graph::NodeIndex;

use crate::graph::{Decision, Epilogue, Graph, Op, TensorId, TensorKind};
use crate::quant::GgmlType;

/// How much element-wise work is folded into other kernels (`--fusion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FusionLevel {
    /// Every op its own node (RMS_NORM and MUL, ROPE and SET_ROWS apart).
    None,
    /// Element-wise pairs fused (`passes::fusion`: RMS_NORM_MUL, ADD_RMS_NORM_MUL,
    /// ROPE_SET_ROWS, the head norm in RoPE).
    Ops,
    /// `Ops`, and the decode layer's norms, residual adds and SwiGLU folded into its
    /// matmuls (this module).
    Layer,
}

impl FusionLevel {
    pub const ALL: [FusionLevel; 3] = [FusionLevel::None, FusionLevel::Ops, FusionLevel::Layer];

    pub fn parse(s: &str) -> Result<FusionLevel, String> {
        match s {
            "none" => Ok(FusionLevel::None),
            "ops" => Ok(FusionLevel::Ops),
            "layer" => Ok(FusionLevel::Layer),
            _ => Err(format!("unknown fusion level `{s}` (none, ops, layer)")),
        }
    }
}

impl std::fmt::Display for FusionLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FusionLevel::None => "none",
            FusionLevel::Ops => "ops",
            FusionLevel::Layer => "layer",
        })
    }
}

/// Whether the backend that will run node `n` — a MUL_MAT, or an ATTENTION for the RoPE /
/// KV-cache fold — takes work folded into it, for an RMS_NORM_MUL whether folding it
/// into its readers' prologue pays there, and for a MOE_TOPK whether its readers may
/// route themselves (`Err`: why not).
pub type Fusable<'a> = &'a dyn Fn(&Graph, NodeIndex) -> Result<(), String>;

/// Readers per root tensor (each node source counts once) and the node writing each tensor.
fn uses(
    g: &Graph,
) -> (
    HashMap<TensorId, Vec<NodeIndex>>,
    HashMap<TensorId, NodeIndex>,
) {
    let mut readers: HashMap<TensorId, Vec<NodeIndex>> = HashMap::new();
    let mut producer = HashMap::new();
    for n in g.order() {
        for &s in &g.node(n).srcs {
            readers.entry(g.root(s)).or_default().push(n);
        }
        producer.insert(g.node(n).dst, n);
    }
    (readers, producer)
}

/// `blk.3.ffn_gate_up.weight` → `blk.3 ffn_gate_up`; other names unchanged.
fn pretty(name: &str) -> String {
    let stem = name.trim_end_matches(".weight");
    match stem.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
        Some((l, rest)) => format!("blk.{l} {rest}"),
        None => stem.to_string(),
    }
}

fn note(g: &mut Graph, text: String) {
    g.fusions.push(Decision { text });
}

/// Removes node `n` from the DAG and the schedule.
fn remove(g: &mut Graph, n: NodeIndex) {
    g.dag.remove_node(n);
    for stage in &mut g.schedule {
        stage.retain(|&s| s != n);
    }
    g.schedule.retain(|s| !s.is_empty());
}

/// Runs the folds (SwiGLU, scale, add, bias, norm, RoPE / KV cache, in that order);
/// returns how many nodes were folded away.
pub fn run(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    let mut folded = swiglu_epilogue(g, fusable);
    folded += scale_epilogue(g, fusable);
    folded += add_epilogue(g, fusable);
    folded += lora_swiglu_epilogue(g, fusable);
    folded += bias_epilogue(g, fusable);
    folded += norm_prologue(g, fusable);
    let rewired = router_norm_prologue(g, fusable) + route_in_experts(g, fusable);
    folded += rope_into_attention(g, fusable);
    folded += lora_into_attention(g, fusable);
    if folded + rewired > 0 {
        g.rebuild_edges();
    }
    folded
}

/// The fused gate/up MUL_MAT whose halves `gate`, `up` are (segment 0 and 1 of a split
/// of two equal segments), or why not.
fn gate_up_matmul(
    g: &Graph,
    gate: TensorId,
    up: TensorId,
    producer: &HashMap<TensorId, NodeIndex>,
) -> Result<NodeIndex, String> {
    let root = g.root(gate);
    if g.root(up) != root {
        return Err(
            "gate and up are separate matmuls (not fused: qkv mode, or types differ)".into(),
        );
    }
    let Some(&mm) = producer.get(&root) else {
        return Err("gate/up is not a matmul's output".into());
    };
    let split = match &g.node(mm).op {
        Op::MulMat { split }
        | Op::MulMatId {
            split,
            glu: false,
            route: None,
        } => split,
        op => return Err(format!("gate/up comes from {}", op.name())),
    };
    if matches!(
        g.tensor(g.root(g.node(mm).srcs[0])).kind,
        TensorKind::GroupedWeight { .. }
    ) {
        return Err("gate/up is a grouped matmul of two types (no SwiGLU epilogue there)".into());
    }
    let (rg, ru) = (g.region(gate), g.region(up));
    let half = g.tensor(root).nbytes() / 2;
    if split.len() != 2
        || split[0] != split[1]
        || rg.offset != 0
        || ru.offset != half
        || rg.size != half
    {
        return Err("gate/up is not two equal halves of one matmul".into());
    }
    Ok(mm)
}

fn swiglu_epilogue(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    let (readers, producer) = uses(g);
    let mut done = 0;
    let order: Vec<NodeIndex> = g.order().collect();
    for s in order {
        if g.node(s).op != Op::SwiGlu {
            continue;
        }
        let (gate, up) = (g.node(s).srcs[0], g.node(s).srcs[1]);
        let out = g.node(s).dst;
        let mm = match gate_up_matmul(g, gate, up, &producer) {
            Ok(mm) => mm,
            Err(why) => {
                note(g, format!("kept   {} SWIGLU: {why}", g.tensor(out).name));
                continue;
            }
        };
        let wname = pretty(&g.tensor(g.node(mm).srcs[0]).name);
        let only_here = readers[&g.root(gate)].iter().all(|&r| r == s);
        let why = if only_here {
            fusable(g, mm)
        } else {
            Err("gate/up has other readers".into())
        };
        if let Err(why) = why {
            note(g, format!("kept   {wname} SWIGLU: {why}"));
            continue;
        }
        let (op, name) = match g.node(mm).op.clone() {
            Op::MulMat { split } => (
                Op::MulMatLayer {
                    split,
                    norm: None,
                    epi: Epilogue::SwiGlu,
                    scale: 1.0,
                },
                "MUL_MAT_SWIGLU",
            ),
            // The experts' gate/up (qwen3moe): each (token, slot) pair's silu(gate)·up.
            Op::MulMatId { split, route, .. } => (
                Op::MulMatId {
                    split,
                    glu: true,
                    route,
                },
                "MUL_MAT_ID_SWIGLU",
            ),
            _ => unreachable!("checked by gate_up_matmul"),
        };
        let node = &mut g.dag[mm];
        node.op = op;
        node.dst = out;
        remove(g, s);
        note(
            g,
            format!("folded {wname} + SWIGLU → {name} (the epilogue writes silu(gate)·up) — 1 dispatch and 1 stage fewer"),
        );
        done += 1;
    }
    done
}

/// SCALE(MUL_MAT(W, x)) → the matmul scales its product (LoRA's `s·B·(A·x)`).
fn scale_epilogue(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    let (readers, producer) = uses(g);
    let mut done = 0;
    let order: Vec<NodeIndex> = g.order().collect();
    for sc in order {
        let Op::Scale { s } = g.node(sc).op else {
            continue;
        };
        let t = g.node(sc).srcs[0];
        let Some(&mm) = producer.get(&t) else {
            continue;
        };
        let Op::MulMat { split } = g.node(mm).op.clone() else {
            continue;
        };
        if g.root(t) != t || readers[&t].len() != 1 || g.tensor(g.node(sc).dst).ne != g.tensor(t).ne
        {
            continue;
        }
        let wname = pretty(&g.tensor(g.node(mm).srcs[0]).name);
        if let Err(why) = fusable(g, mm) {
            note(g, format!("kept   {wname} + SCALE: {why}"));
            continue;
        }
        let out = g.node(sc).dst;
        let node = &mut g.dag[mm];
        node.op = Op::MulMatLayer {
            split,
            norm: None,
            epi: Epilogue::None,
            scale: s,
        };
        node.dst = out;
        remove(g, sc);
        note(g, format!("folded {wname} + SCALE ×{s} → the matmul scales its product — 1 dispatch and 1 stage fewer"));
        done += 1;
    }
    done
}

fn add_epilogue(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    let (readers, mut producer) = uses(g);
    let mut done = 0;
    let order: Vec<NodeIndex> = g.order().collect();
    for a in order {
        if g.node(a).op != Op::Add {
            continue;
        }
        let out = g.node(a).dst;
        let ne = g.tensor(out).ne;
        // The matmul's result (an unsplit MUL_MAT read only by this ADD), the other
        // operand the residual; shapes equal (no broadcast), all f32.
        let pick = (0..2).find_map(|i| {
            let t = g.node(a).srcs[i];
            let r = g.node(a).srcs[1 - i];
            let &mm = producer.get(&t)?;
            let plain = match &g.node(mm).op {
                Op::MulMat { split } => split.is_empty(),
                // A matmul with a SCALE folded in (a LoRA B factor).
                Op::MulMatLayer {
                    split,
                    norm: None,
                    epi: Epilogue::None,
                    ..
                } => split.is_empty(),
                _ => false,
            };
            let ok = plain
                && g.root(t) == t
                && readers[&t].len() == 1
                && g.tensor(t).ne == ne
                && g.tensor(r).ne == ne
                && g.tensor(r).ty == GgmlType::F32
                && matches!(g.tensor(t).kind, TensorKind::Activation);
            ok.then_some((mm, r))
        });
        let Some((mm, r)) = pick else {
            continue;
        };
        let wname = pretty(&g.tensor(g.node(mm).srcs[0]).name);
        if let Err(why) = fusable(g, mm) {
            note(g, format!("kept   {wname} + ADD: {why}"));
            continue;
        }
        let node = &mut g.dag[mm];
        let scale = match node.op {
            Op::MulMatLayer { scale, .. } => scale,
            _ => 1.0,
        };
        node.op = Op::MulMatLayer {
            split: vec![],
            norm: None,
            epi: Epilogue::Add,
            scale,
        };
        node.srcs.push(r);
        node.dst = out;
        producer.insert(out, mm);
        // The matmul now also reads r, which may be computed after it (a LoRA side
        // product): it takes the ADD's place in the order.
        for stage in &mut g.schedule {
            stage.retain(|&n| n != mm);
            for slot in stage.iter_mut() {
                if *slot == a {
                    *slot = mm;
                }
            }
        }
        g.schedule.retain(|s| !s.is_empty());
        g.dag.remove_node(a);
        note(
            g,
            format!("folded {wname} + residual ADD → MUL_MAT_ADD — 1 dispatch fewer"),
        );
        done += 1;
    }
    done
}

/// SWIGLU(gate, p) or SWIGLU(p, up) where `p` is a MUL_MAT_ADD (a LoRA B factor plus the
/// base output it corrects) and the base output and the other operand are the two halves
/// of one fused gate/up output: the matmul adds its product to that half and applies the
/// SwiGLU itself (`Epilogue::AddSwiGlu`), reading the whole gate/up output.
fn lora_swiglu_epilogue(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    let (readers, producer) = uses(g);
    let mut done = 0;
    let order: Vec<NodeIndex> = g.order().collect();
    for s in order {
        if g.node(s).op != Op::SwiGlu {
            continue;
        }
        let (gate, up) = (g.node(s).srcs[0], g.node(s).srcs[1]);
        let out = g.node(s).dst;
        // The operand a MUL_MAT_ADD writes (up first: an adapted ffn_up is the common case).
        let pick = [(up, false), (gate, true)]
            .into_iter()
            .find_map(|(t, is_gate)| {
                let &mm = producer.get(&t)?;
                matches!(
                    g.node(mm).op,
                    Op::MulMatLayer {
                        norm: None,
                        epi: Epilogue::Add,
                        ..
                    }
                )
                .then_some((mm, is_gate))
            });
        let Some((mm, is_gate)) = pick else {
            continue;
        };
        let wname = pretty(&g.tensor(g.node(mm).srcs[0]).name);
        let (p, other) = if is_gate { (gate, up) } else { (up, gate) };
        let r = *g
            .node(mm)
            .srcs
            .last()
            .expect("a MUL_MAT_ADD reads its residual");
        let root = g.root(r);
        let half = g.tensor(root).nbytes() / 2;
        let (rr, ro) = (g.region(r), g.region(other));
        let (r_at, o_at) = if is_gate { (0, half) } else { (half, 0) };
        let why = if g.root(other) != root
            || rr.offset != r_at
            || ro.offset != o_at
            || rr.size != half
            || ro.size != half
            || g.tensor(root).ty != GgmlType::F32
        {
            Err(
                "the base output and the other SwiGLU operand are not the halves of one fused \
                 gate/up output"
                    .to_string(),
            )
        } else if g.root(p) != p || readers[&p].iter().any(|&n| n != s) {
            Err("the corrected output has other readers".into())
        } else if !matches!(
            g.tensor(g.node(mm).srcs[0]).ty,
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16
        ) {
            // Quantized factors may take the integer-dot mat-vec, which has no such epilogue.
            Err(format!(
                "the factor is {} (the epilogue is in the float mat-vec only)",
                g.tensor(g.node(mm).srcs[0]).ty
            ))
        } else {
            fusable(g, mm)
        };
        if let Err(why) = why {
            note(
                g,
                format!("kept   {} SWIGLU after {wname}: {why}", g.tensor(out).name),
            );
            continue;
        }
        let node = &mut g.dag[mm];
        let Op::MulMatLayer { epi, .. } = &mut node.op else {
            unreachable!("picked above")
        };
        *epi = Epilogue::AddSwiGlu { gate: is_gate };
        *node.srcs.last_mut().expect("checked above") = root;
        node.dst = out;
        remove(g, s);
        let half_name = if is_gate { "gate" } else { "up" };
        note(
            g,
            format!(
                "folded {wname} + SWIGLU → MUL_MAT_ADD_SWIGLU (the epilogue adds the product \
                 to {half_name}, then writes silu(gate)·up) — 1 dispatch and 1 stage fewer"
            ),
        );
        done += 1;
    }
    done
}

fn norm_prologue(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    let (readers, _) = uses(g);
    let mut done = 0;
    let order: Vec<NodeIndex> = g.order().collect();
    for nm in order {
        let Op::RmsNormMul { eps } = g.node(nm).op else {
            continue;
        };
        let (x, nw) = (g.node(nm).srcs[0], g.node(nm).srcs[1]);
        let t = g.node(nm).dst;
        let name = g.tensor(t).name.clone();
        // One norm weight row for every token (not qwen3's per-head norms).
        if g.tensor(nw).nelements() != g.tensor(x).ne[0] || g.root(t) != t {
            continue;
        }
        let rs = readers.get(&t).cloned().unwrap_or_default();
        let why = rs
            .iter()
            .find_map(|&r| {
                let node = g.node(r);
                let is_mm = matches!(
                    node.op,
                    Op::MulMat { .. } | Op::MulMatLayer { norm: None, .. }
                );
                if !is_mm || node.srcs[1] != t || node.srcs[0] == t {
                    return Some(format!(
                        "read by {} `{}`",
                        node.op.name(),
                        g.tensor(node.dst).name
                    ));
                }
                fusable(g, r).err()
            })
            // The backend may also judge the fold itself (e.g. whether it saves a stage).
            .or_else(|| fusable(g, nm).err());
        if rs.is_empty() {
            continue;
        }
        if let Some(why) = why {
            note(g, format!("kept   {name} RMS_NORM_MUL: {why}"));
            continue;
        }
        let mut into = Vec::new();
        for &r in &rs {
            let node = &mut g.dag[r];
            node.op = match std::mem::replace(&mut node.op, Op::SwiGlu) {
                Op::MulMat { split } => Op::MulMatLayer {
                    split,
                    norm: Some(eps),
                    epi: Epilogue::None,
                    scale: 1.0,
                },
                Op::MulMatLayer {
                    split, epi, scale, ..
                } => Op::MulMatLayer {
                    split,
                    norm: Some(eps),
                    epi,
                    scale,
                },
                _ => unreachable!("checked above"),
            };
            // [w, x] → [w, x, nw]: the norm weight after x (as Op::MulMatLayer lists).
            node.srcs[1] = x;
            node.srcs.insert(2, nw);
            into.push(pretty(&g.tensor(g.node(r).srcs[0]).name));
        }
        remove(g, nm);
        note(
            g,
            format!(
                "folded {name} (RMS_NORM_MUL) into the prologue of {} — 1 dispatch and 1 stage fewer",
                into.join(", ")
            ),
        );
        done += 1;
    }
    done
}

/// A MoE layer's ffn norm stays (the experts' gate/up reads it), but its router — an f32,
/// unsplit MUL_MAT whose logits only MOE_TOPK (and MOE_WEIGHTS) read — can compute the
/// norm itself: it becomes a MUL_MAT_LAYER with the norm prologue over the norm's input,
/// so it (and the MOE_ROUTER_TOPK `passes::fusion` makes of it) runs beside the norm
/// instead of after it. Returns how many routers were rewired (no node goes away).
fn router_norm_prologue(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    let (readers, _) = uses(g);
    let mut done = 0;
    let order: Vec<NodeIndex> = g.order().collect();
    for nm in order {
        let Op::RmsNormMul { eps } = g.node(nm).op else {
            continue;
        };
        let (x, nw, t) = (g.node(nm).srcs[0], g.node(nm).srcs[1], g.node(nm).dst);
        if g.tensor(nw).nelements() != g.tensor(x).ne[0] || g.root(t) != t {
            continue;
        }
        let rs = readers.get(&t).cloned().unwrap_or_default();
        for r in rs {
            let node = g.node(r);
            let router = matches!(&node.op, Op::MulMat { split } if split.is_empty())
                && node.srcs[1] == t
                && g.tensor(node.srcs[0]).ty == GgmlType::F32
                && readers.get(&node.dst).is_some_and(|u| {
                    u.iter()
                        .any(|&q| matches!(g.node(q).op, Op::MoeTopK { .. }))
                        && u.iter()
                            .all(|&q| matches!(g.node(q).op, Op::MoeTopK { .. } | Op::MoeWeights))
                });
            if !router {
                continue;
            }
            let wname = pretty(&g.tensor(node.srcs[0]).name);
            let name = g.tensor(t).name.clone();
            if let Err(why) = fusable(g, r) {
                note(g, format!("kept   {name} before the router {wname}: {why}"));
                continue;
            }
            let node = &mut g.dag[r];
            node.op = Op::MulMatLayer {
                split: vec![],
                norm: Some(eps),
                epi: Epilogue::None,
                scale: 1.0,
            };
            node.srcs = vec![node.srcs[0], x, nw];
            note(
                g,
                format!(
                    "folded {name} (RMS_NORM_MUL) into the prologue of the router {wname} \
                     (the norm stays for its other readers) — the router and its top-k run \
                     beside the norm: 1 stage fewer"
                ),
            );
            done += 1;
        }
    }
    done
}

/// Most tokens whose experts route themselves ([`route_in_experts`]): decode batches.
pub const ROUTE_MAX_N: usize = 8;

/// A decode batch's expert matmuls that read the tokens' own rows (gate/up: `nx` = 1)
/// route themselves: MUL_MAT_ID(w, x, MOE_TOPK(logits)) becomes MUL_MAT_ID(w, x, logits)
/// with `route: Some(k)` — each (token, slot) workgroup ranks the router's logits for
/// its expert — so it runs beside the MOE_TOPK instead of after it (the down experts
/// and MOE_WEIGHTS still read its ids, a stage later anyway), and the router stays a
/// plain matmul beside the ffn norm: `passes::fusion::moe_router_topk` leaves a routed
/// layer alone, so no router + top-k kernel waits for its last workgroup (on an H100
/// that arrival took the router from 7.4 to 11.9 µs). Returns how many were rewired
/// (no node goes away).
fn route_in_experts(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    let (_, producer) = uses(g);
    let mut done = 0;
    let order: Vec<NodeIndex> = g.order().collect();
    for mm in order {
        let node = g.node(mm);
        let Op::MulMatId { route: None, .. } = node.op else {
            continue;
        };
        let (x, ids) = (node.srcs[1], node.srcs[2]);
        let Some(&tk) = producer.get(&g.root(ids)) else {
            continue;
        };
        let Op::MoeTopK { k } = g.node(tk).op else {
            continue;
        };
        let logits = g.node(tk).srcs[0];
        let wname = pretty(&g.tensor(node.srcs[0]).name);
        let tokens = g.tensor(ids).ne[1];
        if g.tensor(x).ne[1] != 1 {
            continue; // one row per slot: the down experts, after the first anyway
        }
        let why = if tokens > ROUTE_MAX_N || g.root(ids) != ids || g.root(logits) != logits {
            Err(format!("{tokens} tokens (routing in the kernel is for decode batches of at most {ROUTE_MAX_N})"))
        } else {
            // The MOE_TOPK's backend on routing at all, the matmul's on its kernel.
            fusable(g, tk).and_then(|()| fusable(g, mm))
        };
        if let Err(why) = why {
            note(g, format!("kept   {wname} after its MOE_TOPK: {why}"));
            continue;
        }
        let node = &mut g.dag[mm];
        if let Op::MulMatId { route, .. } = &mut node.op {
            *route = Some(k);
        }
        node.srcs[2] = logits;
        note(
            g,
            format!(
                "routed {wname}: ranks the router's logits itself (MOE_TOPK's order) — runs \
                 beside MOE_TOPK instead of after it, and the router needs no top-k of its own"
            ),
        );
        done += 1;
    }
    done
}

/// The RoPE / KV-cache stage of a one-token decode layer folded into its ATTENTION (see
/// the module docs): ROPE(q) → attention, ROPE_SET_ROWS(k) and SET_ROWS(v) into the cache
/// the attention reads, same positions, cells and rotation for q and k, each result read
/// by that attention only. Returns how many nodes were folded away.
fn rope_into_attention(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    let (readers, producer) = uses(g);
    // The writer of each cache root (SET_ROWS / ROPE_SET_ROWS).
    let mut cache_writer: HashMap<TensorId, Vec<NodeIndex>> = HashMap::new();
    for n in g.order() {
        if matches!(g.node(n).op, Op::SetRows | Op::RopeSetRows { .. }) {
            cache_writer
                .entry(g.root(g.node(n).dst))
                .or_default()
                .push(n);
        }
    }
    let mut done = 0;
    let order: Vec<NodeIndex> = g.order().collect();
    for att in order {
        let Op::Attention { scale, rope: None } = g.node(att).op else {
            continue;
        };
        let srcs = g.node(att).srcs.clone();
        let name = g.tensor(g.node(att).dst).name.clone();
        let found = (|| -> Result<(NodeIndex, NodeIndex, NodeIndex), String> {
            if g.tensor(srcs[0]).ne[2] != 1 {
                return Err(format!(
                    "{} tokens (the fold takes one: other tokens' new rows would be written \
                     by other workgroups of the same dispatch)",
                    g.tensor(srcs[0]).ne[2]
                ));
            }
            let qn = *producer.get(&srcs[0]).ok_or("q is not a node's output")?;
            let only = |w: &[NodeIndex]| -> Option<NodeIndex> {
                match w {
                    [one] => Some(*one),
                    _ => None,
                }
            };
            let kn = cache_writer
                .get(&g.root(srcs[1]))
                .and_then(|w| only(w))
                .ok_or("the K cache has no single writer here")?;
            let vn = cache_writer
                .get(&g.root(srcs[2]))
                .and_then(|w| only(w))
                .ok_or("the V cache has no single writer here")?;
            let (qo, ko, vo) = (&g.node(qn).op, &g.node(kn).op, &g.node(vn).op);
            let (
                Op::Rope {
                    mode,
                    n_dims,
                    freq_base,
                    freq_scale,
                    norm,
                },
                Op::RopeSetRows {
                    mode: km,
                    n_dims: kd,
                    freq_base: kb,
                    freq_scale: ks,
                    norm: knorm,
                },
                Op::SetRows,
            ) = (qo, ko, vo)
            else {
                return Err(format!(
                    "q from {}, K cache by {}, V cache by {} (not ROPE / ROPE_SET_ROWS / SET_ROWS)",
                    qo.name(),
                    ko.name(),
                    vo.name()
                ));
            };
            if (mode, n_dims, freq_base, freq_scale, norm) != (km, kd, kb, ks, knorm) {
                return Err("q and k are rotated differently".into());
            }
            let (qs, ks_, vs) = (&g.node(qn).srcs, &g.node(kn).srcs, &g.node(vn).srcs);
            if qs[1] != ks_[1] || ks_[2] != vs[1] {
                return Err(
                    "q and k rotate at different positions or K and V go to different cells".into(),
                );
            }
            let read_only_here = |t: TensorId| {
                readers
                    .get(&g.root(t))
                    .is_some_and(|r| r.iter().all(|&x| x == att))
            };
            if !read_only_here(srcs[0]) {
                return Err("the rotated q has other readers".into());
            }
            if !(read_only_here(srcs[1]) && read_only_here(srcs[2])) {
                return Err("the cache has other readers".into());
            }
            fusable(g, att)?;
            Ok((qn, kn, vn))
        })();
        let (qn, kn, vn) = match found {
            Ok(v) => v,
            Err(why) => {
                note(g, format!("kept   {name} ROPE / KV-cache stage: {why}"));
                continue;
            }
        };
        let (qs, ks, vs) = (
            g.node(qn).srcs.clone(),
            g.node(kn).srcs.clone(),
            g.node(vn).srcs.clone(),
        );
        let Op::Rope {
            mode,
            n_dims,
            freq_base,
            freq_scale,
            norm,
        } = g.node(qn).op
        else {
            unreachable!("checked above")
        };
        // [q, k, v, span] → [q_raw, k, v, span, pos, cells, k_new, v_new (, q_w, k_w)].
        let mut new_srcs = vec![qs[0], srcs[1], srcs[2], srcs[3], qs[1], ks[2], ks[0], vs[0]];
        if norm.is_some() {
            new_srcs.push(*qs.last().expect("a norm weight"));
            new_srcs.push(*ks.last().expect("a norm weight"));
        }
        let node = &mut g.dag[att];
        node.op = Op::Attention {
            scale,
            rope: Some(crate::graph::AttnRope {
                mode,
                n_dims,
                freq_base,
                freq_scale,
                norm,
                lora: [None; 3],
            }),
        };
        node.srcs = new_srcs;
        let what = format!(
            "{} (q) + {} (k) + SET_ROWS (v)",
            g.node(qn).op.name(),
            g.node(kn).op.name()
        );
        for n in [qn, kn, vn] {
            remove(g, n);
        }
        note(
            g,
            format!(
                "folded {what} into {name} → ROPE_ATTENTION (the attention rotates q and \
                 writes the new K/V row) — 3 dispatches and 1 stage fewer"
            ),
        );
        done += 3;
    }
    done
}

/// A RoPE-folded attention's q, k_new and v_new that are MUL_MAT_ADDs of a LoRA B factor
/// (f32 or f16, one token, the base projection as residual, read only by the attention):
/// the attention adds `s · B·a` to the base projection itself (`AttnRope::lora`), so the
/// B factors need no stage before it. All three share one rank and B type, or none folds.
fn lora_into_attention(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    let (readers, producer) = uses(g);
    let mut done = 0;
    let order: Vec<NodeIndex> = g.order().collect();
    for att in order {
        let Op::Attention {
            scale,
            rope: Some(r),
        } = g.node(att).op
        else {
            continue;
        };
        let srcs = g.node(att).srcs.clone();
        // q, k_new, v_new and the LoRA corrections that write them.
        let mut found: [Option<LoraSide>; 3] = [None, None, None];
        for (i, &t) in [srcs[0], srcs[6], srcs[7]].iter().enumerate() {
            // The attention reads the corrected output whole, in its head shape.
            let root = g.root(t);
            if g.region(t).offset == 0
                && g.tensor(t).nbytes() == g.tensor(root).nbytes()
                && readers[&root].iter().all(|&n| n == att)
            {
                found[i] = lora_side(g, &producer, &readers, root);
            }
        }
        if found.iter().all(Option::is_none) {
            continue;
        }
        let name = g.tensor(g.node(att).dst).name.clone();
        let bs: Vec<TensorId> = found.iter().flatten().map(|l| l.b).collect();
        let (b0, w0) = (g.tensor(bs[0]).ne[0], g.tensor(bs[0]).ty);
        let same = bs
            .iter()
            .all(|&b| g.tensor(b).ne[0] == b0 && g.tensor(b).ty == w0);
        let why = if !matches!(w0, GgmlType::F32 | GgmlType::F16) {
            Err(format!(
                "its B factors are {w0} (the attention reads f32 or f16)"
            ))
        } else if !same {
            Err("its B factors differ in rank or type".to_string())
        } else {
            Ok(())
        };
        // The fold, tried: the backend judges the attention with it.
        let old = (g.node(att).op.clone(), srcs.clone());
        let mut new_srcs = srcs.clone();
        let mut lora = [None; 3];
        for (i, f) in found.iter().enumerate() {
            if let Some(l) = f {
                let (b, a, base, s) = (l.b, l.a, l.base, l.scale);
                // [B, a, base]: the attention reads the base, in the shape it read the
                // corrected output (a new view; left unread if the fold is refused), and
                // appends (B, a).
                let at = [0, 6, 7][i];
                let ne = g.tensor(srcs[at]).ne;
                let v = if g.tensor(base).ne == ne {
                    base
                } else {
                    g.reshape(base, ne)
                };
                new_srcs[at] = v;
                new_srcs.extend([b, a]);
                lora[i] = Some(s);
            }
        }
        let why = why.and_then(|()| {
            let node = &mut g.dag[att];
            node.op = Op::Attention {
                scale,
                rope: Some(crate::graph::AttnRope { lora, ..r }),
            };
            node.srcs = new_srcs;
            fusable(g, att)
        });
        let members: Vec<String> = found
            .iter()
            .flatten()
            .map(|l| pretty(&g.tensor(l.b).name))
            .collect();
        if let Err(why) = why {
            let node = &mut g.dag[att];
            (node.op, node.srcs) = old;
            note(
                g,
                format!("kept   {} before {name}: {why}", members.join(" + ")),
            );
            continue;
        }
        let n: usize = found.iter().flatten().map(|l| l.nodes.len()).sum();
        for l in found.into_iter().flatten() {
            for m in l.nodes {
                remove(g, m);
            }
        }
        note(
            g,
            format!(
                "folded {} into {name} → the attention adds their products to its base \
                 projections first — {n} dispatch{} fewer, no stage of their own",
                members.join(" + "),
                if n == 1 { "" } else { "es" }
            ),
        );
        done += n;
    }
    done
}

/// A LoRA correction `base + s · B·a` of a projection, as the graph holds it.
struct LoraSide {
    /// The nodes computing it (removed when the attention takes it).
    nodes: Vec<NodeIndex>,
    b: TensorId,
    a: TensorId,
    base: TensorId,
    scale: f32,
}

/// The LoRA correction writing tensor `root`: a MUL_MAT_ADD of a B factor (the scale and
/// add folds), or — where the backend kept B's matmul apart, e.g. a rank below its
/// kernels' 16-value blocks — the builder's ADD(base, SCALE(MUL_MAT(B, a))), each node
/// read only by the next.
fn lora_side(
    g: &Graph,
    producer: &HashMap<TensorId, NodeIndex>,
    readers: &HashMap<TensorId, Vec<NodeIndex>>,
    root: TensorId,
) -> Option<LoraSide> {
    let lora_b = |w: TensorId| g.tensor(w).name.ends_with(".lora_b");
    let only = |t: TensorId, by: NodeIndex| {
        g.root(t) == t && readers.get(&t).is_some_and(|r| r.iter().all(|&n| n == by))
    };
    let &mm = producer.get(&root)?;
    let node = g.node(mm);
    match &node.op {
        Op::MulMatLayer {
            split,
            norm: None,
            epi: Epilogue::Add,
            scale,
        } if split.is_empty() && lora_b(node.srcs[0]) => Some(LoraSide {
            nodes: vec![mm],
            b: node.srcs[0],
            a: node.srcs[1],
            base: node.srcs[2],
            scale: *scale,
        }),
        Op::Add => {
            let add = mm;
            (0..2).find_map(|i| {
                let (sc_t, base) = (node.srcs[i], node.srcs[1 - i]);
                let &sc = producer.get(&sc_t)?;
                let Op::Scale { s } = g.node(sc).op else {
                    return None;
                };
                let y = g.node(sc).srcs[0];
                let &m = producer.get(&y)?;
                let mn = g.node(m);
                let plain = matches!(&mn.op, Op::MulMat { split } if split.is_empty());
                (plain && lora_b(mn.srcs[0]) && only(sc_t, add) && only(y, sc)).then(|| LoraSide {
                    nodes: vec![add, sc, m],
                    b: mn.srcs[0],
                    a: mn.srcs[1],
                    base,
                    scale: s,
                })
            })
        }
        _ => None,
    }
}

/// The per-segment bias ADDs of a split MUL_MAT folded into its epilogue (see the module
/// docs): every segment's view is read only by an ADD with a 1-D f32 bias weight of the
/// segment's rows. The ADDs' outputs become the segment views of the matmul's output.
fn bias_epilogue(g: &mut Graph, fusable: Fusable<'_>) -> usize {
    // Readers of each tensor itself (a segment view, not its root).
    let mut readers: HashMap<TensorId, Vec<NodeIndex>> = HashMap::new();
    for n in g.order() {
        for &t in &g.node(n).srcs {
            readers.entry(t).or_default().push(n);
        }
    }
    // Segment views per matmul output root: (view tensor, byte offset).
    let mut views: HashMap<TensorId, Vec<(TensorId, usize)>> = HashMap::new();
    for (i, t) in g.tensors.iter().enumerate() {
        if let TensorKind::View { base, offset } = t.kind {
            views
                .entry(base)
                .or_default()
                .push((TensorId(i as u32), offset));
        }
    }
    let mut done = 0;
    let order: Vec<NodeIndex> = g.order().collect();
    for mm in order {
        if !g.dag.contains_node(mm) {
            continue; // an ADD folded away above
        }
        let Op::MulMat { split } = g.node(mm).op.clone() else {
            continue;
        };
        if split.len() < 2 {
            continue; // an unsplit bias ADD is the residual fold's (same shapes at n = 1)
        }
        let out = g.node(mm).dst;
        let n_tok = g.tensor(g.node(mm).srcs[1]).nrows();
        let mut segs = views.get(&out).cloned().unwrap_or_default();
        segs.sort_by_key(|&(_, off)| off);
        // Each segment: its view, the one ADD reading it, and that ADD's bias weight.
        let found = (|| -> Option<Vec<(TensorId, NodeIndex, TensorId)>> {
            if segs.len() != split.len() {
                return None;
            }
            let mut v = Vec::new();
            let mut at = 0;
            for (&(view, off), &rows) in segs.iter().zip(&split) {
                if off != at * n_tok * 4 {
                    return None;
                }
                at += rows;
                let rs = readers.get(&view)?;
                let &[a] = rs.as_slice() else {
                    return None;
                };
                if g.node(a).op != Op::Add {
                    return None;
                }
                let srcs = &g.node(a).srcs;
                let b = if srcs[0] == view { srcs[1] } else { srcs[0] };
                let bt = g.tensor(b);
                let is_bias = matches!(bt.kind, TensorKind::Weight { .. })
                    && bt.ty == GgmlType::F32
                    && bt.nelements() == rows
                    && (srcs[0] == view) != (srcs[1] == view);
                if !is_bias || !matches!(g.tensor(g.node(a).dst).kind, TensorKind::Activation) {
                    return None;
                }
                v.push((view, a, b));
            }
            Some(v)
        })();
        let Some(parts) = found else {
            continue;
        };
        let wname = pretty(&g.tensor(g.node(mm).srcs[0]).name);
        if let Err(why) = fusable(g, mm) {
            note(g, format!("kept   {wname} + bias ADDs: {why}"));
            continue;
        }
        // One bias tensor: the members back to back (placed so at load time).
        let members: Vec<String> = parts
            .iter()
            .map(|&(_, _, b)| match &g.tensor(b).kind {
                TensorKind::Weight { name } => name.clone(),
                _ => unreachable!("checked above"),
            })
            .collect();
        let m: usize = split.iter().sum();
        let bname = format!(
            "{}.bias",
            g.tensor(g.node(mm).srcs[0])
                .name
                .trim_end_matches(".weight")
        );
        let bias = g.add_tensor(
            bname,
            GgmlType::F32,
            [m, 1, 1, 1],
            TensorKind::FusedWeight { members },
        );
        // The ADDs' outputs take the segment views' places.
        let mut off = 0;
        for (&(_, a, _), &rows) in parts.iter().zip(&split) {
            let dst = g.node(a).dst;
            g.tensors[dst.idx()].kind = TensorKind::View {
                base: out,
                offset: off * n_tok * 4,
            };
            off += rows;
        }
        let node = &mut g.dag[mm];
        node.op = Op::MulMatLayer {
            split,
            norm: None,
            epi: Epilogue::Bias,
            scale: 1.0,
        };
        node.srcs.push(bias);
        for &(_, a, _) in &parts {
            remove(g, a);
        }
        note(
            g,
            format!(
                "folded {wname} + {} bias ADDs → MUL_MAT_BIAS (the biases placed back to back) \
                 — {} dispatches fewer",
                parts.len(),
                parts.len()
            ),
        );
        done += parts.len();
    }
    done
}
