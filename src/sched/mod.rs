//! The scheduler (DESIGN.md decision 4): assigns each node to the first backend in
//! priority order that supports it (the CPU, last, supports everything), cuts the
//! schedule into splits at backend changes, and copies tensors that cross a split.
//! [`session::Session`] runs whole forward passes with it; [`dump`] prints the
//! assignment in the style of ggml's `GGML_SCHED_DEBUG`.
//!
//! Layer placement ([`Placement`]) works as llama.cpp's `-ngl N`: the last N layers run on
//! the first backend (the GPU), the earlier ones on the CPU (the last backend); the output
//! head joins the GPU when N exceeds the layer count. Each backend then holds only the
//! weights and the KV cache of the nodes it runs ([`Assignment::nodes_of`]).
//!
//! Persistent state (a layer's KV cache) is owned by the one backend whose nodes touch
//! it; nodes of two backends touching one state tensor are an error rather than a silent
//! copy of the whole cache.

pub mod dump;
pub mod fit;
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

/// Which layers may run on the first backend (`-ngl N`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// `None`: every node on the first backend that supports it. `Some(n)`: the last `n`
    /// layers (and, when `n` exceeds the layer count, the output head) may run on the
    /// first backend; the rest, and the token embedding, run on the last (the CPU).
    pub gpu_layers: Option<usize>,
}

/// The layer a tensor name names: a weight `blk.N.…` or a KV cache `cache_k_lN`.
fn layer_in_name(name: &str) -> Option<usize> {
    if let Some(rest) = name.strip_prefix("blk.") {
        return rest[..rest.find('.')?].parse().ok();
    }
    let rest = name
        .strip_prefix("cache_k_l")
        .or_else(|| name.strip_prefix("cache_v_l"))?;
    rest.parse().ok()
}

/// The layer of every node: that of the layer weights or KV cache it uses; a node using
/// neither takes its inputs' (the residual adds between blocks), except where it reads a
/// weight outside the layers (token embedding, output norm and head): those have none.
pub fn layers(g: &Graph) -> HashMap<NodeIndex, Option<usize>> {
    let mut of_tensor: HashMap<TensorId, usize> = HashMap::new();
    let mut out = HashMap::new();
    for n in g.order() {
        let node = g.node(n);
        let mut own = None;
        let mut global_weight = false;
        for t in std::iter::once(node.dst).chain(node.srcs.iter().copied()) {
            let root = g.tensor(g.root(t));
            match (&root.kind, layer_in_name(&root.name)) {
                (_, Some(l)) => own = own.max(Some(l)),
                (
                    TensorKind::Weight { .. }
                    | TensorKind::FusedWeight { .. }
                    | TensorKind::GroupedWeight { .. },
                    None,
                ) => global_weight = true,
                _ => {}
            }
        }
        let layer = own.or_else(|| {
            if global_weight {
                return None;
            }
            node.srcs
                .iter()
                .filter_map(|&s| of_tensor.get(&g.root(s)).copied())
                .max()
        });
        if let Some(l) = layer {
            of_tensor.insert(g.root(node.dst), l);
        }
        out.insert(n, layer);
    }
    out
}

/// Per node, whether placement keeps it off the first backend: layers before the last
/// `gpu_layers`, and the nodes outside layers (token embedding, output head) unless every
/// layer is on the GPU. (llama.cpp keeps the embedding lookup on the CPU always; with all
/// layers offloaded we keep it on the GPU, which saves a copy per token.)
fn pinned_to_last(g: &Graph, placement: Placement) -> HashMap<NodeIndex, bool> {
    let Some(ngl) = placement.gpu_layers else {
        return HashMap::new();
    };
    let layers = layers(g);
    let n_layer = layers.values().flatten().max().map_or(0, |l| l + 1);
    let first_gpu = n_layer.saturating_sub(ngl);
    g.order()
        .map(|n| {
            let cpu = match layers[&n] {
                Some(l) => l < first_gpu,
                None => ngl <= n_layer,
            };
            (n, cpu)
        })
        .collect()
}

