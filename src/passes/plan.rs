//! Stage formation and the barrier plan (DESIGN.md decision 3).
//!
//! Stages: `serial_stages` keeps the original order with one node per stage (the A/B
//! baseline); `level_stages` puts each node at its DAG level (one more than the
//! deepest node it depends on), so independent nodes — Q/K/V, gate/up, the K and V
//! cache writes — share a stage. Known fusion pairs (rms_norm → mul) stay in
//! adjacent stages because mul depends on rms_norm directly.
//!
//! Barriers are derived, not placed: walking the schedule, a barrier is needed before
//! a node iff it reads a byte range written since the last barrier, or writes a range
//! read or written since then. Backends pass their own (buffer, offset, size) view of
//! each tensor so the proof is about real memory.

use petgraph::stable_graph::NodeIndex;

use crate::graph::{Graph, Region, TensorId};

/// One node per stage, in the current order.
pub fn serial_stages(g: &mut Graph) {
    let order: Vec<NodeIndex> = g.order().collect();
    g.schedule = order.into_iter().map(|n| vec![n]).collect();
}

/// Stages by DAG level, keeping the current order within a level.
pub fn level_stages(g: &mut Graph) {
    let order: Vec<NodeIndex> = g.order().collect();
    let mut level = std::collections::HashMap::new();
    let mut stages: Vec<Vec<NodeIndex>> = Vec::new();
    for n in order {
        let l = g.deps(n).map(|d| level[&d] + 1).max().unwrap_or(0);
        level.insert(n, l);
        if stages.len() <= l {
            stages.resize(l + 1, Vec::new());
        }
        stages[l].push(n);
    }
    g.schedule = stages;
}

/// For each node of `stages` (flattened, in order): whether a barrier must precede it.
/// `region` maps a tensor to the memory it occupies on the executing backend.
/// With `every_node`, every node but the first gets one (the `off` baseline).
pub fn barriers(
    g: &Graph,
    stages: &[Vec<NodeIndex>],
    region: impl Fn(TensorId) -> Region,
    every_node: bool,
) -> Vec<bool> {
    let mut out = Vec::new();
    let mut written: Vec<Region> = Vec::new();
    let mut read: Vec<Region> = Vec::new();
    for (i, &n) in stages.iter().flatten().enumerate() {
        let node = g.node(n);
        let w = region(node.dst);
        let rs: Vec<Region> = node.srcs.iter().map(|&s| region(s)).collect();
        let hazard = rs.iter().any(|r| written.iter().any(|x| x.overlaps(r)))
            || written.iter().chain(&read).any(|x| x.overlaps(&w));
        let b = i > 0 && (hazard || every_node);
        if b {
            written.clear();
            read.clear();
        }
        out.push(b);
        written.push(w);
        read.extend(rs);
    }
    out
}
