//! The Vulkan backend: a [`Backend`] over a [`VulkanContext`]. It places weights on the
//! device at first use (fused groups contiguously, once per group, from the unchanged
//! file mapping), activations in an arena planned per graph shape, and the KV cache in
//! persistent buffers; it records a split's stages into one command buffer with a
//! barrier only where the barrier plan finds a byte-range hazard on real
//! (buffer, offset, size) ranges, submits and waits on a fence.
//!
//! Memory: activations share an arena planned from their lifetimes in stages
//! (`backend::arena`); the barrier plan sees that reuse as hazards on real memory.
//! Recordings are replayed while the memory they bind stays where it is, and own what
//! they bind (a replay never touches a freed buffer).
//!
//! Submodules: `record` maps each op to its dispatch helper (and profile costs);
//! `decode` plans the decode paths (integer-dot mat-vec with its q8_1 copies, split-K
//! attention with its scratch).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;

mod decode;
mod fusable;
pub(crate) mod record;
pub(crate) mod support;
mod tuning;

pub use record::Extra;

use super::dispatch;
use super::{Buffer, BufferRange, ContextOptions, MemoryLocation, VulkanContext};
use crate::backend::arena;
use crate::backend::{Backend, LoadProgress, NodeTime, ProfileMode};
use crate::graph::{Graph, Region, TensorId, TensorKind};
use crate::model::Model;
use crate::passes::{plan, SiblingLimits};
use crate::{Error, Result};
use decode::XqSlot;

/// Where a root tensor lives on the device: buffer index in `bufs`, byte offset.
#[derive(Clone, Copy, Debug)]
struct Place {
    buf: usize,
    offset: u64,
}

/// Which kernel family runs decode matmuls (`n ≤ 8`) of the quantized types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatVecPath {
    /// Integer dot products where the device accelerates them and the weight is at
    /// least 4 MiB, else float.
    Auto,
    /// `mul_mat_vec.comp` (weights dequantized to f32).
    Float,
    /// `mul_mat_vecq.comp` wherever the device supports it at all (tests, A/B).
    Int8,
}

