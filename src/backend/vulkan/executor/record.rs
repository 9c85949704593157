//! The Vulkan dispatch of each op: the `vk_record` column of the op table
//! ([`crate::ops`]). Each function records one node — the buffer ranges of its tensors,
//! sizes as u32, the decode-path choices planned in `decode` — through the dispatch
//! helpers of `backend::vulkan::dispatch`.

use petgraph::stable_graph::NodeIndex;

use super::VulkanBackend;
use crate::backend::vulkan::{dispatch, BufferRange, Recorder};
use crate::graph::{Epilogue, Graph, Node, Op, RopeMode, Tensor, TensorId};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// What a node's kernel writes besides its own output (planned by the executor: the
/// folds of `passes::fusion` that it records as one dispatch).
#[derive(Clone, Copy, Debug, Default)]
pub struct Extra {
    /// The q8_1 slot of its output (a q8 epilogue).
    pub(crate) q8: Option<usize>,
    /// ADD_RMS_NORM_MUL / MOE_SUM_ADD_RMS_NORM_MUL: the residual ADD's (MOE_SUM_ADD's)
    /// output, written by this dispatch too.
    pub(crate) sum: Option<TensorId>,
    /// MOE_ROUTER_TOPK: the router MUL_MAT's output, written by this dispatch too.
    pub(crate) logits: Option<TensorId>,
}

impl VulkanBackend {
    /// The tiled kernel prompt batches take (cooperative matrices unless turned off).
    pub(super) fn tiled_kernel(&self) -> dispatch::mul_mat::TiledKernel {
        if self.coopmat {
            dispatch::mul_mat::TiledKernel::Auto
        } else {
            dispatch::mul_mat::TiledKernel::Scalar
        }
    }
}

/// One node being recorded.
struct At<'a> {
    be: &'a VulkanBackend,
    g: &'a Graph,
    node: &'a Node,
    dt: &'a Tensor,
}

impl<'a> At<'a> {
    fn new(be: &'a VulkanBackend, g: &'a Graph, n: NodeIndex) -> Self {
        let node = g.node(n);
        At {
            be,
            g,
            node,
            dt: g.tensor(node.dst),
        }
    }
    /// Source `i`'s device range.
    fn s(&self, i: usize) -> Result<BufferRange<'a>> {
        self.be.range(self.g, self.node.srcs[i])
    }
    fn st(&self, i: usize) -> &'a Tensor {
        self.g.tensor(self.node.srcs[i])
    }
    fn dst(&self) -> Result<BufferRange<'a>> {
        self.be.range(self.g, self.node.dst)
    }
    /// A size as the kernels' u32.
    fn u(&self, v: usize) -> Result<u32> {
        u32::try_from(v)
            .map_err(|_| Error::Unsupported(format!("`{}`: size {v} exceeds u32", self.dt.name)))
    }
    /// A head norm folded into ROPE / ROPE_SET_ROWS: its weight is the last source (as
    /// the CPU reference reads it).
    fn head_norm(&self, norm: Option<f32>) -> Result<Option<dispatch::rope::RowNorm<'a>>> {
        norm.map(|eps| {
            self.s(self.node.srcs.len() - 1)
                .map(|w| dispatch::rope::RowNorm { w, eps })
        })
        .transpose()
    }
    fn q8(&self, extra: &Extra) -> Option<dispatch::mul_mat_vecq::XQ<'a>> {
        extra.q8.map(|q| self.be.xq(q))
    }
    /// The error for a row called with another op (a table bug).
    fn wrong(&self, row: &str) -> Error {
        Error::Usage(format!(
            "the Vulkan dispatch `{row}` called for {} `{}`",
            self.node.op.name(),
            self.dt.name
        ))
    }
}

/// The signature every `vk_record` entry has.
pub(crate) type Rec<'r> = &'r mut Recorder;

pub(crate) fn get_rows(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let t = a.st(0);
    dispatch::get_rows::get_rows(
        rec,
        t.ty,
        a.s(0)?,
        a.s(1)?,
        a.dst()?,
        a.u(t.ne[0])?,
        a.u(a.st(1).nelements())?,
    )
}

pub(crate) fn rms_norm(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::RmsNorm { eps } = a.node.op else {
        return Err(a.wrong("rms_norm"));
    };
    let x = a.st(0);
    dispatch::norm::rms_norm(rec, a.s(0)?, a.dst()?, a.u(x.ne[0])?, a.u(x.nrows())?, eps)
}

