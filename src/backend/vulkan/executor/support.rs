//! What the Vulkan backend takes: the `vk_support` column of the op table
//! ([`crate::ops`]). Each predicate states the constraints its op's dispatch enforces
//! (types, sizes, device features), so a node it refuses falls back to the CPU when the
//! scheduler plans — never an error when the command buffer is recorded. `Err` says why.

use petgraph::stable_graph::NodeIndex;

use super::VulkanBackend;
use crate::backend::vulkan::dispatch;
use crate::graph::{Epilogue, Graph, Op};
use crate::quant::GgmlType;

/// What every support predicate returns: `Err` names the constraint that failed.
pub type Support = std::result::Result<(), String>;

fn check(ok: bool, why: impl FnOnce() -> String) -> Support {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

/// Ops every Vulkan device runs at any shape (their kernels need only the core
/// features the backend requires at start).
pub(crate) fn always(_: &VulkanBackend, _: &Graph, _: NodeIndex) -> Support {
    Ok(())
}

/// Whether `OP:type` is disabled (tests force CPU fallbacks per type).
fn type_disabled(be: &VulkanBackend, op: &str, ty: GgmlType) -> Support {
    check(
        !be.disabled.contains(&format!("{op}:{}", ty.name())),
        || format!("{op} on {} disabled", ty.name()),
    )
}

/// MUL_MAT and MUL_MAT_LAYER over a grouped weight (members of different types): the
/// grouped mat-vec for decode batches, the members' own kernels for larger ones.
fn grouped(be: &VulkanBackend, g: &Graph, n: NodeIndex, op: &str) -> Option<Support> {
    let node = g.node(n);
    let segs = be.group_segments(g, node.srcs[0])?;
    let k = g.tensor(node.srcs[0]).ne[0] as u64;
    let nt = g.tensor(node.srcs[1]).nrows() as u64;
    let caps = be.ctx.caps();
    let types = segs.iter().try_for_each(|s| {
        type_disabled(be, op, s.ty)?;
        check(dispatch::mul_mat::supports(s.ty), || {
            format!("no matmul kernel for {}", s.ty)
        })?;
        check(
            k % u64::from(dispatch::mul_mat::kernel_qk(s.ty)) == 0,
            || format!("k = {k} is not a multiple of {}'s block", s.ty),
        )
    });
    let vec_group =
        || dispatch::mul_mat_group::group_support(caps, &segs, k).map_err(|e| e.to_string());
    Some(types.and_then(|()| match &node.op {
        Op::MulMat { .. } if nt > u64::from(dispatch::mul_mat::MAT_VEC_MAX_N) => Ok(()),
        Op::MulMat { .. } => vec_group(),
        Op::MulMatLayer { epi, .. } => {
            check(matches!(epi, Epilogue::None | Epilogue::Bias), || {
                format!("a grouped matmul takes no {epi:?} epilogue")
            })?;
            check(nt <= u64::from(dispatch::mul_mat::MAT_VEC_MAX_N), || {
                format!("a folded grouped matmul of {nt} tokens")
            })?;
            check(!be.disabled.contains("MUL_MAT"), || {
                "MUL_MAT disabled".into()
            })?;
            vec_group()
        }
        op => Err(format!("{} takes no grouped weight", op.name())),
    }))
}

/// MUL_MAT and GET_ROWS: a kernel for the weight's type, rows the blocks tile.
pub(crate) fn mul_mat(be: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let node = g.node(n);
    let op = node.op.name().trim_end_matches("_FUSED");
    if let Some(s) = grouped(be, g, n, op) {
        return s;
    }
    let w = g.tensor(node.srcs[0]);
    type_disabled(be, op, w.ty)?;
    check(dispatch::mul_mat::supports(w.ty), || {
        format!("no {op} kernel for {}", w.ty)
    })?;
    // Rows the kernels' blocks cannot tile (e.g. a rank-8 LoRA B factor in f32) stay
    // on the CPU.
    let qk = u64::from(dispatch::mul_mat::kernel_qk(w.ty));
    check(
        matches!(node.op, Op::GetRows) || (w.ne[0] as u64) % qk == 0,
        || {
            format!(
                "rows of {} values are not whole {qk}-value kernel blocks",
                w.ne[0]
            )
        },
    )
}

pub(crate) fn mul_mat_layer(be: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let node = g.node(n);
    if let Some(s) = grouped(be, g, n, node.op.name().trim_end_matches("_FUSED")) {
        return s;
    }
    let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
    dispatch::mul_mat::layer_support(be.ctx.caps(), w.ty, w.ne[0] as u64, x.nrows() as u64)
        .map_err(|e| e.to_string())?;
    check(!be.disabled.contains("MUL_MAT"), || {
        "MUL_MAT disabled".into()
    })?;
    type_disabled(be, "MUL_MAT", w.ty)
}

pub(crate) fn cpy(_: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let ty = g.tensor(g.node(n).dst).ty;
    check(matches!(ty, GgmlType::F16 | GgmlType::F32), || {
        format!("CPY to {ty}")
    })
}

/// ROPE and ROPE_SET_ROWS with a folded head norm reduce a head row in one workgroup of
/// 256; ROPE_SET_ROWS (as SET_ROWS) writes f16 rows.
pub(crate) fn rope(be: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let node = g.node(n);
    let head = g.tensor(node.srcs[0]).ne[0];
    let norm = matches!(
        node.op,
        Op::Rope { norm: Some(_), .. } | Op::RopeSetRows { norm: Some(_), .. }
    );
    check(!norm || head <= 512, || {
        format!("a head norm over rows of {head} (at most 512)")
    })?;
    match node.op {
        Op::RopeSetRows { .. } => set_rows(be, g, n),
        _ => Ok(()),
    }
}

pub(crate) fn set_rows(be: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let ty = g.tensor(g.node(n).dst).ty;
    check(ty == GgmlType::F16, || format!("rows into {ty} (f16 only)"))?;
    check(be.ctx.caps().storage_16bit, || {
        "no 16-bit storage on this device".into()
    })
}

pub(crate) fn attention(be: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let node = g.node(n);
    let Op::Attention { rope: Some(r), .. } = &node.op else {
        return Ok(());
    };
    let q = g.tensor(node.srcs[0]);
    check(
        !be.disabled.contains("ROPE") && !be.disabled.contains("SET_ROWS"),
        || "ROPE or SET_ROWS disabled".into(),
    )?;
    dispatch::attention::rope_fold_support(
        be.ctx.caps(),
        q.ne[0] as u64,
        r.n_dims as u64,
        q.ne[2] as u64,
    )
    .map_err(|e| e.to_string())?;
    lora_fold(be, g, n)
}

/// Whether the attention's folded LoRA pairs (`AttnRope::lora`) fit the kernel: f32 or
/// f16 B factors of one rank it takes, on a device that binds enough storage buffers.
pub(crate) fn lora_fold(be: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let node = g.node(n);
    let Op::Attention { rope: Some(r), .. } = &node.op else {
        return Ok(());
    };
    let count = r.lora.iter().flatten().count();
    if count == 0 {
        return Ok(());
    }
    let at = r.lora_srcs_at();
    let bs: Vec<_> = (0..count)
        .map(|i| g.tensor(node.srcs[at + 2 * i]))
        .collect();
    let (rank, ty) = (bs[0].ne[0], bs[0].ty);
    check(
        bs.iter().all(|b| b.ne[0] == rank && b.ty == ty)
            && matches!(
                ty,
                crate::quant::GgmlType::F32 | crate::quant::GgmlType::F16
            ),
        || format!("LoRA B factors of {ty} or of different ranks"),
    )?;
    dispatch::attention::lora_fold_support(be.ctx.caps(), rank as u32).map_err(|e| e.to_string())
}

pub(crate) fn moe_topk(be: &VulkanBackend, _: &Graph, _: NodeIndex) -> Support {
    check(dispatch::moe::supports_topk(be.ctx.caps()), || {
        "no subgroup ballot/shuffle for MOE_TOPK".into()
    })
}

pub(crate) fn moe_sum_rms_norm_mul(be: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let ne0 = g.tensor(g.node(n).dst).ne[0];
    let ne0 = u32::try_from(ne0).map_err(|_| format!("rows of {ne0}"))?;
    dispatch::norm::moe_sum_rms_norm_support(be.ctx.caps(), ne0).map_err(|e| e.to_string())
}

pub(crate) fn moe_router_topk(be: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let node = g.node(n);
    let Op::MoeRouterTopK { k, norm } = node.op else {
        return Err(format!("{} is not MOE_ROUTER_TOPK", node.op.name()));
    };
    let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
    check(w.ty == GgmlType::F32, || {
        format!("a {} router (f32 only)", w.ty)
    })?;
    if norm.is_some() {
        let nw = g.tensor(node.srcs[2]);
        check(nw.ty == GgmlType::F32 && nw.nelements() == w.ne[0], || {
            format!(
                "a norm weight of {} {} values for rows of {}",
                nw.nelements(),
                nw.ty,
                w.ne[0]
            )
        })?;
    }
    dispatch::moe::router_topk_support(
        be.ctx.caps(),
        w.ne[0] as u64,
        w.nrows() as u64,
        k as u64,
        x.nrows() as u64,
    )
    .map_err(|e| e.to_string())
}

pub(crate) fn top_k(be: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let node = g.node(n);
    let Op::TopK { k } = node.op else {
        return Err(format!("{} is not TOP_K", node.op.name()));
    };
    dispatch::top_k::support(be.ctx.caps(), g.tensor(node.srcs[0]).ne[0] as u64, k as u64)
        .map_err(|e| e.to_string())
}

pub(crate) fn mul_mat_id(be: &VulkanBackend, g: &Graph, n: NodeIndex) -> Support {
    let node = g.node(n);
    let op = node.op.name().trim_end_matches("_FUSED");
    let w = g.tensor(node.srcs[0]);
    let pairs = g.id_slots(n).map_or(0, |(s, t)| s * t);
    type_disabled(be, op, w.ty)?;
    check(dispatch::moe::supports_mul_mat_id(w.ty), || {
        format!("no expert-indexed kernel for {}", w.ty)
    })?;
    // The mat-vec path takes a (token, slot) pair per workgroup along z.
    let zmax = u64::from(be.ctx.caps().max_compute_work_group_count[2]);
    check(be.moe_grouped(g, n) || pairs as u64 <= zmax, || {
        format!("{pairs} (token, expert) pairs in one mat-vec dispatch (at most {zmax})")
    })
}

impl VulkanBackend {
    /// Whether this backend runs node `n` of `g`, and if not, why: an op disabled by
    /// the options (`OP` or `OP:type`, tests force CPU fallbacks), else the op's row.
    pub fn support(&self, g: &Graph, n: NodeIndex) -> Support {
        let node = g.node(n);
        let op = node.op.name().trim_end_matches("_FUSED");
        check(!self.disabled.contains(op), || format!("{op} disabled"))?;
        (crate::ops::row(&node.op).vk_support)(self, g, n)
    }
}
