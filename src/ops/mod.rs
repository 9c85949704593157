//! The op table (DESIGN.md decision 12): one row per op that names, in one place, its
//! CPU reference kernel, its Vulkan dispatch, the Vulkan support predicate the scheduler
//! asks at plan time (the same constraints the dispatch enforces, so what a device cannot
//! run falls back to the CPU when planned, never fails when recorded), its cost for the
//! profile (label, bytes, flops) and its name in dumps.
//!
//! [`row`] is the only place that maps an [`Op`] to what runs it: the CPU backend's
//! `compute`, the Vulkan executor's `supports` and recording, the profile and
//! [`Op::name`] all go through it. Adding an op means a variant of [`Op`], a row here and
//! its kernels (`backend::cpu::kernels`, `backend::vulkan::executor::{record, support}`
//! and the dispatch helper with its shader). An op defined outside this crate (a test's
//! toy op) is an [`Op::Custom`] that carries its own `&'static OpRow`: no edit here at all
//! (`tests/op_table.rs`).
//!
//! What stays outside the table, because it is about several ops at once: the fusion
//! passes (which ops fold into which), the executor's decode plan (q8_1 copies, split-K
//! scratch) and the op suite's cases (`testops::cases`).

use petgraph::stable_graph::NodeIndex;

use crate::backend::cpu::{kernels as cpu, CpuBackend};
use crate::backend::vulkan::executor::record::{self as vk, Extra};
use crate::backend::vulkan::executor::support::{self as vks, Support};
use crate::backend::vulkan::{Recorder, VulkanBackend};
use crate::graph::{Epilogue, Graph, Op};
use crate::Result;

/// One row of the op table.
pub struct OpRow {
    /// The name in dumps, profiles and test names (ggml style), per the op's parameters.
    pub name: fn(&Op) -> &'static str,
    /// The CPU reference kernel: evaluates node `n` and writes its output
    /// ([`CpuBackend::f32s`], [`CpuBackend::write_f32s`]).
    pub cpu: fn(&mut CpuBackend, &Graph, NodeIndex) -> Result<()>,
    /// Whether the Vulkan backend runs node `n` (`Err`: why not). Asked when the
    /// scheduler plans; what it accepts, `vk_record` must record.
    pub vk_support: fn(&VulkanBackend, &Graph, NodeIndex) -> Support,
    /// Records node `n`'s dispatch(es) ([`VulkanBackend::range`] binds its
    /// tensors); `Extra` carries what the executor's folds ask the kernel to write too.
    pub vk_record: fn(&VulkanBackend, &mut Recorder, &Graph, NodeIndex, &Extra) -> Result<()>,
    /// The profile's label, bytes moved and flops of node `n`.
    pub cost: fn(&Graph, NodeIndex) -> Cost,
}

impl std::fmt::Debug for OpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpRow").finish_non_exhaustive()
    }
}

/// A node's cost for the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cost {
    /// e.g. `MUL_MAT q4_0 4096x4096 n=1`, `RMS_NORM [4096]`.
    pub label: String,
    /// Bytes read and written (a MUL_MAT_ID reads only its chosen experts).
    pub bytes: u64,
    /// Floating-point operations (2·k·m·n for matmuls, elements otherwise).
    pub flops: u64,
}