/// The result of scheduling a graph.
#[derive(Clone, Debug)]
pub struct Assignment {
    pub backend_of: HashMap<NodeIndex, usize>,
    pub splits: Vec<Split>,
    /// Names of the backends, by index.
    pub names: Vec<String>,
    /// Nodes per backend, in graph order ([`Assignment::nodes_of`]).
    pub nodes: Vec<Vec<NodeIndex>>,
    /// Nodes that a backend of higher priority (within their placement) refused, with
    /// its reason (`Backend::refusal`): `Vulkan0: no matmul kernel for …`, for the dump.
    pub fallbacks: HashMap<NodeIndex, String>,
}

fn touches_state(g: &Graph, n: NodeIndex) -> bool {
    let node = g.node(n);
    std::iter::once(node.dst)
        .chain(node.srcs.iter().copied())
        .any(|t| matches!(g.tensor(g.root(t)).kind, TensorKind::State { .. }))
}

impl Assignment {
    /// The nodes assigned to `backend`, in graph order.
    pub fn nodes_of(&self, backend: usize) -> &[NodeIndex] {
        self.nodes.get(backend).map_or(&[], |v| v.as_slice())
    }

    /// Bytes of weights each backend reads (unique roots; a tied embedding once), by
    /// backend index: what the loader places on it.
    pub fn weight_bytes(&self, g: &Graph) -> Vec<u64> {
        let mut seen: HashSet<(usize, &str)> = HashSet::new();
        let mut out = vec![0u64; self.names.len()];
        for n in g.order() {
            let b = self.backend_of[&n];
            for &s in &g.node(n).srcs {
                let root = g.root(s);
                let t = g.tensor(root);
                if matches!(
                    t.kind,
                    TensorKind::Weight { .. }
                        | TensorKind::FusedWeight { .. }
                        | TensorKind::GroupedWeight { .. }
                ) && seen.insert((b, t.name.as_str()))
                {
                    out[b] += t.nbytes() as u64;
                }
            }
        }
        out
    }
}

/// Assigns nodes and forms splits.
pub fn assign(
    g: &Graph,
    backends: &[Box<dyn Backend>],
    placement: Placement,
) -> Result<Assignment> {
    let pinned = pinned_to_last(g, placement);
    let last = backends.len().saturating_sub(1);
    let mut backend_of = HashMap::new();
    let mut fallbacks = HashMap::new();
    let mut state_owner: HashMap<TensorId, usize> = HashMap::new();
    for n in g.order() {
        let first = if pinned.get(&n) == Some(&true) {
            last
        } else {
            0
        };
        let b = (first..backends.len())
            .find(|&i| backends[i].supports(g, n))
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "no backend runs {} `{}`",
                    g.node(n).op.name(),
                    g.tensor(g.node(n).dst).name
                ))
            })?;
        let refused: Vec<String> = (first..b)
            .map(|i| {
                let why = backends[i].refusal(g, n);
                format!(
                    "{}: {}",
                    backends[i].name(),
                    why.as_deref().unwrap_or("refused")
                )
            })
            .collect();
        if !refused.is_empty() {
            fallbacks.insert(n, refused.join("; "));
        }
        if touches_state(g, n) {
            let node = g.node(n);
            for t in std::iter::once(node.dst).chain(node.srcs.iter().copied()) {
                let root = g.root(t);
                if !matches!(g.tensor(root).kind, TensorKind::State { .. }) {
                    continue;
                }
                let owner = *state_owner.entry(root).or_insert(b);
                if owner != b {
                    return Err(Error::Unsupported(format!(
                        "{} cannot run {} `{}`, which uses the KV cache `{}` that {} owns",
                        backends[b].name(),
                        node.op.name(),
                        g.tensor(node.dst).name,
                        g.tensor(root).name,
                        backends[owner].name()
                    )));
                }
            }
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
    let mut nodes = vec![Vec::new(); backends.len()];
    for n in g.order() {
        nodes[backend_of[&n]].push(n);
    }
    Ok(Assignment {
        backend_of,
        splits,
        names: backends.iter().map(|b| b.name()).collect(),
        nodes,
        fallbacks,
    })
}
