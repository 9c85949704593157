//! The CPU reference kernel of each op: the `cpu` column of the op table
//! ([`crate::ops`]). Each function evaluates one node of its op with the accurate kernels
//! of [`super::ops`] and writes the node's output; the unfused form of a fused op is
//! computed exactly as the ops it replaced, in the same order (the fusion passes rely
//! on it: a fused node's reference is the unfused graph's result).

use petgraph::stable_graph::NodeIndex;

use super::{ops, write_f16_rows, CpuBackend};
use crate::graph::{Epilogue, Graph, Node, Op, Tensor, TensorId};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// One node being evaluated: its sources, output and first source's row length.
struct At<'g> {
    g: &'g Graph,
    node: &'g Node,
    dt: &'g Tensor,
    ne0: usize,
}

impl<'g> At<'g> {
    fn new(g: &'g Graph, n: NodeIndex) -> Self {
        let node = g.node(n);
        At {
            g,
            node,
            dt: g.tensor(node.dst),
            ne0: g.tensor(node.srcs[0]).ne[0],
        }
    }
    fn s(&self, i: usize) -> TensorId {
        self.node.srcs[i]
    }
    fn st(&self, i: usize) -> &'g Tensor {
        self.g.tensor(self.node.srcs[i])
    }
    /// A zeroed f32 output of the node's size.
    fn out(&self) -> Vec<f32> {
        vec![0f32; self.dt.nelements()]
    }
    /// The error for a row called with another op (a table bug).
    fn wrong(&self, row: &str) -> Error {
        Error::Usage(format!(
            "the CPU kernel `{row}` called for {} `{}`",
            self.node.op.name(),
            self.dt.name
        ))
    }
}

/// Writes `out` as the node's f32 output.
fn put(be: &mut CpuBackend, a: &At<'_>, out: &[f32]) -> Result<()> {
    be.write_f32s(a.g, a.node.dst, out)
}

pub(crate) fn get_rows(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let mut out = a.out();
    let ids = be.i32s(g, a.s(1))?;
    ops::get_rows(a.st(0).ty, be.bytes(g, a.s(0))?, a.ne0, &ids, &mut out)?;
    put(be, &a, &out)
}

pub(crate) fn rms_norm(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::RmsNorm { eps } = a.node.op else {
        return Err(a.wrong("rms_norm"));
    };
    let mut out = a.out();
    ops::rms_norm(&be.f32s(g, a.s(0))?, a.ne0, eps, &mut out);
    put(be, &a, &out)
}

/// `rms_norm(x) * w` into `out` (RMS_NORM then MUL, as the unfused pair).
fn norm_mul(x: &[f32], w: &[f32], ne0: usize, eps: f32, out: &mut [f32]) {
    let mut t = vec![0f32; x.len()];
    ops::rms_norm(x, ne0, eps, &mut t);
    ops::binary(false, &t, w, ne0, out)
}

pub(crate) fn rms_norm_mul(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::RmsNormMul { eps } = a.node.op else {
        return Err(a.wrong("rms_norm_mul"));
    };
    let mut out = a.out();
    norm_mul(
        &be.f32s(g, a.s(0))?,
        &be.f32s(g, a.s(1))?,
        a.ne0,
        eps,
        &mut out,
    );
    put(be, &a, &out)
}

pub(crate) fn add_rms_norm_mul(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::AddRmsNormMul { eps } = a.node.op else {
        return Err(a.wrong("add_rms_norm_mul"));
    };
    let mut sum = a.out();
    ops::binary(
        true,
        &be.f32s(g, a.s(0))?,
        &be.f32s(g, a.s(1))?,
        a.ne0,
        &mut sum,
    );
    let mut out = a.out();
    norm_mul(&sum, &be.f32s(g, a.s(2))?, a.ne0, eps, &mut out);
    put(be, &a, &out)
}

