//! Recording one graph node: the op → dispatch-helper mapping of the Vulkan executor
//! (buffer ranges of the node's tensors, sizes as u32, the decode-path choices planned in
//! `decode`), and each node's profile label, bytes and flops.

use petgraph::stable_graph::NodeIndex;

use super::VulkanBackend;
use crate::backend::vulkan::{dispatch, Recorder};
use crate::graph::{Epilogue, Graph, Op, RopeMode, TensorId};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// What a node's kernel writes besides its own output (planned by the executor).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Extra {
    /// The q8_1 slot of its output (a q8 epilogue).
    pub q8: Option<usize>,
    /// ADD_RMS_NORM_MUL / MOE_SUM_ADD_RMS_NORM_MUL: the residual ADD's (MOE_SUM_ADD's)
    /// output, written by this dispatch too.
    pub sum: Option<TensorId>,
    /// MOE_ROUTER_TOPK: the router MUL_MAT's output, written by this dispatch too.
    pub logits: Option<TensorId>,
}

impl VulkanBackend {
    /// The tiled kernel prompt batches take (cooperative matrices unless turned off).
    fn tiled_kernel(&self) -> dispatch::mul_mat::TiledKernel {
        if self.coopmat {
            dispatch::mul_mat::TiledKernel::Auto
        } else {
            dispatch::mul_mat::TiledKernel::Scalar
        }
    }

