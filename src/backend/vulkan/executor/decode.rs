//! Decode-path planning of the Vulkan executor: which matmuls take the integer-dot
//! mat-vec, where their q8_1 activation copies live and who writes them (a producer's
//! q8 epilogue or a quantize_q8_1 dispatch), and the split-K attention shapes with their
//! shared scratch. Planned per graph in `prepare`; read while recording.

use petgraph::stable_graph::NodeIndex;

use super::{MatVecPath, VulkanBackend};
use crate::backend::vulkan::{dispatch, MemoryLocation};
use crate::graph::{Graph, Op, Region, TensorId, TensorKind};
use crate::quant::GgmlType;
use crate::Result;

/// Smallest weight (bytes) `MatVecPath::Auto` sends to the integer-dot mat-vec.
pub(super) const VECQ_MIN_BYTES: usize = 4 << 20;

/// One q8_1 copy of an activation: written by the node that produces the activation
/// (a q8 epilogue) when that node has one and runs in the same submission, else by a
/// quantize_q8_1 dispatch before the first stage that reads it.
///
/// A slot read by an integer-dot fused mat-vec with an RMS-norm prologue holds the blocks
/// of `x·nw` (`nw`: the norm weight) and the per-block sums of squares of `x` (at `ss`);
/// a slot written by a fused mat-vec's q8_1 epilogue has that kernel's block counters
/// (at `cnt`, zero between dispatches).
#[derive(Clone, Copy, Debug)]
pub(super) struct XqSlot {
    pub(super) x: TensorId,
    /// The producing node, when its kernel has a q8 epilogue.
    pub(super) producer: Option<NodeIndex>,
    pub(super) k: u32,
    pub(super) n: u32,
    /// Byte offsets of the codes and the scales in the scratch buffer.
    pub(super) codes: u64,
    pub(super) scales: u64,
    /// The norm weight the blocks are of `x·nw` for, with the sums of squares' offset.
    pub(super) nw: Option<TensorId>,
    pub(super) ss: u64,
    /// Byte offset of the producer's block counters (a fused mat-vec producer only).
    pub(super) cnt: Option<u64>,
}

impl VulkanBackend {
    /// Whether matmul node `n` runs on the integer-dot path.
    pub(super) fn uses_vecq(&self, g: &Graph, n: NodeIndex) -> bool {
        let node = g.node(n);
        match node.op {
            Op::MulMat { .. } => self.vecq_for(g.tensor(node.srcs[0]), g.tensor(node.srcs[1])),
            Op::MulMatId { .. } => self.vecq_id_for(g, n),
            _ => false,
        }
    }

