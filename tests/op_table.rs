//! The op table (DESIGN.md decision 12, `vkgraph::ops`): an op added in this test — a
//! toy `TOY_AFFINE` (`y = a·x + b`) defined by its own row, with no edit to the crate —
//! runs on the CPU and on Vulkan through the row alone: the scheduler asks its support
//! predicate at plan time (a case it refuses runs on the CPU, never fails when recorded),
//! the dump names it (and says why a refused node is on the CPU), the profile costs it,
//! and both backends give the reference values.
//! Then the built-in rows: every op's row names it as `Op::name` always did, and each
//! shape constraint of their Vulkan predicates, forced, sends the node to the CPU at plan
//! time with the reason in the dump and the CPU's exact result.

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
    let x = be.f32s(g, node.srcs[0])?;
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
    let x = be.range(g, node.srcs[0])?;
    let y = be.range(g, node.dst)?;
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
        // The dump says why the node is on the CPU.
        let text = dump::dump(&g, &assign(&g, &bs, Placement::default()).unwrap());
        let want_line = format!("# fallback: Vulkan0: TOY_AFFINE takes at most {TOY_MAX} values");
        assert!(text.contains(&want_line), "{case}: dump:\n{text}");
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
        lora: [None; 3],
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
        (
            Op::MulMatId {
                split: vec![],
                glu: false,
                route: None,
            },
            "MUL_MAT_ID",
        ),
        (
            Op::MulMatId {
                split: vec![4, 4],
                glu: true,
                route: None,
            },
            "MUL_MAT_ID_SWIGLU",
        ),
        (
            Op::MulMatLayer {
                split: vec![4, 4],
                norm: Some(1e-6),
                epi: Epilogue::SwiGlu,
                scale: 1.0,
            },
            "RMS_NORM_MUL_MAT_SWIGLU",
        ),
        (
            Op::MulMatLayer {
                split: vec![],
                norm: None,
                epi: Epilogue::AddSwiGlu { gate: false },
                scale: 2.0,
            },
            "MUL_MAT_ADD_SWIGLU",
        ),
        (Op::MoeRouterTopK { k: 2, norm: None }, "MOE_ROUTER_TOPK"),
    ];
    for (op, name) in cases {
        assert_eq!(op.name(), name, "{op:?}");
        assert_eq!((vkgraph::ops::row(&op).name)(&op), name);
    }
}

/// One single-node graph that breaks a constraint of its op's Vulkan support predicate.
struct Forced {
    what: &'static str,
    g: Graph,
    /// Each input and its bytes.
    inputs: Vec<(TensorId, Vec<u8>)>,
    out: TensorId,
    /// What the refusal must say.
    reason: &'static str,
}

fn f32_input(g: &mut Graph, name: &str, ne: [usize; 4], seed: u64) -> (TensorId, Vec<u8>) {
    let t = g.add_tensor(name, GgmlType::F32, ne, TensorKind::Input);
    g.inputs.push(t);
    let v = common::values(g.tensor(t).nelements(), seed);
    (t, bytemuck::cast_slice(&v).to_vec())
}

fn i32_input(g: &mut Graph, name: &str, v: Vec<i32>) -> (TensorId, Vec<u8>) {
    let t = g.add_tensor(name, GgmlType::I32, [v.len(), 1, 1, 1], TensorKind::Input);
    g.inputs.push(t);
    (t, bytemuck::cast_slice(&v).to_vec())
}