/// See the module docs.
pub struct VulkanBackend {
    ctx: Arc<VulkanContext>,
    model: Arc<Model>,
    index: usize,
    /// Every buffer the backend owns; `Place::buf` indexes it.
    bufs: Vec<Buffer>,
    weights: HashMap<String, usize>,
    fused: HashMap<Vec<String>, usize>,
    state: HashMap<String, usize>,
    /// Activation arena of the current graph: root tensor → place.
    places: HashMap<TensorId, Place>,
    /// (buffer index, class: 0 device, 1 upload, 2 readback).
    arena_bufs: Vec<(usize, usize)>,
    /// The graph the arena is planned for.
    arena_uid: u64,
    /// Recorded command buffers by (graph uid, first node of the split), replayed
    /// while the memory they bind stays where it is.
    recorded: HashMap<(u64, usize), super::Recorder>,
    /// Scratch of split-K attention and chunked TOP_K (`plan_scratch`; counters zeroed at
    /// creation, kernels leave them zero); nodes of one stage get disjoint slices, stages
    /// reuse the bytes (a barrier separates them).
    scratch: Option<usize>,
    /// Each split attention node's shape and byte offset in `scratch`.
    attn_split: HashMap<NodeIndex, (dispatch::attention::SplitShape, u64)>,
    /// Each chunked TOP_K node's byte offset in `scratch`.
    top_k_scratch: HashMap<NodeIndex, u64>,
    /// Each MOE_ROUTER_TOPK node's byte offset in `scratch` (its counter, then room for
    /// logits no router MUL_MAT receives).
    router_scratch: HashMap<NodeIndex, u64>,
    /// The groupings of MUL_MAT_ID nodes grouped by expert (`dispatch::moe::
    /// groups_by_expert`): a buffer of its own, since the grouping leaves non-zero words
    /// where `scratch`'s kernels need zero counters. Nodes of one stage get disjoint
    /// slices, stages reuse the bytes.
    moe_scratch_buf: Option<usize>,
    /// Each grouped MUL_MAT_ID node's byte offset in `moe_scratch_buf`.
    moe_scratch: HashMap<NodeIndex, u64>,
    /// f16 copies of the prompt matmuls' x for the cooperative-matrix kernel
    /// (`dispatch::mul_mat::mul_mat_with`'s `x16`): per stage disjoint slices.
    x16_buf: Option<usize>,
    /// Each such node's byte offset and size in `x16_buf`, and a MUL_MAT's split-K (its
    /// partial blocks follow the f16 x: `dispatch::mul_mat::tiled_scratch_bytes`).
    x16_scratch: HashMap<NodeIndex, (u64, u64, Option<dispatch::mul_mat::SplitK>)>,
    /// Whether prompt batches' MUL_MAT_IDs are grouped by expert (`set_moe_group`).
    moe_group: bool,
    /// Whether decode expert matmuls may route themselves (`set_moe_route`).
    moe_route: bool,
    /// Which mat-vec kernels decode matmuls use.
    mat_vec: MatVecPath,
    /// Whether integer-dot decode matmuls take folded work (`set_mat_vecq_layer`).
    pub(super) mat_vecq_layer: bool,
    /// Prompt matmuls on cooperative matrices where the device has them (on by default; `VKGRAPH_COOPMAT=0` for the A/B).
    coopmat: bool,
    /// Coopmat prompt matmuls whose grid has fewer workgroups than this split k
    /// (`set_split_k`; 0: never).
    split_k_grid: u32,
    /// Decode mat-vec launch shape override (`VKGRAPH_MMV_SHAPE`; `None`: per shape).
    pub(super) mat_vec_shape: Option<dispatch::mul_mat::MatVecShape>,
    /// The integer-dot mat-vec's override (`VKGRAPH_MMVQ_SHAPE`; `None`: per shape).
    pub(super) mat_vecq_shape: Option<dispatch::mul_mat::MatVecShape>,
    /// The expert-indexed integer-dot mat-vec's (`VKGRAPH_MMVQ_ID_SHAPE`; `None`: the above).
    pub(super) mat_vecq_id_shape: Option<dispatch::mul_mat::MatVecShape>,
    /// Rows per split-K attention workgroup (`None`: the default).
    pub(super) attn_split_rows: Option<u32>,
    /// Planned rows from which decode attention splits (`None`: the default).
    pub(super) attn_min_split: Option<u32>,
    pub(super) attn_split_vpre: Option<bool>,
    pub(super) attn_split_qb: Option<u32>,
    /// Split decode attention over the context even where the device would not (tests).
    force_attention_split: bool,
    /// Longest span the last batch attends (from `inp_kv_span`), and the cache length the
    /// decode attention was planned for (0: the graph has none) — its split-K shape, or
    /// without a split its workgroup width: the plan follows the context as it grows, in
    /// powers of two, instead of being sized for the whole cache. (Before, a graph first
    /// planned unsplit at a short length kept that plan however long the context grew.)
    kv_len: u32,
    split_rows: u32,
    /// Integer-dot mat-vec plan of the current graph: the q8_1 scratch buffer, each
    /// vecq matmul's slot, and the slots (activation, k, n, byte offsets) to fill.
    xq_scratch: Option<usize>,
    xq_node: HashMap<NodeIndex, usize>,
    xq_slots: Vec<XqSlot>,
    /// Bytes at the start of the q8_1 scratch that hold the fused mat-vecs' block
    /// counters and nothing else (grow-only; zero between dispatches).
    xq_cnt_bytes: u64,
    /// `OP` or `OP:type` strings this backend refuses (tests force CPU fallbacks).
    disabled: HashSet<String>,
    /// The nodes of the prepared graph the scheduler assigned here (`prepare_for`):
    /// the activation arena and the scratch plans cover these only.
    assigned: HashSet<NodeIndex>,
    pub profile: ProfileMode,
    progress: Option<LoadProgress>,
    /// Timestamps of the last `compute` calls (cleared by `take_times`).
    times: Vec<NodeTime>,
    /// Dispatches and barriers of the last recorded split (tests, the dump's claims).
    last_counts: (u32, u32),
    /// Most device bytes this backend may allocate (None: the largest device-local heap).
    memory_budget: Option<u64>,
}

impl VulkanBackend {
    pub fn new(model: Arc<Model>, opts: &ContextOptions) -> Result<Self> {
        let ctx = Arc::new(VulkanContext::new(opts)?);
        Ok(Self::with_context(model, ctx))
    }

    /// A backend on an already opened device (several backends may share one context,
    /// e.g. in tests: some drivers do not like many instances per process).
    pub fn with_context(model: Arc<Model>, ctx: Arc<VulkanContext>) -> Self {
        VulkanBackend {
            index: ctx.caps().index,
            ctx,
            model,
            bufs: Vec::new(),
            weights: HashMap::new(),
            fused: HashMap::new(),
            state: HashMap::new(),
            places: HashMap::new(),
            arena_bufs: Vec::new(),
            arena_uid: 0,
            recorded: HashMap::new(),
            scratch: None,
            attn_split: HashMap::new(),
            top_k_scratch: HashMap::new(),
            router_scratch: HashMap::new(),
            moe_scratch_buf: None,
            x16_buf: None,
            x16_scratch: HashMap::new(),
            moe_scratch: HashMap::new(),
            moe_group: true,
            moe_route: true,
            mat_vec: MatVecPath::Auto,
            mat_vecq_layer: true,
            coopmat: true,
            split_k_grid: dispatch::mul_mat::SPLIT_K_GRID,
            mat_vec_shape: None,
            mat_vecq_shape: None,
            mat_vecq_id_shape: None,
            attn_split_rows: None,
            attn_min_split: None,
            attn_split_vpre: None,
            attn_split_qb: None,
            force_attention_split: false,
            kv_len: 0,
            split_rows: 0,
            xq_scratch: None,
            xq_node: HashMap::new(),
            xq_slots: Vec::new(),
            xq_cnt_bytes: 0,
            disabled: HashSet::new(),
            assigned: HashSet::new(),
            profile: ProfileMode::Off,
            progress: None,
            times: Vec::new(),
            last_counts: (0, 0),
            memory_budget: None,
        }
    }