    /// Whether MUL_MAT_ID node `n` runs grouped by expert here (a prompt batch,
    /// `dispatch::moe::groups_by_expert`, grouping on): the one rule the support check,
    /// the scratch plan, the int8 choice and the dump share.
    pub(super) fn moe_grouped(&self, g: &Graph, n: NodeIndex) -> bool {
        let node = g.node(n);
        let (w, ids) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[2]));
        match (u32::try_from(w.ne[2]), u32::try_from(ids.ne[1])) {
            (Ok(ne), Ok(nt)) => {
                self.moe_group && dispatch::moe::groups_by_expert(self.ctx.caps(), w.ty, ne, nt)
            }
            _ => false,
        }
    }

    /// Whether decode MUL_MAT_ID node `n` takes the integer-dot kernel
    /// (`mul_mat_vecq_id.comp`): as [`Self::vecq_for`], with the weight bytes one dispatch
    /// reads (the chosen experts' matrices) in place of the whole stack's.
    pub(super) fn vecq_id_for(&self, g: &Graph, n: NodeIndex) -> bool {
        let node = g.node(n);
        let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
        let (slots, tokens) = g.id_slots(n).unwrap_or((0, 0));
        let (Ok(k), Ok(nt)) = (u32::try_from(w.ne[0]), u32::try_from(tokens)) else {
            return false;
        };
        let per_expert = w.nbytes() / w.ne[2].max(1);
        let read = per_expert * (slots * tokens).min(w.ne[2]);
        let big_enough = self.mat_vec == MatVecPath::Int8 || read >= VECQ_MIN_BYTES;
        self.int8_mat_vec()
            && big_enough
            && x.ty == GgmlType::F32
            && !self.moe_grouped(g, n)
            && dispatch::moe::vecq_id_supports(self.ctx.caps(), w.ty, k, nt)
    }

    /// Whether MUL_MAT_LAYER node `n` runs the integer-dot fused mat-vec
    /// (`mul_mat_vecq_layer.comp`): its weight takes the integer-dot path (the rule
    /// `layer_fusable` applied when the folds were planned).
    pub(super) fn vecq_layer_for(&self, g: &Graph, n: NodeIndex) -> bool {
        let node = g.node(n);
        self.mat_vecq_layer
            && matches!(node.op, Op::MulMatLayer { .. })
            && self.group_segments(g, node.srcs[0]).is_none()
            && self.vecq_for(g.tensor(node.srcs[0]), g.tensor(node.srcs[1]))
    }

    /// Whether a matmul of weight `w` and input `x` would take the integer-dot path.
    pub(super) fn vecq_for(&self, w: &crate::graph::Tensor, x: &crate::graph::Tensor) -> bool {
        let (Ok(k), Ok(nt)) = (u32::try_from(w.ne[0]), u32::try_from(x.nrows())) else {
            return false;
        };
        if matches!(w.kind, TensorKind::GroupedWeight { .. }) {
            return false; // the grouped kernel is a float mat-vec
        }
        let caps = self.ctx.caps();
        // Auto leaves small matrices on the float kernel: both run at the dispatch
        // latency floor there and the float one measured 0-8 % faster (H200, qwen3-0.6b
        // q2_k / q4_k_m, 1-2 MB matrices), while from ~9 MB up int8 won by 37-49 %
        // (llama-8b q2_k / q4_0). docs/BENCHMARKS.md has the A/B.
        let big_enough = self.mat_vec == MatVecPath::Int8 || w.nbytes() >= VECQ_MIN_BYTES;
        self.int8_mat_vec()
            && big_enough
            && x.ty == GgmlType::F32
            && dispatch::mul_mat_vecq::supports(caps, w.ty, k, nt)
    }

    /// The members of a grouped weight (`TensorKind::GroupedWeight`) as kernel segments;
    /// `None` for any other tensor.
    pub(super) fn group_segments(
        &self,
        g: &Graph,
        w: TensorId,
    ) -> Option<Vec<dispatch::mul_mat_group::GroupSegment>> {
        match &g.tensor(g.root(w)).kind {
            TensorKind::GroupedWeight { types, rows, .. } => Some(
                types
                    .iter()
                    .zip(rows)
                    .map(|(&ty, &r)| dispatch::mul_mat_group::GroupSegment { ty, rows: r as u32 })
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Whether sibling MUL_MATs `nodes` (weights of different types) run as one grouped
    /// node here (`Backend::groups_mat_vec`): the grouped mat-vec is a float kernel, so a
    /// member that would take the integer-dot mat-vec alone (large weights, where int8
    /// is faster) keeps it; `Ok(false)` for a batch beyond the mat-vec (the members then
    /// run one by one in one stage).
    pub(super) fn groupable(
        &self,
        g: &Graph,
        nodes: &[NodeIndex],
    ) -> std::result::Result<bool, String> {
        let mut segs = Vec::new();
        let mut k = 0u64;
        for &n in nodes {
            let node = g.node(n);
            let w = g.tensor(node.srcs[0]);
            let mm_type = format!("MUL_MAT:{}", w.ty.name());
            for op in ["MUL_MAT", mm_type.as_str()] {
                if self.disabled.contains(op) {
                    return Err(format!("{op} is disabled on this device"));
                }
            }
            // At decode (one token), would this member take the integer-dot path?
            let one = crate::graph::Tensor {
                name: String::new(),
                ty: GgmlType::F32,
                ne: [w.ne[0], 1, 1, 1],
                kind: TensorKind::Activation,
            };
            if self.vecq_for(w, &one) {
                return Err(format!(
                    "{} takes the integer-dot mat-vec at decode ({} {:.1} MiB)",
                    w.name,
                    w.ty,
                    w.nbytes() as f64 / f64::from(1u32 << 20)
                ));
            }
            k = w.ne[0] as u64;
            segs.push(dispatch::mul_mat_group::GroupSegment {
                ty: w.ty,
                rows: w.nrows() as u32,
            });
        }
        dispatch::mul_mat_group::group_support(self.ctx.caps(), &segs, k)?;
        let n = g.tensor(g.node(nodes[0]).srcs[1]).nrows();
        Ok(n <= dispatch::mul_mat::MAT_VEC_MAX_N as usize)
    }

    /// Plans the q8_1 copies of the graph's integer-dot matmul inputs: one per distinct
    /// activation region (siblings and later readers share it), each in its own scratch
    /// slot, with the producing node where it can write the copy itself.
    pub(super) fn plan_vecq(&mut self, g: &Graph) -> Result<()> {
        self.xq_node.clear();
        self.xq_slots.clear();
        let align = self.align();
        let round = |b: u64| b.div_ceil(align) * align;
        // Pass 1: the slots (activation, norm weight) and who writes each.
        let mut by_key: Vec<((Region, Option<Region>), usize)> = Vec::new();
        let mut writers: Vec<NodeIndex> = Vec::new();
        let mut counted: Vec<u64> = Vec::new();
        for n in g.order() {
            if !self.assigned.contains(&n) {
                continue;
            }
            let layer = self.vecq_layer_for(g, n);
            if !layer && !self.uses_vecq(g, n) {
                continue;
            }
            let node = g.node(n);
            let x = node.srcs[1];
            let nw = match node.op {
                Op::MulMatLayer { norm: Some(_), .. } if layer => Some(node.srcs[2]),
                _ => None,
            };
            let key = (g.region(x), nw.map(|t| g.region(t)));
            let slot = match by_key.iter().find(|(q, _)| *q == key) {
                Some(&(_, s)) => s,
                None => {
                    let k = g.tensor(node.srcs[0]).ne[0] as u32;
                    // One q8_1 epilogue per producer: a second copy is quantized apart.
                    let producer = self
                        .q8_writer(g, x, k, nw.is_some())
                        .filter(|p| !writers.contains(p));
                    writers.extend(producer);
                    // Fused mat-vecs count their blocks: one counter per 32-row block,
                    // per (token, slot) pair for the expert-indexed one.
                    counted.push(producer.map_or(0, |p| match g.node(p).op {
                        Op::MulMatLayer { .. } => 1,
                        Op::MulMatId { .. } => g.tensor(x).nrows() as u64,
                        _ => 0,
                    }));
                    self.xq_slots.push(XqSlot {
                        x,
                        producer,
                        k,
                        n: g.tensor(x).nrows() as u32,
                        codes: 0,
                        scales: 0,
                        nw,
                        ss: 0,
                        cnt: None,
                    });
                    by_key.push((key, self.xq_slots.len() - 1));
                    self.xq_slots.len() - 1
                }
            };
            self.xq_node.insert(n, slot);
        }
        if self.xq_slots.is_empty() {
            return Ok(());
        }
        // Pass 2: the layout. The fused mat-vecs' block counters come first, in a region
        // that only ever holds counters and only grows (`xq_cnt_bytes`): kernels leave
        // counters at zero, so the region is zero-filled only when new bytes join it.
        let mut at = 0u64;
        for (s, &c) in self.xq_slots.iter_mut().zip(&counted) {
            if c > 0 {
                s.cnt = Some(at);
                at += round(u64::from(s.k / 32) * 4 * c);
            }
        }
        let grown = at > self.xq_cnt_bytes;
        self.xq_cnt_bytes = self.xq_cnt_bytes.max(at);
        at = self.xq_cnt_bytes;
        for s in &mut self.xq_slots {
            let (cb, sb) = dispatch::mul_mat_vecq::xq_bytes(s.k, s.n);
            s.codes = at;
            s.scales = s.codes + round(cb);
            at = s.scales + round(sb);
            if s.nw.is_some() {
                s.ss = at;
                at += round(u64::from(s.k / 32) * u64::from(s.n) * 4);
            }
        }
        let have = self.xq_scratch.map(|b| self.bufs[b].size());
        let fresh = have.is_none_or(|h| h < at);
        if fresh {
            let buf = self
                .ctx
                .create_buffer(at, MemoryLocation::Device, "xq_scratch")?;
            match self.xq_scratch {
                Some(b) => self.bufs[b] = buf,
                None => {
                    self.bufs.push(buf);
                    self.xq_scratch = Some(self.bufs.len() - 1);
                }
            }
            self.recorded.clear();
        }
        if self.xq_cnt_bytes > 0 && (fresh || grown) {
            let b = &self.bufs[self.xq_scratch.expect("created above")];
            let mut rec = self.ctx.recorder()?;
            rec.begin()?;
            rec.fill(b.range(0, self.xq_cnt_bytes), 0)?;
            rec.submit_and_wait()?;
            if grown {
                // Codes of earlier plans lay where the region grew: re-record.
                self.recorded.clear();
            }
        }
        Ok(())
    }

    /// The q8_1 copies the current graph's integer-dot matmuls read: (activation name,
    /// name of the op whose q8 epilogue writes it, or `None`: a quantize_q8_1 dispatch).
    pub fn q8_copies(&self, g: &Graph) -> Vec<(String, Option<&'static str>)> {
        self.xq_slots
            .iter()
            .map(|s| {
                let by = s.producer.map(|p| g.node(p).op.name());
                (g.tensor(s.x).name.clone(), by)
            })
            .collect()
    }

    pub(super) fn xq(&self, slot: usize) -> dispatch::mul_mat_vecq::XQ<'_> {
        let s = self.xq_slots[slot];
        let b = &self.bufs[self.xq_scratch.expect("planned with the slots")];
        let (cb, sb) = dispatch::mul_mat_vecq::xq_bytes(s.k, s.n);
        dispatch::mul_mat_vecq::XQ {
            codes: b.range(s.codes, cb),
            scales: b.range(s.scales, sb),
        }
    }

    /// The sums of squares of slot `slot`'s raw x per block (a slot with a norm weight).
    pub(super) fn xq_ss(&self, slot: usize) -> crate::backend::vulkan::BufferRange<'_> {
        let s = self.xq_slots[slot];
        let b = &self.bufs[self.xq_scratch.expect("planned with the slots")];
        b.range(s.ss, u64::from(s.k / 32) * u64::from(s.n) * 4)
    }

    /// The whole q8_1 scratch buffer (the integer-dot fused mat-vec binds its parts).
    pub(super) fn xq_scratch_range(&self) -> crate::backend::vulkan::BufferRange<'_> {
        self.bufs[self.xq_scratch.expect("planned with the slots")].whole()
    }

    /// Plans the scratch of the kernels whose workgroups meet through memory — split-K
    /// attention (partials and counters), chunked TOP_K (chunk records and counters),
    /// MOE_ROUTER_TOPK (a counter, room for logits) and,
    /// in a buffer of its own (no zero counters there), MUL_MAT_ID grouped by expert (the
    /// grouping its first dispatch writes):
    /// chooses the attention nodes' split shapes, gives every such node of a stage its
    /// own slice (stages reuse the buffer behind their barriers), and grows the buffer,
    /// zeroed, when too small.
    pub(super) fn plan_scratch(&mut self, g: &Graph) -> Result<()> {
        self.attn_split.clear();
        self.top_k_scratch.clear();
        self.router_scratch.clear();
        self.moe_scratch.clear();
        self.x16_scratch.clear();
        self.split_rows = 0;
        let align = self.align();
        let mut need = 0u64;
        let mut moe_need = 0u64;
        let mut x16_need = 0u64;
        let coop = self.coopmat_prefill();
        for stage in &g.schedule {
            let mut at = 0u64;
            let mut moe_at = 0u64;
            let mut x16_at = 0u64;
            for &n in stage.iter().filter(|n| self.assigned.contains(n)) {
                let node = g.node(n);
                if let Op::TopK { k } = node.op {
                    let l = g.tensor(node.srcs[0]);
                    let (Ok(v), Ok(k), Ok(rows)) = (
                        u32::try_from(l.ne[0]),
                        u32::try_from(k),
                        u32::try_from(l.nrows()),
                    ) else {
                        continue;
                    };
                    let bytes = dispatch::top_k::scratch_bytes(v, k, rows);
                    if bytes > 0 {
                        self.top_k_scratch.insert(n, at);
                        at += bytes.div_ceil(align) * align;
                    }
                    continue;
                }
                if let Op::MoeRouterTopK { .. } = node.op {
                    let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
                    let (Ok(ne), Ok(nt)) = (u32::try_from(w.nrows()), u32::try_from(x.nrows()))
                    else {
                        continue;
                    };
                    self.router_scratch.insert(n, at);
                    let bytes = dispatch::moe::router_topk_scratch_bytes(ne, nt);
                    at += bytes.div_ceil(align) * align;
                    continue;
                }
                if let Op::MulMat { .. } = node.op {
                    // A prompt matmul on the coopmat kernel reads an f16 copy of x.
                    // Small grids also split k, the partial blocks after the f16 x.
                    let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
                    let (Ok(k), Ok(m), Ok(nt)) = (
                        u32::try_from(w.ne[0]),
                        u32::try_from(w.nrows()),
                        u32::try_from(x.nrows()),
                    ) else {
                        continue;
                    };
                    if coop
                        && nt > dispatch::mul_mat::MAT_VEC_MAX_N
                        && self.group_segments(g, node.srcs[0]).is_none()
                    {
                        let sk = self.split_k_of(g, n);
                        let bytes = dispatch::mul_mat::tiled_scratch_bytes(k, m, nt, sk);
                        self.x16_scratch.insert(n, (x16_at, bytes, sk));
                        x16_at += bytes.div_ceil(align) * align;
                    }
                    continue;
                }
                if let Some((slots, tokens)) = g.id_slots(n) {
                    let w = g.tensor(node.srcs[0]);
                    let (Ok(ne), Ok(nu), Ok(nt)) = (
                        u32::try_from(w.ne[2]),
                        u32::try_from(slots),
                        u32::try_from(tokens),
                    ) else {
                        continue;
                    };
                    if self.moe_grouped(g, n) {
                        let words = dispatch::moe::grouping_words(ne, nu.saturating_mul(nt));
                        self.moe_scratch.insert(n, moe_at);
                        moe_at += (4 * words).div_ceil(align) * align;
                        if coop && dispatch::moe::coopmat_fits(self.ctx.caps()) {
                            // The expert-indexed coopmat tile reads an f16 copy of x too.
                            let x = g.tensor(node.srcs[1]);
                            let bytes = 2 * x.nelements() as u64;
                            self.x16_scratch.insert(n, (x16_at, bytes, None));
                            x16_at += bytes.div_ceil(align) * align;
                        }
                    }
                    continue;
                }
                if !matches!(node.op, Op::Attention { .. }) {
                    continue;
                }
                let (q, k) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
                let dims: Option<Vec<u32>> = [q.ne[0], q.ne[1], k.ne[1], q.ne[2], k.ne[2]]
                    .iter()
                    .map(|&v| u32::try_from(v).ok())
                    .collect();
                let Some(&[d, nh, nkv, nt, n_kv]) = dims.as_deref() else {
                    continue;
                };
                if nt <= 8 {
                    // Decode: split or not, its launch is sized for the planned length,
                    // so crossing it re-plans (compute).
                    self.split_rows = self.split_rows_for(u32::MAX);
                }
                let Some(shape) = self.attention_split_shape([d, nh, nkv, nt, n_kv]) else {
                    continue;
                };
                self.attn_split.insert(n, (shape, at));
                at += shape.scratch_bytes(d, nh, nt).div_ceil(align) * align;
            }
            need = need.max(at);
            moe_need = moe_need.max(moe_at);
            x16_need = x16_need.max(x16_at);
        }
        let have = self.x16_buf.map(|b| self.bufs[b].size());
        if x16_need > 0 && have.is_none_or(|h| h < x16_need) {
            // No fill: each matmul writes its slice before reading it.
            let buf = self
                .ctx
                .create_buffer(x16_need, MemoryLocation::Device, "x16_scratch")?;
            match self.x16_buf {
                Some(b) => self.bufs[b] = buf,
                None => {
                    self.bufs.push(buf);
                    self.x16_buf = Some(self.bufs.len() - 1);
                }
            }
            self.recorded.clear();
        }
        let have = self.moe_scratch_buf.map(|b| self.bufs[b].size());
        if moe_need > 0 && have.is_none_or(|h| h < moe_need) {
            // No zero fill: moe_group.comp writes every word it hands the tiled kernel.
            let buf = self
                .ctx
                .create_buffer(moe_need, MemoryLocation::Device, "moe_scratch")?;
            match self.moe_scratch_buf {
                Some(b) => self.bufs[b] = buf,
                None => {
                    self.bufs.push(buf);
                    self.moe_scratch_buf = Some(self.bufs.len() - 1);
                }
            }
            self.recorded.clear();
        }
        if need == 0 {
            return Ok(());
        }
        let have = self.scratch.map(|b| self.bufs[b].size());
        if have.is_none_or(|h| h < need) {
            let buf = self
                .ctx
                .create_buffer(need, MemoryLocation::Device, "scratch")?;
            let mut rec = self.ctx.recorder()?;
            rec.begin()?;
            rec.fill(buf.whole(), 0)?;
            rec.submit_and_wait()?;
            match self.scratch {
                Some(b) => self.bufs[b] = buf,
                None => {
                    self.bufs.push(buf);
                    self.scratch = Some(self.bufs.len() - 1);
                }
            }
            self.recorded.clear();
        }
        Ok(())
    }
}

