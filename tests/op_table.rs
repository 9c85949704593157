//! The op table (DESIGN.md decision 12, `vkgraph::ops`): an op added in this test — a
//! toy `TOY_AFFINE` (`y = a·x + b`) defined by its own row, with no edit to the crate —
//! runs on the CPU and on Vulkan through the row alone: the scheduler asks its support
//! predicate at plan time (a case it refuses runs on the CPU, never fails when recorded),
//! the dump names it, the profile costs it, and both backends give the reference values.
//! Then the built-in rows: every op's row names it as `Op::name` always did.

mod common;
mod models;

use petgraph::stable_graph::NodeIndex;
use vkgraph::backend::cpu::CpuBackend;
use vkgraph::backend::vulkan::executor::Extra;
use vkgraph::backend::vulkan::{dispatch, Recorder, VulkanBackend};
use vkgraph::backend::Backend;
use vkgraph::graph::{CustomOp, Graph, Op, TensorId, TensorKind};
use vkgraph::ops::{elementwise_cost, OpRow};
use vkgraph::quant::GgmlType;
use vkgraph::sched::{assign, dump, Placement};
use vkgraph::{Error, Result};

/// The most values the toy's Vulkan row takes (its support predicate's constraint).
const TOY_MAX: usize = 1024;

/// `params = [a, b]`.
fn toy_params(g: &Graph, n: NodeIndex) -> Result<(f32, f32)> {
    match &g.node(n).op {
        Op::Custom(c) if c.params.len() == 2 => Ok((c.params[0], c.params[1])),
        op => Err(Error::Usage(format!(
            "TOY_AFFINE row called for {}",
            op.name()
        ))),
    }
}

fn toy_cpu(be: &mut CpuBackend, g: &Graph, n: NodeIndex) -> Result<()> {
    let (a, b) = toy_params(g, n)?;
    let node = g.node(n);
    let x = be.read_f32s(g, node.srcs[0])?;
    let y: Vec<f32> = x.iter().map(|v| a * v + b).collect();
    be.write_f32s(g, node.dst, &y)
}

fn toy_vk_support(_: &VulkanBackend, g: &Graph, n: NodeIndex) -> std::result::Result<(), String> {
    let len = g.tensor(g.node(n).srcs[0]).nelements();
    if len <= TOY_MAX {
        Ok(())
    } else {
        Err(format!(
            "TOY_AFFINE takes at most {TOY_MAX} values, not {len}"
        ))
    }
}

fn toy_vk_record(
    be: &VulkanBackend,
    rec: &mut Recorder,
    g: &Graph,
    n: NodeIndex,
    _: &Extra,
) -> Result<()> {
    let (a, b) = toy_params(g, n)?;
    let node = g.node(n);
    let x = be.tensor_range(g, node.srcs[0])?;
    let y = be.tensor_range(g, node.dst)?;
    let len = g.tensor(node.srcs[0]).nelements() as u64;
    assert!(
        len as usize <= TOY_MAX,
        "recorded a case the support predicate refuses"
    );
    // The kernel: scale.comp computes a·x + b.
    dispatch::scale::scale(rec, x, y, len, a, b)
}

static TOY: OpRow = OpRow {
    name: |_| "TOY_AFFINE",
    cpu: toy_cpu,
    vk_support: toy_vk_support,
    vk_record: toy_vk_record,
    cost: elementwise_cost,
};

/// `x [len]` → `TOY_AFFINE(a, b)` → `y`.
fn toy_graph(len: usize, a: f32, b: f32) -> (Graph, TensorId, TensorId) {
    let mut g = Graph::new();
    let x = g.add_tensor("x", GgmlType::F32, [len, 1, 1, 1], TensorKind::Input);
    g.inputs.push(x);
    let op = Op::Custom(CustomOp {
        row: &TOY,
        params: vec![a, b],
    });
    let y = g.op(op, &[x], "y", GgmlType::F32, [len, 1, 1, 1]);
    g.outputs.push(y);
    (g, x, y)
}

/// Plans `g` on `backends`, runs it and returns `y` and the backend that ran the node.
fn run(
    backends: &mut [Box<dyn Backend>],
    g: &Graph,
    x: TensorId,
    y: TensorId,
) -> (Vec<f32>, String) {
    let a = assign(g, backends, Placement::default()).expect("plan");
    let n = g.order().next().expect("one node");
    let b = a.backend_of[&n];
    let be = &mut backends[b];
    be.prepare_for(g, a.nodes_of(b)).expect("prepare");
    let xs: Vec<f32> = (0..g.tensor(x).nelements())
        .map(|i| i as f32 * 0.25 - 3.0)
        .collect();
    be.set_tensor(g, x, bytemuck::cast_slice(&xs))
        .expect("set x");
    be.compute(g, &g.schedule).expect("compute");
    let out = be.get_tensor(g, y).expect("get y");
    (bytemuck::pod_collect_to_vec(&out), be.name())
}