/// The constraints tests can break on any device (shapes, not device features).
fn forced_cases() -> Vec<Forced> {
    use vkgraph::graph::RopeMode;
    let mut v = Vec::new();
    // A head norm folded into ROPE reduces a head row in one workgroup: at most 512.
    {
        let mut g = Graph::new();
        let x = f32_input(&mut g, "x", [1024, 2, 3, 1], 1);
        let pos = i32_input(&mut g, "pos", vec![0, 5, 9]);
        let w = f32_input(&mut g, "w", [1024, 1, 1, 1], 2);
        let op = Op::Rope {
            mode: RopeMode::Neox,
            n_dims: 64,
            freq_base: 1e4,
            freq_scale: 1.0,
            norm: Some(1e-6),
        };
        let out = g.op(op, &[x.0, pos.0, w.0], "y", GgmlType::F32, [1024, 2, 3, 1]);
        g.outputs.push(out);
        v.push(Forced {
            what: "RMS_NORM_MUL_ROPE head 1024",
            g,
            inputs: vec![x, pos, w],
            out,
            reason: "head norm over rows of 1024",
        });
    }
    // The expert sum + next norm keeps its row in shared memory: at most 4096 values.
    {
        let mut g = Graph::new();
        let ne0 = 4096 + 512;
        let y = f32_input(&mut g, "y", [ne0, 2, 1, 1], 3);
        let wts = f32_input(&mut g, "wts", [2, 1, 1, 1], 4);
        let r = f32_input(&mut g, "r", [ne0, 1, 1, 1], 5);
        let w = f32_input(&mut g, "w", [ne0, 1, 1, 1], 6);
        let out = g.op(
            Op::MoeSumRmsNormMul { eps: 1e-6 },
            &[y.0, wts.0, r.0, w.0],
            "out",
            GgmlType::F32,
            [ne0, 1, 1, 1],
        );
        g.outputs.push(out);
        v.push(Forced {
            what: "MOE_SUM_ADD_RMS_NORM_MUL rows of 4608",
            g,
            inputs: vec![y, wts, r, w],
            out,
            reason: "at most 4096",
        });
    }
    // The fused router + top-k takes decode batches only.
    {
        let mut g = Graph::new();
        let n = vkgraph::passes::fusion::ROUTER_TOPK_MAX_N + 1;
        let router = f32_input(&mut g, "router", [64, 8, 1, 1], 7);
        let x = f32_input(&mut g, "x", [64, n, 1, 1], 8);
        let out = g.op(
            Op::MoeRouterTopK { k: 2, norm: None },
            &[router.0, x.0],
            "ids",
            GgmlType::I32,
            [2, n, 1, 1],
        );
        g.outputs.push(out);
        v.push(Forced {
            what: "MOE_ROUTER_TOPK of 9 tokens",
            g,
            inputs: vec![router, x],
            out,
            reason: "9 tokens",
        });
    }
    // TOP_K keeps at most 64 candidates per row.
    {
        let mut g = Graph::new();
        let l = f32_input(&mut g, "logits", [1000, 2, 1, 1], 9);
        let k = 65;
        let out = g.op(
            Op::TopK { k },
            &[l.0],
            "top",
            GgmlType::F32,
            [2 + 2 * k, 2, 1, 1],
        );
        g.outputs.push(out);
        v.push(Forced {
            what: "TOP_K k = 65",
            g,
            inputs: vec![l],
            out,
            reason: "k = 65 outside",
        });
    }
    // The matmul kernels tile rows in 16-value blocks (a rank-8 LoRA factor's shape).
    {
        let mut g = Graph::new();
        let w = f32_input(&mut g, "w", [8, 4, 1, 1], 10);
        let x = f32_input(&mut g, "x", [8, 3, 1, 1], 11);
        let out = g.op(
            Op::MulMat { split: vec![] },
            &[w.0, x.0],
            "y",
            GgmlType::F32,
            [4, 3, 1, 1],
        );
        g.outputs.push(out);
        v.push(Forced {
            what: "MUL_MAT f32 k = 8",
            g,
            inputs: vec![w, x],
            out,
            reason: "not whole 16-value kernel blocks",
        });
    }
    v
}

/// Plans `f.g` on `backends` and runs its one node; its output bytes and who ran it.
fn run_forced(backends: &mut [Box<dyn Backend>], f: &Forced) -> (Vec<u8>, usize) {
    let a = assign(&f.g, backends, Placement::default()).expect("plan");
    let n = f.g.order().next().expect("one node");
    let b = a.backend_of[&n];
    let be = &mut backends[b];
    be.prepare_for(&f.g, a.nodes_of(b)).expect("prepare");
    for (t, bytes) in &f.inputs {
        be.set_tensor(&f.g, *t, bytes).expect("set input");
    }
    be.compute(&f.g, &f.g.schedule).expect("compute");
    (be.get_tensor(&f.g, f.out).expect("output"), b)
}

#[test]
fn each_forced_constraint_falls_back_to_the_cpu_when_planned() {
    let m = models::tiny_model("llama", "q4_0");
    for gpu in common::devices() {
        for f in forced_cases() {
            let case = gpu.case(f.what);
            let vk = VulkanBackend::new(m.clone(), &common::options(gpu.ctx.caps().index)).unwrap();
            let n = f.g.order().next().unwrap();
            let why = vk.support(&f.g, n).expect_err(&case);
            assert!(why.contains(f.reason), "{case}: refused because {why:?}");
            let mut both: Vec<Box<dyn Backend>> =
                vec![Box::new(vk), Box::new(CpuBackend::new(m.clone()))];
            let text = dump::dump(&f.g, &assign(&f.g, &both, Placement::default()).unwrap());
            assert!(
                text.contains(&format!("# fallback: Vulkan0: {why}")),
                "{case}:\n{text}"
            );
            let (got, b) = run_forced(&mut both, &f);
            assert_eq!(b, 1, "{case}: planned onto the CPU");
            let mut cpu: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::new(m.clone()))];
            let (want, _) = run_forced(&mut cpu, &f);
            assert_eq!(got, want, "{case}: the CPU's result");
            drop(both);
            gpu.assert_clean(&case);
        }
    }
}
