//! The operations of the graph IR and their exact semantics (the fused forms are made by
//! `passes`, described in docs/ARCHITECTURE.md). Every backend implements these meanings;
//! the CPU reference is the oracle.

/// Rotary embedding layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeMode {
    /// Rotate adjacent pairs (x[2i], x[2i+1]) — llama.
    Normal,
    /// Rotate halves (x[i], x[i + n_dims/2]) — qwen2/qwen3 ("neox").
    Neox,
}

/// The rotary embedding (and optional head norm) an [`Op::Attention`] applies to q and
/// to the new K row it writes (`passes::layer`'s RoPE / KV-cache fold); as [`Op::Rope`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnRope {
    pub mode: RopeMode,
    pub n_dims: usize,
    pub freq_base: f32,
    pub freq_scale: f32,
    pub norm: Option<f32>,
    /// LoRA B factors folded in (`passes::layer`): for q, k, v the scale `s` of an
    /// adapter whose `s·B·a` the attention adds to that base projection first (its B and
    /// a follow the norm weights in the srcs, a pair per present target), or `None`.
    pub lora: [Option<f32>; 3],
}

impl AttnRope {
    /// Where a folded attention's LoRA `(b, a)` pairs start in its srcs: after `[q, k, v,
    /// span, pos, cells, k_new, v_new]` and, with a norm, `[q_w, k_w]`.
    pub fn lora_srcs_at(&self) -> usize {
        8 + if self.norm.is_some() { 2 } else { 0 }
    }
}

/// What a [`Op::MulMatLayer`] does with its product before writing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    /// Write the product.
    None,
    /// Add a residual: `W·x + r`.
    Add,
    /// `silu(gate) * up` of the two segments.
    SwiGlu,
    /// Add a per-row bias: row `i` (numbered across the segments) of every token gets
    /// `b[i]` (qwen2's Q/K/V biases).
    Bias,
    /// A LoRA product corrected into one half of a fused gate/up output, then SwiGLU:
    /// the last source `gu` is that output, f32 `[m, n, 2]` (gate block, then up block),
    /// and `p = W·x + gu[half]` replaces that half: `silu(gate) * p` when `gate` is
    /// false (ffn_up adapted), `silu(p) * up` when it is true (ffn_gate adapted). What
    /// MUL_MAT_ADD then SWIGLU computed, in one dispatch (`passes::layer`).
    AddSwiGlu { gate: bool },
}