pub(crate) fn rms_norm_mul(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    extra: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::RmsNormMul { eps } = a.node.op else {
        return Err(a.wrong("rms_norm_mul"));
    };
    let (ne0, rows, rw) = (
        a.u(a.st(0).ne[0])?,
        a.u(a.st(0).nrows())?,
        a.u(a.st(1).nrows())?,
    );
    match a.q8(extra) {
        Some(xq) => {
            dispatch::norm::rms_norm_mul_q8(rec, a.s(0)?, a.s(1)?, a.dst()?, xq, ne0, rows, rw, eps)
        }
        None => dispatch::norm::rms_norm_mul(rec, a.s(0)?, a.s(1)?, a.dst()?, ne0, rows, rw, eps),
    }
}

pub(crate) fn add_rms_norm_mul(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    extra: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::AddRmsNormMul { eps } = a.node.op else {
        return Err(a.wrong("add_rms_norm_mul"));
    };
    dispatch::norm::add_rms_norm_mul_with(
        rec,
        a.s(0)?,
        a.s(1)?,
        a.s(2)?,
        a.dst()?,
        a.q8(extra),
        extra.sum.map(|t| be.range(g, t)).transpose()?,
        a.u(a.st(0).ne[0])?,
        a.u(a.st(0).nrows())?,
        a.u(a.st(2).nrows())?,
        eps,
    )
}

pub(crate) fn moe_sum_rms_norm_mul(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    extra: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::MoeSumRmsNormMul { eps } = a.node.op else {
        return Err(a.wrong("moe_sum_rms_norm_mul"));
    };
    dispatch::norm::moe_sum_rms_norm_mul(
        rec,
        a.s(2)?,
        a.s(0)?,
        a.s(1)?,
        a.u(a.st(0).ne[1])?,
        a.s(3)?,
        a.dst()?,
        a.q8(extra),
        extra.sum.map(|t| be.range(g, t)).transpose()?,
        a.u(a.st(2).ne[0])?,
        a.u(a.st(2).nrows())?,
        a.u(a.st(3).nrows())?,
        eps,
    )
}

/// ADD and MUL.
pub(crate) fn binary(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let (ne0, ra, rb) = (
        a.u(a.st(0).ne[0])?,
        a.u(a.st(0).nrows())?,
        a.u(a.st(1).nrows())?,
    );
    match a.node.op {
        Op::Add => dispatch::binary::add(rec, a.s(0)?, a.s(1)?, a.dst()?, ne0, ra, rb),
        Op::Mul => dispatch::binary::mul(rec, a.s(0)?, a.s(1)?, a.dst()?, ne0, ra, rb),
        _ => Err(a.wrong("binary")),
    }
}

pub(crate) fn scale(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::Scale { s } = a.node.op else {
        return Err(a.wrong("scale"));
    };
    dispatch::scale::scale(rec, a.s(0)?, a.dst()?, a.st(0).nelements() as u64, s, 0.0)
}

pub(crate) fn swiglu(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    extra: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    dispatch::glu::swiglu_with(
        rec,
        a.s(0)?,
        a.s(1)?,
        a.dst()?,
        a.q8(extra),
        a.u(a.dt.nelements())?,
    )
}

/// A MUL_MAT or MUL_MAT_LAYER over a grouped weight (members of different types).
fn mul_mat_grouped(
    a: &At<'_>,
    rec: Rec<'_>,
    segs: &[dispatch::mul_mat_group::GroupSegment],
) -> Result<()> {
    let (k, nt) = (a.u(a.st(0).ne[0])?, a.u(a.st(1).nrows())?);
    let (norm, bias, scale) = match &a.node.op {
        Op::MulMatLayer {
            norm, epi, scale, ..
        } => {
            let bias = match epi {
                Epilogue::None => None,
                Epilogue::Bias => Some(a.s(a.node.srcs.len() - 1)?),
                _ => {
                    return Err(Error::Unsupported(format!(
                        "`{}`: a grouped matmul takes no {epi:?} epilogue",
                        a.dt.name
                    )))
                }
            };
            let nw = norm.map(|eps| a.s(2).map(|nw| (nw, eps))).transpose()?;
            (nw, bias, *scale)
        }
        _ => (None, None, 1.0),
    };
    if nt <= dispatch::mul_mat::MAT_VEC_MAX_N {
        return dispatch::mul_mat_group::mul_mat_vec_group(
            rec,
            segs,
            a.s(0)?,
            a.s(1)?,
            norm,
            bias,
            scale,
            a.dst()?,
            k,
            nt,
            a.be.mat_vec_shape,
        );
    }
    if norm.is_some() || bias.is_some() || scale != 1.0 {
        return Err(Error::Unsupported(format!(
            "`{}`: a folded norm or scale on a grouped matmul of {nt} tokens",
            a.dt.name
        )));
    }
    dispatch::mul_mat_group::mul_mat_group_each(
        rec,
        segs,
        a.s(0)?,
        a.s(1)?,
        a.dst()?,
        k,
        nt,
        a.be.mat_vec_shape,
        a.be.tiled_kernel(),
    )
}

