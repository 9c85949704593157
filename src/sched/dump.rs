//! The assignment dump: in the spirit of ggml's `GGML_SCHED_DEBUG=2`, one header per
//! split with its inputs, one line per node (index, op, name, size, backend, stage,
//! then each source with size and backend), barrier positions from the barrier plan,
//! every sibling-matmul decision with its reason, and a summary of dispatches and
//! barriers per forward pass in every QKV mode.

use std::fmt::Write;

use crate::graph::{Graph, TensorKind};
use crate::model::{build_graph, BuildOpts, Model};
use crate::passes::{self, plan, Fusable, FusionLevel, Groupable, QkvMode, SiblingLimits};

use super::Assignment;

/// ggml-style size: `  12K`, `   3M`.
pub fn fmt_size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:4}M", bytes >> 20)
    } else {
        format!("{:4}K", bytes.div_ceil(1024))
    }
}

/// Counts for one graph: dispatches (nodes), barriers (from the plan over graph
/// regions), and the sibling decisions by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub dispatches: usize,
    pub stages: usize,
    pub barriers: usize,
    pub fused: usize,
    /// Mixed-type sets run as one grouped node (`qkv group` / `auto`).
    pub grouped: usize,
    pub partial: usize,
    pub reordered: usize,
    pub separate: usize,
    /// Nodes folded away by decode-layer fusion (`passes::layer`).
    pub folded: usize,
}