/// A node's operation. Shapes are ggml order (`ne[0]` innermost). Sources are
/// listed in `Node::srcs` in the order given here.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `[table: any type [ne0, rows], ids: i32 [n]]` → f32 `[ne0, n]`: row `ids[i]`
    /// of the table, dequantized.
    GetRows,
    /// `[x: f32 [ne0, rows]]` → f32, each row divided by its RMS: `x / sqrt(mean(x²) + eps)`.
    RmsNorm { eps: f32 },
    /// `[x: f32 [ne0, rows], w: f32 [ne0, rw]]` → `rms_norm(x) * w` (row `r` with row
    /// `r % rw` of `w`): the RMS_NORM + MUL pair fused by `passes::fusion`.
    RmsNormMul { eps: f32 },
    /// `[a, b: f32 [ne0, rows], w: f32 [ne0, rw]]` → `rms_norm(a + b) * w`: a norm
    /// reading the residual sum directly, so it need not wait for the ADD that also
    /// writes it (`passes::fusion`).
    AddRmsNormMul { eps: f32 },
    /// `[y: f32 [ne0, n_used, rows], wts: f32 [n_used, rows], r: f32 [ne0, rows], w: f32
    /// [ne0, rw]]` → `rms_norm(s) * w` with `s` = what MOE_SUM_ADD(y, wts, r) writes: the
    /// next layer's norm reading a mixture-of-experts layer's output directly, so it runs
    /// beside the MOE_SUM_ADD instead of after it (`passes::fusion::add_rms_norm_mul`).
    MoeSumRmsNormMul { eps: f32 },
    /// `[a: f32 [ne0, ra], b: f32 [ne0, rb]]` → `a * b`, row `r` of `a` with row `r % rb` of `b`.
    Mul,
    /// `[a, b]` → `a + b`, broadcast as [`Op::Mul`].
    Add,
    /// `[x]` → `x * s`.
    Scale { s: f32 },
    /// `[w: any type [k, m], x: f32 [k, n]]` → f32: `dst[j][i] = Σ_k w[i][k]·x[j][k]`.
    /// `split` empty: dst is `[m, n]`. Otherwise `split` lists the row counts of
    /// the segments of a fused weight (summing to `m`) and dst holds, segment
    /// after segment, a contiguous `[m_s, n]` block each, so that each segment's
    /// result is a plain contiguous view (split on write).
    MulMat { split: Vec<usize> },
    /// `[x: f32 [head_dim, n_head, n], pos: i32 [n]]` → rotary embedding of the
    /// first `n_dims` values of each head at position `pos[token]`, theta_i =
    /// pos · freq_scale · freq_base^(-2i/n_dims).
    /// With `norm: Some(eps)` the srcs are `[x, pos, w: f32 [head_dim]]` and each head
    /// row is RMS-normalized and multiplied by `w` first (qwen3's q_norm folded in,
    /// `passes::fusion::rms_norm_rope`).
    Rope {
        mode: RopeMode,
        n_dims: usize,
        freq_base: f32,
        freq_scale: f32,
        norm: Option<f32>,
    },
    /// `[gate, up]` → `silu(gate) * up`, same shapes.
    SwiGlu,
    /// `[src: f32]` → dst of the same element count in dst's type (f32 or f16);
    /// dst is usually a view of the KV cache.
    Cpy,
    /// `[src: f32 [ne0, n], idx: i32 [n]]` → dst, an existing f16 table of rows of
    /// `ne0` (the KV cache): row `idx[i]` = f16(src row i). The rows come from a buffer
    /// (the positions), so the graph is the same at every decode step.
    SetRows,
    /// `[x: f32 [head_dim, n_head, n], pos: i32 [n], rows: i32 [n]]` → dst, an existing f16
    /// table of rows of `head_dim·n_head` (the KV cache): row `rows[t]` = f16(rope(x) of
    /// token t at position `pos[t]`). The ROPE of K fused with its SET_ROWS
    /// (`passes::fusion`). `norm` as for [`Op::Rope`] (qwen3's k_norm folded in; its
    /// weight is then the last source).
    RopeSetRows {
        mode: RopeMode,
        n_dims: usize,
        freq_base: f32,
        freq_scale: f32,
        norm: Option<f32>,
    },
    /// `[q: f32 [d, n_head, n], k: f16 [d, n_head_kv, n_kv], v: f16 [d, n_head_kv, n_kv],
    /// span: i32 [2, n]]` → f32 `[d, n_head, n]`: softmax(q·kᵀ·scale) · v over cache rows
    /// `span[2t] ..= span[2t+1]` — token t's sequence from its first cell to its own
    /// (causal; `kv::KvCache` keeps each sequence's cells contiguous) — head `h` using kv
    /// head `h / (n_head / n_head_kv)` (GQA). Rows are clamped to the cache and the range
    /// to at least one row ([`crate::backend::cpu::ops::kv_range`]).
    ///
    /// With `rope: Some(r)` (decode-layer fusion, `passes::layer`: the RoPE / KV-cache
    /// stage folded in) the srcs are `[q, k, v, span, pos: i32 [n], cells: i32 [n],
    /// k_new: f32 [d, n_head_kv, n], v_new: f32 [d·n_head_kv, n]]`, then `[q_w, k_w: f32 [d]]`
    /// when `r.norm` is `Some(eps)`, and the node first does what the folded nodes did:
    /// cache row `cells[t]` of `k` := f16(rope(k_new[t])), of `v` := f16(v_new[t]) (each head
    /// row RMS-normalized and multiplied by `k_w` first with a norm), and q := rope(q) (with
    /// `q_w`), all at position `pos[t]` as [`Op::Rope`] — then attends as above. With
    /// `r.lora` the srcs end with a `[b: f32/f16 [r, m], a: f32 [r, n]]` pair per adapted
    /// projection (q, k, v in that order), and q / k_new / v_new are the base
    /// projections, each corrected by `s · b·a` before anything else.
    Attention { scale: f32, rope: Option<AttnRope> },
    /// `[logits: f32 [n_expert, n]]` → i32 `[k, n]`: per token, the `k` experts of the
    /// largest router logits, largest first (ties: the lower index first). Softmax is
    /// monotonic, so these are the top-k of the routing probabilities.
    MoeTopK { k: usize },
    /// `[logits: f32 [n_expert, n], ids: i32 [k, n]]` → f32 `[k, n]`: the chosen
    /// experts' routing weights, softmax over all experts renormalized over the chosen
    /// ones (qwen3moe's `norm_topk_prob`) — that is, the softmax of the chosen logits.
    MoeWeights,
    /// `[w: any type [k, m, n_expert], x: f32 [k, nx, n], ids: i32 [n_used, n]]` → f32
    /// `[m, n_used, n]`: `dst[t][s] = W[ids[s][t]] · x[t][s mod nx]` — the expert-indexed
    /// matmul (`nx` = 1: every slot reads the token's row; `nx` = `n_used`: slot `s`
    /// reads its own). `split` as for [`Op::MulMat`]: a fused weight's members (each a
    /// whole `[k, m_s, n_expert]` expert stack, stored one after the other), and dst holds
    /// segment after segment a contiguous `[m_s, n_used, n]` block.
    ///
    /// With `glu` (decode-layer fusion, `passes::layer`: the SWIGLU of a fused gate/up
    /// expert matmul folded into it) `split` is two equal segments, gate stacks then up
    /// stacks, and dst is f32 `[m/2, n_used, n]` = `silu(gate) * up` of each pair.
    ///
    /// With `route: Some(k)` (decode-layer fusion, `passes::layer`: the experts route
    /// themselves) the third source is the router's logits f32 `[n_expert, n]` instead of
    /// ids, and the ids are [`Op::MoeTopK`]'s of them (`n_used` = `k`): the node computes
    /// the choice it reads, so it need not wait for the MOE_TOPK that the later readers
    /// of the ids (the down experts, MOE_WEIGHTS) still read.
    MulMatId {
        split: Vec<usize>,
        glu: bool,
        route: Option<usize>,
    },
    /// A MUL_MAT with work folded in by decode-layer fusion (`passes::layer`, DESIGN.md
    /// decision 13). Sources `[w, x]`, then `nw: f32 [k]` when `norm` is `Some(eps)`, then
    /// `r: f32 [m, n]` when `epi` is [`Epilogue::Add`] (`b: f32 [m]` when it is
    /// [`Epilogue::Bias`]):
    /// `dst = epi(scale · W · x')` with `x' = rms_norm(x) * nw` (each token row) or `x' = x`
    /// (`scale`: a SCALE of the product folded in, 1 otherwise).
    /// `split` as for [`Op::MulMat`]; [`Epilogue::SwiGlu`] needs two equal segments (gate
    /// rows, then up rows) and writes f32 `[m/2, n]` = `silu(gate) * up`;
    /// [`Epilogue::Add`] (unsplit weights) writes `W·x' + r`; [`Epilogue::None`] writes
    /// what MUL_MAT writes.
    MulMatLayer {
        split: Vec<usize>,
        norm: Option<f32>,
        epi: Epilogue,
        scale: f32,
    },
    /// `[logits: f32 [v, n]]` → f32 `[2 + 2k, n]`: per row its max, its log-sum-exp, then
    /// the `k` largest logits as (id, logit) pairs (the id as an f32, exact below 2^24),
    /// largest first, ties to the lower id ([`f32::total_cmp`] order) — what a sampler
    /// needs of the vocabulary (`crate::sample`), read back instead of every logit.
    TopK { k: usize },
    /// `[router: f32 [k_dim, n_expert], x: f32 [k_dim, n]]` → i32 `[k, n]`: MOE_TOPK of the
    /// router's logits `router · x`, computed here (`passes::fusion::moe_router_topk`: the
    /// router MUL_MAT stays, since MOE_WEIGHTS reads its logits, and runs in this node's
    /// stage; the Vulkan executor records the pair as one dispatch, the logits written on
    /// the way).
    /// With `norm: Some(eps)` the srcs are `[router, x, nw: f32 [k_dim]]` and the router
    /// reads `rms_norm(x) * nw` (`passes::layer`'s router-norm fold: the ffn norm's
    /// reader computes it itself, so it runs beside the norm instead of after it); the
    /// router MUL_MAT folded with it is then a MUL_MAT_LAYER with the same norm prologue.
    MoeRouterTopK { k: usize, norm: Option<f32> },
    /// `[y: f32 [ne0, n_used, n], w: f32 [n_used, n]]` → f32 `[ne0, n]`:
    /// `dst[t] = Σ_s w[s][t] · y[t][s]` (the experts' outputs, weighted). With `residual`
    /// (`passes::fusion::moe_sum_add`, MOE_SUM_ADD) a third source `r: f32 [ne0, n]` is
    /// added to the rounded sum: `dst = r + f32(Σ)`, the residual ADD that followed.
    MoeSum { residual: bool },
    /// An op defined by its own row of the op table, outside this enum (e.g. a test's toy
    /// op): its name, kernels, support and cost all come from `row`; `params` are its
    /// numbers, for its kernels to read.
    Custom(CustomOp),
}

/// An [`Op::Custom`]: a row of the op table ([`crate::ops::OpRow`]) and its parameters.
#[derive(Clone, Debug)]
pub struct CustomOp {
    pub row: &'static crate::ops::OpRow,
    pub params: Vec<f32>,
}

impl PartialEq for CustomOp {
    /// The same row (by address: rows are statics) with the same parameters.
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.row, other.row) && self.params == other.params
    }
}

impl Op {
    /// ggml-style op name for dumps and test names (its op-table row's `name`).
    pub fn name(&self) -> &'static str {
        (crate::ops::row(self).name)(self)
    }
}
