//! A generation session: a model, its backends in priority order (the CPU last) and
//! the KV cache's bookkeeping ([`crate::kv::KvCache`]: `n_seq` sequences sharing `n_ctx`
//! cells). `forward` (sequence 0) and `forward_batch` (tokens of several sequences in one
//! pass) build the graph for the batch, run the passes for the session's QKV mode,
//! schedule it and evaluate each split on its backend, copying tensors that cross splits.

use std::sync::Arc;

use crate::backend::Backend;
use crate::graph::Graph;
use crate::model::{build, build_graph, BuildOpts, Model};
use crate::passes::{self, FusionLevel, QkvMode, SiblingLimits};
use crate::{Error, Result};

use super::{assign, dump, Assignment};

/// Options of a session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub qkv: QkvMode,
    /// How much element-wise work is folded into other kernels (`--fusion`).
    pub fusion: FusionLevel,
    /// KV-cache cells (context length, shared by the sequences).
    pub n_ctx: usize,
    /// Sequences (llama-server's slots, `-np`): each gets `n_ctx / n_seq` cells.
    pub n_seq: usize,
    /// Print the assignment dump of every new graph shape (the CLI sets it from
    /// `VKGRAPH_SCHED_DEBUG=1`, `crate::options`).
    pub sched_debug: bool,
    pub limits: SiblingLimits,
    /// Which layers run on the first backend (`-ngl N`).
    pub placement: super::Placement,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            qkv: QkvMode::Auto,
            fusion: FusionLevel::Layer,
            n_ctx: 512,
            n_seq: 1,
            sched_debug: false,
            limits: SiblingLimits::default(),
            placement: super::Placement::default(),
        }
    }
}

/// Wall time of the `forward*` calls since the last [`Session::take_step_times`], in three
/// parts: the host's work before the first split runs (plan look-up, KV bookkeeping,
/// input uploads), the splits' runs (submission, the device's work, the fence; copies
/// between splits), and the output's read-back (and the cache commit). What `bench
/// --profile` prints beside the GPU time of a step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepTimes {
    pub steps: u64,
    pub before_ns: u64,
    pub run_ns: u64,
    pub read_ns: u64,
}

/// A forward pass that ran but whose output is not read yet: its graph, the backend
/// holding the output, the cache cells to commit once it is read, and when the pass
/// started, its splits started and they ended.
struct Pass {
    planned: Arc<(Graph, Assignment)>,
    backend: usize,
    cells: crate::kv::BatchCells,
    t0: std::time::Instant,
    t1: std::time::Instant,
    t2: std::time::Instant,
}

/// A planned graph's key: (batch size, output rows, QKV mode, fusion level, TOP_K's k).
type PlanKey = (usize, usize, QkvMode, FusionLevel, Option<usize>);

/// See the module docs.
pub struct Session {
    pub model: Arc<Model>,
    backends: Vec<Box<dyn Backend>>,
    pub opts: SessionOptions,
    kv: crate::kv::KvCache,
    /// Planned graphs by (batch size, logits for all tokens, mode): the graph does not
    /// depend on the position, so generation builds, optimizes and schedules once.
    plans: std::collections::HashMap<PlanKey, Arc<(Graph, Assignment)>>,
    /// Scheduled K-shift graphs by rows moved (a run's shifts all move as many rows, so
    /// backends replay one recording).
    shift_plans: std::collections::HashMap<usize, Arc<(Graph, Assignment)>>,
    /// Per planned graph (by uid): for each backend that runs part of it, the graph
    /// inputs its nodes read — worked out once, not per step.
    input_routes: std::collections::HashMap<u64, Vec<(usize, Vec<crate::graph::TensorId>)>>,
    /// `forward_logits`' row where the backend cannot lend it (reused: no allocation per
    /// step).
    out: Vec<f32>,
    times: StepTimes,
}

impl Session {
    /// A session; `opts.n_seq` is clamped to `1..=n_ctx` (see [`Session::try_new`]).
    pub fn new(model: Arc<Model>, backends: Vec<Box<dyn Backend>>, opts: SessionOptions) -> Self {
        let mut opts = opts;
        opts.n_seq = opts.n_seq.clamp(1, opts.n_ctx.max(1));
        Self::try_new(model, backends, opts).expect("n_seq clamped to 1..=n_ctx")
    }

    /// A session, or a usage error when `n_ctx` cells cannot hold `n_seq` sequences.
    pub fn try_new(
        model: Arc<Model>,
        backends: Vec<Box<dyn Backend>>,
        opts: SessionOptions,
    ) -> Result<Self> {
        let kv = crate::kv::KvCache::new(opts.n_ctx.max(1), opts.n_seq)?;
        Ok(Session {
            model,
            backends,
            opts,
            kv,
            plans: Default::default(),
            shift_plans: Default::default(),
            input_routes: Default::default(),
            out: Vec::new(),
            times: StepTimes::default(),
        })
    }

