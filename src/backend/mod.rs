//! Backends that evaluate graphs: the CPU reference ([`cpu`]) and Vulkan ([`vulkan`]).
//!
//! A backend owns its copy of the weights it uses (the CPU borrows the file
//! mapping), the activations of the graph being run and persistent state (the KV
//! cache). The scheduler ([`crate::sched`]) hands each backend the stages of the
//! nodes assigned to it and copies tensors that cross from one backend to another.

pub mod arena;
pub mod cpu;
pub mod vulkan;

use petgraph::stable_graph::NodeIndex;

use crate::graph::{Graph, TensorId};
use crate::Result;

/// Callback for weight-upload progress: (bytes done, bytes total).
pub type LoadProgress = Box<dyn FnMut(u64, u64)>;

/// How a backend timestamps its work for `--profile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileMode {
    /// No timestamps.
    Off,
    /// A timestamp after every node, with a barrier after each: per-op cost, but it
    /// serializes stages and so hides the concurrency reordering buys.
    PerNode,
    /// A timestamp only at barriers: each stage measured as it really runs.
    PerStage,
}

/// GPU time of one node (PerNode) or one stage (PerStage).
#[derive(Clone, Debug)]
pub struct NodeTime {
    /// `MUL_MAT q4_K [1024, 2048] [1024, 1]`; stages join their nodes with ` | `.
    pub label: String,
    pub ns: f64,
    /// Bytes the node(s) read and write.
    pub bytes: u64,
    /// Floating-point operations (2·k·m·n for matmuls, elements otherwise).
    pub flops: u64,
}

/// What every backend provides to the scheduler.
pub trait Backend {
    /// Name in dumps: `CPU`, `Vulkan0`.
    fn name(&self) -> String;
    /// Whether this backend can evaluate node `n` (op and types).
    fn supports(&self, graph: &Graph, n: NodeIndex) -> bool;
    /// Why this backend does not take node `n` (its op-table row's support predicate),
    /// for the dump; `None` when it does, or when it has nothing to say.
    fn refusal(&self, _graph: &Graph, _n: NodeIndex) -> Option<String> {
        None
    }

    /// Whether this backend would run MUL_MAT node `n` with work folded around it
    /// (`Op::MulMatLayer`: an RMS-norm prologue, an add or SwiGLU epilogue) as one kernel;
    /// `Err` says why not, for the dump. Asked by `passes::layer` before it folds. The
    /// CPU reference runs any fused node.
    fn fuses_mat_vec(&self, _graph: &Graph, _n: NodeIndex) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Whether this backend runs sibling MUL_MATs `nodes` (same input, weights of
    /// different types) as one node over a grouped weight (`passes::Groupable`:
    /// `Ok(true)` one dispatch at the graph's token count, `Ok(false)` separate
    /// dispatches in one stage, `Err` why not). The default (the CPU reference) takes
    /// every set: it runs a grouped node member by member.
    fn groups_mat_vec(
        &self,
        _graph: &Graph,
        _nodes: &[NodeIndex],
    ) -> std::result::Result<bool, String> {
        Ok(true)
    }
    /// Readies the backend to run `nodes` of `graph` (those the scheduler assigned it):
    /// activation memory, the weights and KV cache those nodes use (fused groups placed
    /// contiguously), nothing for nodes assigned elsewhere. Cheap when called again for
    /// a graph of the same shape.
    fn prepare_for(&mut self, graph: &Graph, nodes: &[NodeIndex]) -> Result<()>;
    /// [`Backend::prepare_for`] every node of `graph` (a backend running it alone).
    fn prepare(&mut self, graph: &Graph) -> Result<()> {
        let all: Vec<NodeIndex> = graph.order().collect();
        self.prepare_for(graph, &all)
    }
    /// Bytes of weights this backend holds (uploaded or mapped for its nodes).
    fn weight_bytes(&self) -> u64 {
        0
    }
    /// Bytes of device memory this backend holds (weights, KV cache, activations,
    /// scratch); 0 for host backends.
    fn device_bytes(&self) -> u64 {
        0
    }
    /// Writes a whole tensor (an input, or a value computed by another backend).
    fn set_tensor(&mut self, graph: &Graph, t: TensorId, bytes: &[u8]) -> Result<()>;
    /// Reads a whole tensor back.
    fn get_tensor(&mut self, graph: &Graph, t: TensorId) -> Result<Vec<u8>>;
    /// A whole tensor's bytes lent without a copy, where the backend holds them in host
    /// memory it can read directly (a Vulkan graph output in host-visible, coherent,
    /// cached read-back memory, written by its last `compute`); `None`: read it with
    /// `get_tensor_into`. Valid while the backend is borrowed (nothing runs meanwhile).
    fn tensor_view(&self, _graph: &Graph, _t: TensorId) -> Option<&[u8]> {
        None
    }
    /// Reads a whole tensor into `out` (exactly its size): no allocation per call, for the
    /// per-token logits.
    fn get_tensor_into(&mut self, graph: &Graph, t: TensorId, out: &mut [u8]) -> Result<()> {
        let bytes = self.get_tensor(graph, t)?;
        if bytes.len() != out.len() {
            return Err(crate::Error::Usage(format!(
                "get_tensor_into `{}`: {} bytes into {}",
                graph.tensor(t).name,
                bytes.len(),
                out.len()
            )));
        }
        out.copy_from_slice(&bytes);
        Ok(())
    }
    /// Evaluates `stages` in order (a barrier between stages, none within one).
    fn compute(&mut self, graph: &Graph, stages: &[Vec<NodeIndex>]) -> Result<()>;
    /// Forgets persistent state (KV cache contents).
    fn reset_state(&mut self);
    /// Copies `c.rows` rows of every KV-cache tensor it holds (each of `n_cells` rows) from
    /// row `c.from` to row `c.to` (`kv::KvCache::copy`: one sequence's slot into another's).
    fn copy_state_rows(&mut self, n_cells: usize, c: crate::kv::RowCopy) -> Result<()>;
    /// Reports weight-upload progress from `prepare` as (bytes done, bytes total).
    fn set_load_progress(&mut self, _f: Option<LoadProgress>) {}
    /// Starts or stops timestamping (backends without timers ignore it).
    fn set_profile(&mut self, _mode: ProfileMode) {}
    /// Timestamps recorded since the last call.
    fn take_profile(&mut self) -> Vec<NodeTime> {
        Vec::new()
    }
    /// One line per node of `nodes` whose kernel choice is this backend's to make (which
    /// matmul or attention kernel, and why), for the dump; allocates nothing. `None`:
    /// nothing to say (the CPU reference has one kernel per op).
    fn describe_kernels(&self, _graph: &Graph, _nodes: &[NodeIndex]) -> Option<String> {
        None
    }
}
