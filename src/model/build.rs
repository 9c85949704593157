//! The forward-pass graph of llama, qwen2 and qwen3 for `n_tokens` tokens at
//! positions `pos..pos+n_tokens`, with a KV cache of `n_ctx` rows per layer.
//! Tensor names follow llama.cpp's (`attn_norm-0`, `Qcur-0`, `ffn_out-0`, ...).
//! Differences between the archs: qwen2 adds Q/K/V biases, qwen3 normalizes Q and
//! K per head (`attn_q_norm`, `attn_k_norm`); qwen* use neox rope. qwen3moe is qwen3
//! with a mixture-of-experts FFN (`moe_ffn`).

use crate::graph::{Graph, Op, TensorId, TensorKind};
use crate::quant::GgmlType;
use crate::{Error, Result};

use super::{Arch, Model};

/// What graph to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildOpts {
    /// Tokens in this batch.
    pub n_tokens: usize,
    /// KV-cache rows (cells) per layer. The graph does not depend on the position or the
    /// sequence: token positions, the cell each token's K/V goes to and the cell span each
    /// token attends are inputs (`kv::KvCache` fills them).
    pub n_ctx: usize,
    /// Logits of the last `n_outputs` tokens (1: what generation needs; `n_tokens`: all;
    /// a server batching several sequences orders each one's last token at the end).
    pub n_outputs: usize,
}

/// Names of the inputs the caller uploads: token ids, positions (for RoPE) and KV-cache
/// cells (where each token's K/V row goes), all i32 `[n]`, and the span of cells each
/// token attends, i32 `[2, n]` (first, last).
pub const INP_TOKENS: &str = "inp_tokens";
pub const INP_POS: &str = "inp_pos";
pub const INP_KV_CELL: &str = "inp_kv_cell";
pub const INP_KV_SPAN: &str = "inp_kv_span";

/// Name of the persistent KV-cache tensors of layer `il`.
pub fn cache_name(il: usize, v: bool) -> String {
    format!("cache_{}_l{il}", if v { "v" } else { "k" })
}

/// Layer `il`'s K and V cache, f16 `[head_dim, n_head_kv, n_ctx]` each (state tensors
/// every graph of the session names alike, so backends keep them across graphs).
fn cache_tensors(g: &mut Graph, m: &Model, il: usize, n_ctx: usize) -> (TensorId, TensorId) {
    let (hd, nkv) = (m.hp.head_dim, m.hp.n_head_kv);
    let mut state = |v: bool| {
        g.add_tensor(
            cache_name(il, v),
            GgmlType::F16,
            [hd, nkv, n_ctx, 1],
            TensorKind::State {
                name: cache_name(il, v),
            },
        )
    };
    (state(false), state(true))
}

/// The model's rotary embedding of q and k.
fn rope_op(hp: &super::HParams) -> Op {
    Op::Rope {
        mode: hp.arch.rope_mode(),
        n_dims: hp.n_rot,
        freq_base: hp.rope_base,
        freq_scale: hp.rope_scale,
        norm: None,
    }
}

/// Inputs of the K-shift graph ([`build_kv_shift`]), i32 `[rows]` each: the cache rows
/// read, the position change of each (RoPE of K by it), the rows written.
pub const INP_SHIFT_SRC: &str = "inp_shift_src";
pub const INP_SHIFT_DELTA: &str = "inp_shift_delta";
pub const INP_SHIFT_DST: &str = "inp_shift_dst";

