//! Op fusion, applied in every QKV mode so the sibling A/B comparison stays like for like:
//! - RMS_NORM followed by a MUL of its result (every norm in these models: `attn_norm`,
//!   `ffn_norm`, `q_norm`/`k_norm`, `result_norm`) becomes one RMS_NORM_MUL node: one
//!   dispatch instead of two and one barrier less;
//! - an RMS_NORM_MUL of a residual ADD's result reads the ADD's two operands instead
//!   (ADD_RMS_NORM_MUL), so it no longer waits for the ADD: both run in one stage. The
//!   ADD stays, since later layers read the residual;
//! - the ROPE of K whose only reader is the KV-cache SET_ROWS becomes one ROPE_SET_ROWS
//!   (rotate and write f16 rows), one dispatch and one stage less per layer;
//! - a per-head RMS_NORM_MUL (qwen3's q_norm / k_norm) whose only reader is a ROPE or
//!   ROPE_SET_ROWS folds into it (`norm: Some(eps)`): two dispatches and one stage less;
//! - the residual ADD of a MOE_SUM whose only reader it is becomes one MOE_SUM_ADD
//!   (qwen3moe): one dispatch and one stage less per layer;
//! - an RMS_NORM_MUL of a MOE_SUM_ADD's result reads the MOE_SUM_ADD's operands instead
//!   (MOE_SUM_ADD_RMS_NORM_MUL: the next layer's attention norm), so both run in one stage;
//!   the Vulkan executor then records the pair as one dispatch ([`residual_add_folds`]);
//! - a MOE_TOPK of a decode batch's f32 router MUL_MAT reads the router's operands instead
//!   (MOE_ROUTER_TOPK), so it runs beside the matmul, which the Vulkan executor then
//!   records inside it ([`router_topk_folds`]): one stage and one dispatch less per layer.

use crate::graph::{Epilogue, Graph, Op, TensorKind};
use crate::quant::GgmlType;

/// Removes a node folded into another from the DAG and the schedule.
fn remove_node(g: &mut Graph, n: petgraph::stable_graph::NodeIndex) {
    g.dag.remove_node(n);
    for stage in &mut g.schedule {
        stage.retain(|&s| s != n);
    }
    g.schedule.retain(|s| !s.is_empty());
}

type Readers = std::collections::HashMap<crate::graph::TensorId, usize>;
type Producers =
    std::collections::HashMap<crate::graph::TensorId, petgraph::stable_graph::NodeIndex>;

/// The nodes in schedule order, how many node sources read each root tensor (views
/// count against their root), and the node writing each tensor.
fn uses(g: &Graph) -> (Vec<petgraph::stable_graph::NodeIndex>, Readers, Producers) {
    let order: Vec<_> = g.order().collect();
    let (mut readers, mut producer) = (Readers::new(), Producers::new());
    for &n in &order {
        for &s in &g.node(n).srcs {
            *readers.entry(g.root(s)).or_insert(0usize) += 1;
        }
        producer.insert(g.node(n).dst, n);
    }
    (order, readers, producer)
}

/// Fuses every RMS_NORM whose only consumer is a MUL taking it as first operand.
/// Returns the number of pairs fused.
pub fn rms_norm_mul(g: &mut Graph) -> usize {
    let (order, readers, _) = uses(g);
    let mut fused = 0;
    for &m in &order {
        let Some(node) = g.dag.node_weight(m) else {
            continue;
        };
        if node.op != Op::Mul {
            continue;
        }
        let t = node.srcs[0];
        let w = node.srcs[1];
        // The norm's output must be a plain activation read only by this MUL.
        if !matches!(g.tensor(t).kind, TensorKind::Activation) || readers.get(&t) != Some(&1) {
            continue;
        }
        let Some(n) = order
            .iter()
            .copied()
            .find(|&n| g.dag.node_weight(n).is_some_and(|x| x.dst == t))
        else {
            continue;
        };
        let Op::RmsNorm { eps } = g.node(n).op else {
            continue;
        };
        let x = g.node(n).srcs[0];
        let mnode = &mut g.dag[m];
        mnode.op = Op::RmsNormMul { eps };
        mnode.srcs = vec![x, w];
        remove_node(g, n);
        fused += 1;
    }
    if fused > 0 {
        g.rebuild_edges();
    }
    fused
}