impl VulkanBackend {
    /// The node whose kernel can write the q8_1 copy of activation `x` (rows of `k`) in
    /// its epilogue: the node producing exactly `x`, when it has a q8 epilogue — for a
    /// copy of `x·nw` with its sums of squares (`norm`), an integer-dot fused mat-vec's.
    pub(super) fn q8_writer(
        &self,
        g: &Graph,
        x: TensorId,
        k: u32,
        norm: bool,
    ) -> Option<NodeIndex> {
        let r = g.region(x);
        let p = g.order().find(|&p| g.region(g.node(p).dst) == r)?;
        if self.vecq_layer_qout(g, p, k)
            || (!norm && (has_q8_epilogue(g, p, k) || self.vecq_id_qout(g, p, k)))
        {
            Some(p)
        } else {
            None
        }
    }

    /// Whether node `p` is a MUL_MAT_ID_SWIGLU on the integer-dot kernel whose q8_1
    /// epilogue can quantize its output (rows of `k`: whole 32-row blocks, each
    /// workgroup's output rows in one).
    pub(super) fn vecq_id_qout(&self, g: &Graph, p: NodeIndex, k: u32) -> bool {
        let node = g.node(p);
        if !matches!(node.op, Op::MulMatId { glu: true, .. }) || !self.vecq_id_for(g, p) {
            return false;
        }
        let (w, dst) = (g.tensor(node.srcs[0]), g.tensor(node.dst));
        let launch = dispatch::mul_mat_vecq::launch(
            self.ctx.caps(),
            w.ty,
            w.ne[0] as u32,
            1,
            self.id_vecq_shape(),
            0,
            "q8_1 epilogue",
        );
        dst.ty == GgmlType::F32
            && dst.ne[0] == k as usize
            && launch
                .is_ok_and(|(s, _)| s.rows % 2 == 0 && dispatch::moe::id_qout_fits(k, s.rows / 2))
    }