/// The graph of a context shift (llama.cpp's K-shift): `rows` cache rows of every layer
/// are read (GET_ROWS, f16 -> f32), K rotated by its position change (ROPE: rotations
/// compose, so a row roped at `p` becomes the row roped at `p + delta`; a qwen3 K-norm
/// came before the RoPE and is unaffected), and written to their new rows (SET_ROWS).
/// Every read precedes every write of a layer (hazard edges), so the rows may overlap.
/// No outputs: the effect is the state.
pub fn build_kv_shift(m: &Model, n_ctx: usize, rows: usize) -> Result<Graph> {
    let hp = &m.hp;
    if rows == 0 || rows > n_ctx {
        return Err(Error::Usage(format!(
            "a K-shift of {rows} rows in a cache of {n_ctx}"
        )));
    }
    let (hd, nkv) = (hp.head_dim, hp.n_head_kv);
    let f32t = GgmlType::F32;
    let mut g = Graph::new();
    let input = |g: &mut Graph, name: &str| {
        g.add_tensor(name, GgmlType::I32, [rows, 1, 1, 1], TensorKind::Input)
    };
    let src = input(&mut g, INP_SHIFT_SRC);
    let delta = input(&mut g, INP_SHIFT_DELTA);
    let dst = input(&mut g, INP_SHIFT_DST);
    g.inputs = vec![src, delta, dst];
    let rope = rope_op(hp);
    for il in 0..hp.n_layer {
        let (ck, cv) = cache_tensors(&mut g, m, il, n_ctx);
        for (cache, v) in [(ck, false), (cv, true)] {
            let which = if v { "v" } else { "k" };
            let all = g.view(
                cache,
                format!("{which}_cache_rows-{il}"),
                [hd * nkv, n_ctx, 1, 1],
                0,
            );
            let mut cur = g.op(
                Op::GetRows,
                &[all, src],
                format!("{which}_shift_read-{il}"),
                f32t,
                [hd * nkv, rows, 1, 1],
            );
            if !v {
                let k3 = g.reshape(cur, [hd, nkv, rows, 1]);
                let roped = g.op(
                    rope.clone(),
                    &[k3, delta],
                    format!("k_shift_rope-{il}"),
                    f32t,
                    [hd, nkv, rows, 1],
                );
                cur = g.reshape(roped, [hd * nkv, rows, 1, 1]);
            }
            g.push_node(Op::SetRows, &[cur, dst], all);
        }
    }
    Ok(g)
}

fn weight(g: &mut Graph, m: &Model, name: &str) -> Result<TensorId> {
    let t = m.tensor(name)?;
    let mut ne = [1usize; 4];
    for (d, &v) in ne.iter_mut().zip(&t.ne) {
        *d = v as usize;
    }
    Ok(g.add_tensor(name, t.ty, ne, TensorKind::Weight { name: name.into() }))
}

/// `y` (the output of base weight `wname` on `x`) plus, per adapter targeting `wname`,
/// `s · B·(A·x)` (`model::lora`): two plain MUL_MATs (A's reads `x` like the base matmul, so
/// the sibling pass sees it beside its base), a SCALE and an ADD. For attn_output and
/// ffn_down, `y` is the base output plus the residual: `(W·x + r) + s·B·(A·x)`, the same
/// sum in another order (llama.cpp adds the product first), so the base matmul keeps its
/// residual epilogue and runs beside A, and B's product is one MUL_MAT_ADD a stage later —
/// not W's matmul waiting for B's product, then the residual ADD apart (three stages more).
fn with_lora(g: &mut Graph, m: &Model, wname: &str, x: TensorId, y: TensorId) -> Result<TensorId> {
    let f32t = GgmlType::F32;
    let mut y = y;
    for (i, ad) in m.adapters.iter().enumerate() {
        let Some((a_name, b_name, r)) = ad.targets.get(wname) else {
            continue;
        };
        let ne = g.tensor(y).ne;
        let n = g.tensor(x).nrows();
        let base = g.tensor(y).name.clone();
        let a = weight(g, m, a_name)?;
        let bw = weight(g, m, b_name)?;
        let t = g.op(
            Op::MulMat { split: vec![] },
            &[a, x],
            format!("{base}_lora{i}_a"),
            f32t,
            [*r, n, 1, 1],
        );
        let u = g.op(
            Op::MulMat { split: vec![] },
            &[bw, t],
            format!("{base}_lora{i}_b"),
            f32t,
            ne,
        );
        let u = g.op(
            Op::Scale { s: ad.scale },
            &[u],
            format!("{base}_lora{i}_s"),
            f32t,
            ne,
        );
        y = g.op(Op::Add, &[y, u], format!("{base}_lora{i}"), f32t, ne);
    }
    Ok(y)
}

