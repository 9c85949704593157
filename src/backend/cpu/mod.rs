//! The CPU reference backend: evaluates every op for every weight type with the
//! accurate reference kernels of [`ops`]. It is the oracle of the test suite and the
//! scheduler's fallback for anything a GPU backend cannot run. Weights are read
//! straight from the file mapping (fused groups as their member slices).

pub(crate) mod kernels;
pub mod ops;

use std::collections::HashMap;
use std::sync::Arc;

use petgraph::stable_graph::NodeIndex;

use super::Backend;
use crate::graph::{Graph, TensorId, TensorKind};
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
    pub(crate) fn bytes(&self, g: &Graph, t: TensorId) -> Result<&[u8]> {
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

    pub(crate) fn bytes_mut(&mut self, g: &Graph, t: TensorId) -> Result<&mut [u8]> {
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
    pub(crate) fn head_norm(
        &self,
        g: &Graph,
        srcs: &[TensorId],
        norm: Option<f32>,
    ) -> Result<Vec<f32>> {
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
    pub(crate) fn rope_fold(
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
        // LoRA products folded in (`r.lora`: q, k, v): base + s·(B·a), as the MUL_MAT_ADD
        // nodes they replace computed it; their (B, a) pairs follow the norm weights.
        let mut pairs = srcs[r.lora_srcs_at()..].chunks(2);
        let mut fixed: [Option<Vec<f32>>; 3] = [None, None, None];
        for (i, s) in r.lora.iter().enumerate() {
            let Some(s) = s else { continue };
            let [b, a] = pairs
                .next()
                .ok_or_else(|| Error::Usage("attention: a LoRA pair is missing".into()))?
            else {
                return Err(Error::Usage("attention: a LoRA pair is missing".into()));
            };
            let base = match i {
                0 => q.to_vec(),
                _ => self.f32s(g, srcs[5 + i])?,
            };
            let mut y = vec![0f32; base.len()];
            self.mul_mat(g, *b, &self.f32s(g, *a)?, &[], "lora", &mut y)?;
            if *s != 1.0 {
                let unscaled = y.clone();
                ops::scale(&unscaled, *s, &mut y);
            }
            let mut out = vec![0f32; base.len()];
            ops::binary(true, &y, &base, base.len(), &mut out);
            fixed[i] = Some(out);
        }
        let [fq, fk, fv] = fixed;
        let k_in = match fk {
            Some(k) => k,
            None => self.f32s(g, srcs[6])?,
        };
        let k_new = norm_rope(self, &k_in, kt.ne[1], kw)?;
        let v_new = match fv {
            Some(v) => v,
            None => self.f32s(g, srcs[7])?,
        };
        let row = kt.ne[0] * kt.ne[1];
        write_f16_rows(&k_new, row, &cells, self.bytes_mut(g, srcs[1])?)?;
        write_f16_rows(&v_new, row, &cells, self.bytes_mut(g, srcs[2])?)?;
        norm_rope(self, fq.as_deref().unwrap_or(q), qt.ne[1], qw)
    }

    /// A tensor's values as f32 (dequantized; following views): what a kernel of the op
    /// table reads (`crate::ops::OpRow::cpu`).
    pub fn f32s(&self, g: &Graph, t: TensorId) -> Result<Vec<f32>> {
        let tt = g.tensor(t);
        let b = self.bytes(g, t)?;
        let mut out = vec![0f32; tt.nelements()];
        crate::quant::dequantize(tt.ty, b, &mut out)?;
        Ok(out)
    }

    pub(crate) fn i32s(&self, g: &Graph, t: TensorId) -> Result<Vec<i32>> {
        Ok(bytemuck::pod_collect_to_vec(self.bytes(g, t)?))
    }

    /// Weight segments of a MUL_MAT source: one slice, or the members of a fused group.
    pub(crate) fn weight_segments(&self, g: &Graph, w: TensorId) -> Result<Vec<&[u8]>> {
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
    pub(crate) fn mul_mat(
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

    /// Writes f32 `values` into tensor `t` (an activation of the current graph, exactly its
    /// size): how a kernel of the op table stores its output.
    pub fn write_f32s(&mut self, g: &Graph, t: TensorId, values: &[f32]) -> Result<()> {
        let dst = self.bytes_mut(g, t)?;
        if dst.len() != values.len() * 4 || g.tensor(t).ty != GgmlType::F32 {
            return Err(Error::Usage(format!(
                "`{}`: {} f32 values into a {} tensor of {} bytes",
                g.tensor(t).name,
                values.len(),
                g.tensor(t).ty,
                dst.len()
            )));
        }
        dst.copy_from_slice(bytemuck::cast_slice(values));
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
        // Memory only for what the nodes assigned here touch: activations, inputs, the KV
        // cache of their layers (the weights stay in the mapping).
        let touched = g.roots_used_by(nodes);
        for (i, t) in g.tensors.iter().enumerate() {
            match &t.kind {
                // The activations of the nodes assigned here; every input (a few
                // ints, and callers may write them all).
                TensorKind::Input => {
                    self.roots.insert(TensorId(i as u32), vec![0u8; t.nbytes()]);
                }
                TensorKind::Activation if touched.contains(&TensorId(i as u32)) => {
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
            (crate::ops::row(&g.node(n).op).cpu)(self, g, n)?;
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
