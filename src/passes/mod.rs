//! Graph passes run before scheduling: op fusion ([`fusion`], rms_norm+mul), the
//! sibling-matmul pass ([`sibling_matmul`], fuse or reorder Q/K/V and gate/up),
//! decode-layer fusion ([`layer`], norms / residual adds / SwiGLU into the matmuls) and
//! stage / barrier planning ([`plan`]).

pub mod fusion;
pub mod layer;
pub mod plan;
pub mod sibling_matmul;

pub use layer::{Fusable, FusionLevel};
pub use sibling_matmul::{any_group, Groupable, QkvMode, SiblingLimits};

use crate::graph::Graph;

/// A [`Fusable`] for graphs not planned for a particular backend (tests, the CPU): every
/// matmul takes work folded around it.
pub fn any_backend(_: &Graph, _: petgraph::stable_graph::NodeIndex) -> Result<(), String> {
    Ok(())
}

/// Runs the passes for `mode` at fusion level `fusion`: element-wise fusions (`Ops` and
/// up), the sibling pass (asking `groupable` for mixed-type sets in `group`/`auto`),
/// decode-layer fusion (`Layer`, asking `fusable` per matmul), then stage formation (one
/// node per stage for `off`, DAG levels otherwise).
pub fn run(
    g: &mut Graph,
    mode: QkvMode,
    limits: &SiblingLimits,
    fusion: FusionLevel,
    fusable: Fusable<'_>,
    groupable: Groupable<'_>,
) {
    if fusion >= FusionLevel::Ops {
        fusion::rms_norm_mul(g);
        fusion::rope_set_rows(g);
        fusion::rms_norm_rope(g);
        fusion::moe_sum_add(g);
    }
    sibling_matmul::run(g, mode, limits, groupable);
    if fusion >= FusionLevel::Layer {
        layer::run(g, fusable);
    }
    if fusion >= FusionLevel::Ops {
        // After the layer folds: a norm of a residual sum left unfolded reads the sum's
        // operands, so it runs beside the ADD instead of after it.
        fusion::add_rms_norm_mul(g);
        fusion::moe_router_topk(g);
    }
    g.barrier_every_node = mode == QkvMode::Off;
    if mode == QkvMode::Off {
        plan::serial_stages(g);
    } else {
        plan::level_stages(g);
    }
    g.uid = Graph::next_uid();
    debug_assert_eq!(g.check_schedule(), Ok(()));
}