/// Counts of an optimized graph for `mode`.
pub fn counts(g: &Graph) -> Counts {
    let b = plan::barriers(g, &g.schedule, |t| g.region(t), g.barrier_every_node);
    let mut c = Counts {
        dispatches: g.n_nodes(),
        stages: g.schedule.len(),
        barriers: b.iter().filter(|&&x| x).count(),
        ..Default::default()
    };
    c.folded = g
        .fusions
        .iter()
        .filter(|d| d.text.starts_with("folded"))
        .count();
    for d in &g.decisions {
        match d.text.split_whitespace().next() {
            Some("grouped") => {
                c.grouped += 1;
                // A grouped node whose members run as separate dispatches (a batch
                // beyond the grouped mat-vec): "... run as K dispatches in one stage".
                if let Some(k) = d
                    .text
                    .split("run as ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|k| k.parse::<usize>().ok())
                {
                    c.dispatches += k - 1;
                }
            }
            Some("fused") => c.fused += 1,
            Some("partial") => c.partial += 1,
            Some("stage") => c.reordered += 1,
            _ => c.separate += 1,
        }
    }
    c
}

/// The dump of one scheduled graph.
pub fn dump(g: &Graph, a: &Assignment) -> String {
    let mut s = String::new();
    let mut stage_of = std::collections::HashMap::new();
    for (i, st) in g.schedule.iter().enumerate() {
        for &n in st {
            stage_of.insert(n, i);
        }
    }
    // What each backend holds: its nodes, layers and weight bytes (the loader's placement).
    let bytes = a.weight_bytes(g);
    let layer = super::layers(g);
    let _ = writeln!(s, "## BACKENDS");
    for (b, name) in a.names.iter().enumerate() {
        let nodes = a.nodes_of(b);
        if nodes.is_empty() {
            continue;
        }
        let layers: std::collections::BTreeSet<usize> =
            nodes.iter().filter_map(|&n| layer[&n]).collect();
        let span = match (layers.first(), layers.last()) {
            (Some(f), Some(l)) if f == l => format!("layer {f}"),
            (Some(f), Some(l)) => format!("layers {f}-{l}"),
            _ => "no layers".into(),
        };
        let _ = writeln!(
            s,
            "{name}: {} nodes, {span}, weights {:.2} MiB",
            nodes.len(),
            bytes[b] as f64 / (1u64 << 20) as f64
        );
    }
    let mut idx = 0;
    for (k, split) in a.splits.iter().enumerate() {
        let be = &a.names[split.backend];
        let inputs: Vec<String> = split
            .inputs
            .iter()
            .map(|&t| {
                format!(
                    "{} ({})",
                    g.tensor(t).name,
                    fmt_size(g.tensor(t).nbytes()).trim()
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "## SPLIT #{k}: {be} # {} inputs: [{}]",
            inputs.len(),
            inputs.join("] [")
        );
        let bars = plan::barriers(g, &split.stages, |t| g.region(t), g.barrier_every_node);
        for (j, &n) in split.stages.iter().flatten().enumerate() {
            if bars[j] {
                let _ = writeln!(s, "  -- barrier --");
            }
            let node = g.node(n);
            let dt = g.tensor(node.dst);
            let mut line = format!(
                "node #{idx:3} ({:>13}): {:>20} ({}) [{be}] stage {:3}   use:",
                node.op.name(),
                dt.name,
                fmt_size(dt.nbytes()),
                stage_of[&n]
            );
            for &src in &node.srcs {
                let t = g.tensor(src);
                let where_ = match &g.tensor(g.root(src)).kind {
                    TensorKind::Weight { .. }
                    | TensorKind::FusedWeight { .. }
                    | TensorKind::GroupedWeight { .. } => be.clone(),
                    TensorKind::Input => "input".into(),
                    _ => be.clone(),
                };
                let _ = write!(
                    line,
                    " {:>18} ({}) [{where_}]",
                    t.name,
                    fmt_size(t.nbytes())
                );
            }
            if let Some(why) = a.fallbacks.get(&n) {
                let _ = write!(line, "   # fallback: {why}");
            }
            let _ = writeln!(s, "{line}");
            idx += 1;
        }
    }
    let _ = writeln!(s, "## DECISIONS ({} sibling groups)", g.decisions.len());
    for d in &g.decisions {
        let _ = writeln!(s, "{}", d.text);
    }
    if !g.fusions.is_empty() {
        let _ = writeln!(s, "## LAYER FUSION");
        for d in &g.fusions {
            let _ = writeln!(s, "{}", d.text);
        }
    }
    let routers: usize = g
        .schedule
        .iter()
        .map(|stage| crate::passes::fusion::router_topk_folds(g, stage).len())
        .sum();
    if routers > 0 {
        let _ = writeln!(
            s,
            "folded router MUL_MAT into MOE_ROUTER_TOPK x{routers} — on Vulkan one dispatch \
             computes the logits and picks the experts ({routers} dispatches fewer than nodes)"
        );
    }
    // Residual ADDs and MOE_SUM_ADDs folded into the norm beside them, counted by kind.
    let (mut adds, mut moe) = (0usize, 0usize);
    for stage in &g.schedule {
        for (m, _) in crate::passes::fusion::residual_add_folds(g, stage) {
            match g.node(m).op {
                crate::graph::Op::MoeSumRmsNormMul { .. } => moe += 1,
                _ => adds += 1,
            }
        }
    }
    if adds > 0 {
        let _ = writeln!(
            s,
            "folded residual ADD into ADD_RMS_NORM_MUL x{adds} — on Vulkan the norm's \
             dispatch writes the sum too ({adds} dispatches fewer than nodes)"
        );
    }
    if moe > 0 {
        let _ = writeln!(
            s,
            "folded MOE_SUM_ADD into MOE_SUM_ADD_RMS_NORM_MUL x{moe} — on Vulkan the \
             norm's dispatch writes the layer output too ({moe} dispatches fewer than nodes)"
        );
    }
    s
}

/// A summary table over all four modes for a model and batch size at fusion level
/// `fusion` (`fusable` as `passes::run` takes it): dispatches, stages, barriers and group
/// decisions per forward pass.
pub fn summary(
    model: &Model,
    n_tokens: usize,
    n_ctx: usize,
    limits: &SiblingLimits,
    fusion: FusionLevel,
    fusable: Fusable<'_>,
    groupable: Groupable<'_>,
) -> crate::Result<String> {
    let mut s = format!(
        "## SUMMARY (one forward pass, fusion {fusion})\n| qkv | dispatches | stages | barriers | fused | grouped | partial | reordered | folded |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for mode in QkvMode::ALL {
        let mut g = build_graph(
            model,
            &BuildOpts {
                n_tokens,
                n_ctx: n_ctx.max(n_tokens),
                n_outputs: 1,
            },
        )?;
        passes::run(&mut g, mode, limits, fusion, fusable, groupable);
        let c = counts(&g);
        let _ = writeln!(
            s,
            "| {mode} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.dispatches,
            c.stages,
            c.barriers,
            c.fused,
            c.grouped,
            c.partial,
            c.reordered,
            c.folded
        );
    }
    Ok(s)
}