    /// Whether node `p` is an integer-dot fused mat-vec whose q8_1 epilogue can quantize
    /// its output (rows of `k`): a residual-add, SwiGLU or plain epilogue into one
    /// output, whole 32-row blocks, each workgroup's rows in one block.
    pub(super) fn vecq_layer_qout(&self, g: &Graph, p: NodeIndex, k: u32) -> bool {
        let node = g.node(p);
        let Op::MulMatLayer { split, epi, .. } = &node.op else {
            return false;
        };
        if !self.vecq_layer_for(g, p) {
            return false;
        }
        let (w, x, dst) = (
            g.tensor(node.srcs[0]),
            g.tensor(node.srcs[1]),
            g.tensor(node.dst),
        );
        let glu = *epi == crate::graph::Epilogue::SwiGlu;
        if dst.ty != GgmlType::F32
            || dst.ne[0] != k as usize
            || *epi == crate::graph::Epilogue::Bias
            || matches!(epi, crate::graph::Epilogue::AddSwiGlu { .. })
            || (!glu && split.len() > 1)
        {
            return false;
        }
        let shape = self.mat_vecq_shape.filter(|s| s.rows % 2 == 0);
        dispatch::mul_mat::vecq_layer_rows(
            self.ctx.caps(),
            w.ty,
            w.ne[0] as u32,
            x.nrows() as u32,
            shape,
        )
        .is_some_and(|r| dispatch::mul_mat::vecq_layer_qout_fits(k, if glu { r / 2 } else { r }))
    }
}