    pub fn context(&self) -> &VulkanContext {
        &self.ctx
    }

    /// Chooses the decode mat-vec kernels (takes effect for graphs prepared afterwards).
    pub fn set_mat_vec(&mut self, path: MatVecPath) {
        if path != self.mat_vec {
            self.mat_vec = path;
            self.arena_uid = 0;
            self.recorded.clear();
        }
    }

    /// Lets decode matmuls on the integer-dot path take the decode-layer folds
    /// (`passes::layer`) in their own kernel, `mul_mat_vecq_layer.comp`, whose q8_1
    /// epilogue quantizes its output for the next integer-dot matmul
    /// (`VKGRAPH_MMVQ_LAYER`). On by default: a llama-8B decode layer is 5 stages instead
    /// of 8 (+7 % tg128 on the H100, docs/BENCHMARKS.md); off, the norm, residual add and
    /// SwiGLU around an integer-dot matmul are stages of their own (the A/B).
    /// Takes effect for graphs built afterwards (the folds are planned at build time).
    pub fn set_mat_vecq_layer(&mut self, on: bool) {
        if on != self.mat_vecq_layer {
            self.mat_vecq_layer = on;
            self.arena_uid = 0;
            self.recorded.clear();
        }
    }

    /// Runs prompt matmuls (n > `MAT_VEC_MAX_N`) on cooperative matrices where the device has a usable
    /// shape (the default; f16 products, f32 accumulation, within llama.cpp's own
    /// CPU-vs-GPU spread: docs/parity.md); `false` (`VKGRAPH_COOPMAT=0`) keeps the scalar
    /// f32 kernel.
    pub fn set_coopmat(&mut self, on: bool) {
        if on != self.coopmat {
            self.coopmat = on;
            self.arena_uid = 0; // re-plan the scratch (the f16 copies of x)
            self.recorded.clear();
        }
    }

    /// Splits k of cooperative-matrix prompt matmuls whose grid has fewer than `below`
    /// workgroups, too few to fill the device (`dispatch::mul_mat::split_k`; the default
    /// `SPLIT_K_GRID` catches e.g. a MoE router's 128 rows); 0 (`VKGRAPH_SPLIT_K=0`)
    /// runs one workgroup per output tile, for A/B runs. Takes effect for graphs
    /// prepared afterwards.
    pub fn set_split_k(&mut self, below: u32) {
        if below != self.split_k_grid {
            self.split_k_grid = below;
            self.arena_uid = 0; // re-plan the scratch (the partial blocks)
            self.recorded.clear();
        }
    }

    /// Runs the expert matmuls (MUL_MAT_ID) of prompt batches grouped by expert (the
    /// default: each expert's weights read once per tile of its tokens); `false`
    /// (`VKGRAPH_MOE_GROUP=0`) keeps the per-(token, slot) mat-vec, for A/B runs. Takes
    /// effect for graphs prepared afterwards.
    pub fn set_moe_group(&mut self, on: bool) {
        if on != self.moe_group {
            self.moe_group = on;
            self.arena_uid = 0; // re-plan the scratch
            self.recorded.clear();
        }
    }

    /// Lets the first expert matmul of a decode MoE layer rank the router's logits itself
    /// (`passes::layer::route_in_experts`: the default); `false` (`VKGRAPH_MOE_ROUTE=0`)
    /// keeps it behind the MOE_TOPK (the router + top-k kernel), for A/B runs. Takes effect
    /// for graphs planned afterwards.
    pub fn set_moe_route(&mut self, on: bool) {
        self.moe_route = on;
    }

    /// (dispatches, barriers) of the split recorded last (a replay records nothing).
    pub fn last_recorded_counts(&self) -> (u32, u32) {
        self.last_counts
    }

    /// Whether decode matmuls of quantized weights take the integer-dot path (q8_1
    /// activations, so results differ from the exact f32 reference by that rounding).
    pub fn int8_mat_vec(&self) -> bool {
        match self.mat_vec {
            MatVecPath::Float => false,
            MatVecPath::Int8 => true,
            MatVecPath::Auto => dispatch::mul_mat_vecq::preferred(self.ctx.caps()),
        }
    }

    /// Whether prompt matmuls (n > `MAT_VEC_MAX_N`) take the cooperative-matrix kernel (f16 products, so
    /// results differ from the exact f32 reference by that rounding).
    pub fn coopmat_prefill(&self) -> bool {
        self.coopmat && dispatch::mul_mat::coopmat_shape(self.ctx.caps()).is_some()
    }

    /// Splits decode attention over the context on any device and cache size (tests,
    /// A/B); takes effect for graphs prepared afterwards.
    pub fn force_attention_split(&mut self, on: bool) {
        if on != self.force_attention_split {
            self.force_attention_split = on;
            self.arena_uid = 0;
            self.recorded.clear();
        }
    }

