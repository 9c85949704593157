//! The graph IR (DESIGN.md decision 1): nodes in a petgraph DAG whose edges are data
//! dependencies (read-after-write, write-after-read, write-after-write on
//! overlapping byte ranges), plus an explicit execution `schedule` grouped into
//! stages. Nodes within a stage have no dependency on each other, so a backend
//! needs a barrier only between stages.
//!
//! Invariants: nodes are appended in a valid topological order (the builder only
//! reads tensors that already exist); every stage list in `schedule` is a
//! permutation of all live nodes that respects the DAG.

mod op;
mod tensor;

pub use op::{AttnRope, CustomOp, Epilogue, Op, RopeMode};
pub use tensor::{Tensor, TensorId, TensorKind};

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use petgraph::Direction;

use crate::quant::GgmlType;

/// One operation: reads `srcs`, writes `dst`.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub srcs: Vec<TensorId>,
    pub dst: TensorId,
}

/// A byte range of a root storage (a tensor that is not a view).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub root: TensorId,
    pub offset: usize,
    pub size: usize,
}

impl Region {
    pub fn overlaps(&self, o: &Region) -> bool {
        self.root == o.root && self.offset < o.offset + o.size && o.offset < self.offset + self.size
    }
}

/// A decision a pass made, kept for the assignment dump.
#[derive(Clone, Debug)]
pub struct Decision {
    pub text: String,
}

/// A compute graph for one forward pass.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub tensors: Vec<Tensor>,
    pub dag: StableDiGraph<Node, ()>,
    /// Execution order as stages (see module docs).
    pub schedule: Vec<Vec<NodeIndex>>,
    /// Tensors the caller writes before the pass (token ids, positions).
    pub inputs: Vec<TensorId>,
    /// Tensors the caller reads back after the pass (logits).
    pub outputs: Vec<TensorId>,
    /// What the sibling-matmul pass decided, in order, for the dump.
    pub decisions: Vec<Decision>,
    /// What decode-layer fusion (`passes::layer`) folded or kept, in order, for the dump.
    pub fusions: Vec<Decision>,
    /// The `off` baseline: a barrier after every node, hazard or not.
    pub barrier_every_node: bool,
    /// Identity of this graph's final form (backends cache recordings by it); a fresh
    /// value from [`Graph::next_uid`] whenever a pass changes the graph.
    pub uid: u64,
    /// Accesses so far per root storage: (region, node, wrote), for hazard edges.
    access_log: std::collections::HashMap<TensorId, Vec<(Region, NodeIndex, bool)>>,
}

impl Graph {
    pub fn new() -> Self {
        Graph {
            uid: Self::next_uid(),
            ..Self::default()
        }
    }

    /// A process-unique graph identity.
    pub fn next_uid() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn tensor(&self, id: TensorId) -> &Tensor {
        &self.tensors[id.idx()]
    }

    pub fn node(&self, n: NodeIndex) -> &Node {
        &self.dag[n]
    }