/// The node whose kernel can write the q8_1 copy of activation `x` (rows of `k`) in its
/// epilogue, for the dump: as `VulkanBackend::q8_writer` without a norm.
fn q8_producer(be: &VulkanBackend, g: &Graph, x: TensorId, k: u32) -> Option<NodeIndex> {
    be.q8_writer(g, x, k, false)
}

/// Whether node `p` writes its f32 result in rows of `k` values that its kernel can also
/// write as q8_1 blocks (rms_norm_mul, add_rms_norm_mul, swiglu, attention; `k % 32 == 0`).
fn has_q8_epilogue(g: &Graph, p: NodeIndex, k: u32) -> bool {
    let node = g.node(p);
    let dst = g.tensor(node.dst);
    k % 32 == 0
        && dst.ty == GgmlType::F32
        && match node.op {
            Op::RmsNormMul { .. } | Op::AddRmsNormMul { .. } | Op::MoeSumRmsNormMul { .. } => {
                dst.ne[0] == k as usize
            }
            Op::SwiGlu => dst.nelements() % (k as usize) == 0 && dst.ne[0] == k as usize,
            // The output [d, n_head, n] is read as [d * n_head, n]; blocks stay in a head.
            Op::Attention { .. } => dst.ne[0] % 32 == 0 && dst.ne[0] * dst.ne[1] == k as usize,
            _ => false,
        }
}

