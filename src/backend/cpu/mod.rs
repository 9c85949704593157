//! The CPU reference backend: evaluates every op for every weight type with the
//! accurate reference kernels of [`ops`]. It is the oracle of the test suite and the
//! scheduler's fallback for anything a GPU backend cannot run. Weights are read
//! straight from the file mapping (fused groups as their member slices).

pub mod ops;

use std::collections::HashMap;
use std::sync::Arc;

use half::f16;
use petgraph::stable_graph::NodeIndex;

use super::Backend;
use crate::graph::{Epilogue, Graph, Op, TensorId, TensorKind};
use crate::model::Model;
use crate::quant::GgmlType;
use crate::{Error, Result};

/// CPU backend state: activations of the current graph, persistent state by name.
pub struct CpuBackend {
    model: Arc<Model>,
    /// Root tensor → bytes, for inputs and activations of the current graph.
    roots: HashMap<TensorId, Vec<u8>>,
    /// Persistent tensors (KV cache) by name.
    state: HashMap<String, Vec<u8>>,
}

impl CpuBackend {
    pub fn new(model: Arc<Model>) -> Self {
        CpuBackend {
            model,
            roots: HashMap::new(),
            state: HashMap::new(),
        }
    }

    /// The bytes of a tensor (following views).
    fn bytes(&self, g: &Graph, t: TensorId) -> Result<&[u8]> {
        let r = g.region(t);
        let root = g.tensor(r.root);
        let all: &[u8] = match &root.kind {
            TensorKind::Weight { name } => self.model.tensor_bytes(name)?,
            TensorKind::FusedWeight { .. } | TensorKind::GroupedWeight { .. } => {
                return Err(Error::Unsupported(format!(
                    "reading fused weight `{}` as one tensor on the CPU",
                    root.name
                )))
            }
            TensorKind::State { name } => self
                .state
                .get(name)
                .ok_or_else(|| Error::Usage(format!("state `{name}` not prepared")))?,
            _ => self
                .roots
                .get(&r.root)
                .ok_or_else(|| Error::Usage(format!("tensor `{}` has no value", root.name)))?,
        };
        Ok(&all[r.offset..][..r.size])
    }

    fn bytes_mut(&mut self, g: &Graph, t: TensorId) -> Result<&mut [u8]> {
        let r = g.region(t);
        let root = g.tensor(r.root);
        let all: &mut Vec<u8> = match &root.kind {
            TensorKind::State { name } => self.state.get_mut(name),
            TensorKind::Activation | TensorKind::Input => self.roots.get_mut(&r.root),
            _ => None,
        }
        .ok_or_else(|| Error::Usage(format!("tensor `{}` is not writable", root.name)))?;
        Ok(&mut all[r.offset..][..r.size])
    }

    /// A rope's input: `srcs[0]`, or with `norm: Some(eps)` its head rows RMS-normalized
    /// and multiplied by `srcs[2]` (the folded q_norm / k_norm), exactly as RMS_NORM_MUL.
    fn head_norm(&self, g: &Graph, srcs: &[TensorId], norm: Option<f32>) -> Result<Vec<f32>> {
        let x = self.f32s(g, srcs[0])?;
        let Some(eps) = norm else {
            return Ok(x);
        };
        let ne0 = g.tensor(srcs[0]).ne[0];
        let mut t = vec![0f32; x.len()];
        ops::rms_norm(&x, ne0, eps, &mut t);
        let mut out = vec![0f32; x.len()];
        let w = *srcs.last().expect("a norm weight");
        ops::binary(false, &t, &self.f32s(g, w)?, ne0, &mut out);
        Ok(out)
    }