#[test]
fn a_toy_op_runs_from_its_row_alone() {
    let (a, b) = (1.5f32, -0.5f32);
    let want =
        |len: usize| -> Vec<f32> { (0..len).map(|i| a * (i as f32 * 0.25 - 3.0) + b).collect() };
    let m = models::tiny_model("llama", "q4_0");
    // The CPU alone: the row's reference kernel.
    let (g, x, y) = toy_graph(64, a, b);
    let mut cpu: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new(m.clone()))];
    let (got, who) = run(&mut cpu, &g, x, y);
    assert_eq!(who, "CPU");
    assert_eq!(got, want(64), "CPU kernel");
    // Its name in the dump and its cost for the profile come from the row.
    let a_cpu = assign(&g, &cpu, Placement::default()).unwrap();
    let text = dump::dump(&g, &a_cpu);
    assert!(text.contains("TOY_AFFINE"), "dump:\n{text}");
    let n = g.order().next().unwrap();
    let cost = vkgraph::ops::cost(&g, n);
    assert_eq!(cost.label, "TOY_AFFINE [64]");
    assert_eq!((cost.bytes, cost.flops), (2 * 64 * 4, 64));

    for gpu in common::devices() {
        let case = gpu.case("TOY_AFFINE");
        let backends = || -> Vec<Box<dyn Backend>> {
            let vk = VulkanBackend::new(m.clone(), &common::options(gpu.ctx.caps().index)).unwrap();
            vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))]
        };
        // Within the predicate: Vulkan runs it, exactly (one f32 FMA or mul + add each).
        let (g, x, y) = toy_graph(TOY_MAX, a, b);
        let mut bs = backends();
        let (got, who) = run(&mut bs, &g, x, y);
        assert_eq!(who, "Vulkan0", "{case}");
        for (i, (g, w)) in got.iter().zip(want(TOY_MAX)).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{case} [{i}]: {g} vs {w}"
            );
        }
        let vk_support =
            |bs: &Vec<Box<dyn Backend>>, g: &Graph| bs[0].supports(g, g.order().next().unwrap());
        assert!(vk_support(&bs, &g), "{case}");
        drop(bs);
        // Past it: refused when planned, so the CPU runs it — no record-time error.
        let (g, x, y) = toy_graph(TOY_MAX + 1, a, b);
        let mut bs = backends();
        assert!(!vk_support(&bs, &g), "{case}: the predicate refuses");
        let (got, who) = run(&mut bs, &g, x, y);
        assert_eq!(who, "CPU", "{case}: planned onto the CPU");
        assert_eq!(got, want(TOY_MAX + 1), "{case}");
        drop(bs);
        gpu.assert_clean(&case);
    }
}

#[test]
fn built_in_rows_keep_the_op_names() {
    use vkgraph::graph::{AttnRope, Epilogue, RopeMode};
    let rope = AttnRope {
        mode: RopeMode::Neox,
        n_dims: 64,
        freq_base: 1e4,
        freq_scale: 1.0,
        norm: None,
    };
    let cases: Vec<(Op, &str)> = vec![
        (Op::GetRows, "GET_ROWS"),
        (Op::RmsNorm { eps: 1e-6 }, "RMS_NORM"),
        (Op::AddRmsNormMul { eps: 1e-6 }, "ADD_RMS_NORM_MUL"),
        (Op::MulMat { split: vec![] }, "MUL_MAT"),
        (Op::MulMat { split: vec![2, 2] }, "MUL_MAT_FUSED"),
        (
            Op::Attention {
                scale: 1.0,
                rope: Some(rope),
            },
            "ROPE_ATTENTION",
        ),
        (Op::MoeSum { residual: true }, "MOE_SUM_ADD"),
        (Op::MulMatId { split: vec![] }, "MUL_MAT_ID"),
        (
            Op::MulMatLayer {
                split: vec![4, 4],
                norm: Some(1e-6),
                epi: Epilogue::SwiGlu,
                scale: 1.0,
            },
            "RMS_NORM_MUL_MAT_SWIGLU",
        ),
        (Op::MoeRouterTopK { k: 2 }, "MOE_ROUTER_TOPK"),
    ];
    for (op, name) in cases {
        assert_eq!(op.name(), name, "{op:?}");
        assert_eq!((vkgraph::ops::row(&op).name)(&op), name);
    }
}
