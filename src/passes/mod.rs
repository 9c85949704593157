//! Graph passes run before scheduling: op fusion ([`fusion`], rms_norm+mul), the
//! sibling-matmul pass ([`sibling_matmul`], fuse or reorder Q/K/V and gate/up) and
//! stage / barrier planning ([`plan`]).

pub mod fusion;
pub mod plan;
pub mod sibling_matmul;

pub use sibling_matmul::{QkvMode, SiblingLimits};

use crate::graph::Graph;

/// Runs the passes for `mode`: the sibling pass, then stage formation (one node per
/// stage for `off`, DAG levels otherwise).
pub fn run(g: &mut Graph, mode: QkvMode, limits: &SiblingLimits) {
    fusion::rms_norm_mul(g);
    fusion::add_rms_norm_mul(g);
    fusion::rope_set_rows(g);
    fusion::rms_norm_rope(g);
    sibling_matmul::run(g, mode, limits);
    g.barrier_every_node = mode == QkvMode::Off;
    if mode == QkvMode::Off {
        plan::serial_stages(g);
    } else {
        plan::level_stages(g);
    }
    g.uid = Graph::next_uid();
    debug_assert_eq!(g.check_schedule(), Ok(()));
}
