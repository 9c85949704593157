//! Decode-layer fusion decisions of the Vulkan executor (`Backend::fuses_mat_vec`, asked
//! by `passes::layer` per node): whether a MUL_MAT takes a norm prologue or an epilogue
//! here, whether an ATTENTION takes the RoPE / KV-cache prologue, whether a MUL_MAT_ID
//! takes the SwiGLU epilogue or routes itself, and whether folding an RMS_NORM_MUL into its readers saves a
//! stage on this path. Each `Err` is the reason the dump prints.

use petgraph::stable_graph::NodeIndex;

use super::VulkanBackend;
use crate::backend::vulkan::dispatch;
use crate::graph::{Graph, Op};

impl VulkanBackend {
    /// Why MUL_MAT node `n` cannot take work folded around it (`Op::MulMatLayer`), or
    /// `Ok`: a matmul on the integer-dot path (large weights) keeps its own kernel unless
    /// `set_mat_vecq_layer(true)` (then the integer-dot fused mat-vec), any other takes the
    /// float one; a prompt batch keeps its own kernel.
    pub(super) fn layer_fusable(&self, g: &Graph, n: NodeIndex) -> std::result::Result<(), String> {
        let node = g.node(n);
        if let Op::Attention { .. } = node.op {
            // The RoPE / KV-cache fold (passes::layer): the folded attention kernel.
            for op in ["ATTENTION", "ROPE", "SET_ROWS"] {
                if self.disabled.contains(op) {
                    return Err(format!("{op} is disabled on this device"));
                }
            }
            let q = g.tensor(node.srcs[0]);
            // The rotation is not known yet here: any even n_dims <= d works.
            dispatch::attention::rope_fold_support(
                self.ctx.caps(),
                q.ne[0] as u64,
                q.ne[0] as u64,
                q.ne[2] as u64,
            )?;
            // With LoRA pairs folded in (passes::layer asks after trying the fold).
            return super::support::lora_fold(self, g, n);
        }
        if let Op::MulMatId { .. } = node.op {
            return self.id_fusable(g, n);
        }
        if let Op::MoeTopK { .. } = node.op {
            // Its readers' routing (passes::layer::route_in_experts); each reader's kernel
            // is asked on its own.
            return if !self.moe_route {
                Err("routing in the expert kernels is off (VKGRAPH_MOE_ROUTE=0)".into())
            } else if !dispatch::mul_mat::has_subgroup_add(self.ctx.caps()) {
                Err("no subgroup arithmetic here (the kernels' routing needs it)".into())
            } else {
                Ok(())
            };
        }
        if let Op::RmsNormMul { .. } = node.op {
            return self.norm_fold_pays(g, n);
        }
        let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
        // An op disabled here (tests force CPU fallbacks so) is not folded either.
        let mm_type = format!("MUL_MAT:{}", w.ty.name());
        for op in ["MUL_MAT", mm_type.as_str(), "RMS_NORM_MUL", "ADD", "SWIGLU"] {
            if self.disabled.contains(op) {
                return Err(format!("{op} is disabled on this device"));
            }
        }
        if let Some(segs) = self.group_segments(g, node.srcs[0]) {
            if x.nrows() > dispatch::mul_mat::MAT_VEC_MAX_N as usize {
                return Err(format!(
                    "{} tokens take the members' own kernels (the grouped mat-vec takes at \
                     most {})",
                    x.nrows(),
                    dispatch::mul_mat::MAT_VEC_MAX_N
                ));
            }
            return dispatch::mul_mat_group::group_support(self.ctx.caps(), &segs, w.ne[0] as u64);
        }
        if self.vecq_for(w, x) {
            if !self.mat_vecq_layer {
                return Err(format!(
                    "{} takes the integer-dot mat-vec ({} {:.1} MiB); its fused form is \
                     off (VKGRAPH_MMVQ_LAYER=0)",
                    w.name,
                    w.ty,
                    w.nbytes() as f64 / f64::from(1u32 << 20)
                ));
            }
            return dispatch::mul_mat::vecq_layer_support(
                self.ctx.caps(),
                w.ty,
                w.ne[0] as u64,
                x.nrows() as u64,
            );
        }
        dispatch::mul_mat::layer_support(self.ctx.caps(), w.ty, w.ne[0] as u64, x.nrows() as u64)
    }

    /// Whether folding RMS_NORM_MUL node `n` into its readers' prologue saves a stage here.
    /// Not after a MOE_SUM_ADD whose readers take the integer-dot path: their prologue
    /// needs the q8_1 blocks of x·nw, which MOE_SUM_ADD cannot write (a quantize_q8_1
    /// dispatch and its barrier would run), while the norm kept reads the sum's operands
    /// (MOE_SUM_ADD_RMS_NORM_MUL, `passes::fusion`), absorbs the MOE_SUM_ADD and writes
    /// the q8_1 copy of the normed x in its epilogue: 2 stages instead of 3.
    fn norm_fold_pays(&self, g: &Graph, n: NodeIndex) -> std::result::Result<(), String> {
        let node = g.node(n);
        let (x, t) = (node.srcs[0], node.dst);
        let after_moe = g
            .order()
            .find(|&p| g.node(p).dst == x)
            .is_some_and(|p| g.node(p).op == Op::MoeSum { residual: true });
        let int8 = g.order().any(|r| {
            let rn = g.node(r);
            matches!(rn.op, Op::MulMat { .. } | Op::MulMatLayer { .. })
                && rn.srcs.get(1) == Some(&t)
                && self.mat_vecq_layer
                && self.group_segments(g, rn.srcs[0]).is_none()
                && self.vecq_for(g.tensor(rn.srcs[0]), g.tensor(t))
        });
        if after_moe && int8 {
            return Err(
                "its input is a MOE_SUM_ADD, which has no q8_1 epilogue of x·nw for \
                 the integer-dot prologue; kept, it becomes MOE_SUM_ADD_RMS_NORM_MUL (the sum \
                 absorbed, q8_1 of the normed x in its epilogue) — 1 stage fewer than folding"
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether MUL_MAT_ID node `n` takes the SwiGLU epilogue or routes itself
    /// (`passes::layer`): the decode kernels (float and integer-dot) do, the grouped
    /// prompt kernels do not. (The SwiGLU conditions are asked of a routing node too.)
    fn id_fusable(&self, g: &Graph, n: NodeIndex) -> std::result::Result<(), String> {
        let node = g.node(n);
        let (w, ids) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[2]));
        let id_type = format!("MUL_MAT_ID:{}", w.ty.name());
        for op in ["MUL_MAT_ID", id_type.as_str(), "SWIGLU"] {
            if self.disabled.contains(op) {
                return Err(format!("{op} is disabled on this device"));
            }
        }
        if self.moe_grouped(g, n) {
            return Err(format!(
                "{} tokens run grouped by expert (the prompt kernels have no epilogue)",
                ids.ne[1]
            ));
        }
        let shape = if self.vecq_id_for(g, n) {
            self.id_vecq_shape()
        } else {
            self.mat_vec_shape
        };
        if let Some(s) = shape.filter(|s| s.rows % 2 != 0) {
            return Err(format!(
                "the mat-vec shape override has {} rows per workgroup (the epilogue pairs them)",
                s.rows
            ));
        }
        Ok(())
    }
}