/// The row that runs `op`.
pub fn row(op: &Op) -> &'static OpRow {
    match op {
        Op::GetRows => &GET_ROWS,
        Op::RmsNorm { .. } => &RMS_NORM,
        Op::RmsNormMul { .. } => &RMS_NORM_MUL,
        Op::AddRmsNormMul { .. } => &ADD_RMS_NORM_MUL,
        Op::MoeSumRmsNormMul { .. } => &MOE_SUM_ADD_RMS_NORM_MUL,
        Op::Mul => &MUL,
        Op::Add => &ADD,
        Op::Scale { .. } => &SCALE,
        Op::MulMat { .. } => &MUL_MAT,
        Op::Rope { .. } => &ROPE,
        Op::SwiGlu => &SWIGLU,
        Op::Cpy => &CPY,
        Op::SetRows => &SET_ROWS,
        Op::RopeSetRows { .. } => &ROPE_SET_ROWS,
        Op::Attention { .. } => &ATTENTION,
        Op::MoeTopK { .. } => &MOE_TOPK,
        Op::MoeWeights => &MOE_WEIGHTS,
        Op::MulMatId { .. } => &MUL_MAT_ID,
        Op::MulMatLayer { .. } => &MUL_MAT_LAYER,
        Op::TopK { .. } => &TOP_K,
        Op::MoeRouterTopK { .. } => &MOE_ROUTER_TOPK,
        Op::MoeSum { .. } => &MOE_SUM,
        Op::Custom(c) => c.row,
    }
}

/// Node `n`'s cost (its row's `cost`).
pub fn cost(g: &Graph, n: NodeIndex) -> Cost {
    (row(&g.node(n).op).cost)(g, n)
}

// ---- costs -------------------------------------------------------------------------

/// Bytes of every source and the output.
fn bytes_moved(g: &Graph, n: NodeIndex) -> u64 {
    let node = g.node(n);
    node.srcs
        .iter()
        .chain(std::iter::once(&node.dst))
        .map(|&t| g.tensor(t).nbytes() as u64)
        .sum()
}

/// `OP [shape]`, the bytes of every operand, one flop per output element.
pub fn elementwise_cost(g: &Graph, n: NodeIndex) -> Cost {
    let node = g.node(n);
    let dst = g.tensor(node.dst);
    Cost {
        label: format!("{} {}", node.op.name(), dst.shape_str()),
        bytes: bytes_moved(g, n),
        flops: dst.nelements() as u64,
    }
}

/// `OP type kxm n=tokens`, 2·k·m·n flops (none for GET_ROWS).
fn mul_mat_cost(g: &Graph, n: NodeIndex) -> Cost {
    let node = g.node(n);
    let (w, x) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
    let flops = match node.op {
        Op::GetRows => 0,
        _ => 2 * (w.ne[0] * w.nrows() * x.nrows()) as u64,
    };
    Cost {
        label: format!(
            "{} {} {}x{} n={}",
            node.op.name(),
            w.type_str(),
            w.ne[0],
            w.nrows(),
            x.nrows()
        ),
        bytes: bytes_moved(g, n),
        flops,
    }
}

/// As [`elementwise_cost`], but only the chosen experts' matrices are read: at most one
/// per (token, slot).
fn mul_mat_id_cost(g: &Graph, n: NodeIndex) -> Cost {
    let node = g.node(n);
    let (w, ids) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[2]));
    let per_expert = (w.nbytes() / w.ne[2].max(1)) as u64;
    let read = (ids.nelements().min(w.ne[2]) as u64) * per_expert;
    let mut c = elementwise_cost(g, n);
    c.bytes = c.bytes - w.nbytes() as u64 + read;
    c
}

/// `OP d= h=q/kv n= kv=`, 4·d·heads·n·kv flops.
fn attention_cost(g: &Graph, n: NodeIndex) -> Cost {
    let node = g.node(n);
    let (q, k) = (g.tensor(node.srcs[0]), g.tensor(node.srcs[1]));
    Cost {
        label: format!(
            "{} d={} h={}/{} n={} kv={}",
            node.op.name(),
            q.ne[0],
            q.ne[1],
            k.ne[1],
            q.ne[2],
            k.ne[2]
        ),
        bytes: bytes_moved(g, n),
        flops: 4 * (q.ne[0] * q.ne[1] * q.ne[2] * k.ne[2]) as u64,
    }
}

// ---- names ---------------------------------------------------------------------------

fn mul_mat_name(op: &Op) -> &'static str {
    match op {
        Op::MulMat { split } if split.is_empty() => "MUL_MAT",
        _ => "MUL_MAT_FUSED",
    }
}