pub(crate) fn mul_mat(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    if let Some(segs) = be.group_segments(g, a.node.srcs[0]) {
        return mul_mat_grouped(&a, rec, &segs);
    }
    let Op::MulMat { split } = &a.node.op else {
        return Err(a.wrong("mul_mat"));
    };
    let w = a.st(0);
    let split32: Vec<u32> = split.iter().map(|&v| a.u(v)).collect::<Result<_>>()?;
    let (k, m, nt) = (a.u(w.ne[0])?, a.u(w.nrows())?, a.u(a.st(1).nrows())?);
    if let Some(&slot) = be.xq_node.get(&n) {
        return dispatch::mul_mat_vecq::mul_mat_vecq(
            rec,
            w.ty,
            a.s(0)?,
            be.xq(slot),
            a.dst()?,
            k,
            m,
            nt,
            &split32,
            be.mat_vecq_shape,
        );
    }
    let x16 = match (be.x16_scratch.get(&n), be.x16_buf) {
        (Some(&(off, bytes, split)), Some(b)) => Some(dispatch::mul_mat::CoopScratch {
            range: be.bufs[b].range(off, bytes),
            split,
        }),
        _ => None,
    };
    dispatch::mul_mat::mul_mat_with(
        rec,
        w.ty,
        a.s(0)?,
        a.s(1)?,
        a.dst()?,
        k,
        m,
        nt,
        &split32,
        be.mat_vec_shape,
        be.tiled_kernel(),
        x16,
    )
}

pub(crate) fn mul_mat_layer(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    extra: &Extra,
) -> Result<()> {
    use dispatch::mul_mat::{LayerEpi, LayerParts, LayerQ8, LayerQ8Out};
    let a = At::new(be, g, n);
    if let Some(segs) = be.group_segments(g, a.node.srcs[0]) {
        return mul_mat_grouped(&a, rec, &segs);
    }
    let Op::MulMatLayer {
        split,
        norm,
        epi,
        scale,
    } = &a.node.op
    else {
        return Err(a.wrong("mul_mat_layer"));
    };
    let w = a.st(0);
    let split32: Vec<u32> = split.iter().map(|&v| a.u(v)).collect::<Result<_>>()?;
    let last = a.node.srcs.len() - 1;
    // The integer-dot kernel reads its planned q8_1 copy of x (of x·nw with a norm) and,
    // as the producer of another slot (extra.q8), writes that one in its epilogue.
    let int8 = if be.vecq_layer_for(g, n) {
        let slot = *be
            .xq_node
            .get(&n)
            .ok_or_else(|| a.wrong("mul_mat_layer (no q8_1 slot)"))?;
        let sl = be.xq_slots[slot];
        let out = match extra.q8 {
            Some(o) => {
                let so = be.xq_slots[o];
                Some(LayerQ8Out {
                    codes: so.codes,
                    scales: so.scales,
                    cnt: so
                        .cnt
                        .ok_or_else(|| a.wrong("mul_mat_layer (no block counters)"))?,
                    norm: match so.nw {
                        Some(nw) => Some((be.range(g, nw)?, so.ss)),
                        None => None,
                    },
                })
            }
            None => None,
        };
        Some(LayerQ8 {
            x: be.xq(slot),
            scratch: be.xq_scratch_range(),
            ss: sl.nw.map(|_| sl.ss),
            out,
        })
    } else {
        None
    };
    let int8_shape = int8.is_some();
    let parts = LayerParts {
        norm: norm.map(|eps| a.s(2).map(|nw| (nw, eps))).transpose()?,
        epi: match epi {
            Epilogue::None => LayerEpi::None,
            Epilogue::Add => LayerEpi::Add(a.s(last)?),
            Epilogue::SwiGlu => LayerEpi::SwiGlu,
            Epilogue::Bias => LayerEpi::Bias(a.s(last)?),
            Epilogue::AddSwiGlu { gate } => LayerEpi::AddSwiGlu {
                gu: a.s(last)?,
                gate: *gate,
            },
        },
        scale: *scale,
        int8,
    };
    dispatch::mul_mat::mul_mat_vec_layer(
        rec,
        w.ty,
        a.s(0)?,
        a.s(1)?,
        parts,
        a.dst()?,
        a.u(w.ne[0])?,
        a.u(w.nrows())?,
        a.u(a.st(1).nrows())?,
        &split32,
        if int8_shape {
            // The fused kernel pairs gate/up rows: an odd override keeps the default.
            be.mat_vecq_shape.filter(|s| s.rows % 2 == 0)
        } else {
            be.mat_vec_shape
        },
    )
}