/// Builds the graph of one forward pass. The graph's single output is the logits
/// tensor, f32 `[n_vocab, n_outputs]` (the last `n_outputs` tokens).
pub fn build_graph(m: &Model, o: &BuildOpts) -> Result<Graph> {
    let hp = &m.hp;
    for ad in &m.adapters {
        for w in ad.targets.keys() {
            // `blk.N.<weight>`: a projection the builder applies adapters to (not the
            // experts of a MoE layer, not Q/K/V of a file with a pre-fused attn_qkv).
            let (layer, lw) = match w.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
                Some((l, lw)) => (l, lw),
                None => ("", ""),
            };
            let qkv = matches!(lw, "attn_q.weight" | "attn_k.weight" | "attn_v.weight");
            let ok = lw
                .strip_suffix(".weight")
                .is_some_and(|t| super::lora::TARGETS.contains(&t))
                && !(hp.arch.is_moe() && lw.starts_with("ffn_"))
                && !(qkv && m.has(&format!("blk.{layer}.attn_qkv.weight")));
            if !ok {
                return Err(Error::Unsupported(format!(
                    "{}: adapts `{w}`; vkgraph applies adapters to the layers' attn_q/k/v/output \
                     and (dense) ffn_gate/up/down weights only",
                    ad.file.path.display()
                )));
            }
        }
    }
    let n = o.n_tokens;
    if n == 0 {
        return Err(Error::Usage("empty batch".into()));
    }
    if n > o.n_ctx {
        return Err(Error::ContextFull(format!(
            "{n} tokens do not fit a context of {}",
            o.n_ctx
        )));
    }
    let f32t = GgmlType::F32;
    let (e, hd) = (hp.n_embd, hp.head_dim);
    let (nh, nkv) = (hp.n_head, hp.n_head_kv);
    let mut g = Graph::new();
    let tokens = g.add_tensor(INP_TOKENS, GgmlType::I32, [n, 1, 1, 1], TensorKind::Input);
    let positions = g.add_tensor(INP_POS, GgmlType::I32, [n, 1, 1, 1], TensorKind::Input);
    let cells = g.add_tensor(INP_KV_CELL, GgmlType::I32, [n, 1, 1, 1], TensorKind::Input);
    let spans = g.add_tensor(INP_KV_SPAN, GgmlType::I32, [2, n, 1, 1], TensorKind::Input);
    g.inputs = vec![tokens, positions, cells, spans];

    let emb = weight(&mut g, m, "token_embd.weight")?;
    let mut inp = g.op(Op::GetRows, &[emb, tokens], "inp_embd", f32t, [e, n, 1, 1]);

    let norm = |g: &mut Graph, x: TensorId, w: TensorId, name: String, ne: [usize; 4]| {
        let t = g.op(
            Op::RmsNorm { eps: hp.rms_eps },
            &[x],
            format!("norm-{name}"),
            f32t,
            ne,
        );
        g.op(Op::Mul, &[t, w], name, f32t, ne)
    };

    for il in 0..hp.n_layer {
        let b = |s: &str| format!("blk.{il}.{s}");
        let attn_norm = weight(&mut g, m, &b("attn_norm.weight"))?;
        let cur = norm(
            &mut g,
            inp,
            attn_norm,
            format!("attn_norm-{il}"),
            [e, n, 1, 1],
        );

        // Q, K, V projections (a pre-fused attn_qkv is used as it is: one matmul
        // whose output is split on write into three contiguous blocks).
        let (mut q, mut k, mut v);
        if m.has(&b("attn_qkv.weight")) {
            let w = weight(&mut g, m, &b("attn_qkv.weight"))?;
            let split = vec![nh * hd, nkv * hd, nkv * hd];
            let tot: usize = split.iter().sum();
            let qkv = g.op(
                Op::MulMat { split },
                &[w, cur],
                format!("wqkv-{il}"),
                f32t,
                [tot, n, 1, 1],
            );
            q = g.view(qkv, format!("Qcur-{il}"), [nh * hd, n, 1, 1], 0);
            k = g.view(
                qkv,
                format!("Kcur-{il}"),
                [nkv * hd, n, 1, 1],
                nh * hd * n * 4,
            );
            v = g.view(
                qkv,
                format!("Vcur-{il}"),
                [nkv * hd, n, 1, 1],
                (nh + nkv) * hd * n * 4,
            );
        } else {
            let proj = |g: &mut Graph, wn: &str, name: String, rows: usize| -> Result<TensorId> {
                let w = weight(g, m, &b(wn))?;
                let y = g.op(
                    Op::MulMat { split: vec![] },
                    &[w, cur],
                    name,
                    f32t,
                    [rows, n, 1, 1],
                );
                with_lora(g, m, &b(wn), cur, y)
            };
            q = proj(&mut g, "attn_q.weight", format!("Qcur-{il}"), nh * hd)?;
            k = proj(&mut g, "attn_k.weight", format!("Kcur-{il}"), nkv * hd)?;
            v = proj(&mut g, "attn_v.weight", format!("Vcur-{il}"), nkv * hd)?;
        }
        if hp.arch == Arch::Qwen2 {
            let bq = weight(&mut g, m, &b("attn_q.bias"))?;
            let bk = weight(&mut g, m, &b("attn_k.bias"))?;
            let bv = weight(&mut g, m, &b("attn_v.bias"))?;
            q = g.op(
                Op::Add,
                &[q, bq],
                format!("Qcur_b-{il}"),
                f32t,
                [nh * hd, n, 1, 1],
            );
            k = g.op(
                Op::Add,
                &[k, bk],
                format!("Kcur_b-{il}"),
                f32t,
                [nkv * hd, n, 1, 1],
            );
            v = g.op(
                Op::Add,
                &[v, bv],
                format!("Vcur_b-{il}"),
                f32t,
                [nkv * hd, n, 1, 1],
            );
        }
        q = g.reshape(q, [hd, nh, n, 1]);
        k = g.reshape(k, [hd, nkv, n, 1]);
        if hp.arch.has_qk_norm() {
            let qn = weight(&mut g, m, &b("attn_q_norm.weight"))?;
            let kn = weight(&mut g, m, &b("attn_k_norm.weight"))?;
            q = norm(&mut g, q, qn, format!("Qcur_normed-{il}"), [hd, nh, n, 1]);
            k = norm(&mut g, k, kn, format!("Kcur_normed-{il}"), [hd, nkv, n, 1]);
        }
        let rope = rope_op(hp);
        q = g.op(
            rope.clone(),
            &[q, positions],
            format!("Qcur_rope-{il}"),
            f32t,
            [hd, nh, n, 1],
        );
        k = g.op(
            rope,
            &[k, positions],
            format!("Kcur_rope-{il}"),
            f32t,
            [hd, nkv, n, 1],
        );

        // KV cache: write row cells[t] (SET_ROWS), then attend over the token's span.
        let (ck, cv) = cache_tensors(&mut g, m, il, o.n_ctx);
        let k_rows = g.view(
            ck,
            format!("k_cache_rows-{il}"),
            [hd * nkv, o.n_ctx, 1, 1],
            0,
        );
        let v_rows = g.view(
            cv,
            format!("v_cache_rows-{il}"),
            [hd * nkv, o.n_ctx, 1, 1],
            0,
        );
        let k2 = g.reshape(k, [hd * nkv, n, 1, 1]);
        g.push_node(Op::SetRows, &[k2, cells], k_rows);
        let v2 = g.reshape(v, [hd * nkv, n, 1, 1]);
        g.push_node(Op::SetRows, &[v2, cells], v_rows);
        let kall = g.view(ck, format!("k-{il}"), [hd, nkv, o.n_ctx, 1], 0);
        let vall = g.view(cv, format!("v-{il}"), [hd, nkv, o.n_ctx, 1], 0);
        let scale = 1.0 / (hd as f32).sqrt();
        let att = g.op(
            Op::Attention { scale, rope: None },
            &[q, kall, vall, spans],
            format!("kqv_out-{il}"),
            f32t,
            [hd, nh, n, 1],
        );
        let att = g.reshape(att, [hd * nh, n, 1, 1]);
        let wo = weight(&mut g, m, &b("attn_output.weight"))?;
        let cur = g.op(
            Op::MulMat { split: vec![] },
            &[wo, att],
            format!("attn_out-{il}"),
            f32t,
            [e, n, 1, 1],
        );
        let ffn_inp = g.op(
            Op::Add,
            &[cur, inp],
            format!("ffn_inp-{il}"),
            f32t,
            [e, n, 1, 1],
        );
        // The adapters' product after the residual add: the base matmul keeps its residual
        // epilogue and runs beside A (see `with_lora`).
        let ffn_inp = with_lora(&mut g, m, &b("attn_output.weight"), att, ffn_inp)?;

        let ffn_norm = weight(&mut g, m, &b("ffn_norm.weight"))?;
        let cur = norm(
            &mut g,
            ffn_inp,
            ffn_norm,
            format!("ffn_norm-{il}"),
            [e, n, 1, 1],
        );
        if hp.arch.is_moe() {
            let out = moe_ffn(&mut g, m, il, cur, n)?;
            inp = g.op(
                Op::Add,
                &[out, ffn_inp],
                format!("l_out-{il}"),
                f32t,
                [e, n, 1, 1],
            );
            continue;
        }
        let f = hp.n_ff;
        let wg = weight(&mut g, m, &b("ffn_gate.weight"))?;
        let wu = weight(&mut g, m, &b("ffn_up.weight"))?;
        let gate = g.op(
            Op::MulMat { split: vec![] },
            &[wg, cur],
            format!("ffn_gate-{il}"),
            f32t,
            [f, n, 1, 1],
        );
        let gate = with_lora(&mut g, m, &b("ffn_gate.weight"), cur, gate)?;
        let up = g.op(
            Op::MulMat { split: vec![] },
            &[wu, cur],
            format!("ffn_up-{il}"),
            f32t,
            [f, n, 1, 1],
        );
        let up = with_lora(&mut g, m, &b("ffn_up.weight"), cur, up)?;
        let act = g.op(
            Op::SwiGlu,
            &[gate, up],
            format!("ffn_swiglu-{il}"),
            f32t,
            [f, n, 1, 1],
        );
        let wd = weight(&mut g, m, &b("ffn_down.weight"))?;
        let down = g.op(
            Op::MulMat { split: vec![] },
            &[wd, act],
            format!("ffn_out-{il}"),
            f32t,
            [e, n, 1, 1],
        );
        inp = g.op(
            Op::Add,
            &[down, ffn_inp],
            format!("l_out-{il}"),
            f32t,
            [e, n, 1, 1],
        );
        inp = with_lora(&mut g, m, &b("ffn_down.weight"), act, inp)?;
    }

    let out_norm = weight(&mut g, m, "output_norm.weight")?;
    let mut cur = inp;
    let mut n_out = n;
    let want = o.n_outputs.clamp(1, n.max(1));
    if want < n {
        cur = g.view(inp, "l_out_last", [e, want, 1, 1], (n - want) * e * 4);
        n_out = want;
    }
    let cur = norm(
        &mut g,
        cur,
        out_norm,
        "result_norm".into(),
        [e, n_out, 1, 1],
    );
    let w_out = weight(&mut g, m, m.output_name())?;
    let logits = g.op(
        Op::MulMat { split: vec![] },
        &[w_out, cur],
        "result_output",
        f32t,
        [hp.n_vocab, n_out, 1, 1],
    );
    g.outputs.push(logits);
    Ok(g)
}