fn mul_mat_id_name(op: &Op) -> &'static str {
    match op {
        Op::MulMatId { glu: true, .. } => "MUL_MAT_ID_SWIGLU",
        Op::MulMatId { split, .. } if split.is_empty() => "MUL_MAT_ID",
        _ => "MUL_MAT_ID_FUSED",
    }
}

fn rope_name(op: &Op) -> &'static str {
    match op {
        Op::Rope { norm: Some(_), .. } => "RMS_NORM_MUL_ROPE",
        _ => "ROPE",
    }
}

fn rope_set_rows_name(op: &Op) -> &'static str {
    match op {
        Op::RopeSetRows { norm: Some(_), .. } => "RMS_NORM_MUL_ROPE_SET_ROWS",
        _ => "ROPE_SET_ROWS",
    }
}

fn attention_name(op: &Op) -> &'static str {
    match op {
        Op::Attention { rope: Some(_), .. } => "ROPE_ATTENTION",
        _ => "ATTENTION",
    }
}

fn moe_sum_name(op: &Op) -> &'static str {
    match op {
        Op::MoeSum { residual: true } => "MOE_SUM_ADD",
        _ => "MOE_SUM",
    }
}

fn mul_mat_layer_name(op: &Op) -> &'static str {
    let Op::MulMatLayer {
        split, norm, epi, ..
    } = op
    else {
        return "MUL_MAT_LAYER";
    };
    match (norm.is_some(), epi) {
        (true, Epilogue::None) if split.is_empty() => "RMS_NORM_MUL_MAT",
        (true, Epilogue::None) => "RMS_NORM_MUL_MAT_FUSED",
        (true, Epilogue::Add) => "RMS_NORM_MUL_MAT_ADD",
        (true, Epilogue::SwiGlu) => "RMS_NORM_MUL_MAT_SWIGLU",
        (true, Epilogue::Bias) => "RMS_NORM_MUL_MAT_BIAS",
        (false, Epilogue::Bias) => "MUL_MAT_BIAS",
        (false, Epilogue::None) => "MUL_MAT_LAYER",
        (false, Epilogue::Add) => "MUL_MAT_ADD",
        (false, Epilogue::SwiGlu) => "MUL_MAT_SWIGLU",
        (true, Epilogue::AddSwiGlu { .. }) => "RMS_NORM_MUL_MAT_ADD_SWIGLU",
        (false, Epilogue::AddSwiGlu { .. }) => "MUL_MAT_ADD_SWIGLU",
    }
}

// ---- the table -----------------------------------------------------------------------