/// ROPE / ROPE_SET_ROWS's rotation as the dispatch takes it: the head norm, neox, n_dims,
/// freq_base, freq_scale.
type RopeArgs<'a> = (Option<dispatch::rope::RowNorm<'a>>, bool, u32, f32, f32);

/// The LoRA pairs of a folded attention (`AttnRope::lora`): (B, a) per adapted
/// projection after the norm weights.
fn lora_fold<'a>(
    a: &At<'a>,
    r: &crate::graph::AttnRope,
) -> Result<Option<dispatch::attention::LoraFold<'a>>> {
    if r.lora.iter().all(Option::is_none) {
        return Ok(None);
    }
    let mut at = r.lora_srcs_at();
    let mut targets = [None, None, None];
    let (mut rank, mut f16) = (0, false);
    for (i, s) in r.lora.iter().enumerate() {
        if let Some(s) = *s {
            let b = a.st(at);
            (rank, f16) = (a.u(b.ne[0])?, b.ty == crate::quant::GgmlType::F16);
            targets[i] = Some((a.s(at)?, a.s(at + 1)?, s));
            at += 2;
        }
    }
    Ok(Some(dispatch::attention::LoraFold { targets, rank, f16 }))
}

fn rope_args<'a>(a: &At<'a>) -> Result<RopeArgs<'a>> {
    let (Op::Rope {
        mode,
        n_dims,
        freq_base,
        freq_scale,
        norm,
    }
    | Op::RopeSetRows {
        mode,
        n_dims,
        freq_base,
        freq_scale,
        norm,
    }) = a.node.op
    else {
        return Err(a.wrong("rope"));
    };
    let neox = mode == RopeMode::Neox;
    Ok((
        a.head_norm(norm)?,
        neox,
        a.u(n_dims)?,
        freq_base,
        freq_scale,
    ))
}

pub(crate) fn rope(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let (norm, neox, n_dims, freq_base, freq_scale) = rope_args(&a)?;
    let t = a.st(0);
    dispatch::rope::rope_with(
        rec,
        a.s(0)?,
        a.s(1)?,
        a.dst()?,
        norm,
        a.u(t.ne[0])?,
        a.u(t.ne[1])?,
        a.u(t.ne[2] * t.ne[3])?,
        neox,
        n_dims,
        freq_base,
        freq_scale,
    )
}

pub(crate) fn cpy(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let count = a.dt.nelements() as u64;
    match a.dt.ty {
        GgmlType::F16 => dispatch::copy::copy_f32_f16(rec, a.s(0)?, a.dst()?, count),
        GgmlType::F32 => dispatch::copy::copy_f32_f32(rec, a.s(0)?, a.dst()?, count),
        t => Err(Error::Unsupported(format!("CPY to {t} on Vulkan"))),
    }
}

pub(crate) fn set_rows(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    dispatch::set_rows::set_rows_f16(
        rec,
        a.s(0)?,
        a.s(1)?,
        a.dst()?,
        a.u(a.st(0).ne[0])?,
        a.u(a.st(0).nrows())?,
        a.u(a.dt.nrows())?,
    )
}