impl VulkanBackend {
    /// The split-K of prompt MUL_MAT node `n` on the cooperative-matrix kernel
    /// (`dispatch::mul_mat::split_k` at this backend's threshold), for the scratch plan
    /// and the dump alike.
    fn split_k_of(&self, g: &Graph, n: NodeIndex) -> Option<dispatch::mul_mat::SplitK> {
        let node = g.node(n);
        let Op::MulMat { split } = &node.op else {
            return None;
        };
        let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
        dispatch::mul_mat::split_k(
            self.ctx.caps(),
            self.tiled_kernel(),
            u32::try_from(w.ne[0]).ok()?,
            u32::try_from(w.nrows()).ok()?,
            u32::try_from(x.nrows()).ok()?,
            split.len().max(1),
            self.split_k_grid,
        )
    }

    /// The dump's kernel lines (see `Backend::describe_kernels`): per matmul the kernel
    /// and why, per attention its split, per q8_1 copy who writes it.
    pub(super) fn kernel_lines(&self, g: &Graph, nodes: &[NodeIndex]) -> String {
        use std::fmt::Write as _;
        let caps = self.ctx.caps();
        let mut s = String::new();
        let mib = |b: usize| b as f64 / (1u64 << 20) as f64;
        // The nodes whose q8_1 epilogue writes an integer-dot matmul's input.
        let q8_writers: std::collections::HashSet<NodeIndex> = g
            .order()
            .filter_map(|c| {
                let cn = g.node(c);
                let layer = self.vecq_layer_for(g, c);
                if !layer && !self.uses_vecq(g, c) {
                    return None;
                }
                let norm = layer && matches!(cn.op, Op::MulMatLayer { norm: Some(_), .. });
                self.q8_writer(g, cn.srcs[1], g.tensor(cn.srcs[0]).ne[0] as u32, norm)
            })
            .collect();
        for &n in nodes {
            let node = g.node(n);
            let name = &g.tensor(node.dst).name;
            match &node.op {
                Op::MulMat { .. } | Op::MulMatLayer { .. }
                    if self.group_segments(g, node.srcs[0]).is_some() =>
                {
                    let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
                    let nt = x.nrows();
                    let segs = self.group_segments(g, node.srcs[0]).unwrap_or_default();
                    let members: Vec<String> = segs
                        .iter()
                        .map(|s| format!("{}x{}", s.ty, s.rows))
                        .collect();
                    let what = if nt <= dispatch::mul_mat::MAT_VEC_MAX_N as usize {
                        let mut norm = String::new();
                        if let Op::MulMatLayer { norm: nm, epi, .. } = &node.op {
                            if nm.is_some() {
                                norm += ", RMS-norm prologue";
                            }
                            if *epi == crate::graph::Epilogue::Bias {
                                norm += ", bias epilogue";
                            }
                        }
                        format!(
                            "mul_mat_vec_group (one dispatch over {} members{norm})",
                            segs.len()
                        )
                    } else {
                        format!(
                            "{} dispatches of the members' own kernels in one stage",
                            segs.len()
                        )
                    };
                    let _ = writeln!(
                        s,
                        "{} {name} {} {} n={nt}: {what}",
                        node.op.name(),
                        w.ne[0],
                        members.join(" + ")
                    );
                }
                Op::MulMat { .. } => {
                    let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
                    let nt = x.nrows();
                    let what = if self.uses_vecq(g, n) {
                        let by = q8_producer(self, g, node.srcs[1], w.ne[0] as u32)
                            .map_or("a quantize_q8_1 dispatch".to_string(), |p| {
                                format!("the {} epilogue", g.node(p).op.name())
                            });
                        format!("mul_mat_vecq (int8 dot products; q8_1 x written by {by})")
                    } else if nt <= dispatch::mul_mat::MAT_VEC_MAX_N as usize {
                        let why = if !self.int8_mat_vec() {
                            "integer dot products off or not accelerated here".to_string()
                        } else if !w.ty.is_quantized() {
                            format!("{} has no integer codes", w.ty)
                        } else if w.nbytes() < VECQ_MIN_BYTES {
                            format!(
                                "{:.1} MiB < the {:.0} MiB int8 floor",
                                mib(w.nbytes()),
                                mib(VECQ_MIN_BYTES)
                            )
                        } else {
                            "no int8 kernel for this shape".to_string()
                        };
                        format!("mul_mat_vec (float; {why})")
                    } else if dispatch::mul_mat::coopmat_shape(caps).is_none() {
                        "mul_mat (scalar tiled; no usable cooperative-matrix shape)".to_string()
                    } else if self.coopmat {
                        // As plan_scratch decides it (the dump runs before any plan).
                        let split = match self.split_k_of(g, n) {
                            Some(sk) => format!(
                                "; k split {} ways, {} values each, its grid too small to fill \
                                 the device (VKGRAPH_SPLIT_K)",
                                sk.ks, sk.kc
                            ),
                            None => String::new(),
                        };
                        format!("mul_mat_coopmat (cooperative matrices, f16 products{split})")
                    } else {
                        "mul_mat (scalar tiled; VKGRAPH_COOPMAT=0)".to_string()
                    };
                    let _ = writeln!(
                        s,
                        "{} {name} {} {}x{} n={nt}: {what}",
                        node.op.name(),
                        w.ty,
                        w.ne[0],
                        w.nrows()
                    );
                }
                Op::MulMatLayer { norm, epi, .. } => {
                    let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
                    let mut parts = Vec::new();
                    if norm.is_some() {
                        parts.push("RMS-norm prologue");
                    }
                    match epi {
                        crate::graph::Epilogue::Add => parts.push("residual-add epilogue"),
                        crate::graph::Epilogue::SwiGlu => parts.push("SwiGLU epilogue"),
                        crate::graph::Epilogue::Bias => parts.push("bias epilogue"),
                        crate::graph::Epilogue::AddSwiGlu { gate: false } => {
                            parts.push("epilogue: up + this product, then SwiGLU")
                        }
                        crate::graph::Epilogue::AddSwiGlu { gate: true } => {
                            parts.push("epilogue: gate + this product, then SwiGLU")
                        }
                        crate::graph::Epilogue::None => {}
                    }
                    let kernel = if self.vecq_layer_for(g, n) {
                        let what = if norm.is_some() {
                            "q8_1 of x·nw and its sums of squares"
                        } else {
                            "q8_1 x"
                        };
                        let by = self
                            .q8_writer(g, node.srcs[1], w.ne[0] as u32, norm.is_some())
                            .map_or("a quantize_q8_1 dispatch".to_string(), |p| {
                                format!("the {} epilogue", g.node(p).op.name())
                            });
                        let out = if q8_writers.contains(&n) {
                            "; its q8_1 epilogue quantizes the output for the next int8 matmul"
                        } else {
                            ""
                        };
                        format!(
                            "mul_mat_vecq_layer (int8 dot products; {what} written by {by}{out}"
                        )
                    } else {
                        "mul_mat_vec_layer (float mat-vec".to_string()
                    };
                    let _ = writeln!(
                        s,
                        "{} {name} {} {}x{} n={}: {kernel}; {})",
                        node.op.name(),
                        w.ty,
                        w.ne[0],
                        w.nrows(),
                        x.nrows(),
                        parts.join(", ")
                    );
                }
                Op::MulMatId { split, glu, route } => {
                    let w = g.tensor(node.srcs[0]);
                    let (slots, tokens) = g.id_slots(n).unwrap_or((0, 0));
                    let members = match (split.len(), glu) {
                        (0, _) => String::new(),
                        (s, true) => {
                            format!(", {s} stacks in one dispatch, silu(gate)·up in its epilogue")
                        }
                        (s, false) => format!(", {s} stacks in one dispatch"),
                    };
                    let members = if route.is_some() {
                        format!(
                            "{members}; routes itself: each token x slot workgroup ranks the \
                             router's logits for its expert, in MOE_TOPK's order"
                        )
                    } else {
                        members
                    };
                    let grouped = self.moe_grouped(g, n);
                    let vecq = self.uses_vecq(g, n).then(|| {
                        let by = q8_producer(self, g, node.srcs[1], w.ne[0] as u32)
                            .map_or("a quantize_q8_1 dispatch".to_string(), |p| {
                                format!("the {} epilogue", g.node(p).op.name())
                            });
                        format!(
                            "mul_mat_vecq_id (int8 dot products per token x slot; q8_1 x \
                             written by {by}"
                        )
                    });
                    let per_pair = if let Some(v) = vecq.as_deref() {
                        v
                    } else if dispatch::mul_mat::has_subgroup_add(caps) {
                        "mul_mat_vec_id (float mat-vec per token x slot"
                    } else {
                        "mul_mat_id (one workgroup per row and token x slot"
                    };
                    let what = if !grouped {
                        let why = if self.moe_group {
                            "each chosen expert read per token"
                        } else {
                            "VKGRAPH_MOE_GROUP=0"
                        };
                        format!("{per_pair}{members}; {why})")
                    } else if self.coopmat && dispatch::moe::coopmat_fits(caps) {
                        format!(
                            "moe_group + mul_mat_id_coopmat (2 dispatches, a barrier between; \
                             tokens grouped by expert, each expert's weights read once per 128 \
                             of its tokens; cooperative matrices{members})"
                        )
                    } else {
                        format!(
                            "moe_group + mul_mat_id_tiled (2 dispatches, a barrier between; \
                             tokens grouped by expert, each expert's weights read once per 64 \
                             of its tokens; scalar tiled{members})"
                        )
                    };
                    let _ = writeln!(
                        s,
                        "{} {name} {} {}x{}, {} experts, {} used, n={}: {what}",
                        node.op.name(),
                        w.ty,
                        w.ne[0],
                        w.ne[1],
                        w.ne[2],
                        slots,
                        tokens
                    );
                }
                Op::Attention { .. } => {
                    let (q, k) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
                    let dims = [q.ne[0], q.ne[1], k.ne[1], q.ne[2], k.ne[2]].map(|v| v as u32);
                    let rows = self.split_rows_for(dims[4]);
                    let shape = self.attention_split_shape(dims);
                    let what = match shape {
                        Some(sh) => format!(
                            "split-K over {} workgroups per head group, {} heads per group \
                             (planned for {rows} rows, re-planned as the context grows)",
                            sh.nz, sh.qb
                        ),
                        None if self.coopmat
                            && dims[3] >= dispatch::attention_coopmat::MIN_TOKENS
                            && dispatch::attention_coopmat::support(caps, dims[0]).is_ok() =>
                        {
                            "attention_coopmat (cooperative matrices, f16 products: 64 (token, \
                             query head) rows of a kv head per workgroup)"
                                .to_string()
                        }
                        None if dims[3] <= 8 => format!(
                            "one workgroup per (head group, token), its width for {rows} rows \
                             (re-planned as the context grows)"
                        ),
                        None => "one workgroup per (head group, token)".to_string(),
                    };
                    let fold = match &node.op {
                        Op::Attention { rope: Some(r), .. }
                            if r.lora.iter().any(Option::is_some) =>
                        {
                            "; LoRA products added to its base q / k / v, q rotated and the new \
                             K/V row written in its prologue (attention_rope_lora)"
                        }
                        Op::Attention { rope: Some(_), .. } => {
                            "; q rotated and the new K/V row written in its prologue"
                        }
                        _ => "",
                    };
                    let _ = writeln!(s, "{} {name} kv={}: {what}{fold}", node.op.name(), dims[4]);
                }
                _ => {}
            }
        }
        s
    }
}
