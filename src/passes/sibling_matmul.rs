//! The sibling-matmul pass (DESIGN.md decision 2). Sibling matmuls read the same
//! activation with the same K: Q/K/V after `attn_norm`, gate/up after `ffn_norm`.
//!
//! - `fuse`: members sharing a weight type become one MUL_MAT over a fused weight
//!   group (placed contiguously by the backend at load time; the file is untouched)
//!   whose output is split on write, so each member's old output tensor becomes a
//!   contiguous view of the fused output and every consumer is unchanged. Members of
//!   other types stay separate; stage formation puts them beside the fused node.
//! - `reorder`: nothing is rewritten; level stages put the siblings in one stage.
//! - `group` (DESIGN.md decision 14): members of *different* types become one MUL_MAT
//!   over a grouped weight (members back to back, each of its own type) that the backend
//!   runs as one grouped mat-vec dispatch; where the backend cannot (its [`Groupable`]
//!   says why: no kernel for the types, a member on the integer-dot path, ...), as `auto`.
//!   Same-type sets are fused as `auto` does.
//! - `auto`: as `group` where types differ and the backend groups them, otherwise as
//!   `fuse`, but a set is only fused where it fits the backend's limits (fused weight
//!   within the largest buffer the device binds); otherwise reordered.
//! - `off`: nothing; the A/B baseline (one node per stage).
//!
//! Every group gets a decision line with its reason for the assignment dump.

use std::collections::BTreeMap;

use petgraph::stable_graph::NodeIndex;

use crate::graph::{Decision, Graph, Op, TensorKind};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// How sibling matmuls are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QkvMode {
    Off,
    Fuse,
    Reorder,
    Group,
    Auto,
}