    /// The wall-time split of the `forward*` calls since the last call (see
    /// [`StepTimes`]); resets it.
    pub fn take_step_times(&mut self) -> StepTimes {
        std::mem::take(&mut self.times)
    }

    /// Tokens in the KV cache of sequence 0.
    pub fn n_past(&self) -> usize {
        self.kv.len(0)
    }

    /// The KV cache's bookkeeping (lengths per sequence).
    pub fn kv(&self) -> &crate::kv::KvCache {
        &self.kv
    }

    /// Forgets sequence `seq`'s tokens from position `len` on.
    pub fn truncate_seq(&mut self, seq: crate::kv::SeqId, len: usize) -> Result<()> {
        self.kv.truncate(seq, len)
    }

    /// Makes sequence `dst` a copy of `src` (cache rows copied on every backend).
    pub fn copy_seq(&mut self, src: crate::kv::SeqId, dst: crate::kv::SeqId) -> Result<()> {
        let mut kv = self.kv.clone();
        if let Some(c) = kv.copy(src, dst)? {
            for b in &mut self.backends {
                b.copy_state_rows(self.opts.n_ctx, c)?;
            }
        }
        self.kv = kv;
        Ok(())
    }

    /// Names of the backends in priority order.
    pub fn backend_names(&self) -> Vec<String> {
        self.backends.iter().map(|b| b.name()).collect()
    }

    /// Plans the graph for `n_tokens` and readies every backend for it (uploads the
    /// weights it uses, fused groups placed contiguously), reporting upload progress.
    pub fn load(
        &mut self,
        n_tokens: usize,
        mut progress: impl FnMut(u64, u64) + 'static,
    ) -> Result<()> {
        let (g, a) = self.plan(n_tokens, false)?;
        let used: std::collections::BTreeSet<usize> = a.splits.iter().map(|s| s.backend).collect();
        let shared = std::rc::Rc::new(std::cell::RefCell::new(move |d: u64, t: u64| {
            progress(d, t)
        }));
        for b in used {
            let p = shared.clone();
            self.backends[b].set_load_progress(Some(Box::new(move |d, t| (p.borrow_mut())(d, t))));
            let r = self.backends[b].prepare_for(&g, a.nodes_of(b));
            self.backends[b].set_load_progress(None);
            r?;
        }
        Ok(())
    }

    /// Device memory each backend holds, as (name, bytes) in priority order.
    pub fn device_bytes(&self) -> Vec<(String, u64)> {
        self.backends
            .iter()
            .map(|b| (b.name(), b.device_bytes()))
            .collect()
    }

    /// Weight bytes each backend holds, as (name, bytes) in priority order.
    pub fn weight_bytes(&self) -> Vec<(String, u64)> {
        self.backends
            .iter()
            .map(|b| (b.name(), b.weight_bytes()))
            .collect()
    }

    /// Starts or stops GPU timestamps on every backend.
    pub fn set_profile(&mut self, mode: crate::backend::ProfileMode) {
        for b in &mut self.backends {
            b.set_profile(mode);
        }
    }

    /// Timestamps recorded since the last call, from every backend.
    pub fn take_profile(&mut self) -> Vec<crate::backend::NodeTime> {
        self.backends
            .iter_mut()
            .flat_map(|b| b.take_profile())
            .collect()
    }