/// Rewrites ADD(MOE_SUM(y, w), r) (either operand order) into MOE_SUM_ADD(y, w, r) when
/// the ADD is the sum's only reader and a plain element-wise f32 sum. Returns the number
/// rewritten.
pub fn moe_sum_add(g: &mut Graph) -> usize {
    let (order, readers, producer) = uses(g);
    let mut done = 0;
    for &a in &order {
        let Some(node) = g.dag.node_weight(a) else {
            continue;
        };
        if node.op != Op::Add || node.srcs.len() != 2 {
            continue;
        }
        let (dst, srcs) = (node.dst, node.srcs.clone());
        for (i, &t) in srcs.iter().enumerate() {
            let r = srcs[1 - i];
            let Some(&m) = producer.get(&t) else { continue };
            let same = |x| g.tensor(x).ne == g.tensor(dst).ne && g.tensor(x).ty == GgmlType::F32;
            if g.node(m).op != (Op::MoeSum { residual: false })
                || readers.get(&g.root(t)) != Some(&1)
                || !matches!(g.tensor(t).kind, TensorKind::Activation)
                || !same(t)
                || !same(r)
                || !same(dst)
            {
                continue;
            }
            let (y, w) = (g.node(m).srcs[0], g.node(m).srcs[1]);
            let anode = &mut g.dag[a];
            anode.op = Op::MoeSum { residual: true };
            anode.srcs = vec![y, w, r];
            remove_node(g, m);
            done += 1;
            break;
        }
    }
    if done > 0 {
        g.rebuild_edges();
    }
    done
}

/// Rewrites RMS_NORM_MUL(ADD(a, b), w) into ADD_RMS_NORM_MUL(a, b, w) and
/// RMS_NORM_MUL(MOE_SUM_ADD(y, wts, r), w) into MOE_SUM_ADD_RMS_NORM_MUL(y, wts, r, w)
/// (the ADD / MOE_SUM_ADD stays: the next residual reads it). Returns the number rewritten.
pub fn add_rms_norm_mul(g: &mut Graph) -> usize {
    let order: Vec<_> = g.order().collect();
    let mut producer = std::collections::HashMap::new();
    for &n in &order {
        producer.insert(g.node(n).dst, n);
    }
    let mut done = 0;
    for &m in &order {
        let Op::RmsNormMul { eps } = g.node(m).op else {
            continue;
        };
        let (x, w) = (g.node(m).srcs[0], g.node(m).srcs[1]);
        let Some(&a) = producer.get(&x) else { continue };
        if g.node(a).op == (Op::MoeSum { residual: true }) {
            // The sum's sources are [y, wts, r]; y and wts are read whole, as MOE_SUM_ADD
            // reads them, so only the residual's shape needs checking.
            let srcs = g.node(a).srcs.clone();
            if g.tensor(srcs[2]).ne != g.tensor(x).ne || g.tensor(x).ty != GgmlType::F32 {
                continue;
            }
            let node = &mut g.dag[m];
            node.op = Op::MoeSumRmsNormMul { eps };
            node.srcs = vec![srcs[0], srcs[1], srcs[2], w];
            done += 1;
            continue;
        }
        if g.node(a).op != Op::Add {
            continue;
        }
        let (s0, s1) = (g.node(a).srcs[0], g.node(a).srcs[1]);
        // Only a plain element-wise sum (no row broadcast of the second operand).
        if g.tensor(s0).ne != g.tensor(x).ne || g.tensor(s1).ne != g.tensor(x).ne {
            continue;
        }
        let node = &mut g.dag[m];
        node.op = Op::AddRmsNormMul { eps };
        node.srcs = vec![s0, s1, w];
        done += 1;
    }
    if done > 0 {
        g.rebuild_edges();
    }
    done
}