/// What MOE_SUM (with `residual`: MOE_SUM_ADD) writes for sources `y, wts[, r]`.
fn moe_sum_value(be: &CpuBackend, a: &At<'_>, residual: bool) -> Result<Vec<f32>> {
    let n_used = a.st(0).ne[1];
    let mut sum = a.out();
    let (y, w) = (be.f32s(a.g, a.s(0))?, be.f32s(a.g, a.s(1))?);
    ops::moe_sum(&y, a.ne0, n_used, &w, &mut sum);
    if residual {
        // The ADD it replaced: f32 sum of the rounded expert sum and r.
        for (o, r) in sum.iter_mut().zip(be.f32s(a.g, a.s(2))?.iter()) {
            *o += r;
        }
    }
    Ok(sum)
}

pub(crate) fn moe_sum_rms_norm_mul(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::MoeSumRmsNormMul { eps } = a.node.op else {
        return Err(a.wrong("moe_sum_rms_norm_mul"));
    };
    // MOE_SUM_ADD's value, computed as it computes it, then RMS_NORM_MUL.
    let sum = moe_sum_value(be, &a, true)?;
    let mut out = a.out();
    norm_mul(&sum, &be.f32s(g, a.s(3))?, a.ne0, eps, &mut out);
    put(be, &a, &out)
}

/// ADD and MUL.
pub(crate) fn binary(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let add = match a.node.op {
        Op::Add => true,
        Op::Mul => false,
        _ => return Err(a.wrong("binary")),
    };
    let mut out = a.out();
    ops::binary(
        add,
        &be.f32s(g, a.s(0))?,
        &be.f32s(g, a.s(1))?,
        a.ne0,
        &mut out,
    );
    put(be, &a, &out)
}

pub(crate) fn scale(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::Scale { s } = a.node.op else {
        return Err(a.wrong("scale"));
    };
    let mut out = a.out();
    ops::scale(&be.f32s(g, a.s(0))?, s, &mut out);
    put(be, &a, &out)
}

pub(crate) fn swiglu(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let mut out = a.out();
    ops::swiglu(&be.f32s(g, a.s(0))?, &be.f32s(g, a.s(1))?, &mut out);
    put(be, &a, &out)
}

pub(crate) fn mul_mat(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::MulMat { split } = &a.node.op else {
        return Err(a.wrong("mul_mat"));
    };
    let mut out = a.out();
    let x = be.f32s(g, a.s(1))?;
    be.mul_mat(g, a.s(0), &x, split, &a.dt.name, &mut out)?;
    put(be, &a, &out)
}

pub(crate) fn top_k(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::TopK { k } = a.node.op else {
        return Err(a.wrong("top_k"));
    };
    let mut out = a.out();
    ops::top_k(&be.f32s(g, a.s(0))?, a.ne0, k, &mut out);
    put(be, &a, &out)
}

pub(crate) fn mul_mat_layer(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::MulMatLayer {
        split,
        norm,
        epi,
        scale,
    } = &a.node.op
    else {
        return Err(a.wrong("mul_mat_layer"));
    };
    // The unfused ops in sequence: RMS_NORM_MUL, MUL_MAT, then ADD or SWIGLU.
    let mut x = be.f32s(g, a.s(1))?;
    let k = a.st(1).ne[0];
    if let Some(eps) = norm {
        let unnormed = std::mem::take(&mut x);
        x = vec![0f32; unnormed.len()];
        norm_mul(&unnormed, &be.f32s(g, a.s(2))?, k, *eps, &mut x);
    }
    let m = a.st(0).nrows();
    let nt = a.st(1).nrows();
    let mut y = vec![0f32; m * nt];
    be.mul_mat(g, a.s(0), &x, split, &a.dt.name, &mut y)?;
    if *scale != 1.0 {
        let unscaled = y.clone();
        ops::scale(&unscaled, *scale, &mut y);
    }
    let mut out = a.out();
    let last = *a.node.srcs.last().expect("a MUL_MAT has sources");
    match epi {
        Epilogue::None => out.copy_from_slice(&y),
        Epilogue::Add => ops::binary(true, &y, &be.f32s(g, last)?, m, &mut out),
        &Epilogue::AddSwiGlu { gate } => {
            // As MUL_MAT_ADD then SWIGLU: p = y + the corrected half, then silu.
            let gu = be.f32s(g, last)?;
            let (gh, uh) = gu.split_at(gu.len() / 2);
            let mut p = vec![0f32; y.len()];
            ops::binary(true, &y, if gate { gh } else { uh }, m, &mut p);
            if gate {
                ops::swiglu(&p, uh, &mut out)
            } else {
                ops::swiglu(gh, &p, &mut out)
            }
        }
        Epilogue::SwiGlu => {
            let (gate, up) = y.split_at(y.len() / 2);
            ops::swiglu(gate, up, &mut out)
        }
        Epilogue::Bias => {
            // The bias (one f32 tensor, or the members of a fused one), then row i of
            // each segment block plus b[segment start + i].
            let mut b: Vec<f32> = Vec::new();
            for seg in be.weight_segments(g, last)? {
                b.extend(bytemuck::pod_collect_to_vec::<u8, f32>(seg));
            }
            let segs = if split.is_empty() {
                vec![m]
            } else {
                split.clone()
            };
            let mut start = 0;
            for rows in segs {
                for j in 0..nt {
                    for i in 0..rows {
                        let at = start * nt + j * rows + i;
                        out[at] = y[at] + b[start + i];
                    }
                }
                start += rows;
            }
        }
    }
    put(be, &a, &out)
}