    /// Each backend's kernel lines for the nodes assigned to it (`Backend::describe_kernels`),
    /// as (backend name, lines), for the dump.
    pub fn describe_kernels(&self, g: &Graph, a: &Assignment) -> Vec<(String, String)> {
        self.backends
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let nodes: Vec<_> = g
                    .order()
                    .filter(|n| a.backend_of.get(n) == Some(&i))
                    .collect();
                b.describe_kernels(g, &nodes).map(|s| (b.name(), s))
            })
            .collect()
    }

    /// Forgets the KV cache (every sequence).
    pub fn reset(&mut self) {
        self.kv.clear_all();
        for b in &mut self.backends {
            b.reset_state();
        }
    }

    /// Runs the graph passes at the session's mode and fusion level; decode-layer fusion
    /// asks the first backend (the one the layers go to) which matmuls it fuses.
    pub fn optimize(&self, g: &mut Graph) {
        let fusable = |g: &Graph, n| self.fuses_mat_vec(g, n);
        let groupable =
            |g: &Graph, nodes: &[petgraph::stable_graph::NodeIndex]| self.groups_mat_vec(g, nodes);
        passes::run(
            g,
            self.opts.qkv,
            &self.opts.limits,
            self.opts.fusion,
            &fusable,
            &groupable,
        );
    }

    /// Whether the first backend runs MUL_MAT node `n` fused (`Backend::fuses_mat_vec`).
    pub fn fuses_mat_vec(
        &self,
        g: &Graph,
        n: petgraph::stable_graph::NodeIndex,
    ) -> std::result::Result<(), String> {
        self.backends[0].fuses_mat_vec(g, n)
    }

    /// Whether the first backend runs sibling matmuls `nodes` (of different types) as one
    /// grouped node (`Backend::groups_mat_vec`).
    pub fn groups_mat_vec(
        &self,
        g: &Graph,
        nodes: &[petgraph::stable_graph::NodeIndex],
    ) -> std::result::Result<bool, String> {
        self.backends[0].groups_mat_vec(g, nodes)
    }

    /// Builds, optimizes and schedules the graph for `n_tokens` at the current position.
    pub fn plan(&self, n_tokens: usize, logits_all: bool) -> Result<(Graph, Assignment)> {
        self.plan_outputs(n_tokens, if logits_all { n_tokens } else { 1 })
    }

    /// [`Session::plan`] with logits for the last `n_outputs` tokens.
    pub fn plan_outputs(&self, n_tokens: usize, n_outputs: usize) -> Result<(Graph, Assignment)> {
        self.plan_top_k(n_tokens, n_outputs, None)
    }

    /// [`Session::plan_outputs`], the output rows reduced by a TOP_K node when `top_k` is
    /// given (`Op::TopK`: max, log-sum-exp and the k largest logits per row).
    pub fn plan_top_k(
        &self,
        n_tokens: usize,
        n_outputs: usize,
        top_k: Option<usize>,
    ) -> Result<(Graph, Assignment)> {
        let mut g = self.plan_graph(n_tokens, n_outputs)?;
        if let Some(k) = top_k {
            let logits = g.outputs[0];
            let rows = g.tensor(logits).nrows();
            let out = g.op(
                crate::graph::Op::TopK { k },
                &[logits],
                "result_top_k",
                crate::quant::GgmlType::F32,
                [2 + 2 * k, rows, 1, 1],
            );
            g.outputs = vec![out];
            g.uid = Graph::next_uid();
        }
        let a = assign(&g, &self.backends, self.opts.placement)?;
        Ok((g, a))
    }

    /// The optimized graph of `n_tokens` with logits for the last `n_outputs`.
    fn plan_graph(&self, n_tokens: usize, n_outputs: usize) -> Result<Graph> {
        let mut g = build_graph(
            &self.model,
            &BuildOpts {
                n_tokens,
                n_ctx: self.opts.n_ctx,
                n_outputs,
            },
        )?;
        self.optimize(&mut g);
        Ok(g)
    }

    /// Evaluates `tokens` at the next positions of sequence 0 and returns the logits, f32
    /// `n_vocab` per output row (every token with `logits_all`, else the last).
    pub fn forward(&mut self, tokens: &[u32], logits_all: bool) -> Result<Vec<f32>> {
        let seqs = vec![0; tokens.len()];
        self.forward_batch(&seqs, tokens, logits_all)
    }

    /// [`Session::forward`] of sequence 0 returning the last token's logits borrowed from
    /// the session (valid until its next call), as llama.cpp's `llama_get_logits`: a
    /// decode loop's step allocates nothing, and where the device wrote the row into
    /// host-readable memory (`Backend::tensor_view`) it is not even copied.
    pub fn forward_logits(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        let seqs = vec![0; tokens.len()];
        let p = self.run_pass(&seqs, tokens, 1, None)?;
        let (g, out) = (&p.planned.0, p.planned.0.outputs[0]);
        // Lent where the backend can (f32 rows: 4-byte aligned in any device buffer).
        let f32s = |v: &[u8]| bytemuck::try_cast_slice::<u8, f32>(v).is_ok();
        if self.backends[p.backend]
            .tensor_view(g, out)
            .is_some_and(f32s)
        {
            self.finish(&p);
            let v = self.backends[p.backend]
                .tensor_view(g, out)
                .unwrap_or_default();
            return Ok(bytemuck::cast_slice(v));
        }
        // Resized in place: zero-filled only where it grows.
        self.out.resize(g.tensor(out).nelements(), 0.0);
        let into = bytemuck::cast_slice_mut(&mut self.out);
        self.backends[p.backend].get_tensor_into(g, out, into)?;
        self.finish(&p);
        Ok(&self.out)
    }

    /// Evaluates a batch whose token `i` is `tokens[i]` of sequence `seqs[i]` (each
    /// sequence's tokens in order; sequences may mix) in one pass. Logits as `forward`.
    pub fn forward_batch(
        &mut self,
        seqs: &[crate::kv::SeqId],
        tokens: &[u32],
        logits_all: bool,
    ) -> Result<Vec<f32>> {
        let last = if logits_all { tokens.len() } else { 1 };
        self.forward_batch_last(seqs, tokens, last)
    }

    /// [`Session::forward_batch`] returning the logits of the last `n_outputs` tokens.
    pub fn forward_batch_last(
        &mut self,
        seqs: &[crate::kv::SeqId],
        tokens: &[u32],
        n_outputs: usize,
    ) -> Result<Vec<f32>> {
        self.forward_inner(seqs, tokens, n_outputs, None)
    }

    /// [`Session::forward_batch_last`] returning, instead of the logits, `2 + 2k` floats
    /// per output row (`Op::TopK`: max, log-sum-exp, the k largest as (id, logit)), which
    /// is what a sampler with top-k reads (`crate::sample::Sampler::sample_top`): the
    /// vocabulary never leaves the device.
    pub fn forward_top_k(
        &mut self,
        seqs: &[crate::kv::SeqId],
        tokens: &[u32],
        n_outputs: usize,
        k: usize,
    ) -> Result<Vec<f32>> {
        let k = k.clamp(1, self.model.hp.n_vocab);
        self.forward_inner(seqs, tokens, n_outputs, Some(k))
    }

    /// Plans (or looks up) the graph for the batch, uploads its inputs and runs it; the
    /// output is not read yet and the cache not committed (see [`Session::finish`]).
    fn run_pass(
        &mut self,
        seqs: &[crate::kv::SeqId],
        tokens: &[u32],
        n_outputs: usize,
        top_k: Option<usize>,
    ) -> Result<Pass> {
        let t0 = std::time::Instant::now();
        let n = tokens.len();
        if seqs.len() != n {
            return Err(Error::Usage(format!(
                "forward_batch: {} sequence ids for {n} tokens",
                seqs.len()
            )));
        }
        let cells = self.kv.plan(seqs)?;
        let n_vocab = self.model.hp.n_vocab;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(Error::Usage(format!(
                "token id {bad} out of range (n_vocab {n_vocab})"
            )));
        }
        let n_outputs = n_outputs.clamp(1, n.max(1));
        let key = (n, n_outputs, self.opts.qkv, self.opts.fusion, top_k);
        let planned = match self.plans.get(&key) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(self.plan_top_k(n, n_outputs, top_k)?);
                if self.opts.sched_debug {
                    eprintln!("{}", dump::dump(&p.0, &p.1));
                }
                self.plans.insert(key, p.clone());
                p
            }
        };
        let (g, a) = (&planned.0, &planned.1);
        let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
        let (holder, t1) = self.execute(g, a, |name| match name {
            build::INP_TOKENS => Some(&ids),
            build::INP_POS => Some(&cells.pos),
            build::INP_KV_CELL => Some(&cells.cells),
            build::INP_KV_SPAN => Some(&cells.spans),
            _ => None,
        })?;
        let backend = holder[&g.root(g.outputs[0])];
        Ok(Pass {
            planned,
            backend,
            cells,
            t0,
            t1,
            t2: std::time::Instant::now(),
        })
    }

    /// After a pass's output was read: the cache advances and the step's times count.
    fn finish(&mut self, p: &Pass) {
        self.kv.commit(&p.cells);
        let ns = |d: std::time::Duration| d.as_nanos() as u64;
        self.times.steps += 1;
        self.times.before_ns += ns(p.t1 - p.t0);
        self.times.run_ns += ns(p.t2 - p.t1);
        self.times.read_ns += ns(p.t2.elapsed());
    }

    /// [`Session::run_pass`], its output read into a new vector.
    fn forward_inner(
        &mut self,
        seqs: &[crate::kv::SeqId],
        tokens: &[u32],
        n_outputs: usize,
        top_k: Option<usize>,
    ) -> Result<Vec<f32>> {
        let p = self.run_pass(seqs, tokens, n_outputs, top_k)?;
        let (g, out) = (&p.planned.0, p.planned.0.outputs[0]);
        let mut values = vec![0f32; g.tensor(out).nelements()];
        self.backends[p.backend].get_tensor_into(g, out, bytemuck::cast_slice_mut(&mut values))?;
        self.finish(&p);
        Ok(values)
    }

    /// Readies every backend that runs part of `a` for `g`, uploads the graph inputs
    /// (`value` of each by name), and evaluates the splits in order, copying the tensors
    /// that cross them. Returns which backend holds each root written, and when the
    /// first split started (the host's set-up done).
    fn execute<'v>(
        &mut self,
        g: &Graph,
        a: &Assignment,
        value: impl Fn(&str) -> Option<&'v Vec<i32>>,
    ) -> Result<(
        std::collections::HashMap<crate::graph::TensorId, usize>,
        std::time::Instant,
    )> {
        // Each input goes to the backends whose nodes read it (they hold no memory for
        // the others): worked out once per graph.
        let routes = self.input_routes.entry(g.uid).or_insert_with(|| {
            let used: std::collections::BTreeSet<usize> =
                a.splits.iter().map(|s| s.backend).collect();
            used.into_iter()
                .map(|b| {
                    let reads = g.roots_used_by(a.nodes_of(b));
                    let inputs = g.inputs.iter().copied();
                    (b, inputs.filter(|&t| reads.contains(&g.root(t))).collect())
                })
                .collect()
        });
        for (b, inputs) in routes.iter() {
            let be = &mut self.backends[*b];
            be.prepare_for(g, a.nodes_of(*b))?;
            for &t in inputs {
                let name = g.tensor(t).name.as_str();
                let data = value(name)
                    .ok_or_else(|| Error::Usage(format!("graph input `{name}` has no value")))?;
                be.set_tensor(g, t, bytemuck::cast_slice(data))?;
            }
        }
        let started = std::time::Instant::now();
        let mut holder = std::collections::HashMap::new();
        for s in &a.splits {
            for &t in &s.inputs {
                let from: usize = holder[&t];
                let bytes = self.backends[from].get_tensor(g, t)?;
                self.backends[s.backend].set_tensor(g, t, &bytes)?;
            }
            self.backends[s.backend].compute(g, &s.stages)?;
            for &nd in s.stages.iter().flatten() {
                holder.insert(g.root(g.node(nd).dst), s.backend);
            }
        }
        Ok((holder, started))
    }

    /// The context shift of a full sequence, as llama.cpp's `--context-shift` does it:
    /// keeps its first `n_keep` tokens (at most what leaves 4 cells of the slot to shift),
    /// drops half of the rest (at least one) via [`Session::shift_seq`]. Returns (kept,
    /// dropped). `run --context-shift` and `serve --context-shift` share this rule.
    pub fn shift_full_seq(
        &mut self,
        seq: crate::kv::SeqId,
        n_keep: usize,
    ) -> Result<(usize, usize)> {
        let len = self.kv.len(seq);
        let keep = n_keep
            .min(self.kv.seq_capacity().saturating_sub(4))
            .min(len.saturating_sub(1));
        let discard = ((len - keep) / 2).max(1);
        self.shift_seq(seq, keep, discard)?;
        Ok((keep, discard))
    }

    /// Context shift of sequence `seq` (llama.cpp's `--context-shift`): keeps its first
    /// `keep` tokens, drops the next `discard`, and moves the rest down by `discard`
    /// cells and positions on every backend that holds cache rows, K re-roped by
    /// `-discard` (`model::build::build_kv_shift`), so generation continues with room
    /// for `discard` more tokens. On an error the bookkeeping is unchanged.
    pub fn shift_seq(&mut self, seq: crate::kv::SeqId, keep: usize, discard: usize) -> Result<()> {
        let Some(sh) = self.kv.plan_shift(seq, keep, discard)? else {
            return self.kv.commit_shift(seq, keep, discard);
        };
        let planned = match self.shift_plans.get(&sh.rows) {
            Some(p) => p.clone(),
            None => {
                let g = build::build_kv_shift(&self.model, self.opts.n_ctx, sh.rows)?;
                let a = assign(&g, &self.backends, self.opts.placement)?;
                let p = Arc::new((g, a));
                self.shift_plans.insert(sh.rows, p.clone());
                p
            }
        };
        let (g, a) = (&planned.0, &planned.1);
        let src: Vec<i32> = (0..sh.rows).map(|r| (sh.from + r) as i32).collect();
        let dst: Vec<i32> = (0..sh.rows).map(|r| (sh.to + r) as i32).collect();
        let delta = vec![-(sh.discard as i32); sh.rows];
        self.execute(g, a, |name| match name {
            build::INP_SHIFT_SRC => Some(&src),
            build::INP_SHIFT_DELTA => Some(&delta),
            build::INP_SHIFT_DST => Some(&dst),
            _ => None,
        })?;
        self.kv.commit_shift(seq, keep, discard)
    }
}