    /// The RoPE / KV-cache part of a folded `Op::Attention` (`rope: Some`): writes the new
    /// K and V rows into the cache as the folded ROPE_SET_ROWS and SET_ROWS did, and returns
    /// q rotated (both head-normalized first with a norm), as the folded ROPE did.
    fn rope_fold(
        &mut self,
        g: &Graph,
        srcs: &[TensorId],
        r: &crate::graph::AttnRope,
        q: &[f32],
    ) -> Result<Vec<f32>> {
        let (qt, kt) = (g.tensor(srcs[0]), g.tensor(srcs[6]));
        let pos = self.i32s(g, srcs[4])?;
        let cells = self.i32s(g, srcs[5])?;
        let d = qt.ne[0];
        let norm_rope = |this: &Self, x: &[f32], heads: usize, w: Option<TensorId>| {
            let mut x = x.to_vec();
            if let (Some(eps), Some(w)) = (r.norm, w) {
                let mut t = vec![0f32; x.len()];
                ops::rms_norm(&x, d, eps, &mut t);
                ops::binary(false, &t, &this.f32s(g, w)?, d, &mut x);
            }
            let mut out = vec![0f32; x.len()];
            ops::rope(
                &x,
                d,
                heads,
                &pos,
                r.mode,
                r.n_dims,
                r.freq_base,
                r.freq_scale,
                &mut out,
            );
            Ok::<_, Error>(out)
        };
        let (qw, kw) = match r.norm {
            Some(_) => (srcs.get(8).copied(), srcs.get(9).copied()),
            None => (None, None),
        };
        let k_new = norm_rope(self, &self.f32s(g, srcs[6])?, kt.ne[1], kw)?;
        let v_new = self.f32s(g, srcs[7])?;
        let row = kt.ne[0] * kt.ne[1];
        write_f16_rows(&k_new, row, &cells, self.bytes_mut(g, srcs[1])?)?;
        write_f16_rows(&v_new, row, &cells, self.bytes_mut(g, srcs[2])?)?;
        norm_rope(self, q, qt.ne[1], qw)
    }

    fn f32s(&self, g: &Graph, t: TensorId) -> Result<Vec<f32>> {
        let tt = g.tensor(t);
        let b = self.bytes(g, t)?;
        let mut out = vec![0f32; tt.nelements()];
        crate::quant::dequantize(tt.ty, b, &mut out)?;
        Ok(out)
    }

    fn i32s(&self, g: &Graph, t: TensorId) -> Result<Vec<i32>> {
        Ok(bytemuck::pod_collect_to_vec(self.bytes(g, t)?))
    }

    /// Weight segments of a MUL_MAT source: one slice, or the members of a fused group.
    fn weight_segments(&self, g: &Graph, w: TensorId) -> Result<Vec<&[u8]>> {
        let root = g.tensor(g.root(w));
        match &root.kind {
            TensorKind::FusedWeight { members } | TensorKind::GroupedWeight { members, .. } => {
                members
                    .iter()
                    .map(|name| self.model.tensor_bytes(name))
                    .collect()
            }
            _ => Ok(vec![self.bytes(g, w)?]),
        }
    }

    /// `dst = W·x` for weight `wt` (`Op::MulMat`'s layout: `split` segments, split on write).
    fn mul_mat(
        &self,
        g: &Graph,
        wt: TensorId,
        x: &[f32],
        split: &[usize],
        name: &str,
        out: &mut [f32],
    ) -> Result<()> {
        let w = g.tensor(wt);
        let k = w.ne[0];
        let n_tok = x.len() / k;
        let split = if split.is_empty() {
            vec![w.nrows()]
        } else {
            split.to_vec()
        };
        let segs = self.weight_segments(g, wt)?;
        if let TensorKind::GroupedWeight { types, .. } = &g.tensor(g.root(wt)).kind {
            // Members of different types: one product per member, each into its block.
            if segs.len() != split.len() || types.len() != split.len() {
                return Err(Error::Usage(format!("`{name}`: split/members mismatch")));
            }
            let mut at = 0;
            for ((seg, &ty), &rows) in segs.iter().zip(types).zip(&split) {
                let block = &mut out[at * n_tok..(at + rows) * n_tok];
                ops::mul_mat(ty, &[seg], &[rows], k, x, n_tok, block)?;
                at += rows;
            }
            return Ok(());
        }
        if segs.len() != split.len() && segs.len() != 1 {
            return Err(Error::Usage(format!("`{name}`: split/members mismatch")));
        }
        if segs.len() == 1 && split.len() > 1 {
            // A pre-fused file tensor: cut it into its segments.
            let rb = w.row_bytes();
            let mut parts = Vec::new();
            let mut off = 0;
            for &rows in &split {
                parts.push(&segs[0][off..off + rows * rb]);
                off += rows * rb;
            }
            ops::mul_mat(w.ty, &parts, &split, k, x, n_tok, out)
        } else {
            ops::mul_mat(w.ty, &segs, &split, k, x, n_tok, out)
        }
    }