    /// Records node `n` (and what `extra` asks its kernel to write besides).
    pub(super) fn record_node(
        &self,
        rec: &mut Recorder,
        g: &Graph,
        n: NodeIndex,
        extra: Extra,
    ) -> Result<()> {
        let q8 = extra.q8;
        let node = g.node(n);
        let s = |i: usize| self.range(g, node.srcs[i]);
        let st = |i: usize| g.tensor(node.srcs[i]);
        // A head norm folded into ROPE / ROPE_SET_ROWS: its weight is the last source
        // (as the CPU reference reads it).
        let head_norm = |norm: Option<f32>| {
            norm.map(|eps| s(node.srcs.len() - 1).map(|w| dispatch::rope::RowNorm { w, eps }))
                .transpose()
        };
        let dst = self.range(g, node.dst)?;
        let dt = g.tensor(node.dst);
        let u = |v: usize| -> Result<u32> {
            u32::try_from(v)
                .map_err(|_| Error::Unsupported(format!("`{}`: size {v} exceeds u32", dt.name)))
        };
        match &node.op {
            Op::GetRows => {
                let t = st(0);
                dispatch::get_rows::get_rows(
                    rec,
                    t.ty,
                    s(0)?,
                    s(1)?,
                    dst,
                    u(t.ne[0])?,
                    u(st(1).nelements())?,
                )
            }
            Op::RmsNorm { eps } => {
                dispatch::norm::rms_norm(rec, s(0)?, dst, u(st(0).ne[0])?, u(st(0).nrows())?, *eps)
            }
            Op::RmsNormMul { eps } if q8.is_some() => dispatch::norm::rms_norm_mul_q8(
                rec,
                s(0)?,
                s(1)?,
                dst,
                self.xq(q8.expect("guarded")),
                u(st(0).ne[0])?,
                u(st(0).nrows())?,
                u(st(1).nrows())?,
                *eps,
            ),
            Op::RmsNormMul { eps } => dispatch::norm::rms_norm_mul(
                rec,
                s(0)?,
                s(1)?,
                dst,
                u(st(0).ne[0])?,
                u(st(0).nrows())?,
                u(st(1).nrows())?,
                *eps,
            ),
            Op::AddRmsNormMul { eps } => dispatch::norm::add_rms_norm_mul_with(
                rec,
                s(0)?,
                s(1)?,
                s(2)?,
                dst,
                q8.map(|q| self.xq(q)),
                extra.sum.map(|t| self.range(g, t)).transpose()?,
                u(st(0).ne[0])?,
                u(st(0).nrows())?,
                u(st(2).nrows())?,
                *eps,
            ),
            Op::MoeSumRmsNormMul { eps } => dispatch::norm::moe_sum_rms_norm_mul(
                rec,
                s(2)?,
                s(0)?,
                s(1)?,
                u(st(0).ne[1])?,
                s(3)?,
                dst,
                q8.map(|q| self.xq(q)),
                extra.sum.map(|t| self.range(g, t)).transpose()?,
                u(st(2).ne[0])?,
                u(st(2).nrows())?,
                u(st(3).nrows())?,
                *eps,
            ),
            Op::Mul => dispatch::binary::mul(
                rec,
                s(0)?,
                s(1)?,
                dst,
                u(st(0).ne[0])?,
                u(st(0).nrows())?,
                u(st(1).nrows())?,
            ),
            Op::Add => dispatch::binary::add(
                rec,
                s(0)?,
                s(1)?,
                dst,
                u(st(0).ne[0])?,
                u(st(0).nrows())?,
                u(st(1).nrows())?,
            ),
            Op::Scale { s: f } => {
                dispatch::scale::scale(rec, s(0)?, dst, st(0).nelements() as u64, *f, 0.0)
            }
            Op::SwiGlu => dispatch::glu::swiglu_with(
                rec,
                s(0)?,
                s(1)?,
                dst,
                q8.map(|q| self.xq(q)),
                u(dt.nelements())?,
            ),
            Op::MulMat { .. } | Op::MulMatLayer { .. }
                if self.group_segments(g, node.srcs[0]).is_some() =>
            {
                let segs = self.group_segments(g, node.srcs[0]).expect("guarded");
                let (k, nt) = (u(st(0).ne[0])?, u(st(1).nrows())?);
                let (norm, bias, scale) = match &node.op {
                    Op::MulMatLayer {
                        norm, epi, scale, ..
                    } => {
                        let bias = match epi {
                            Epilogue::None => None,
                            Epilogue::Bias => Some(s(node.srcs.len() - 1)?),
                            _ => {
                                return Err(Error::Unsupported(format!(
                                    "`{}`: a grouped matmul takes no {epi:?} epilogue",
                                    dt.name
                                )))
                            }
                        };
                        let nw = norm.map(|eps| s(2).map(|nw| (nw, eps))).transpose()?;
                        (nw, bias, *scale)
                    }
                    _ => (None, None, 1.0),
                };
                if nt <= dispatch::mul_mat::MAT_VEC_MAX_N {
                    return dispatch::mul_mat_group::mul_mat_vec_group(
                        rec,
                        &segs,
                        s(0)?,
                        s(1)?,
                        norm,
                        bias,
                        scale,
                        dst,
                        k,
                        nt,
                        self.mat_vec_shape,
                    );
                }
                if norm.is_some() || bias.is_some() || scale != 1.0 {
                    return Err(Error::Unsupported(format!(
                        "`{}`: a folded norm or scale on a grouped matmul of {nt} tokens",
                        dt.name
                    )));
                }
                let tiled = self.tiled_kernel();
                dispatch::mul_mat_group::mul_mat_group_each(
                    rec,
                    &segs,
                    s(0)?,
                    s(1)?,
                    dst,
                    k,
                    nt,
                    self.mat_vec_shape,
                    tiled,
                )
            }
            Op::MulMat { split } => {
                let w = st(0);
                let split32: Vec<u32> = split.iter().map(|&v| v as u32).collect();
                if let Some(&slot) = self.xq_node.get(&n) {
                    return dispatch::mul_mat_vecq::mul_mat_vecq(
                        rec,
                        w.ty,
                        s(0)?,
                        self.xq(slot),
                        dst,
                        u(w.ne[0])?,
                        u(w.nrows())?,
                        u(st(1).nrows())?,
                        &split32,
                        self.mat_vecq_shape,
                    );
                }
                let tiled = self.tiled_kernel();
                let x16 = match (self.x16_scratch.get(&n), self.x16_buf) {
                    (Some(&off), Some(b)) => {
                        let bytes = 2 * st(1).nelements() as u64;
                        Some(self.bufs[b].range(off, bytes))
                    }
                    _ => None,
                };
                dispatch::mul_mat::mul_mat_with(
                    rec,
                    w.ty,
                    s(0)?,
                    s(1)?,
                    dst,
                    u(w.ne[0])?,
                    u(w.nrows())?,
                    u(st(1).nrows())?,
                    &split32,
                    self.mat_vec_shape,
                    tiled,
                    x16,
                )
            }
            Op::MulMatLayer {
                split,
                norm,
                epi,
                scale,
            } => {
                use dispatch::mul_mat::{LayerEpi, LayerParts};
                let w = st(0);
                let split32: Vec<u32> = split.iter().map(|&v| v as u32).collect();
                let parts = LayerParts {
                    norm: norm.map(|eps| s(2).map(|nw| (nw, eps))).transpose()?,
                    epi: match epi {
                        Epilogue::None => LayerEpi::None,
                        Epilogue::Add => LayerEpi::Add(s(node.srcs.len() - 1)?),
                        Epilogue::SwiGlu => LayerEpi::SwiGlu,
                        Epilogue::Bias => LayerEpi::Bias(s(node.srcs.len() - 1)?),
                    },
                    scale: *scale,
                };
                dispatch::mul_mat::mul_mat_vec_layer(
                    rec,
                    w.ty,
                    s(0)?,
                    s(1)?,
                    parts,
                    dst,
                    u(w.ne[0])?,
                    u(w.nrows())?,
                    u(st(1).nrows())?,
                    &split32,
                    self.mat_vec_shape,
                )
            }
            Op::Rope {
                mode,
                n_dims,
                freq_base,
                freq_scale,
                norm,
            } => {
                let t = st(0);
                let norm = head_norm(*norm)?;
                dispatch::rope::rope_with(
                    rec,
                    s(0)?,
                    s(1)?,
                    dst,
                    norm,
                    u(t.ne[0])?,
                    u(t.ne[1])?,
                    u(t.ne[2] * t.ne[3])?,
                    *mode == RopeMode::Neox,
                    u(*n_dims)?,
                    *freq_base,
                    *freq_scale,
                )
            }
            Op::Cpy => match dt.ty {
                GgmlType::F16 => {
                    dispatch::copy::copy_f32_f16(rec, s(0)?, dst, dt.nelements() as u64)
                }
                GgmlType::F32 => {
                    dispatch::copy::copy_f32_f32(rec, s(0)?, dst, dt.nelements() as u64)
                }
                t => Err(Error::Unsupported(format!("CPY to {t} on Vulkan"))),
            },
            Op::SetRows => dispatch::set_rows::set_rows_f16(
                rec,
                s(0)?,
                s(1)?,
                dst,
                u(st(0).ne[0])?,
                u(st(0).nrows())?,
                u(dt.nrows())?,
            ),
            Op::RopeSetRows {
                mode,
                n_dims,
                freq_base,
                freq_scale,
                norm,
            } => {
                let t = st(0);
                let norm = head_norm(*norm)?;
                dispatch::rope::rope_set_rows_with(
                    rec,
                    s(0)?,
                    s(1)?,
                    s(2)?,
                    dst,
                    norm,
                    u(t.ne[0])?,
                    u(t.ne[1])?,
                    u(t.ne[2] * t.ne[3])?,
                    *mode == RopeMode::Neox,
                    u(*n_dims)?,
                    *freq_base,
                    *freq_scale,
                    u(dt.nelements() / (t.ne[0] * t.ne[1]))?,
                )
            }
            Op::Attention { scale, rope } => {
                let (q, k) = (st(0), st(1));
                let split = match (self.attn_split.get(&n), self.scratch) {
                    (Some(&(shape, off)), Some(b)) => {
                        let bytes = shape.scratch_bytes(u(q.ne[0])?, u(q.ne[1])?, u(q.ne[2])?);
                        Some((self.bufs[b].range(off, bytes), shape))
                    }
                    _ => None,
                };
                // The folded RoPE / KV stage's operands (the dispatch checks one token).
                let fold = match rope {
                    Some(r) => Some(dispatch::attention::RopeFold {
                        pos: s(4)?,
                        cells: s(5)?,
                        k_new: s(6)?,
                        v_new: s(7)?,
                        norm: match r.norm {
                            Some(eps) => Some((s(8)?, s(9)?, eps)),
                            None => None,
                        },
                        neox: r.mode == RopeMode::Neox,
                        n_dims: u(r.n_dims)?,
                        freq_base: r.freq_base,
                        freq_scale: r.freq_scale,
                    }),
                    None => None,
                };
                dispatch::attention::attention_with(
                    rec,
                    s(0)?,
                    s(1)?,
                    s(2)?,
                    s(3)?,
                    dst,
                    split,
                    q8.map(|q| self.xq(q)),
                    fold,
                    u(q.ne[0])?,
                    u(q.ne[1])?,
                    u(k.ne[1])?,
                    u(q.ne[2])?,
                    u(k.ne[2])?,
                    *scale,
                )
            }
            Op::MoeTopK { k } => {
                let l = st(0);
                dispatch::moe::moe_topk(rec, s(0)?, dst, u(l.ne[0])?, u(*k)?, u(l.nrows())?)
            }
            Op::MoeRouterTopK { k } => {
                let (w, x) = (st(0), st(1));
                let (kd, ne, nt) = (u(w.ne[0])?, u(w.nrows())?, u(x.nrows())?);
                let (Some(&off), Some(b)) = (self.router_scratch.get(&n), self.scratch) else {
                    return Err(Error::Unsupported(format!(
                        "{}: no scratch planned for MOE_ROUTER_TOPK",
                        g.tensor(node.dst).name
                    )));
                };
                let bytes = dispatch::moe::router_topk_scratch_bytes(ne, nt);
                let scratch = self.bufs[b].range(off, bytes);
                let logits = match extra.logits {
                    Some(t) => self.range(g, t)?,
                    // Unfolded (the `off` baseline): the logits go after the counter.
                    None => self.bufs[b].range(off + 16, bytes - 16),
                };
                dispatch::moe::moe_router_topk(
                    rec,
                    s(0)?,
                    s(1)?,
                    logits,
                    dst,
                    scratch,
                    kd,
                    ne,
                    u(*k)?,
                    nt,
                )
            }
            Op::MoeWeights => {
                let l = st(0);
                let k = u(st(1).ne[0])?;
                dispatch::moe::moe_weights(rec, s(0)?, s(1)?, dst, u(l.ne[0])?, k, u(l.nrows())?)
            }
            Op::MulMatId { split } => {
                let (w, x, ids) = (st(0), st(1), st(2));
                let split: Vec<u32> = split.iter().map(|&r| u(r)).collect::<Result<_>>()?;
                let pairs = u(ids.nelements())?;
                let x16 = match (self.x16_scratch.get(&n), self.x16_buf) {
                    (Some(&off), Some(b)) => {
                        Some(self.bufs[b].range(off, 2 * x.nelements() as u64))
                    }
                    _ => None,
                };
                let grouping = match (self.moe_scratch.get(&n), self.moe_scratch_buf) {
                    (Some(&off), Some(b)) => {
                        let words = dispatch::moe::grouping_words(u(w.ne[2])?, pairs);
                        Some(dispatch::moe::Grouping {
                            scratch: self.bufs[b].range(off, 4 * words),
                            tiled: self.tiled_kernel(),
                            x16,
                        })
                    }
                    _ => None,
                };
                dispatch::moe::mul_mat_id_with(
                    rec,
                    w.ty,
                    s(0)?,
                    s(1)?,
                    s(2)?,
                    dst,
                    u(w.ne[0])?,
                    u(w.ne[1])?,
                    u(w.ne[2])?,
                    u(x.ne[1])?,
                    u(ids.ne[0])?,
                    u(ids.ne[1])?,
                    &split,
                    grouping,
                    self.mat_vec_shape,
                    self.xq_node
                        .get(&n)
                        .map(|&slot| (self.xq(slot), self.mat_vecq_shape)),
                )
            }
            Op::TopK { k } => {
                let (v, k, rows) = (u(st(0).ne[0])?, u(*k)?, u(st(0).nrows())?);
                let scratch = match (self.top_k_scratch.get(&n), self.scratch) {
                    (Some(&off), Some(b)) => {
                        let bytes = dispatch::top_k::scratch_bytes(v, k, rows);
                        Some(self.bufs[b].range(off, bytes))
                    }
                    _ => None,
                };
                dispatch::top_k::top_k_chunked(rec, s(0)?, dst, scratch, v, k, rows)
            }
            Op::MoeSum { residual } => {
                let (y, w) = (st(0), st(1));
                dispatch::moe::moe_sum(
                    rec,
                    s(0)?,
                    s(1)?,
                    if *residual { Some(s(2)?) } else { None },
                    dst,
                    u(y.ne[0])?,
                    u(y.ne[1])?,
                    u(w.ne[1])?,
                )
            }
        }
    }
}