/// qwen3moe's FFN of layer `il` on `cur` (`[n_embd, n]`, the normed input), as llama.cpp
/// builds it: router logits → top-k experts → their weights (softmax renormalized over
/// the chosen) → each chosen expert's SwiGLU FFN → the weighted sum, `[n_embd, n]`.
fn moe_ffn(g: &mut Graph, m: &Model, il: usize, cur: TensorId, n: usize) -> Result<TensorId> {
    let hp = &m.hp;
    let f32t = GgmlType::F32;
    let b = |s: &str| format!("blk.{il}.{s}");
    let (e, x, k, fe) = (hp.n_embd, hp.n_expert, hp.n_expert_used, hp.n_ff_exp);
    let router = weight(g, m, &b("ffn_gate_inp.weight"))?;
    let logits = g.op(
        Op::MulMat { split: vec![] },
        &[router, cur],
        format!("ffn_moe_logits-{il}"),
        f32t,
        [x, n, 1, 1],
    );
    let ids = g.op(
        Op::MoeTopK { k },
        &[logits],
        format!("ffn_moe_topk-{il}"),
        GgmlType::I32,
        [k, n, 1, 1],
    );
    let weights = g.op(
        Op::MoeWeights,
        &[logits, ids],
        format!("ffn_moe_weights_norm-{il}"),
        f32t,
        [k, n, 1, 1],
    );
    let cur3 = g.reshape(cur, [e, 1, n, 1]);
    let wg = weight(g, m, &b("ffn_gate_exps.weight"))?;
    let wu = weight(g, m, &b("ffn_up_exps.weight"))?;
    let wd = weight(g, m, &b("ffn_down_exps.weight"))?;
    let gate = g.op(
        Op::MulMatId {
            split: vec![],
            glu: false,
            route: None,
        },
        &[wg, cur3, ids],
        format!("ffn_moe_gate-{il}"),
        f32t,
        [fe, k, n, 1],
    );
    let up = g.op(
        Op::MulMatId {
            split: vec![],
            glu: false,
            route: None,
        },
        &[wu, cur3, ids],
        format!("ffn_moe_up-{il}"),
        f32t,
        [fe, k, n, 1],
    );
    let act = g.op(
        Op::SwiGlu,
        &[gate, up],
        format!("ffn_moe_swiglu-{il}"),
        f32t,
        [fe, k, n, 1],
    );
    let down = g.op(
        Op::MulMatId {
            split: vec![],
            glu: false,
            route: None,
        },
        &[wd, act, ids],
        format!("ffn_moe_down-{il}"),
        f32t,
        [e, k, n, 1],
    );
    Ok(g.op(
        Op::MoeSum { residual: false },
        &[down, weights],
        format!("ffn_moe_out-{il}"),
        f32t,
        [e, n, 1, 1],
    ))
}