pub(crate) fn rope_set_rows(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let (norm, neox, n_dims, freq_base, freq_scale) = rope_args(&a)?;
    let t = a.st(0);
    dispatch::rope::rope_set_rows_with(
        rec,
        a.s(0)?,
        a.s(1)?,
        a.s(2)?,
        a.dst()?,
        norm,
        a.u(t.ne[0])?,
        a.u(t.ne[1])?,
        a.u(t.ne[2] * t.ne[3])?,
        neox,
        n_dims,
        freq_base,
        freq_scale,
        a.u(a.dt.nelements() / (t.ne[0] * t.ne[1]))?,
    )
}

pub(crate) fn attention(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    extra: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::Attention { scale, rope } = &a.node.op else {
        return Err(a.wrong("attention"));
    };
    let (q, k) = (a.st(0), a.st(1));
    let split = match (be.attn_split.get(&n), be.scratch) {
        (Some(&(shape, off)), Some(b)) => {
            let bytes = shape.scratch_bytes(a.u(q.ne[0])?, a.u(q.ne[1])?, a.u(q.ne[2])?);
            Some((be.bufs[b].range(off, bytes), shape))
        }
        _ => None,
    };
    // The folded RoPE / KV stage's operands (the dispatch checks one token).
    let fold = match rope {
        Some(r) => Some(dispatch::attention::RopeFold {
            pos: a.s(4)?,
            cells: a.s(5)?,
            k_new: a.s(6)?,
            v_new: a.s(7)?,
            norm: match r.norm {
                Some(eps) => Some((a.s(8)?, a.s(9)?, eps)),
                None => None,
            },
            neox: r.mode == RopeMode::Neox,
            n_dims: a.u(r.n_dims)?,
            freq_base: r.freq_base,
            freq_scale: r.freq_scale,
            lora: lora_fold(&a, r)?,
        }),
        None => None,
    };
    let q8 = a.q8(extra);
    let (qn, kn) = (a.u(q.ne[2])?, a.u(k.ne[2])?);
    let (k_in, v_in) = (a.s(1)?, a.s(2)?);
    if split.is_none()
        && fold.is_none()
        && q8.is_none()
        && be.coopmat
        && dispatch::attention_coopmat::takes(
            rec.caps(),
            a.u(q.ne[0])?,
            qn,
            k_in.offset,
            v_in.offset,
        )
    {
        return dispatch::attention_coopmat::attention_coopmat(
            rec,
            a.s(0)?,
            k_in,
            v_in,
            a.s(3)?,
            a.dst()?,
            a.u(q.ne[0])?,
            a.u(q.ne[1])?,
            a.u(k.ne[1])?,
            qn,
            kn,
            *scale,
        );
    }
    dispatch::attention::attention_with(
        rec,
        a.s(0)?,
        a.s(1)?,
        a.s(2)?,
        a.s(3)?,
        a.dst()?,
        split,
        q8,
        fold,
        a.u(q.ne[0])?,
        a.u(q.ne[1])?,
        a.u(k.ne[1])?,
        a.u(q.ne[2])?,
        a.u(k.ne[2])?,
        // Decode: the launch sized for the planned length (re-recorded past it).
        (qn <= 8).then(|| be.split_rows_for(kn)),
        *scale,
    )
}

pub(crate) fn moe_topk(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::MoeTopK { k } = a.node.op else {
        return Err(a.wrong("moe_topk"));
    };
    let l = a.st(0);
    dispatch::moe::moe_topk(
        rec,
        a.s(0)?,
        a.dst()?,
        a.u(l.ne[0])?,
        a.u(k)?,
        a.u(l.nrows())?,
    )
}

pub(crate) fn moe_router_topk(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    extra: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::MoeRouterTopK { k, norm } = a.node.op else {
        return Err(a.wrong("moe_router_topk"));
    };
    let (w, x) = (a.st(0), a.st(1));
    let (kd, ne, nt) = (a.u(w.ne[0])?, a.u(w.nrows())?, a.u(x.nrows())?);
    let (Some(&off), Some(b)) = (be.router_scratch.get(&n), be.scratch) else {
        return Err(Error::Unsupported(format!(
            "{}: no scratch planned for MOE_ROUTER_TOPK",
            a.dt.name
        )));
    };
    let bytes = dispatch::moe::router_topk_scratch_bytes(ne, nt);
    let scratch = be.bufs[b].range(off, bytes);
    let logits = match extra.logits {
        Some(t) => be.range(g, t)?,
        // Unfolded (the `off` baseline): the logits go after the counter.
        None => be.bufs[b].range(off + 16, bytes - 16),
    };
    dispatch::moe::moe_router_topk(
        rec,
        a.s(0)?,
        a.s(1)?,
        logits,
        a.dst()?,
        scratch,
        kd,
        ne,
        a.u(k)?,
        nt,
        match norm {
            Some(eps) => Some((a.s(2)?, eps)),
            None => None,
        },
    )
}