    /// Adds a tensor that no node produces (input, weight, state) or a view.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        ty: GgmlType,
        ne: [usize; 4],
        kind: TensorKind,
    ) -> TensorId {
        let name = name.into();
        debug_assert!(
            ty.row_bytes(ne[0]).is_some(),
            "{name}: row of {} not a multiple of {}'s block",
            ne[0],
            ty
        );
        let id = TensorId(self.tensors.len() as u32);
        self.tensors.push(Tensor { name, ty, ne, kind });
        id
    }

    /// A contiguous view of `base` starting `offset` bytes in, with shape `ne`.
    pub fn view(
        &mut self,
        base: TensorId,
        name: impl Into<String>,
        ne: [usize; 4],
        offset: usize,
    ) -> TensorId {
        let ty = self.tensor(base).ty;
        let v = self.add_tensor(name, ty, ne, TensorKind::View { base, offset });
        debug_assert!(offset + self.tensor(v).nbytes() <= self.tensor(base).nbytes());
        v
    }

    /// A view with a new shape over the same bytes (ggml's reshape).
    pub fn reshape(&mut self, t: TensorId, ne: [usize; 4]) -> TensorId {
        let name = self.tensor(t).name.clone();
        self.view(t, name, ne, 0)
    }

    /// Appends a node writing a new activation tensor; returns the tensor.
    pub fn op(
        &mut self,
        op: Op,
        srcs: &[TensorId],
        name: impl Into<String>,
        ty: GgmlType,
        ne: [usize; 4],
    ) -> TensorId {
        let dst = self.add_tensor(name, ty, ne, TensorKind::Activation);
        self.push_node(op, srcs, dst);
        dst
    }

    /// Appends a node writing an existing tensor (e.g. a view of the KV cache).
    pub fn push_node(&mut self, op: Op, srcs: &[TensorId], dst: TensorId) -> NodeIndex {
        let node = Node {
            op,
            srcs: srcs.to_vec(),
            dst,
        };
        let n = self.dag.add_node(node);
        self.link(n);
        self.schedule.push(vec![n]);
        n
    }

    /// Adds the hazard edges into `n` from the nodes logged so far, then logs `n`.
    fn link(&mut self, n: NodeIndex) {
        for e in self.hazards_before(n) {
            self.dag.add_edge(e, n, ());
        }
        let (w, rs) = self.access(n);
        self.access_log
            .entry(w.root)
            .or_default()
            .push((w, n, true));
        for r in rs {
            self.access_log
                .entry(r.root)
                .or_default()
                .push((r, n, false));
        }
    }

    /// What node `n` writes and the writable storage it reads (weights and inputs are
    /// never written by a node, so reads of them cannot be hazards).
    fn access(&self, n: NodeIndex) -> (Region, Vec<Region>) {
        let node = &self.dag[n];
        let reads = node
            .srcs
            .iter()
            .map(|&s| self.region(s))
            .filter(|r| {
                matches!(
                    self.tensor(r.root).kind,
                    TensorKind::Activation | TensorKind::State { .. }
                )
            })
            .collect();
        (self.region(node.dst), reads)
    }

    /// Earlier nodes (in `access_log`) that `n` has a hazard with: it reads what they
    /// wrote, or writes what they read or wrote. Linear in the accesses of the roots
    /// `n` touches, so building a graph is O(nodes) for transformer graphs.
    fn hazards_before(&self, n: NodeIndex) -> Vec<NodeIndex> {
        let (w, rs) = self.access(n);
        let mut out = Vec::new();
        for r in &rs {
            for &(x, e, wrote) in self.access_log.get(&r.root).into_iter().flatten() {
                if wrote && x.overlaps(r) && !out.contains(&e) {
                    out.push(e);
                }
            }
        }
        for &(x, e, _) in self.access_log.get(&w.root).into_iter().flatten() {
            if x.overlaps(&w) && !out.contains(&e) {
                out.push(e);
            }
        }
        out
    }

    /// The root storage and byte range of a tensor (following views).
    pub fn region(&self, t: TensorId) -> Region {
        let size = self.tensor(t).nbytes();
        let mut cur = t;
        let mut offset = 0;
        while let TensorKind::View { base, offset: o } = self.tensor(cur).kind {
            offset += o;
            cur = base;
        }
        Region {
            root: cur,
            offset,
            size,
        }
    }

    /// The root tensors `nodes` read or write (what a backend running them must hold).
    pub fn roots_used_by(&self, nodes: &[NodeIndex]) -> std::collections::HashSet<TensorId> {
        nodes
            .iter()
            .flat_map(|&n| {
                let node = self.node(n);
                node.srcs
                    .iter()
                    .chain(std::iter::once(&node.dst))
                    .map(|&s| self.root(s))
            })
            .collect()
    }

    /// Root tensor of `t` (itself unless a view).
    /// A MUL_MAT_ID node's (slots per token, tokens): its ids' shape `[n_used, n]`, or
    /// with `route: Some(k)` (the third source is the router's logits `[n_expert, n]`)
    /// `(k, n)`. `None` for other ops.
    pub fn id_slots(&self, n: NodeIndex) -> Option<(usize, usize)> {
        let node = self.node(n);
        let Op::MulMatId { route, .. } = &node.op else {
            return None;
        };
        let ids = self.tensor(*node.srcs.get(2)?);
        Some(match route {
            Some(k) => (*k, ids.nrows()),
            None => (ids.ne[0], ids.ne[1]),
        })
    }

    pub fn root(&self, t: TensorId) -> TensorId {
        self.region(t).root
    }

    /// Nodes in schedule order.
    pub fn order(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.schedule.iter().flatten().copied()
    }

    /// Number of live nodes.
    pub fn n_nodes(&self) -> usize {
        self.dag.node_count()
    }

    /// Direct predecessors of a node in the DAG.
    pub fn deps(&self, n: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.dag
            .edges_directed(n, Direction::Incoming)
            .map(|e| e.source())
    }

    /// Rebuilds all DAG edges from byte-range hazards, in the current schedule order.
    /// Passes call this after rewriting nodes.
    pub fn rebuild_edges(&mut self) {
        self.dag.clear_edges();
        self.access_log.clear();
        let order: Vec<NodeIndex> = self.order().collect();
        for n in order {
            self.link(n);
        }
    }

    /// Checks the schedule: every live node exactly once, no node before one it
    /// depends on, no dependency inside a stage. Returns a message on violation.
    pub fn check_schedule(&self) -> Result<(), String> {
        let mut stage_of = std::collections::HashMap::new();
        for (s, stage) in self.schedule.iter().enumerate() {
            for &n in stage {
                if stage_of.insert(n, s).is_some() {
                    return Err(format!("node {} scheduled twice", n.index()));
                }
            }
        }
        if stage_of.len() != self.dag.node_count() {
            return Err("schedule misses nodes".into());
        }
        for e in self.dag.edge_references() {
            let (a, b) = (stage_of[&e.source()], stage_of[&e.target()]);
            if a >= b {
                return Err(format!(
                    "`{}` (stage {b}) depends on `{}` (stage {a})",
                    self.tensor(self.dag[e.target()].dst).name,
                    self.tensor(self.dag[e.source()].dst).name
                ));
            }
        }
        Ok(())
    }
}