    /// Caps the device memory this backend may allocate (tests; default: the largest
    /// device-local heap).
    pub fn set_memory_budget(&mut self, bytes: Option<u64>) {
        self.memory_budget = bytes;
    }

    /// Refuses, before allocating anything, weights and KV cache that cannot fit: what
    /// this backend holds plus `weights` + `state` new bytes against its budget.
    fn check_budget(&self, weights: u64, state: u64) -> Result<()> {
        let caps = self.ctx.caps();
        let heap = caps.device_local_bytes().unwrap_or(u64::MAX);
        let budget = self.memory_budget.unwrap_or(heap);
        let held: u64 = self.bufs.iter().map(|b| b.size()).sum();
        if held.saturating_add(weights).saturating_add(state) > budget {
            let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
            return Err(Error::OutOfDeviceMemory(format!(
                "{} needs {:.1} MiB more ({:.1} MiB of weights, {:.1} MiB of KV cache; {:.1} MiB \
                 held already) but has {:.1} MiB{}: use a smaller -c, a smaller model or --cpu",
                caps.name,
                mib(weights + state),
                mib(weights),
                mib(state),
                mib(held),
                mib(budget),
                if self.memory_budget.is_some() {
                    " (budget set)"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }

    /// Refuse an op (`"RMS_NORM"`) or an op on one weight type (`"MUL_MAT:q4_K"`), so
    /// the scheduler sends it to the next backend.
    pub fn disable(&mut self, what: &str) {
        self.disabled.insert(what.to_string());
    }

    /// Bytes of device-local activation memory the current arena uses.
    pub fn arena_bytes(&self) -> u64 {
        self.arena_bufs
            .iter()
            .filter(|&&(_, class)| class == 0)
            .map(|&(b, _)| self.bufs[b].size())
            .sum()
    }

    /// Limits the sibling pass's `auto` mode respects on this device.
    pub fn sibling_limits(&self) -> SiblingLimits {
        let c = self.ctx.caps();
        SiblingLimits {
            max_fused_bytes: c.max_storage_buffer_range.min(c.max_memory_allocation_size) as usize,
        }
    }

    fn max_buffer(&self) -> u64 {
        let c = self.ctx.caps();
        c.max_storage_buffer_range.min(c.max_memory_allocation_size)
    }

    fn align(&self) -> u64 {
        self.ctx.caps().min_storage_buffer_offset_alignment.max(16)
    }

    fn new_buffer(&mut self, size: u64, name: &str) -> Result<usize> {
        let b = self
            .ctx
            .create_buffer(size.max(16), MemoryLocation::Device, name)?;
        self.bufs.push(b);
        Ok(self.bufs.len() - 1)
    }

    /// Creates the buffers of the weights among `ts` not on the device yet (a single
    /// tensor, or a fused / grouped weight's members back to back) and uploads them all
    /// as one stream through the staging ring (`VulkanContext::upload_many`: a tensor
    /// does not wait for the one before it), reporting progress as each is handed over.
    /// They are registered only once every byte is in place, so an error leaves no
    /// weight half-written (the next `prepare_for` uploads them again).
    fn upload_weights(&mut self, ts: &[&crate::graph::Tensor], total: u64) -> Result<()> {
        enum Key {
            Single(String),
            Fused(Vec<String>),
        }
        let model = self.model.clone();
        let mut planned: Vec<(Key, usize, Vec<&[u8]>)> = Vec::new();
        let mut seen: HashSet<Vec<String>> = HashSet::new();
        for t in ts {
            let (key, names) = match &t.kind {
                TensorKind::Weight { name } if !self.weights.contains_key(name) => {
                    (Key::Single(name.clone()), vec![name.clone()])
                }
                TensorKind::FusedWeight { members } | TensorKind::GroupedWeight { members, .. }
                    if !self.fused.contains_key(members) =>
                {
                    (Key::Fused(members.clone()), members.clone())
                }
                _ => continue,
            };
            // A tied embedding appears twice in the graph.
            if !seen.insert(names.clone()) {
                continue;
            }
            let datas = names
                .iter()
                .map(|m| model.tensor_bytes(m))
                .collect::<Result<Vec<_>>>()?;
            let size = datas.iter().map(|d| d.len() as u64).sum();
            let b = self.new_buffer(size, &t.name)?;
            planned.push((key, b, datas));
        }
        let mut jobs: Vec<(&Buffer, u64, &[u8])> = Vec::new();
        for (_, b, datas) in &planned {
            let mut off = 0;
            for d in datas {
                jobs.push((&self.bufs[*b], off, d));
                off += d.len() as u64;
            }
        }
        let progress = &mut self.progress;
        let mut done = 0;
        self.ctx.upload_many(&jobs, |bytes| {
            done += bytes;
            if let Some(f) = progress.as_mut() {
                f(done, total);
            }
        })?;
        for (key, b, _) in planned {
            match key {
                Key::Single(name) => self.weights.insert(name, b),
                Key::Fused(members) => self.fused.insert(members, b),
            };
        }
        Ok(())
    }

    /// The device memory of tensor `t` of `g` (following views): what a kernel of the op
    /// table binds (`crate::ops::OpRow::vk_record`).
    pub fn range(&self, g: &Graph, t: TensorId) -> Result<BufferRange<'_>> {
        let r = g.region(t);
        let root = g.tensor(r.root);
        let (buf, base) = match &root.kind {
            TensorKind::Weight { name } => (self.weights.get(name).copied(), 0),
            TensorKind::FusedWeight { members } | TensorKind::GroupedWeight { members, .. } => {
                (self.fused.get(members).copied(), 0)
            }
            TensorKind::State { name } => (self.state.get(name).copied(), 0),
            _ => match self.places.get(&r.root) {
                Some(p) => (Some(p.buf), p.offset),
                None => (None, 0),
            },
        };
        let buf = buf.ok_or_else(|| {
            Error::Usage(format!(
                "tensor `{}` not placed on {}",
                root.name,
                self.name()
            ))
        })?;
        Ok(self.bufs[buf].range(base + r.offset as u64, r.size as u64))
    }

    /// The real memory region of a tensor, for the barrier plan: buffers become roots.
    fn real_region(&self, g: &Graph, t: TensorId) -> Region {
        match self.range(g, t) {
            Ok(r) => {
                let id = self
                    .bufs
                    .iter()
                    .position(|b| std::ptr::eq(b, r.buffer))
                    .unwrap_or(usize::MAX);
                Region {
                    root: TensorId(id as u32),
                    offset: r.offset as usize,
                    size: r.size as usize,
                }
            }
            Err(_) => g.region(t),
        }
    }
}

impl Backend for VulkanBackend {
    fn name(&self) -> String {
        format!("Vulkan{}", self.index)
    }

    fn supports(&self, g: &Graph, n: NodeIndex) -> bool {
        self.support(g, n).is_ok()
    }

    fn refusal(&self, g: &Graph, n: NodeIndex) -> Option<String> {
        self.support(g, n).err()
    }

    fn fuses_mat_vec(&self, g: &Graph, n: NodeIndex) -> std::result::Result<(), String> {
        self.layer_fusable(g, n)
    }

    fn groups_mat_vec(&self, g: &Graph, nodes: &[NodeIndex]) -> std::result::Result<bool, String> {
        self.groupable(g, nodes)
    }

    fn device_bytes(&self) -> u64 {
        self.bufs.iter().map(|b| b.size()).sum()
    }

    fn weight_bytes(&self) -> u64 {
        self.weights
            .values()
            .chain(self.fused.values())
            .map(|&b| self.bufs[b].size())
            .sum()
    }

    fn prepare_for(&mut self, g: &Graph, nodes: &[NodeIndex]) -> Result<()> {
        // The same graph again (every decode step): weights, state and arena are in place.
        if g.uid == self.arena_uid && !self.places.is_empty() {
            return Ok(());
        }
        // Weights (fused groups contiguous) and state of the nodes assigned here: a layer
        // the scheduler put on another backend costs this one no memory. Only weights some
        // node reads: a pass may leave tensors nothing uses (the members of a fused
        // group), and uploading them would double the memory.
        // Everything below — weights, KV cache, scratch, the activation arena — is for
        // the nodes assigned here only.
        self.assigned = nodes.iter().copied().collect();
        let used = g.roots_used_by(nodes);
        let used_weights: Vec<&crate::graph::Tensor> = g
            .tensors
            .iter()
            .enumerate()
            .filter(|(i, t)| {
                used.contains(&TensorId(*i as u32))
                    || !matches!(
                        t.kind,
                        TensorKind::Weight { .. }
                            | TensorKind::FusedWeight { .. }
                            | TensorKind::GroupedWeight { .. }
                            | TensorKind::State { .. }
                    )
            })
            .map(|(_, t)| t)
            .collect();
        // Bytes still to upload (a tied embedding appears twice in the graph, once here).
        let mut seen = HashSet::new();
        let total: u64 = used_weights
            .iter()
            .filter(|t| match &t.kind {
                TensorKind::Weight { name } => {
                    !self.weights.contains_key(name) && seen.insert(t.name.clone())
                }
                TensorKind::FusedWeight { members } | TensorKind::GroupedWeight { members, .. } => {
                    !self.fused.contains_key(members) && seen.insert(t.name.clone())
                }
                _ => false,
            })
            .map(|t| t.nbytes() as u64)
            .sum();
        // KV-cache (state) bytes still to allocate.
        let state_new: u64 = used_weights
            .iter()
            .filter_map(|t| match &t.kind {
                TensorKind::State { name } => {
                    let have = self.state.get(name).map_or(0, |&b| self.bufs[b].size());
                    (have < t.nbytes() as u64).then_some(t.nbytes() as u64)
                }
                _ => None,
            })
            .sum();
        self.check_budget(total, state_new)?;
        self.upload_weights(&used_weights, total)?;
        for t in &used_weights {
            if let TensorKind::State { name } = &t.kind {
                let need = t.nbytes() as u64;
                let have = self.state.get(name).map(|&b| self.bufs[b].size());
                if have.is_none_or(|h| h < need) {
                    let b = self.new_buffer(need, name)?;
                    let mut rec = self.ctx.recorder()?;
                    rec.begin()?;
                    rec.fill(self.bufs[b].whole(), 0)?;
                    rec.submit_and_wait()?;
                    self.state.insert(name.clone(), b);
                    self.recorded.clear();
                }
            }
        }
        self.plan_scratch(g)?;
        self.plan_vecq(g)?;
        // Activation arena, planned from lifetimes (backend::arena): tensors whose stage
        // ranges do not overlap share bytes. Inputs live in host-visible upload memory
        // and graph outputs in readback memory (never shared), so per-pass transfers are
        // plain memory copies, not submissions.
        if g.uid == self.arena_uid && !self.places.is_empty() {
            return Ok(());
        }
        let outputs: HashSet<TensorId> = g.outputs.iter().map(|&t| g.root(t)).collect();
        let mut span: HashMap<TensorId, (usize, usize)> = HashMap::new();
        for (si, stage) in g.schedule.iter().enumerate() {
            for &n in stage.iter().filter(|n| self.assigned.contains(n)) {
                let node = g.node(n);
                for t in node.srcs.iter().chain(std::iter::once(&node.dst)) {
                    let e = span.entry(g.root(*t)).or_insert((si, si));
                    e.0 = e.0.min(si);
                    e.1 = e.1.max(si);
                }
            }
        }
        let mut reqs: [Vec<arena::Request>; 3] = Default::default();
        for (i, t) in g.tensors.iter().enumerate() {
            let id = TensorId(i as u32);
            let class = match t.kind {
                TensorKind::Input => 1,
                TensorKind::Activation if outputs.contains(&id) => 2,
                TensorKind::Activation => 0,
                _ => continue,
            };
            // Unused tensors (left behind by a pass) get no memory; inputs and outputs
            // live for the whole pass.
            let Some(&(first, last)) = span.get(&id) else {
                continue;
            };
            let (first, last) = if class == 0 {
                (first, last)
            } else {
                (0, usize::MAX)
            };
            reqs[class].push(arena::Request {
                id,
                size: t.nbytes() as u64,
                first,
                last,
            });
        }
        let (align, maxb) = (self.align(), self.max_buffer());
        // (class, size) per arena buffer; place indexes into it.
        let mut sizes: Vec<(usize, u64)> = Vec::new();
        let mut places = HashMap::new();
        for (class, r) in reqs.iter().enumerate() {
            let plan = arena::plan(r, align, maxb)?;
            let base = sizes.len();
            sizes.extend(plan.chunks.iter().map(|&c| (class, c)));
            for (id, p) in plan.places {
                places.insert(
                    id,
                    Place {
                        buf: base + p.chunk,
                        offset: p.offset,
                    },
                );
            }
        }
        // Arena buffers are reused across graphs (prefill, decode, each mode): the i-th
        // buffer of a class serves the i-th chunk of that class, grown in place (same
        // index, so nothing leaks) when too small.
        let mut arena = Vec::new();
        let mut changed = false;
        let mut nth = [0usize; 3];
        for &(class, sz) in &sizes {
            let have: Vec<usize> = self
                .arena_bufs
                .iter()
                .filter(|b| b.1 == class)
                .map(|b| b.0)
                .collect();
            let loc = [
                MemoryLocation::Device,
                MemoryLocation::Upload,
                MemoryLocation::Readback,
            ][class];
            let name = format!("arena{class}.{}", nth[class]);
            let b = match have.get(nth[class]) {
                Some(&b) if self.bufs[b].size() >= sz => b,
                Some(&b) => {
                    self.bufs[b] = self.ctx.create_buffer(sz.max(16), loc, &name)?;
                    changed = true;
                    b
                }
                None => {
                    self.bufs
                        .push(self.ctx.create_buffer(sz.max(16), loc, &name)?);
                    changed = true;
                    self.bufs.len() - 1
                }
            };
            nth[class] += 1;
            arena.push((b, class));
        }
        // Buffers this plan does not use stay in the pool for the next graph.
        for &(b, class) in &self.arena_bufs {
            if !arena.iter().any(|a| a.0 == b) {
                arena.push((b, class));
            }
        }
        for p in places.values_mut() {
            p.buf = arena[p.buf].0;
        }
        if changed {
            self.recorded.clear();
        }
        self.arena_bufs = arena;
        self.places = places;
        self.arena_uid = g.uid;
        Ok(())
    }

    fn set_tensor(&mut self, g: &Graph, t: TensorId, bytes: &[u8]) -> Result<()> {
        let r = self.range(g, t)?;
        if r.size as usize != bytes.len() {
            return Err(Error::Usage(format!(
                "set_tensor `{}`: {} bytes, expected {}",
                g.tensor(t).name,
                bytes.len(),
                r.size
            )));
        }
        let (buf, off) = (r.buffer.clone(), r.offset);
        if g.tensor(t).name == crate::model::build::INP_KV_SPAN {
            let spans: &[i32] = bytemuck::try_cast_slice(bytes).unwrap_or(&[]);
            let last = spans.chunks(2).filter_map(|p| p.get(1)).max().copied();
            self.kv_len = last.map_or(0, |l| (l.max(0) as u32).saturating_add(1));
        }
        self.ctx.upload(&buf, off, bytes)
    }

    fn get_tensor(&mut self, g: &Graph, t: TensorId) -> Result<Vec<u8>> {
        let r = self.range(g, t)?;
        let mut out = vec![0u8; r.size as usize];
        let (buf, off) = (r.buffer.clone(), r.offset);
        self.ctx.download(&buf, off, &mut out)?;
        Ok(out)
    }

    fn tensor_view(&self, g: &Graph, t: TensorId) -> Option<&[u8]> {
        // Every compute waits for its submission, and anything that runs one needs
        // `&mut self`: while this borrow lives, the bytes stay as the last pass left them.
        let r = self.range(g, t).ok()?;
        self.ctx.view(r.buffer, r.offset, r.size)
    }

    fn get_tensor_into(&mut self, g: &Graph, t: TensorId, out: &mut [u8]) -> Result<()> {
        let r = self.range(g, t)?;
        if r.size as usize != out.len() {
            return Err(Error::Usage(format!(
                "get_tensor_into `{}`: {} bytes into {}",
                g.tensor(t).name,
                r.size,
                out.len()
            )));
        }
        let (buf, off) = (r.buffer.clone(), r.offset);
        self.ctx.download(&buf, off, out)
    }

    fn compute(&mut self, g: &Graph, stages: &[Vec<NodeIndex>]) -> Result<()> {
        // The context outgrew (or the batch no longer needs) the decode attention's plan:
        // plan again for the new length and record afresh.
        if self.split_rows != 0 && self.split_rows_for(u32::MAX) != self.split_rows {
            self.plan_scratch(g)?;
            self.recorded.clear();
        }
        let profiling = self.profile != ProfileMode::Off;
        let key = (
            g.uid,
            stages
                .first()
                .and_then(|s| s.first())
                .map_or(0, |n| n.index()),
        );
        if !profiling {
            if let Some(rec) = self.recorded.get_mut(&key) {
                let r = rec.resubmit().and_then(|()| rec.wait());
                return r.map_err(|e| while_running(e, g, stages));
            }
        }
        let every = g.barrier_every_node || self.profile == ProfileMode::PerNode;
        let bars = plan::barriers(g, stages, |t| self.real_region(g, t), every);
        let mut rec = self.ctx.recorder()?;
        rec.set_reusable(!profiling);
        rec.begin()?;
        if profiling {
            rec.timestamp("start")?;
        }
        let nodes: Vec<NodeIndex> = stages.iter().flatten().copied().collect();
        let mut pending: Vec<(String, u64, u64)> = Vec::new();
        let mut labels: Vec<(String, u64, u64)> = Vec::new();
        let flush = |pending: &mut Vec<(String, u64, u64)>,
                     labels: &mut Vec<(String, u64, u64)>| {
            let label = pending
                .iter()
                .map(|p| p.0.as_str())
                .collect::<Vec<_>>()
                .join(" | ");
            labels.push((
                label,
                pending.iter().map(|p| p.1).sum(),
                pending.iter().map(|p| p.2).sum(),
            ));
            pending.clear();
        };
        // q8_1 copies: producers in this submission write them (q8 epilogue); the rest
        // are quantized before the first stage here that reads them.
        let here: HashSet<NodeIndex> = nodes.iter().copied().collect();
        let mut epilogue: HashMap<NodeIndex, usize> = HashMap::new();
        let mut quantize_at: HashMap<NodeIndex, Vec<usize>> = HashMap::new();
        let mut done: HashSet<usize> = HashSet::new();
        for stage in stages {
            let mut slots: Vec<usize> = stage
                .iter()
                .filter_map(|n| self.xq_node.get(n).copied())
                .filter(|s| !done.contains(s))
                .collect();
            slots.sort_unstable();
            slots.dedup();
            let mut fresh = Vec::new();
            for s in slots {
                done.insert(s);
                match self.xq_slots[s].producer {
                    Some(p) if here.contains(&p) => {
                        epilogue.insert(p, s);
                    }
                    _ => fresh.push(s),
                }
            }
            if let (Some(&first), false) = (stage.first(), fresh.is_empty()) {
                quantize_at.insert(first, fresh);
            }
        }
        // Residual ADDs whose sum an ADD_RMS_NORM_MUL of the same stage can write itself
        // (the fusion pass gives both the same operands): one dispatch instead of two.
        // Not with a barrier after every node (the `off` baseline, per-node profiles).
        // Likewise the router MUL_MAT beside its MOE_ROUTER_TOPK: the fused kernel writes
        // the logits into the matmul's output.
        let mut sum_into: HashMap<NodeIndex, TensorId> = HashMap::new();
        let mut logits_into: HashMap<NodeIndex, TensorId> = HashMap::new();
        let mut absorbed: HashSet<NodeIndex> = HashSet::new();
        if !every {
            for stage in stages {
                for (m, a) in crate::passes::fusion::residual_add_folds(g, stage) {
                    absorbed.insert(a);
                    sum_into.insert(m, g.node(a).dst);
                }
                for (t, m) in crate::passes::fusion::router_topk_folds(g, stage) {
                    absorbed.insert(m);
                    logits_into.insert(t, g.node(m).dst);
                }
            }
        }
        for (i, &n) in nodes.iter().enumerate() {
            let quantize = quantize_at.get(&n);
            if bars[i] || quantize.is_some() {
                if profiling && !pending.is_empty() {
                    flush(&mut pending, &mut labels);
                    rec.timestamp(&labels.last().expect("flushed").0)?;
                }
                // Before a quantization always: whichever node of the stage needs the
                // activation complete, the quantization reads it first.
                if bars[i] || i > 0 {
                    rec.barrier()?;
                }
            }
            if let Some(slots) = quantize {
                // Each q8_1 copy goes to a slot nothing else writes, then a barrier
                // before the stage reads it.
                for &slot in slots {
                    let sl = self.xq_slots[slot];
                    let x = self.range(g, sl.x)?;
                    let norm = match sl.nw {
                        Some(nw) => Some(dispatch::mul_mat_vecq::QuantNorm {
                            nw: self.range(g, nw)?,
                            ss: self.xq_ss(slot),
                        }),
                        None => None,
                    };
                    dispatch::mul_mat_vecq::quantize_q8_1_norm(
                        &mut rec,
                        x,
                        self.xq(slot),
                        sl.k,
                        sl.n,
                        norm,
                    )?;
                }
                rec.barrier()?;
            }
            if !absorbed.contains(&n) {
                let extra = Extra {
                    q8: epilogue.get(&n).copied(),
                    sum: sum_into.get(&n).copied(),
                    logits: logits_into.get(&n).copied(),
                };
                (crate::ops::row(&g.node(n).op).vk_record)(self, &mut rec, g, n, &extra)?;
            }
            if profiling {
                let c = crate::ops::cost(g, n);
                pending.push((c.label, c.bytes, c.flops));
            }
        }
        if profiling && !pending.is_empty() {
            flush(&mut pending, &mut labels);
            rec.timestamp(&labels.last().expect("flushed").0)?;
        }
        self.last_counts = (rec.dispatch_count(), rec.barrier_count());
        rec.submit_and_wait()
            .map_err(|e| while_running(e, g, stages))?;
        if !profiling {
            self.recorded.insert(key, rec);
            return Ok(());
        }
        {
            let ts = rec.timestamps();
            for (w, l) in ts.windows(2).zip(labels) {
                self.times.push(NodeTime {
                    label: l.0,
                    ns: w[1].ns - w[0].ns,
                    bytes: l.1,
                    flops: l.2,
                });
            }
        }
        Ok(())
    }

    fn reset_state(&mut self) {
        // The cache rows past the new position are never read; nothing to clear.
    }

    fn copy_state_rows(&mut self, n_cells: usize, c: crate::kv::RowCopy) -> Result<()> {
        if c.rows == 0 || c.from == c.to {
            return Ok(());
        }
        let mut rec = self.ctx.recorder()?;
        rec.begin()?;
        for &b in self.state.values() {
            let buf = &self.bufs[b];
            let row = buf.size() / n_cells.max(1) as u64;
            let bytes = row * c.rows as u64;
            rec.copy_buffer(
                buf.range(row * c.from as u64, bytes),
                buf.range(row * c.to as u64, bytes),
            )?;
        }
        rec.submit_and_wait()
    }

    fn set_load_progress(&mut self, f: Option<LoadProgress>) {
        self.progress = f;
    }

    fn set_profile(&mut self, mode: ProfileMode) {
        self.profile = mode;
    }

    fn take_profile(&mut self) -> Vec<NodeTime> {
        std::mem::take(&mut self.times)
    }

    fn describe_kernels(&self, g: &Graph, nodes: &[NodeIndex]) -> Option<String> {
        Some(self.kernel_lines(g, nodes))
    }
}

/// A device fault of a submission, with the nodes it ran (the first and last output).
fn while_running(e: Error, g: &Graph, stages: &[Vec<NodeIndex>]) -> Error {
    let nodes: Vec<NodeIndex> = stages.iter().flatten().copied().collect();
    let name = |n: &NodeIndex| g.tensor(g.node(*n).dst).name.clone();
    let what = match (nodes.first(), nodes.last()) {
        (Some(a), Some(b)) => format!(
            "running {} nodes, `{}` .. `{}`",
            nodes.len(),
            name(a),
            name(b)
        ),
        _ => "running an empty split".into(),
    };
    match e {
        Error::DeviceLost(m) => Error::DeviceLost(format!("{m} while {what}")),
        Error::OutOfDeviceMemory(m) => Error::OutOfDeviceMemory(format!("{m} while {what}")),
        e => e,
    }
}