static GET_ROWS: OpRow = OpRow {
    name: |_| "GET_ROWS",
    cpu: cpu::get_rows,
    vk_support: vks::mul_mat,
    vk_record: vk::get_rows,
    cost: mul_mat_cost,
};
static RMS_NORM: OpRow = OpRow {
    name: |_| "RMS_NORM",
    cpu: cpu::rms_norm,
    vk_support: vks::always,
    vk_record: vk::rms_norm,
    cost: elementwise_cost,
};
static RMS_NORM_MUL: OpRow = OpRow {
    name: |_| "RMS_NORM_MUL",
    cpu: cpu::rms_norm_mul,
    vk_support: vks::always,
    vk_record: vk::rms_norm_mul,
    cost: elementwise_cost,
};
static ADD_RMS_NORM_MUL: OpRow = OpRow {
    name: |_| "ADD_RMS_NORM_MUL",
    cpu: cpu::add_rms_norm_mul,
    vk_support: vks::always,
    vk_record: vk::add_rms_norm_mul,
    cost: elementwise_cost,
};
static MOE_SUM_ADD_RMS_NORM_MUL: OpRow = OpRow {
    name: |_| "MOE_SUM_ADD_RMS_NORM_MUL",
    cpu: cpu::moe_sum_rms_norm_mul,
    vk_support: vks::moe_sum_rms_norm_mul,
    vk_record: vk::moe_sum_rms_norm_mul,
    cost: elementwise_cost,
};
static MUL: OpRow = OpRow {
    name: |_| "MUL",
    cpu: cpu::binary,
    vk_support: vks::always,
    vk_record: vk::binary,
    cost: elementwise_cost,
};
static ADD: OpRow = OpRow {
    name: |_| "ADD",
    cpu: cpu::binary,
    vk_support: vks::always,
    vk_record: vk::binary,
    cost: elementwise_cost,
};
static SCALE: OpRow = OpRow {
    name: |_| "SCALE",
    cpu: cpu::scale,
    vk_support: vks::always,
    vk_record: vk::scale,
    cost: elementwise_cost,
};
static MUL_MAT: OpRow = OpRow {
    name: mul_mat_name,
    cpu: cpu::mul_mat,
    vk_support: vks::mul_mat,
    vk_record: vk::mul_mat,
    cost: mul_mat_cost,
};
static ROPE: OpRow = OpRow {
    name: rope_name,
    cpu: cpu::rope,
    vk_support: vks::rope,
    vk_record: vk::rope,
    cost: elementwise_cost,
};
static SWIGLU: OpRow = OpRow {
    name: |_| "SWIGLU",
    cpu: cpu::swiglu,
    vk_support: vks::always,
    vk_record: vk::swiglu,
    cost: elementwise_cost,
};
static CPY: OpRow = OpRow {
    name: |_| "CPY",
    cpu: cpu::cpy,
    vk_support: vks::cpy,
    vk_record: vk::cpy,
    cost: elementwise_cost,
};
static SET_ROWS: OpRow = OpRow {
    name: |_| "SET_ROWS",
    cpu: cpu::set_rows,
    vk_support: vks::set_rows,
    vk_record: vk::set_rows,
    cost: elementwise_cost,
};
static ROPE_SET_ROWS: OpRow = OpRow {
    name: rope_set_rows_name,
    cpu: cpu::rope_set_rows,
    vk_support: vks::rope,
    vk_record: vk::rope_set_rows,
    cost: elementwise_cost,
};
static ATTENTION: OpRow = OpRow {
    name: attention_name,
    cpu: cpu::attention,
    vk_support: vks::attention,
    vk_record: vk::attention,
    cost: attention_cost,
};
static MOE_TOPK: OpRow = OpRow {
    name: |_| "MOE_TOPK",
    cpu: cpu::moe_topk,
    vk_support: vks::moe_topk,
    vk_record: vk::moe_topk,
    cost: elementwise_cost,
};
static MOE_WEIGHTS: OpRow = OpRow {
    name: |_| "MOE_WEIGHTS",
    cpu: cpu::moe_weights,
    vk_support: vks::always,
    vk_record: vk::moe_weights,
    cost: elementwise_cost,
};
static MUL_MAT_ID: OpRow = OpRow {
    name: mul_mat_id_name,
    cpu: cpu::mul_mat_id,
    vk_support: vks::mul_mat_id,
    vk_record: vk::mul_mat_id,
    cost: mul_mat_id_cost,
};
static MUL_MAT_LAYER: OpRow = OpRow {
    name: mul_mat_layer_name,
    cpu: cpu::mul_mat_layer,
    vk_support: vks::mul_mat_layer,
    vk_record: vk::mul_mat_layer,
    cost: mul_mat_cost,
};
static TOP_K: OpRow = OpRow {
    name: |_| "TOP_K",
    cpu: cpu::top_k,
    vk_support: vks::top_k,
    vk_record: vk::top_k,
    cost: elementwise_cost,
};
static MOE_ROUTER_TOPK: OpRow = OpRow {
    name: |_| "MOE_ROUTER_TOPK",
    cpu: cpu::moe_router_topk,
    vk_support: vks::moe_router_topk,
    vk_record: vk::moe_router_topk,
    cost: elementwise_cost,
};
static MOE_SUM: OpRow = OpRow {
    name: moe_sum_name,
    cpu: cpu::moe_sum,
    vk_support: vks::always,
    vk_record: vk::moe_sum,
    cost: elementwise_cost,
};