/// ROPE's value (each head row RMS-normalized and multiplied first with a head norm):
/// what ROPE writes and ROPE_SET_ROWS stores.
fn roped(be: &CpuBackend, a: &At<'_>) -> Result<Vec<f32>> {
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
    let t = a.st(0);
    let pos = be.i32s(a.g, a.s(1))?;
    let x = be.head_norm(a.g, &a.node.srcs, norm)?;
    let mut out = vec![0f32; x.len()];
    ops::rope(
        &x, t.ne[0], t.ne[1], &pos, mode, n_dims, freq_base, freq_scale, &mut out,
    );
    Ok(out)
}

pub(crate) fn rope(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let out = roped(be, &a)?;
    put(be, &a, &out)
}

pub(crate) fn cpy(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let x = be.f32s(g, a.s(0))?;
    let dst = be.bytes_mut(g, a.node.dst)?;
    match a.dt.ty {
        GgmlType::F16 => ops::f32_to_f16(&x, dst),
        GgmlType::F32 => dst.copy_from_slice(bytemuck::cast_slice(&x)),
        t => return Err(Error::Unsupported(format!("CPY to {t}"))),
    }
    Ok(())
}

pub(crate) fn set_rows(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let x = be.f32s(g, a.s(0))?;
    let idx = be.i32s(g, a.s(1))?;
    if a.dt.ty != GgmlType::F16 {
        return Err(Error::Unsupported(format!("SET_ROWS into {}", a.dt.ty)));
    }
    let dst = be.bytes_mut(g, a.node.dst)?;
    write_f16_rows(&x, a.ne0, &idx, dst)
}

pub(crate) fn rope_set_rows(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let roped = roped(be, &a)?;
    let t = a.st(0);
    let rows = be.i32s(g, a.s(2))?;
    let dst = be.bytes_mut(g, a.node.dst)?;
    write_f16_rows(&roped, t.ne[0] * t.ne[1], &rows, dst)
}

pub(crate) fn attention(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::Attention { scale, rope } = &a.node.op else {
        return Err(a.wrong("attention"));
    };
    let (qt, kt) = (a.st(0), a.st(1));
    let mut q = be.f32s(g, a.s(0))?;
    if let Some(r) = rope {
        q = be.rope_fold(g, &a.node.srcs, r, &q)?;
    }
    let k: Vec<half::f16> = bytemuck::pod_collect_to_vec(be.bytes(g, a.s(1))?);
    let v: Vec<half::f16> = bytemuck::pod_collect_to_vec(be.bytes(g, a.s(2))?);
    let span = be.i32s(g, a.s(3))?;
    let mut out = a.out();
    ops::attention(
        &q, qt.ne[0], qt.ne[1], &k, &v, kt.ne[1], kt.ne[2], &span, *scale, &mut out,
    );
    put(be, &a, &out)
}

/// Writes i32 ids as the node's output.
fn put_ids(be: &mut CpuBackend, a: &At<'_>, ids: &[i32]) -> Result<()> {
    be.bytes_mut(a.g, a.node.dst)?
        .copy_from_slice(bytemuck::cast_slice(ids));
    Ok(())
}

