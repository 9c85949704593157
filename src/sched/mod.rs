//! The scheduler (DESIGN.md decision 4): assigns each node to the first backend in
//! priority order that supports it (the CPU, last, supports everything), cuts the
//! schedule into splits at backend changes, and copies tensors that cross a split.
//! [`session::Session`] runs whole forward passes with it; [`dump`] prints the
//! assignment in the style of ggml's `GGML_SCHED_DEBUG`.
//!
//! Nodes that touch persistent state (the KV cache) must run on the first backend,
//! which owns the state; a first backend that cannot run one is an error rather than
//! a silent copy of the whole cache.

pub mod dump;
pub mod session;

use std::collections::{HashMap, HashSet};

use petgraph::stable_graph::NodeIndex;

use crate::backend::Backend;
use crate::graph::{Graph, TensorId, TensorKind};
use crate::{Error, Result};

/// A maximal run of stages on one backend.
#[derive(Clone, Debug)]
pub struct Split {
    pub backend: usize,
    pub stages: Vec<Vec<NodeIndex>>,
    /// Root tensors computed by another backend that this split reads (copied in).
    pub inputs: Vec<TensorId>,
}

/// The result of scheduling a graph.
#[derive(Clone, Debug)]
pub struct Assignment {
    pub backend_of: HashMap<NodeIndex, usize>,
    pub splits: Vec<Split>,
    /// Names of the backends, by index.
    pub names: Vec<String>,
}

fn touches_state(g: &Graph, n: NodeIndex) -> bool {
    let node = g.node(n);
    std::iter::once(node.dst)
        .chain(node.srcs.iter().copied())
        .any(|t| matches!(g.tensor(g.root(t)).kind, TensorKind::State { .. }))
}

/// Assigns nodes and forms splits.
pub fn assign(g: &Graph, backends: &[Box<dyn Backend>]) -> Result<Assignment> {
    let mut backend_of = HashMap::new();
    for n in g.order() {
        let b = backends
            .iter()
            .position(|b| b.supports(g, n))
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "no backend runs {} `{}`",
                    g.node(n).op.name(),
                    g.tensor(g.node(n).dst).name
                ))
            })?;
        if b != 0 && touches_state(g, n) {
            return Err(Error::Unsupported(format!(
                "{} cannot run {} `{}`, which updates the KV cache it owns",
                backends[0].name(),
                g.node(n).op.name(),
                g.tensor(g.node(n).dst).name
            )));
        }
        backend_of.insert(n, b);
    }
    // Cut stages by backend; consecutive sub-stages on one backend form a split.
    let mut splits: Vec<Split> = Vec::new();
    for stage in &g.schedule {
        let mut by_backend: Vec<(usize, Vec<NodeIndex>)> = Vec::new();
        for &n in stage {
            let b = backend_of[&n];
            match by_backend.iter_mut().find(|(bb, _)| *bb == b) {
                Some((_, v)) => v.push(n),
                None => by_backend.push((b, vec![n])),
            }
        }
        for (b, nodes) in by_backend {
            match splits.last_mut() {
                Some(s) if s.backend == b => s.stages.push(nodes),
                _ => splits.push(Split {
                    backend: b,
                    stages: vec![nodes],
                    inputs: vec![],
                }),
            }
        }
    }
    // Inputs crossing splits: roots written by a node of another backend, or graph
    // inputs (uploaded to every backend that reads them).
    let mut writer: HashMap<TensorId, usize> = HashMap::new();
    for s in &mut splits {
        let mut seen = HashSet::new();
        for &n in s.stages.iter().flatten() {
            for &src in &g.node(n).srcs {
                let root = g.root(src);
                let from_other = writer.get(&root).is_some_and(|&b| b != s.backend);
                if from_other && seen.insert(root) {
                    s.inputs.push(root);
                }
            }
        }
        for &n in s.stages.iter().flatten() {
            writer.insert(g.root(g.node(n).dst), s.backend);
        }
    }
    Ok(Assignment {
        backend_of,
        splits,
        names: backends.iter().map(|b| b.name()).collect(),
    })
}