/// Profile label, bytes moved and flops of one node.
pub(super) fn node_cost(g: &Graph, n: NodeIndex) -> (String, u64, u64) {
    let node = g.node(n);
    let dst = g.tensor(node.dst);
    let srcs: Vec<&crate::graph::Tensor> = node.srcs.iter().map(|&s| g.tensor(s)).collect();
    let mut bytes = srcs.iter().map(|t| t.nbytes() as u64).sum::<u64>() + dst.nbytes() as u64;
    if let Op::MulMatId { .. } = node.op {
        // Only the chosen experts' matrices are read: at most one per (token, slot).
        let (w, ids) = (srcs[0], srcs[2]);
        let per_expert = (w.nbytes() / w.ne[2].max(1)) as u64;
        let read = (ids.nelements().min(w.ne[2]) as u64) * per_expert;
        bytes = bytes - w.nbytes() as u64 + read;
    }
    let (label, flops) = match &node.op {
        Op::MulMat { .. } | Op::MulMatLayer { .. } | Op::GetRows => {
            let w = srcs[0];
            let x = srcs[1];
            let f = if matches!(node.op, Op::GetRows) {
                0
            } else {
                2 * (w.ne[0] * w.nrows() * x.nrows()) as u64
            };
            (
                format!(
                    "{} {} {}x{} n={}",
                    node.op.name(),
                    w.type_str(),
                    w.ne[0],
                    w.nrows(),
                    x.nrows()
                ),
                f,
            )
        }
        Op::Attention { .. } => {
            let (q, k) = (srcs[0], srcs[1]);
            let f = 4 * (q.ne[0] * q.ne[1] * q.ne[2] * k.ne[2]) as u64;
            (
                format!(
                    "{} d={} h={}/{} n={} kv={}",
                    node.op.name(),
                    q.ne[0],
                    q.ne[1],
                    k.ne[1],
                    q.ne[2],
                    k.ne[2]
                ),
                f,
            )
        }
        op => (
            format!("{} {}", op.name(), dst.shape_str()),
            dst.nelements() as u64,
        ),
    };
    (label, bytes, flops)
}