pub(crate) fn moe_topk(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::MoeTopK { k } = a.node.op else {
        return Err(a.wrong("moe_topk"));
    };
    let mut ids = vec![0i32; a.dt.nelements()];
    ops::moe_topk(&be.f32s(g, a.s(0))?, a.ne0, k, &mut ids);
    put_ids(be, &a, &ids)
}

pub(crate) fn moe_router_topk(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::MoeRouterTopK { k, norm } = a.node.op else {
        return Err(a.wrong("moe_router_topk"));
    };
    // The router MUL_MAT's logits, computed as it computes them, then MOE_TOPK; with a
    // norm, of rms_norm(x)·nw as RMS_NORM_MUL computes it.
    let (ne, nt) = (a.st(0).nrows(), a.st(1).nrows());
    let mut logits = vec![0f32; ne * nt];
    let mut x = be.f32s(g, a.s(1))?;
    if let Some(eps) = norm {
        let nw = be.f32s(g, a.s(2))?;
        let mut normed = vec![0f32; x.len()];
        norm_mul(&x, &nw, a.st(1).ne[0], eps, &mut normed);
        x = normed;
    }
    be.mul_mat(g, a.s(0), &x, &[], &a.dt.name, &mut logits)?;
    let mut ids = vec![0i32; a.dt.nelements()];
    ops::moe_topk(&logits, ne, k, &mut ids);
    put_ids(be, &a, &ids)
}

pub(crate) fn moe_weights(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let ids = be.i32s(g, a.s(1))?;
    let k = a.st(1).ne[0];
    let mut out = a.out();
    ops::moe_weights(&be.f32s(g, a.s(0))?, a.ne0, &ids, k, &mut out);
    put(be, &a, &out)
}

pub(crate) fn mul_mat_id(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::MulMatId { split, glu, route } = &a.node.op else {
        return Err(a.wrong("mul_mat_id"));
    };
    let (w, xt) = (a.st(0), a.st(1));
    // With `route` the third source is the router's logits: the ids are MOE_TOPK's.
    let (ids, n_used) = match *route {
        Some(k) => {
            let (logits, n_expert) = (be.f32s(g, a.s(2))?, a.st(2).ne[0]);
            let mut ids = vec![0i32; k * a.st(2).nrows()];
            ops::moe_topk(&logits, n_expert, k, &mut ids);
            (ids, k)
        }
        None => (be.i32s(g, a.s(2))?, a.st(2).ne[0]),
    };
    let x = be.f32s(g, a.s(1))?;
    let split = if split.is_empty() {
        vec![w.ne[1]]
    } else {
        split.clone()
    };
    // With the SwiGLU epilogue the product of both halves first, then silu(gate)·up.
    let pairs = ids.len();
    let mut out = if *glu {
        if split.len() != 2 || split[0] != split[1] {
            return Err(Error::Usage(format!(
                "`{}`: a SwiGLU epilogue needs two equal segments, not {split:?}",
                a.dt.name
            )));
        }
        vec![0f32; w.ne[1] * pairs]
    } else {
        a.out()
    };
    {
        let segs = be.weight_segments(g, a.s(0))?;
        if segs.len() != split.len() {
            return Err(Error::Usage(format!(
                "`{}`: split/members mismatch",
                a.dt.name
            )));
        }
        // Segment after segment, each a contiguous [m_s, n_used, n] block.
        let mut rest = &mut out[..];
        for (wb, &rows) in segs.iter().zip(&split) {
            let (blk, r) = rest.split_at_mut(rows * pairs);
            rest = r;
            ops::mul_mat_id(w.ty, wb, a.ne0, rows, &x, xt.ne[1], &ids, n_used, blk)?;
        }
    }
    if *glu {
        let (gate, up) = out.split_at(out.len() / 2);
        let mut act = a.out();
        ops::swiglu(gate, up, &mut act);
        return put(be, &a, &act);
    }
    put(be, &a, &out)
}

pub(crate) fn moe_sum(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let a = At::new(g, n);
    let Op::MoeSum { residual } = a.node.op else {
        return Err(a.wrong("moe_sum"));
    };
    let out = moe_sum_value(be, &a, residual)?;
    put(be, &a, &out)
}