    fn eval(&mut self, g: &Graph, n: NodeIndex) -> Result<()> {
        let node = g.node(n);
        let dt = g.tensor(node.dst);
        let s = |i: usize| node.srcs[i];
        let ne0 = g.tensor(s(0)).ne[0];
        let mut out = vec![0f32; dt.nelements()];
        match &node.op {
            Op::GetRows => {
                let t = g.tensor(s(0));
                let ids = self.i32s(g, s(1))?;
                ops::get_rows(t.ty, self.bytes(g, s(0))?, ne0, &ids, &mut out)?;
            }
            Op::RmsNorm { eps } => ops::rms_norm(&self.f32s(g, s(0))?, ne0, *eps, &mut out),
            Op::RmsNormMul { eps } => {
                let mut t = vec![0f32; out.len()];
                ops::rms_norm(&self.f32s(g, s(0))?, ne0, *eps, &mut t);
                ops::binary(false, &t, &self.f32s(g, s(1))?, ne0, &mut out)
            }
            Op::AddRmsNormMul { eps } => {
                let mut sum = vec![0f32; out.len()];
                ops::binary(
                    true,
                    &self.f32s(g, s(0))?,
                    &self.f32s(g, s(1))?,
                    ne0,
                    &mut sum,
                );
                let mut t = vec![0f32; out.len()];
                ops::rms_norm(&sum, ne0, *eps, &mut t);
                ops::binary(false, &t, &self.f32s(g, s(2))?, ne0, &mut out)
            }
            Op::MoeSumRmsNormMul { eps } => {
                // MOE_SUM_ADD's value, computed as it computes it, then RMS_NORM_MUL.
                let n_used = g.tensor(s(0)).ne[1];
                let mut sum = vec![0f32; out.len()];
                ops::moe_sum(
                    &self.f32s(g, s(0))?,
                    ne0,
                    n_used,
                    &self.f32s(g, s(1))?,
                    &mut sum,
                );
                for (o, r) in sum.iter_mut().zip(self.f32s(g, s(2))?.iter()) {
                    *o += r;
                }
                let mut t = vec![0f32; out.len()];
                ops::rms_norm(&sum, ne0, *eps, &mut t);
                ops::binary(false, &t, &self.f32s(g, s(3))?, ne0, &mut out)
            }
            Op::Mul | Op::Add => {
                let add = node.op == Op::Add;
                ops::binary(
                    add,
                    &self.f32s(g, s(0))?,
                    &self.f32s(g, s(1))?,
                    ne0,
                    &mut out,
                )
            }
            Op::Scale { s: f } => ops::scale(&self.f32s(g, s(0))?, *f, &mut out),
            Op::SwiGlu => ops::swiglu(&self.f32s(g, s(0))?, &self.f32s(g, s(1))?, &mut out),
            Op::MulMat { split } => {
                let x = self.f32s(g, s(1))?;
                self.mul_mat(g, node.srcs[0], &x, split, &dt.name, &mut out)?;
            }
            Op::TopK { k } => {
                let l = self.f32s(g, s(0))?;
                ops::top_k(&l, ne0, *k, &mut out)
            }
            Op::MulMatLayer {
                split,
                norm,
                epi,
                scale,
            } => {
                // The unfused ops in sequence: RMS_NORM_MUL, MUL_MAT, then ADD or SWIGLU.
                let mut x = self.f32s(g, s(1))?;
                let k = g.tensor(s(1)).ne[0];
                if let Some(eps) = norm {
                    let mut t = vec![0f32; x.len()];
                    ops::rms_norm(&x, k, *eps, &mut t);
                    ops::binary(false, &t, &self.f32s(g, s(2))?, k, &mut x);
                }
                let m = g.tensor(s(0)).nrows();
                let mut y = vec![0f32; m * g.tensor(s(1)).nrows()];
                self.mul_mat(g, node.srcs[0], &x, split, &dt.name, &mut y)?;
                if *scale != 1.0 {
                    let unscaled = y.clone();
                    ops::scale(&unscaled, *scale, &mut y);
                }
                match epi {
                    Epilogue::None => out.copy_from_slice(&y),
                    Epilogue::Add => {
                        let r = self.f32s(g, *node.srcs.last().expect("a residual"))?;
                        ops::binary(true, &y, &r, m, &mut out)
                    }
                    Epilogue::SwiGlu => {
                        let (gate, up) = y.split_at(y.len() / 2);
                        ops::swiglu(gate, up, &mut out)
                    }
                    Epilogue::Bias => {
                        // The bias (one f32 tensor, or the members of a fused one), then
                        // row i of each segment block plus b[segment start + i].
                        let bt = *node.srcs.last().expect("a bias");
                        let mut b: Vec<f32> = Vec::new();
                        for seg in self.weight_segments(g, bt)? {
                            b.extend(bytemuck::pod_collect_to_vec::<u8, f32>(seg));
                        }
                        let nt = g.tensor(s(1)).nrows();
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
            }
            Op::Rope {
                mode,
                n_dims,
                freq_base,
                freq_scale,
                norm,
            } => {
                let t = g.tensor(s(0));
                let pos = self.i32s(g, s(1))?;
                let x = self.head_norm(g, &node.srcs, *norm)?;
                ops::rope(
                    &x,
                    t.ne[0],
                    t.ne[1],
                    &pos,
                    *mode,
                    *n_dims,
                    *freq_base,
                    *freq_scale,
                    &mut out,
                );
            }
            Op::Cpy => {
                let x = self.f32s(g, s(0))?;
                let dst = self.bytes_mut(g, node.dst)?;
                match dt.ty {
                    GgmlType::F16 => ops::f32_to_f16(&x, dst),
                    GgmlType::F32 => dst.copy_from_slice(bytemuck::cast_slice(&x)),
                    t => return Err(Error::Unsupported(format!("CPY to {t}"))),
                }
                return Ok(());
            }
            Op::SetRows => {
                let x = self.f32s(g, s(0))?;
                let idx = self.i32s(g, s(1))?;
                let ne0 = g.tensor(s(0)).ne[0];
                if dt.ty != GgmlType::F16 {
                    return Err(Error::Unsupported(format!("SET_ROWS into {}", dt.ty)));
                }
                let dst = self.bytes_mut(g, node.dst)?;
                write_f16_rows(&x, ne0, &idx, dst)?;
                return Ok(());
            }
            Op::RopeSetRows {
                mode,
                n_dims,
                freq_base,
                freq_scale,
                norm,
            } => {
                let t = g.tensor(s(0));
                let pos = self.i32s(g, s(1))?;
                let x = self.head_norm(g, &node.srcs, *norm)?;
                let mut roped = vec![0f32; x.len()];
                ops::rope(
                    &x,
                    t.ne[0],
                    t.ne[1],
                    &pos,
                    *mode,
                    *n_dims,
                    *freq_base,
                    *freq_scale,
                    &mut roped,
                );
                let rows = self.i32s(g, s(2))?;
                let dst = self.bytes_mut(g, node.dst)?;
                write_f16_rows(&roped, t.ne[0] * t.ne[1], &rows, dst)?;
                return Ok(());
            }
            Op::Attention { scale, rope } => {
                let qt = g.tensor(s(0));
                let kt = g.tensor(s(1));
                let mut q = self.f32s(g, s(0))?;
                if let Some(r) = rope {
                    q = self.rope_fold(g, &node.srcs, r, &q)?;
                }
                let k: Vec<f16> = bytemuck::pod_collect_to_vec(self.bytes(g, s(1))?);
                let v: Vec<f16> = bytemuck::pod_collect_to_vec(self.bytes(g, s(2))?);
                let span = self.i32s(g, s(3))?;
                ops::attention(
                    &q, qt.ne[0], qt.ne[1], &k, &v, kt.ne[1], kt.ne[2], &span, *scale, &mut out,
                );
            }
            Op::MoeTopK { k } => {
                let mut ids = vec![0i32; dt.nelements()];
                ops::moe_topk(&self.f32s(g, s(0))?, ne0, *k, &mut ids);
                self.bytes_mut(g, node.dst)?
                    .copy_from_slice(bytemuck::cast_slice(&ids));
                return Ok(());
            }
            Op::MoeRouterTopK { k } => {
                // The router MUL_MAT's logits, computed as it computes them, then MOE_TOPK.
                let (ne, nt) = (g.tensor(s(0)).nrows(), g.tensor(s(1)).nrows());
                let mut logits = vec![0f32; ne * nt];
                let x = self.f32s(g, s(1))?;
                self.mul_mat(g, node.srcs[0], &x, &[], &dt.name, &mut logits)?;
                let mut ids = vec![0i32; dt.nelements()];
                ops::moe_topk(&logits, ne, *k, &mut ids);
                self.bytes_mut(g, node.dst)?
                    .copy_from_slice(bytemuck::cast_slice(&ids));
                return Ok(());
            }
            Op::MoeWeights => {
                let ids = self.i32s(g, s(1))?;
                let k = g.tensor(s(1)).ne[0];
                ops::moe_weights(&self.f32s(g, s(0))?, ne0, &ids, k, &mut out);
            }
            Op::MulMatId { split } => {
                let w = g.tensor(s(0));
                let xt = g.tensor(s(1));
                let ids = self.i32s(g, s(2))?;
                let n_used = g.tensor(s(2)).ne[0];
                let x = self.f32s(g, s(1))?;
                let split = if split.is_empty() {
                    vec![w.ne[1]]
                } else {
                    split.clone()
                };
                let segs = self.weight_segments(g, s(0))?;
                if segs.len() != split.len() {
                    return Err(Error::Usage(format!(
                        "`{}`: split/members mismatch",
                        dt.name
                    )));
                }
                // Segment after segment, each a contiguous [m_s, n_used, n] block.
                let pairs = ids.len();
                let mut rest = &mut out[..];
                for (wb, &rows) in segs.iter().zip(&split) {
                    let (blk, r) = rest.split_at_mut(rows * pairs);
                    rest = r;
                    ops::mul_mat_id(w.ty, wb, ne0, rows, &x, xt.ne[1], &ids, n_used, blk)?;
                }
            }
            Op::MoeSum { residual } => {
                let n_used = g.tensor(s(0)).ne[1];
                ops::moe_sum(
                    &self.f32s(g, s(0))?,
                    ne0,
                    n_used,
                    &self.f32s(g, s(1))?,
                    &mut out,
                );
                if *residual {
                    // The ADD it replaced: f32 sum of the rounded expert sum and r.
                    for (o, r) in out.iter_mut().zip(self.f32s(g, s(2))?.iter()) {
                        *o += r;
                    }
                }
            }
        }
        self.bytes_mut(g, node.dst)?
            .copy_from_slice(bytemuck::cast_slice(&out));
        Ok(())
    }
}

/// Row `idx[i]` of the f16 table `dst` (rows of `row` values) = f16(row `i` of `src`).
fn write_f16_rows(src: &[f32], row: usize, idx: &[i32], dst: &mut [u8]) -> Result<()> {
    let rows = dst.len() / (row * 2);
    for (i, &r) in idx.iter().enumerate() {
        if r < 0 || r as usize >= rows {
            return Err(Error::ContextFull(format!(
                "position {r} outside the cache of {rows} rows"
            )));
        }
        ops::f32_to_f16(
            &src[i * row..][..row],
            &mut dst[r as usize * row * 2..][..row * 2],
        );
    }
    Ok(())
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        "CPU".into()
    }

    fn supports(&self, _g: &Graph, _n: NodeIndex) -> bool {
        true
    }

    fn prepare_for(&mut self, g: &Graph, nodes: &[NodeIndex]) -> Result<()> {
        self.roots.clear();
        // KV cache only for the layers assigned here (the weights stay in the mapping).
        let touched = g.roots_used_by(nodes);
        for (i, t) in g.tensors.iter().enumerate() {
            match &t.kind {
                TensorKind::Input | TensorKind::Activation => {
                    self.roots.insert(TensorId(i as u32), vec![0u8; t.nbytes()]);
                }
                TensorKind::State { name } if touched.contains(&TensorId(i as u32)) => {
                    let e = self.state.entry(name.clone()).or_default();
                    if e.len() < t.nbytes() {
                        e.resize(t.nbytes(), 0);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn set_tensor(&mut self, g: &Graph, t: TensorId, bytes: &[u8]) -> Result<()> {
        let dst = self.bytes_mut(g, t)?;
        if dst.len() != bytes.len() {
            return Err(Error::Usage(format!(
                "set_tensor `{}`: {} bytes, expected {}",
                g.tensor(t).name,
                bytes.len(),
                dst.len()
            )));
        }
        dst.copy_from_slice(bytes);
        Ok(())
    }

    fn get_tensor(&mut self, g: &Graph, t: TensorId) -> Result<Vec<u8>> {
        Ok(self.bytes(g, t)?.to_vec())
    }

    fn compute(&mut self, g: &Graph, stages: &[Vec<NodeIndex>]) -> Result<()> {
        for &n in stages.iter().flatten() {
            self.eval(g, n)?;
        }
        Ok(())
    }

    fn reset_state(&mut self) {
        self.state.clear();
    }

    fn copy_state_rows(&mut self, n_cells: usize, c: crate::kv::RowCopy) -> Result<()> {
        for (name, t) in &mut self.state {
            let row = t.len() / n_cells.max(1);
            if (c.from.max(c.to) + c.rows) * row > t.len() {
                return Err(Error::Usage(format!(
                    "copy of {} rows {} -> {} outside `{name}` ({n_cells} rows)",
                    c.rows, c.from, c.to
                )));
            }
            t.copy_within(c.from * row..(c.from + c.rows) * row, c.to * row);
        }
        Ok(())
    }
}