/// Rewrites SET_ROWS(ROPE(x, pos), rows) into ROPE_SET_ROWS(x, pos, rows) when nothing
/// else reads the rope's result. Returns the number rewritten.
pub fn rope_set_rows(g: &mut Graph) -> usize {
    let (order, readers, producer) = uses(g);
    let mut done = 0;
    for &sr in &order {
        let Some(node) = g.dag.node_weight(sr) else {
            continue;
        };
        if node.op != Op::SetRows {
            continue;
        }
        let (src, rows) = (node.srcs[0], node.srcs[1]);
        let root = g.root(src);
        let Some(&r) = producer.get(&root) else {
            continue;
        };
        let Op::Rope {
            mode,
            n_dims,
            freq_base,
            freq_scale,
            norm: None,
        } = g.node(r).op
        else {
            continue;
        };
        // The rope's output is read only here, through a reshape of the whole tensor.
        if readers.get(&root) != Some(&1) || g.region(src).size != g.tensor(root).nbytes() {
            continue;
        }
        let (x, pos) = (g.node(r).srcs[0], g.node(r).srcs[1]);
        let node = &mut g.dag[sr];
        node.op = Op::RopeSetRows {
            mode,
            n_dims,
            freq_base,
            freq_scale,
            norm: None,
        };
        node.srcs = vec![x, pos, rows];
        remove_node(g, r);
        done += 1;
    }
    if done > 0 {
        g.rebuild_edges();
    }
    done
}

/// Folds RMS_NORM_MUL(x, w) over head rows (x's ne0 = the rope's head_dim, w one row)
/// into the ROPE / ROPE_SET_ROWS that alone reads it. Returns the number folded.
pub fn rms_norm_rope(g: &mut Graph) -> usize {
    let (order, readers, producer) = uses(g);
    let mut done = 0;
    for &r in &order {
        let Some(node) = g.dag.node_weight(r) else {
            continue;
        };
        let (Op::Rope { norm: None, .. } | Op::RopeSetRows { norm: None, .. }) = node.op else {
            continue;
        };
        let x = node.srcs[0];
        let Some(&m) = producer.get(&x) else {
            continue;
        };
        let Op::RmsNormMul { eps } = g.node(m).op else {
            continue;
        };
        let (nx, w) = (g.node(m).srcs[0], g.node(m).srcs[1]);
        let head_dim = g.tensor(x).ne[0];
        if readers.get(&g.root(x)) != Some(&1)
            || !matches!(g.tensor(x).kind, TensorKind::Activation)
            || g.tensor(nx).ne[0] != head_dim
            || g.tensor(w).nelements() != head_dim
            || g.tensor(nx).ne != g.tensor(x).ne
        {
            continue;
        }
        let node = &mut g.dag[r];
        match &mut node.op {
            Op::Rope { norm, .. } | Op::RopeSetRows { norm, .. } => *norm = Some(eps),
            _ => unreachable!("matched above"),
        }
        // [x, pos (, rows)] → [nx, pos (, rows), w]: the weight goes last.
        node.srcs[0] = nx;
        node.srcs.push(w);
        remove_node(g, m);
        done += 1;
    }
    if done > 0 {
        g.rebuild_edges();
    }
    done
}

type Pairs = Vec<(
    petgraph::stable_graph::NodeIndex,
    petgraph::stable_graph::NodeIndex,
)>;

/// (host, partner) pairs of `stage` whose partner the host's dispatch computes too: for
/// each host node (`partner_of` gives the op its partner must have and how many of the
/// host's first sources it shares), the first node of the stage with that op, exactly
/// those sources and an output `fits` accepts, each partner at most once. None for graphs
/// with a barrier after every node (the `off` baseline: each node records its own
/// dispatch there).
fn stage_pairs(
    g: &Graph,
    stage: &[petgraph::stable_graph::NodeIndex],
    partner_of: impl Fn(&crate::graph::Node) -> Option<(Op, usize)>,
    fits: impl Fn(&crate::graph::Tensor, &crate::graph::Tensor) -> bool,
) -> Pairs {
    let mut pairs = Pairs::new();
    if g.barrier_every_node {
        return pairs;
    }
    for &h in stage {
        let host = g.node(h);
        let Some((op, operands)) = partner_of(host) else {
            continue;
        };
        let partner = stage.iter().copied().find(|&p| {
            let pn = g.node(p);
            pn.op == op
                && pn.srcs[..] == host.srcs[..operands]
                && fits(g.tensor(host.dst), g.tensor(pn.dst))
                && !pairs.iter().any(|&(_, b)| b == p)
        });
        if let Some(p) = partner {
            pairs.push((h, p));
        }
    }
    pairs
}