pub(crate) fn moe_weights(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let l = a.st(0);
    let k = a.u(a.st(1).ne[0])?;
    dispatch::moe::moe_weights(
        rec,
        a.s(0)?,
        a.s(1)?,
        a.dst()?,
        a.u(l.ne[0])?,
        k,
        a.u(l.nrows())?,
    )
}

pub(crate) fn mul_mat_id(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    extra: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::MulMatId { split, glu, route } = &a.node.op else {
        return Err(a.wrong("mul_mat_id"));
    };
    // As the producer of a q8_1 slot (extra.q8) the SwiGLU form writes it in its epilogue.
    let q8_out = match extra.q8 {
        Some(o) => {
            let so = be.xq_slots[o];
            Some(dispatch::moe::IdQ8Out {
                scratch: be.xq_scratch_range(),
                codes: so.codes,
                scales: so.scales,
                cnt: so
                    .cnt
                    .ok_or_else(|| a.wrong("mul_mat_id (no block counters)"))?,
            })
        }
        None => None,
    };
    let (w, x) = (a.st(0), a.st(1));
    let split: Vec<u32> = split.iter().map(|&r| a.u(r)).collect::<Result<_>>()?;
    // (slots, tokens): the ids' shape, or with `route` k and the logits' tokens.
    let (slots, tokens) = g.id_slots(n).ok_or_else(|| a.wrong("mul_mat_id"))?;
    let (n_used, n_tok) = (a.u(slots)?, a.u(tokens)?);
    let pairs = n_used * n_tok;
    let x16 = match (be.x16_scratch.get(&n), be.x16_buf) {
        (Some(&(off, bytes, _)), Some(b)) => Some(be.bufs[b].range(off, bytes)),
        _ => None,
    };
    let grouping = match (be.moe_scratch.get(&n), be.moe_scratch_buf) {
        (Some(&off), Some(b)) => {
            let words = dispatch::moe::grouping_words(a.u(w.ne[2])?, pairs);
            Some(dispatch::moe::Grouping {
                scratch: be.bufs[b].range(off, 4 * words),
                tiled: be.tiled_kernel(),
                x16,
            })
        }
        _ => None,
    };
    dispatch::moe::mul_mat_id_with(
        rec,
        w.ty,
        a.s(0)?,
        a.s(1)?,
        a.s(2)?,
        route.is_some(),
        a.dst()?,
        a.u(w.ne[0])?,
        a.u(w.ne[1])?,
        a.u(w.ne[2])?,
        a.u(x.ne[1])?,
        n_used,
        n_tok,
        &split,
        dispatch::moe::IdEpilogue { glu: *glu, q8_out },
        grouping,
        be.mat_vec_shape,
        be.xq_node
            .get(&n)
            .map(|&slot| (be.xq(slot), be.id_vecq_shape())),
    )
}

pub(crate) fn top_k(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::TopK { k } = a.node.op else {
        return Err(a.wrong("top_k"));
    };
    let (v, k, rows) = (a.u(a.st(0).ne[0])?, a.u(k)?, a.u(a.st(0).nrows())?);
    let scratch = match (be.top_k_scratch.get(&n), be.scratch) {
        (Some(&off), Some(b)) => {
            let bytes = dispatch::top_k::scratch_bytes(v, k, rows);
            Some(be.bufs[b].range(off, bytes))
        }
        _ => None,
    };
    dispatch::top_k::top_k_chunked(rec, a.s(0)?, a.dst()?, scratch, v, k, rows)
}

pub(crate) fn moe_sum(
    be: &VulkanBackend,
    rec: Rec<'_>,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let a = At::new(be, g, n);
    let Op::MoeSum { residual } = a.node.op else {
        return Err(a.wrong("moe_sum"));
    };
    let (y, w) = (a.st(0), a.st(1));
    dispatch::moe::moe_sum(
        rec,
        a.s(0)?,
        a.s(1)?,
        if residual { Some(a.s(2)?) } else { None },
        a.dst()?,
        a.u(y.ne[0])?,
        a.u(y.ne[1])?,
        a.u(w.ne[1])?,
    )
}