impl QkvMode {
    pub const ALL: [QkvMode; 5] = [
        QkvMode::Off,
        QkvMode::Fuse,
        QkvMode::Reorder,
        QkvMode::Group,
        QkvMode::Auto,
    ];

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(QkvMode::Off),
            "fuse" => Ok(QkvMode::Fuse),
            "reorder" => Ok(QkvMode::Reorder),
            "group" => Ok(QkvMode::Group),
            "auto" => Ok(QkvMode::Auto),
            _ => Err(Error::Usage(format!(
                "unknown QKV mode `{s}` (expected off, fuse, reorder, group or auto)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            QkvMode::Off => "off",
            QkvMode::Fuse => "fuse",
            QkvMode::Reorder => "reorder",
            QkvMode::Group => "group",
            QkvMode::Auto => "auto",
        }
    }
}

impl std::fmt::Display for QkvMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the executing backend can take, for `auto`'s choice.
#[derive(Clone, Debug)]
pub struct SiblingLimits {
    /// Largest fused weight (bytes) the backend binds as one buffer.
    pub max_fused_bytes: usize,
}

impl Default for SiblingLimits {
    fn default() -> Self {
        SiblingLimits {
            max_fused_bytes: usize::MAX,
        }
    }
}

/// Whether the backend that will run sibling matmuls `nodes` (of different weight types)
/// takes them as one grouped node: `Ok(true)` one grouped dispatch at this graph's token
/// count, `Ok(false)` one node whose members run as separate dispatches in one stage
/// (e.g. a prompt batch, beyond the grouped mat-vec), `Err` why not at all. Asked
/// independently of the token count's kernel so every graph of a session places the
/// weights the same way.
pub type Groupable<'a> = &'a dyn Fn(&Graph, &[NodeIndex]) -> Result<bool, String>;

/// A [`Groupable`] for graphs not planned for a particular backend (tests, the CPU):
/// every set of siblings is grouped, one dispatch.
pub fn any_group(_: &Graph, _: &[NodeIndex]) -> Result<bool, String> {
    Ok(true)
}

/// A set of sibling matmuls.
struct Group {
    nodes: Vec<NodeIndex>,
}

/// `blk.3.attn_q.weight` → (`blk.3.`, `attn_q`).
fn split_name(w: &str) -> (&str, &str) {
    // A LoRA factor `blk.0.attn_q.weight.lora_a` → (`blk.0.`, `attn_q.weight.lora_a`).
    for f in [".weight.lora_a", ".weight.lora_b"] {
        if let Some(base) = w.strip_suffix(f) {
            let i = base.rfind('.').map_or(0, |i| i + 1);
            return (&w[..i], &w[i..]);
        }
    }
    let base = w.strip_suffix(".weight").unwrap_or(w);
    match base.rfind('.') {
        Some(i) => (&base[..=i], &base[i + 1..]),
        None => ("", base),
    }
}

/// Name of the fused weight for members (`attn_q`,`attn_k`,`attn_v` → `attn_qkv`; their
/// LoRA A factors → `attn_qkv.weight.lora_a`).
fn fused_name(members: &[String]) -> String {
    if members.iter().all(|m| m.ends_with(".weight.lora_a")) {
        let bases: Vec<String> = members
            .iter()
            .map(|m| m.trim_end_matches(".lora_a").to_string())
            .collect();
        return format!("{}.lora_a", fused_name(&bases));
    }
    let (prefix, first) = split_name(&members[0]);
    let shorts: Vec<&str> = members.iter().map(|m| split_name(m).1).collect();
    let stem = first.rsplit_once('_').map_or(first, |(s, _)| s);
    let all_share = shorts.iter().all(|s| s.starts_with(&format!("{stem}_")));
    let name = if all_share {
        let tails: Vec<&str> = shorts.iter().map(|s| &s[stem.len() + 1..]).collect();
        if tails.iter().all(|t| t.len() == 1) {
            format!("{stem}_{}", tails.concat())
        } else {
            format!("{stem}_{}", tails.join("_"))
        }
    } else {
        shorts.join("+")
    };
    format!("{prefix}{name}.weight")
}

/// Whether matmul `n` multiplies by a LoRA factor (`….weight.lora_a` / `.lora_b`).
fn is_lora_factor(g: &Graph, n: NodeIndex) -> bool {
    weight_name(g, n).is_some_and(|w| w.ends_with(".lora_a") || w.ends_with(".lora_b"))
}

fn weight_name(g: &Graph, n: NodeIndex) -> Option<String> {
    let w = g.node(n).srcs[0];
    match &g.tensor(w).kind {
        TensorKind::Weight { name } => Some(name.clone()),
        _ => None,
    }
}

fn find_groups(g: &Graph) -> Vec<Group> {
    // (activation tensor, K) → members in schedule order
    let mut by_input: BTreeMap<(u32, usize), Vec<NodeIndex>> = BTreeMap::new();
    for n in g.order() {
        let node = g.node(n);
        if let Op::MulMat { split } = &node.op {
            if split.is_empty() && weight_name(g, n).is_some() {
                let k = g.tensor(node.srcs[0]).ne[0];
                by_input.entry((node.srcs[1].0, k)).or_default().push(n);
            }
        }
    }
    let mut groups: Vec<Group> = by_input
        .into_values()
        .filter(|v| v.len() > 1)
        .map(|nodes| Group { nodes })
        .collect();
    groups.sort_by_key(|gr| gr.nodes[0].index());
    groups
}

fn describe(g: &Graph, nodes: &[NodeIndex]) -> String {
    nodes
        .iter()
        .map(|&n| {
            let wn = weight_name(g, n).unwrap_or_default();
            format!("{} ({})", split_name(&wn).1, g.tensor(g.node(n).srcs[0]).ty)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn block_of(g: &Graph, n: NodeIndex) -> String {
    let wn = weight_name(g, n).unwrap_or_default();
    split_name(&wn).0.trim_end_matches('.').to_string()
}

/// Fuses `nodes` (same weight type, same inputs) into one MUL_MAT — or, for expert-indexed
/// siblings, one MUL_MAT_ID whose weight holds the members' expert stacks one after the
/// other; returns it.
fn fuse(g: &mut Graph, nodes: &[NodeIndex], grouped: bool) -> NodeIndex {
    let members: Vec<String> = nodes.iter().map(|&n| weight_name(g, n).unwrap()).collect();
    let w0 = g.tensor(g.node(nodes[0]).srcs[0]).clone();
    let first = g.node(nodes[0]).clone();
    let experts = matches!(first.op, Op::MulMatId { .. });
    let x = first.srcs[1];
    // Columns of each member's output: tokens, or (slot, token) pairs.
    let n_tok = if experts {
        g.tensor(first.dst).nrows()
    } else {
        g.tensor(x).nrows()
    };
    let split: Vec<usize> = nodes
        .iter()
        .map(|&n| g.tensor(g.node(n).dst).ne[0])
        .collect();
    let m: usize = split.iter().sum();
    let fname = if experts && members.len() == 2 && members[0].ends_with("ffn_gate_exps.weight") {
        members[0].replace("ffn_gate_exps", "ffn_gate_up_exps")
    } else {
        fused_name(&members)
    };
    let kind = if grouped {
        TensorKind::GroupedWeight {
            members: members.clone(),
            types: nodes
                .iter()
                .map(|&n| g.tensor(g.node(n).srcs[0]).ty)
                .collect(),
            rows: split.clone(),
        }
    } else {
        TensorKind::FusedWeight {
            members: members.clone(),
        }
    };
    let fw = g.add_tensor(fname.clone(), w0.ty, [w0.ne[0], m, w0.ne[2], 1], kind);
    let (prefix, stem) = split_name(&fname);
    let out_name = format!(
        "{stem}-{}",
        prefix.trim_start_matches("blk.").trim_end_matches('.')
    );
    let out_ne = if experts {
        let d = g.tensor(first.dst).ne;
        [m, d[1], d[2], 1]
    } else {
        [m, n_tok, 1, 1]
    };
    let out = g.add_tensor(out_name, GgmlType::F32, out_ne, TensorKind::Activation);
    // Old outputs become views of the fused output (split on write).
    let mut off = 0;
    for (&n, &rows) in nodes.iter().zip(&split) {
        let dst = g.node(n).dst;
        g.tensors[dst.idx()].kind = TensorKind::View {
            base: out,
            offset: off * n_tok * 4,
        };
        off += rows;
    }
    // The fused node takes the first member's place in the order.
    let (op, srcs) = if experts {
        (
            Op::MulMatId {
                split,
                glu: false,
                route: None,
            },
            vec![fw, x, first.srcs[2]],
        )
    } else {
        (Op::MulMat { split }, vec![fw, x])
    };
    let fused = g.dag.add_node(crate::graph::Node { op, srcs, dst: out });
    for stage in &mut g.schedule {
        for slot in stage.iter_mut() {
            if *slot == nodes[0] {
                *slot = fused;
            }
        }
        stage.retain(|s| !nodes[1..].contains(s));
    }
    g.schedule.retain(|s| !s.is_empty());
    for &n in nodes {
        g.dag.remove_node(n);
    }
    fused
}

/// Groups `nodes` (of different weight types) into one MUL_MAT over a grouped weight
/// when `groupable` and the limits allow; returns the decision text (after `grouped
/// {blk} `) or why not.
fn group(
    g: &mut Graph,
    nodes: &[NodeIndex],
    limits: &SiblingLimits,
    groupable: Groupable<'_>,
) -> Result<String, String> {
    let bytes: usize = nodes
        .iter()
        .map(|&n| g.tensor(g.node(n).srcs[0]).nbytes())
        .sum();
    if bytes > limits.max_fused_bytes {
        return Err(format!(
            "grouped weight too large for one buffer ({bytes} B > {} B)",
            limits.max_fused_bytes
        ));
    }
    let one_dispatch = groupable(g, nodes)?;
    let parts: Vec<String> = nodes
        .iter()
        .map(|&n| {
            let wn = weight_name(g, n).unwrap_or_default();
            format!("{} ({})", split_name(&wn).1, g.tensor(g.node(n).srcs[0]).ty)
        })
        .collect();
    let k = nodes.len();
    let f = fuse(g, nodes, true);
    let fname = g.tensor(g.node(f).srcs[0]).name.clone();
    let how = if one_dispatch {
        format!("1 dispatch instead of {k}")
    } else {
        format!("one node; at this batch size its {k} members run as {k} dispatches in one stage")
    };
    Ok(format!(
        "{} = {} — {how}",
        split_name(&fname).1,
        parts.join(" + ")
    ))
}

/// Runs the pass; records a decision per group in `g.decisions`.
pub fn run(g: &mut Graph, mode: QkvMode, limits: &SiblingLimits, groupable: Groupable<'_>) {
    let groups = find_groups(g);
    let mut rewrote = false;
    for grp in groups {
        let blk = block_of(g, grp.nodes[0]);
        let members = describe(g, &grp.nodes);
        // group / auto: members of different types as one grouped node, where the
        // backend takes them (else the reason goes into the fuse/reorder line below).
        // Only the model's own weights are grouping candidates: LoRA A factors reading
        // the same activation (f32) are fused among themselves by type below.
        let mut not_grouped = None;
        let mut grouped_text: Option<String> = None;
        let mut todo = grp.nodes.clone();
        if matches!(mode, QkvMode::Group | QkvMode::Auto) {
            let (base, lora): (Vec<NodeIndex>, Vec<NodeIndex>) =
                grp.nodes.iter().partition(|&&n| !is_lora_factor(g, n));
            let ty0 = base.first().map(|&n| g.tensor(g.node(n).srcs[0]).ty);
            let mixed = base
                .iter()
                .any(|&n| Some(g.tensor(g.node(n).srcs[0]).ty) != ty0);
            if mixed {
                match group(g, &base, limits, groupable) {
                    Ok(text) => {
                        rewrote = true;
                        if lora.is_empty() {
                            g.decisions.push(Decision {
                                text: format!("grouped {blk} {text}"),
                            });
                            continue;
                        }
                        grouped_text = Some(text);
                        todo = lora;
                    }
                    Err(why) => not_grouped = Some(why),
                }
            }
        }
        let text = match mode {
            QkvMode::Off => format!(
                "off    {blk} {members} — mode off: separate dispatches, barrier after each"
            ),
            QkvMode::Reorder => format!(
                "stage  {blk} reorder {members} — mode reorder: one stage, no barrier between"
            ),
            QkvMode::Fuse | QkvMode::Group | QkvMode::Auto => {
                // Partition by weight type, keeping order.
                let mut by_type: Vec<(GgmlType, Vec<NodeIndex>)> = Vec::new();
                for &n in &todo {
                    let ty = g.tensor(g.node(n).srcs[0]).ty;
                    match by_type.iter_mut().find(|(t, _)| *t == ty) {
                        Some((_, v)) => v.push(n),
                        None => by_type.push((ty, vec![n])),
                    }
                }
                let mut parts = Vec::new();
                let mut leftovers = Vec::new();
                let mut too_big = Vec::new();
                for (ty, nodes) in by_type {
                    let bytes: usize = nodes
                        .iter()
                        .map(|&n| g.tensor(g.node(n).srcs[0]).nbytes())
                        .sum();
                    if nodes.len() < 2 {
                        leftovers.extend(nodes);
                    } else if mode == QkvMode::Auto && bytes > limits.max_fused_bytes {
                        too_big.push(format!(
                            "{} ({ty}, {bytes} B > {} B)",
                            describe(g, &nodes),
                            limits.max_fused_bytes
                        ));
                        leftovers.extend(nodes);
                    } else {
                        let names: Vec<String> = nodes
                            .iter()
                            .map(|&n| split_name(&weight_name(g, n).unwrap()).1.to_string())
                            .collect();
                        let k = nodes.len();
                        let f = fuse(g, &nodes, false);
                        rewrote = true;
                        let fname = g.tensor(g.node(f).srcs[0]).name.clone();
                        parts.push(format!(
                            "{} = {} ({ty}) — 1 dispatch instead of {k}",
                            split_name(&fname).1,
                            names.join(" + ")
                        ));
                    }
                }
                let why = if too_big.is_empty() {
                    match &not_grouped {
                        Some(w) => format!("types differ, not grouped: {w}"),
                        None => "types differ".to_string(),
                    }
                } else {
                    format!(
                        "fused weight too large for one buffer: {}",
                        too_big.join("; ")
                    )
                };
                if let Some(gt) = &grouped_text {
                    // The base weights grouped; the LoRA factors fused or beside them.
                    parts.extend(
                        leftovers
                            .iter()
                            .map(|&n| format!("same stage: {}", describe(g, &[n]))),
                    );
                    format!("grouped {blk} {gt}; {}", parts.join("; "))
                } else if parts.is_empty() {
                    format!("stage  {blk} reorder {members} — {why}")
                } else if leftovers.is_empty() {
                    format!("fused  {blk} {}", parts.join("; "))
                } else {
                    format!(
                        "partial {blk} {}; same stage: {} — {why}",
                        parts.join("; "),
                        describe(g, &leftovers)
                    )
                }
            }
        };
        g.decisions.push(Decision { text });
    }
    if expert_siblings(g, mode, limits) || rewrote {
        g.rebuild_edges();
    }
}

/// The expert-indexed matmuls (MUL_MAT_ID) reading the same activation and expert ids — a
/// MoE layer's gate and up experts: fused as the dense siblings are (`fuse`/`auto`, same
/// type, within the limits), else left in one stage; a decision line each. Returns
/// whether it rewrote the graph.
fn expert_siblings(g: &mut Graph, mode: QkvMode, limits: &SiblingLimits) -> bool {
    let mut rewrote = false;
    let mut by_input: BTreeMap<(u32, u32), Vec<NodeIndex>> = BTreeMap::new();
    for n in g.order() {
        let node = g.node(n);
        let single =
            matches!(&node.op, Op::MulMatId { split, glu: false, route: None } if split.is_empty());
        if single && weight_name(g, n).is_some() {
            by_input
                .entry((node.srcs[1].0, node.srcs[2].0))
                .or_default()
                .push(n);
        }
    }
    let mut groups: Vec<Vec<NodeIndex>> = by_input.into_values().filter(|v| v.len() > 1).collect();
    groups.sort_by_key(|v| v[0].index());
    for nodes in groups {
        let blk = block_of(g, nodes[0]);
        let members = describe(g, &nodes);
        let ty0 = g.tensor(g.node(nodes[0]).srcs[0]).ty;
        let same = nodes.iter().all(|&n| g.tensor(g.node(n).srcs[0]).ty == ty0);
        let bytes: usize = nodes
            .iter()
            .map(|&n| g.tensor(g.node(n).srcs[0]).nbytes())
            .sum();
        let text = match mode {
            QkvMode::Off => format!(
                "off    {blk} experts {members} — mode off: separate dispatches, barrier after each"
            ),
            QkvMode::Reorder => format!(
                "stage  {blk} experts {members} — mode reorder: one stage, no barrier between"
            ),
            _ if !same => format!(
                "stage  {blk} experts {members} — types differ: one stage, no barrier between"
            ),
            QkvMode::Auto if bytes > limits.max_fused_bytes => format!(
                "stage  {blk} experts {members} — fused weight too large for one buffer \
                 ({bytes} B > {} B): one stage, no barrier between",
                limits.max_fused_bytes
            ),
            _ => {
                let k = nodes.len();
                let f = fuse(g, &nodes, false);
                rewrote = true;
                let fname = g.tensor(g.node(f).srcs[0]).name.clone();
                format!(
                    "fused  {blk} experts {} = {members} — 1 expert-indexed dispatch instead \
                     of {k}",
                    split_name(&fname).1
                )
            }
        };
        g.decisions.push(Decision { text });
    }
    rewrote
}