/// The residual ADDs a backend may fold into the ADD_RMS_NORM_MUL of the same stage
/// (which computes the same sum from the same operands), and likewise the MOE_SUM_ADDs
/// into a MOE_SUM_ADD_RMS_NORM_MUL: (norm, add) pairs of `stage` ([`stage_pairs`]). The
/// Vulkan executor records each pair as one dispatch; the dump counts them.
pub fn residual_add_folds(g: &Graph, stage: &[petgraph::stable_graph::NodeIndex]) -> Pairs {
    stage_pairs(
        g,
        stage,
        |norm| match norm.op {
            Op::AddRmsNormMul { .. } => Some((Op::Add, 2)),
            Op::MoeSumRmsNormMul { .. } => Some((Op::MoeSum { residual: true }, 3)),
            _ => None,
        },
        // The sum has the norm's shape (an ADD of the same operands could broadcast).
        |norm, sum| sum.ne == norm.ne && sum.ty == GgmlType::F32,
    )
}

/// Most tokens a MOE_ROUTER_TOPK takes (`MAX_N` in `shaders/moe_router.comp`): decode
/// batches; prompt batches keep the router matmul and MOE_TOPK apart.
pub const ROUTER_TOPK_MAX_N: usize = 8;

/// Rewrites MOE_TOPK(MUL_MAT(router, x)) into MOE_ROUTER_TOPK(router, x) when the router
/// is an unsplit f32 matrix and x has at most [`ROUTER_TOPK_MAX_N`] tokens; the MUL_MAT
/// stays (MOE_WEIGHTS reads its logits). Not where an expert matmul routes itself
/// (`passes::layer::route_in_experts`): the top-k then runs beside that matmul, off the
/// critical path, and the router is better without it. Returns the number rewritten.
pub fn moe_router_topk(g: &mut Graph) -> usize {
    let (order, _, producer) = uses(g);
    // Logits a routed MUL_MAT_ID reads.
    let routed: std::collections::HashSet<_> = order
        .iter()
        .filter(|&&n| matches!(g.node(n).op, Op::MulMatId { route: Some(_), .. }))
        .map(|&n| g.root(g.node(n).srcs[2]))
        .collect();
    let mut done = 0;
    for &t in &order {
        let Op::MoeTopK { k } = g.node(t).op else {
            continue;
        };
        let logits = g.node(t).srcs[0];
        if routed.contains(&g.root(logits)) {
            continue;
        }
        let Some(&m) = producer.get(&logits) else {
            continue;
        };
        // The router, or the router with the ffn norm in its prologue (passes::layer).
        let (w, x, norm) = match &g.node(m).op {
            Op::MulMat { split } if split.is_empty() => {
                (g.node(m).srcs[0], g.node(m).srcs[1], None)
            }
            Op::MulMatLayer {
                split,
                norm: Some(eps),
                epi: Epilogue::None,
                scale,
            } if split.is_empty() && *scale == 1.0 => {
                (g.node(m).srcs[0], g.node(m).srcs[1], Some(*eps))
            }
            _ => continue,
        };
        if g.tensor(w).ty != GgmlType::F32
            || g.tensor(x).ty != GgmlType::F32
            || g.tensor(x).nrows() > ROUTER_TOPK_MAX_N
            || g.tensor(logits).ne[0] != g.tensor(w).nrows()
        {
            continue;
        }
        let nw = norm.map(|_| g.node(m).srcs[2]);
        let node = &mut g.dag[t];
        node.op = Op::MoeRouterTopK { k, norm };
        node.srcs = [w, x].into_iter().chain(nw).collect();
        done += 1;
    }
    if done > 0 {
        g.rebuild_edges();
    }
    done
}

/// The router MUL_MATs a backend may record inside the MOE_ROUTER_TOPK of the same stage
/// (same operands: the fused kernel writes the logits too): (topk, matmul) pairs of
/// `stage` ([`stage_pairs`]).
pub fn router_topk_folds(g: &Graph, stage: &[petgraph::stable_graph::NodeIndex]) -> Pairs {
    stage_pairs(
        g,
        stage,
        |topk| match topk.op {
            Op::MoeRouterTopK { norm: None, .. } => Some((Op::MulMat { split: vec![] }, 2)),
            Op::MoeRouterTopK {
                norm: Some(eps), ..
            } => Some((
                Op::MulMatLayer {
                    split: vec![],
                    norm: Some(eps),
                    epi: Epilogue::None,
                    scale: 1.0,
                },
                3,
            )),
            _ => None,
        },
        |_, logits| logits.ty == GgmlType::F32,
    )
}
