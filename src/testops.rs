//! `vkgraph test-ops`: every op × type × shape on a Vulkan device against the CPU reference
//! (`backend::cpu::ops`, the same quantized bytes), as ggml's test-backend-ops is for people
//! bringing up a new driver. Each case is named like
//! `mul_mat_vec(type=q4_K,m=33,k=256,n=1)`; a run prints one line per case and a summary
//! `N passed, N failed, N unsupported`; `--perf` also times each case from GPU timestamps.
//!
//! Invariants:
//! - A case passes only on a finite output within its NMSE bound of the reference
//!   (5e-4 for matmuls — the GPU sums in another order —, 1e-5 elsewhere); a kernel the
//!   device lacks is *unsupported*, counted apart, never a pass.
//! - Inputs are deterministic (xorshift), so a failure reproduces.

use half::f16;

use crate::backend::cpu::ops;
use crate::backend::vulkan::dispatch;
use crate::backend::vulkan::{Buffer, MemoryLocation, Recorder, VulkanContext};
use crate::graph::RopeMode;
use crate::quant::{self, GgmlType};
use crate::{Error, Result};

/// One op instance.
#[derive(Clone, Debug)]
pub enum Case {
    /// Float-activation matmul: mat-vec for n ≤ 8, the tiled kernel above.
    MulMat {
        ty: GgmlType,
        m: u32,
        k: u32,
        n: u32,
    },
    /// Integer-dot mat-vec over q8_1 activations (`quantize_q8_1` first).
    MulMatVecq {
        ty: GgmlType,
        m: u32,
        k: u32,
        n: u32,
    },
    /// The mat-vec with decode-layer fusion (`Op::MulMatLayer`): an RMS-norm prologue
    /// (`norm`), and epilogue `epi` = 0 none (over `segs` equal segments), 1 residual add,
    /// 2 SwiGLU (two segments of `m` rows: gate, up).
    MulMatLayer {
        ty: GgmlType,
        m: u32,
        k: u32,
        n: u32,
        norm: bool,
        epi: u8,
        segs: u32,
    },
    /// `Op::TopK` over `n` rows of `v` logits; `ties`: logits rounded to a few values.
    TopK {
        v: u32,
        k: u32,
        n: u32,
        ties: bool,
    },
    GetRows {
        ty: GgmlType,
        ne0: u32,
        n: u32,
    },
    RmsNorm {
        ne0: u32,
        rows: u32,
    },
    Add {
        ne0: u32,
        rows: u32,
    },
    Swiglu {
        n: u32,
    },
    Scale {
        n: u32,
    },
    Rope {
        head_dim: u32,
        n_dims: u32,
        n_head: u32,
        n: u32,
        neox: bool,
    },
    Attention {
        d: u32,
        n_head: u32,
        n_head_kv: u32,
        n: u32,
        n_kv: u32,
    },
    /// MOE_TOPK then MOE_WEIGHTS on the device; the weights are compared (a wrong expert
    /// set or order changes them: they are the chosen logits' softmax, largest first).
    /// With 60 experts the logits are whole numbers, so ties decide (a wrong tie order
    /// leaves the weights equal: that case checks the set, the CPU tests the order).
    MoeRoute {
        n_expert: u32,
        k: u32,
        n: u32,
    },
    /// MUL_MAT_ID with ids that leave the last two experts without a token; `fused`: a
    /// second expert stack of m + 5 rows after the first (a fused gate/up weight).
    MulMatId {
        ty: GgmlType,
        m: u32,
        k: u32,
        n_expert: u32,
        n_used: u32,
        nx: u32,
        n: u32,
        fused: bool,
    },
    MoeSum {
        ne0: u32,
        n_used: u32,
        n: u32,
    },
}

/// How a case ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Pass { nmse: f64 },
    Fail(String),
    Unsupported(String),
}

impl Case {
    /// The op's name (what `-o` matches).
    pub fn op(&self) -> &'static str {
        match self {
            Case::MulMat { n, .. } if *n <= dispatch::mul_mat::MAT_VEC_MAX_N => "mul_mat_vec",
            Case::MulMat { .. } => "mul_mat",
            Case::MulMatVecq { .. } => "mul_mat_vecq",
            Case::MulMatLayer { .. } => "mul_mat_vec_layer",
            Case::TopK { .. } => "top_k",
            Case::GetRows { .. } => "get_rows",
            Case::RmsNorm { .. } => "rms_norm",
            Case::Add { .. } => "add",
            Case::Swiglu { .. } => "swiglu",
            Case::Scale { .. } => "scale",
            Case::Rope { .. } => "rope",
            Case::Attention { .. } => "attention",
            Case::MoeRoute { .. } => "moe_route",
            Case::MulMatId { .. } => "mul_mat_id",
            Case::MoeSum { .. } => "moe_sum",
        }
    }

    /// `op(params)`, the name a run prints.
    pub fn name(&self) -> String {
        let p = match self {
            Case::MulMat { ty, m, k, n } | Case::MulMatVecq { ty, m, k, n } => {
                format!("type={ty},m={m},k={k},n={n}")
            }
            Case::MulMatLayer {
                ty,
                m,
                k,
                n,
                norm,
                epi,
                segs,
            } => format!(
                "type={ty},m={m}x{segs},k={k},n={n},{}{}",
                // Cases without the norm also scale the product (a folded SCALE).
                if *norm { "norm," } else { "scale," },
                ["none", "add", "swiglu"][*epi as usize]
            ),
            Case::TopK { v, k, n, ties } => {
                format!("v={v},k={k},n={n}{}", if *ties { ",ties" } else { "" })
            }
            Case::GetRows { ty, ne0, n } => format!("type={ty},ne0={ne0},n={n}"),
            Case::RmsNorm { ne0, rows } | Case::Add { ne0, rows } => {
                format!("ne0={ne0},rows={rows}")
            }
            Case::Swiglu { n } | Case::Scale { n } => format!("n={n}"),
            Case::Rope {
                head_dim,
                n_dims,
                n_head,
                n,
                neox,
            } => format!(
                "mode={},head_dim={head_dim},n_dims={n_dims},h={n_head},n={n}",
                if *neox { "neox" } else { "normal" }
            ),
            Case::Attention {
                d,
                n_head,
                n_head_kv,
                n,
                n_kv,
            } => {
                format!("d={d},h={n_head}/{n_head_kv},n={n},n_kv={n_kv}")
            }
            Case::MoeRoute { n_expert, k, n } => format!("experts={n_expert},k={k},n={n}"),
            Case::MulMatId {
                ty,
                m,
                k,
                n_expert,
                n_used,
                nx,
                n,
                fused,
            } => format!(
                "type={ty},m={m}{},k={k},experts={n_expert}/{n_used},nx={nx},n={n}",
                if *fused {
                    format!("+{}", m + 5)
                } else {
                    String::new()
                }
            ),
            Case::MoeSum { ne0, n_used, n } => format!("ne0={ne0},used={n_used},n={n}"),
        };
        format!("{}({p})", self.op())
    }

    /// Bytes the op reads and writes (for `--perf`'s GB/s).
    fn bytes(&self) -> u64 {
        match *self {
            Case::MulMat { ty, m, k, n } | Case::MulMatVecq { ty, m, k, n } => {
                let w = ty.row_bytes(k as usize).unwrap_or(0) as u64 * u64::from(m);
                w + 4 * u64::from(k * n + m * n)
            }
            Case::MulMatLayer {
                ty, m, k, n, segs, ..
            } => {
                let w = ty.row_bytes(k as usize).unwrap_or(0) as u64 * u64::from(m * segs);
                w + 4 * u64::from(k * n + m * segs * n)
            }
            Case::TopK { v, k, n, .. } => 4 * u64::from(n * (v + 2 + 2 * k)),
            Case::GetRows { ty, ne0, n } => {
                u64::from(n) * (ty.row_bytes(ne0 as usize).unwrap_or(0) as u64 + 4 * u64::from(ne0))
            }
            Case::RmsNorm { ne0, rows } => 8 * u64::from(ne0 * rows),
            Case::Add { ne0, rows } => 12 * u64::from(ne0 * rows),
            Case::Swiglu { n } => 12 * u64::from(n),
            Case::Scale { n } => 8 * u64::from(n),
            Case::Rope {
                head_dim,
                n_head,
                n,
                ..
            } => 8 * u64::from(head_dim * n_head * n),
            Case::Attention {
                d,
                n_head,
                n_head_kv,
                n,
                n_kv,
            } => 8 * u64::from(d * n_head * n) + 4 * u64::from(d * n_head_kv * n_kv),
            Case::MoeRoute { n_expert, k, n } => 4 * u64::from(n * (n_expert + 2 * k)),
            Case::MulMatId {
                ty,
                m,
                k,
                n_used,
                nx,
                n,
                fused,
                ..
            } => {
                let m = if fused { 2 * m + 5 } else { m };
                let w = ty.row_bytes(k as usize).unwrap_or(0) as u64 * u64::from(m);
                u64::from(n_used * n) * w + 4 * u64::from(k * nx * n + m * n_used * n)
            }
            Case::MoeSum { ne0, n_used, n } => 4 * u64::from(ne0 * n * (n_used + 1) + n_used * n),
        }
    }
}

/// Every case, in a fixed order: 13 weight types × 5 shapes × 5 batch sizes of MUL_MAT,
/// the 10 quantized types × 5 × 3 of the integer-dot mat-vec, GET_ROWS of every type, and
/// the element-wise, RoPE and attention shapes the models use.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let shapes = [
        (33u32, 256u32),
        (64, 512),
        (7, 768),
        (100, 1024),
        (256, 256),
    ];
    for ty in GgmlType::WEIGHT_TYPES {
        for (m, k) in shapes {
            for n in [1u32, 2, 8, 16, 17, 64] {
                v.push(Case::MulMat { ty, m, k, n });
            }
        }
    }
    for ty in GgmlType::WEIGHT_TYPES
        .into_iter()
        .filter(|t| t.is_quantized())
    {
        for (m, k) in shapes {
            for n in [1u32, 3, 8, 16] {
                v.push(Case::MulMatVecq { ty, m, k, n });
            }
        }
    }
    for (vocab, k, n, ties) in [
        (1000u32, 1u32, 1u32, false),
        (151_936, 40, 1, false),
        (151_936, 1, 2, true),
        (32_000, 64, 3, true),
        (5, 5, 1, true),
        (4096, 40, 2, false),
    ] {
        v.push(Case::TopK {
            v: vocab,
            k,
            n,
            ties,
        });
    }
    // Every type × each fold (norm over three segments as Q/K/V, add, norm + add, SwiGLU
    // with and without the norm), shapes and token counts rotating.
    for ty in GgmlType::WEIGHT_TYPES {
        let folds = [
            (true, 0u8, 3u32),
            (false, 1, 1),
            (true, 1, 1),
            (true, 2, 2),
            (false, 2, 2),
        ];
        for (i, (norm, epi, segs)) in folds.into_iter().enumerate() {
            let (m, k, n) = [
                (33u32, 256u32, 1u32),
                (64, 512, 16),
                (7, 768, 5),
                (100, 1024, 2),
                (20, 256, 9),
            ][i];
            v.push(Case::MulMatLayer {
                ty,
                m,
                k,
                n,
                norm,
                epi,
                segs,
            });
        }
    }
    for ty in GgmlType::WEIGHT_TYPES {
        for (ne0, n) in [(256u32, 1u32), (512, 5), (1024, 3)] {
            v.push(Case::GetRows { ty, ne0, n });
        }
    }
    for (ne0, rows) in [(64u32, 1u32), (576, 3), (1024, 7), (4096, 2)] {
        v.push(Case::RmsNorm { ne0, rows });
        v.push(Case::Add { ne0, rows });
    }
    for n in [1u32, 255, 1000, 4099] {
        v.push(Case::Swiglu { n });
        v.push(Case::Scale { n });
    }
    for neox in [false, true] {
        for (head_dim, n_dims, n_head, n) in [
            (64u32, 64u32, 3u32, 5u32),
            (128, 128, 2, 1),
            (128, 64, 4, 3),
        ] {
            v.push(Case::Rope {
                head_dim,
                n_dims,
                n_head,
                n,
                neox,
            });
        }
    }
    for d in [64u32, 128] {
        for (n_head, n_head_kv) in [(4u32, 2u32), (4, 4), (8, 1)] {
            for n_kv in [1u32, 13, 300] {
                for n in [1u32, 4] {
                    v.push(Case::Attention {
                        d,
                        n_head,
                        n_head_kv,
                        n,
                        n_kv,
                    });
                }
            }
        }
    }
    for (n_expert, k) in [(8u32, 2u32), (60, 4), (128, 8)] {
        for n in [1u32, 5, 17] {
            v.push(Case::MoeRoute { n_expert, k, n });
        }
    }
    for ty in GgmlType::WEIGHT_TYPES {
        for (m, k) in [(33u32, 256u32), (7, 768)] {
            for (nx, n, fused) in [
                (1u32, 1u32, false),
                (1, 3, false),
                (2, 17, false),
                (1, 3, true),
            ] {
                v.push(Case::MulMatId {
                    ty,
                    m,
                    k,
                    n_expert: 8,
                    n_used: 2,
                    nx,
                    n,
                    fused,
                });
            }
        }
    }
    for (ne0, n_used, n) in [(256u32, 2u32, 1u32), (2048, 8, 3), (100, 3, 17)] {
        v.push(Case::MoeSum { ne0, n_used, n });
    }
    v
}

/// Deterministic pseudo-random f32 values in [-4, 4) (xorshift), shared with the tests.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
        })
        .collect()
}

fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (&g, &w) in got.iter().zip(want) {
        num += (f64::from(g) - f64::from(w)).powi(2);
        den += f64::from(w).powi(2);
    }
    if den == 0.0 {
        num
    } else {
        num / den
    }
}

/// Device buffers of one case: upload helpers and the output read back.
struct Io<'a> {
    ctx: &'a VulkanContext,
    bufs: Vec<Buffer>,
}

impl Io<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<usize> {
        let b = self.ctx.create_buffer(
            bytes.len().max(4) as u64,
            MemoryLocation::Device,
            "test-ops",
        )?;
        self.ctx.upload(&b, 0, bytes)?;
        self.bufs.push(b);
        Ok(self.bufs.len() - 1)
    }
    fn f32s(&mut self, v: &[f32]) -> Result<usize> {
        self.put(bytemuck::cast_slice(v))
    }
    fn zeros(&mut self, n_f32: usize) -> Result<usize> {
        self.put(&vec![0u8; 4 * n_f32])
    }
    fn read(&self, i: usize, n: usize) -> Result<Vec<f32>> {
        let mut out = vec![0u8; 4 * n];
        self.ctx.download(&self.bufs[i], 0, &mut out)?;
        Ok(bytemuck::pod_collect_to_vec(&out))
    }
}

/// Runs `c` on `ctx`: the outcome, and with `perf` the mean GPU µs of `reps` dispatches.
pub fn run_case(ctx: &VulkanContext, c: &Case, perf: bool) -> (Outcome, Option<f64>) {
    match run_inner(ctx, c, perf) {
        Ok((got, want, us)) => {
            if let Some(i) = got.iter().position(|v| !v.is_finite()) {
                return (
                    Outcome::Fail(format!("non-finite output {} at {i}", got[i])),
                    us,
                );
            }
            if let Case::TopK { k, .. } = *c {
                // Ids must match exactly (an NMSE over them would hide an off-by-one).
                let row = 2 + 2 * k as usize;
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    if i % row >= 2 && (i % row) % 2 == 0 && g != w {
                        return (
                            Outcome::Fail(format!("id {g} where the CPU has {w} (element {i})")),
                            us,
                        );
                    }
                }
            }
            let e = nmse(&got, &want);
            let bound = match c {
                Case::MulMat { .. }
                | Case::MulMatVecq { .. }
                | Case::MulMatId { .. }
                | Case::MulMatLayer { .. } => 5e-4,
                _ => 1e-5,
            };
            if e <= bound {
                (Outcome::Pass { nmse: e }, us)
            } else {
                (Outcome::Fail(format!("NMSE {e:.3e} > {bound:e}")), us)
            }
        }
        Err(Error::Unsupported(why)) => (Outcome::Unsupported(why), None),
        Err(e) => (Outcome::Fail(e.to_string()), None),
    }
}

/// Records a case's dispatches into a recorder, reading its buffers from an [`Io`].
type Recording = Box<dyn Fn(&mut Recorder, &Io) -> Result<()>>;

/// (GPU output, reference, µs per dispatch when timed).
fn run_inner(
    ctx: &VulkanContext,
    c: &Case,
    perf: bool,
) -> Result<(Vec<f32>, Vec<f32>, Option<f64>)> {
    let mut io = Io {
        ctx,
        bufs: Vec::new(),
    };
    let seed = c
        .name()
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    // Each arm uploads inputs, computes the reference, and returns the recording closure's
    // output buffer and element count.
    let (want, out, record): (Vec<f32>, usize, Recording) = match *c {
        Case::MulMat { ty, m, k, n } | Case::MulMatVecq { ty, m, k, n } => {
            let w = quant::quantize(ty, &values((m * k) as usize, seed))?;
            let x = values((k * n) as usize, seed + 1);
            let mut want = vec![0f32; (m * n) as usize];
            ops::mul_mat(
                ty,
                &[&w],
                &[m as usize],
                k as usize,
                &x,
                n as usize,
                &mut want,
            )?;
            let (wb, xb, db) = (io.put(&w)?, io.f32s(&x)?, io.zeros((m * n) as usize)?);
            if matches!(c, Case::MulMat { .. }) {
                (
                    want,
                    db,
                    Box::new(move |r, io| {
                        let b = &io.bufs;
                        dispatch::mul_mat::mul_mat(
                            r,
                            ty,
                            b[wb].whole(),
                            b[xb].whole(),
                            b[db].whole(),
                            k,
                            m,
                            n,
                            &[],
                        )
                    }),
                )
            } else {
                use dispatch::mul_mat_vecq::{mul_mat_vecq, quantize_q8_1, supports, xq_bytes, XQ};
                if !supports(ctx.caps(), ty, k, n) {
                    return Err(Error::Unsupported(format!(
                        "no integer-dot mat-vec for {ty} on {}",
                        ctx.caps().name
                    )));
                }
                let (cb, sb) = xq_bytes(k, n);
                let (qc, qs) = (
                    io.put(&vec![0u8; cb as usize])?,
                    io.put(&vec![0u8; sb as usize])?,
                );
                (
                    want,
                    db,
                    Box::new(move |r, io| {
                        let b = &io.bufs;
                        let xq = XQ {
                            codes: b[qc].whole(),
                            scales: b[qs].whole(),
                        };
                        quantize_q8_1(r, b[xb].whole(), xq, k, n)?;
                        r.barrier()?;
                        let xq = XQ {
                            codes: b[qc].whole(),
                            scales: b[qs].whole(),
                        };
                        mul_mat_vecq(r, ty, b[wb].whole(), xq, b[db].whole(), k, m, n, &[], None)
                    }),
                )
            }
        }
        Case::TopK { v, k, n, ties } => {
            let mut l = values((v * n) as usize, seed);
            if ties {
                // Few distinct values (both zeros among them): ties decide the order.
                for x in &mut l {
                    *x = (*x * 0.75).round() * 0.5;
                }
            }
            let out = (2 + 2 * k) * n;
            let mut want = vec![0f32; out as usize];
            ops::top_k(&l, v as usize, k as usize, &mut want);
            let (lb, db) = (io.f32s(&l)?, io.zeros(out as usize)?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::top_k::top_k(r, b[lb].whole(), b[db].whole(), v, k, n)
                }),
            )
        }
        Case::MulMatLayer {
            ty,
            m,
            k,
            n,
            norm,
            epi,
            segs,
        } => {
            use dispatch::mul_mat::{mul_mat_vec_layer, LayerEpi, LayerParts};
            let rows = m * segs;
            let w = quant::quantize(ty, &values((rows * k) as usize, seed))?;
            let x = values((k * n) as usize, seed + 1);
            let nw = values(k as usize, seed + 2);
            let r = values((m * n) as usize, seed + 3);
            // The reference: the unfused ops in sequence.
            let mut xn = x.clone();
            if norm {
                let mut t = vec![0f32; x.len()];
                ops::rms_norm(&x, k as usize, 1e-6, &mut t);
                ops::binary(false, &t, &nw, k as usize, &mut xn);
            }
            let split = vec![m as usize; segs as usize];
            let rb = ty.row_bytes(k as usize).expect("whole blocks");
            let parts: Vec<&[u8]> = w.chunks(m as usize * rb).collect();
            let mut y = vec![0f32; (rows * n) as usize];
            ops::mul_mat(ty, &parts, &split, k as usize, &xn, n as usize, &mut y)?;
            let scale = if norm { 1.0 } else { 0.5 };
            for v in &mut y {
                *v *= scale;
            }
            let mut want = vec![0f32; if epi == 2 { (m * n) as usize } else { y.len() }];
            match epi {
                1 => ops::binary(true, &y, &r, m as usize, &mut want),
                2 => {
                    let (gate, up) = y.split_at(y.len() / 2);
                    ops::swiglu(gate, up, &mut want)
                }
                _ => want.copy_from_slice(&y),
            }
            let (wb, xb, nb, rbuf) = (io.put(&w)?, io.f32s(&x)?, io.f32s(&nw)?, io.f32s(&r)?);
            let db = io.zeros(want.len())?;
            let split32: Vec<u32> = if segs > 1 {
                vec![m; segs as usize]
            } else {
                vec![]
            };
            (
                want,
                db,
                Box::new(move |rec, io| {
                    let b = &io.bufs;
                    let parts = LayerParts {
                        norm: norm.then(|| (b[nb].whole(), 1e-6)),
                        epi: match epi {
                            1 => LayerEpi::Add(b[rbuf].whole()),
                            2 => LayerEpi::SwiGlu,
                            _ => LayerEpi::None,
                        },
                        scale,
                    };
                    mul_mat_vec_layer(
                        rec,
                        ty,
                        b[wb].whole(),
                        b[xb].whole(),
                        parts,
                        b[db].whole(),
                        k,
                        rows,
                        n,
                        &split32,
                        None,
                    )
                }),
            )
        }
        Case::GetRows { ty, ne0, n } => {
            let rows = 9u32;
            let table = quant::quantize(ty, &values((rows * ne0) as usize, seed))?;
            let ids: Vec<i32> = (0..n as i32).map(|i| (i * 5 + 3) % rows as i32).collect();
            let mut want = vec![0f32; (ne0 * n) as usize];
            ops::get_rows(ty, &table, ne0 as usize, &ids, &mut want)?;
            let (tb, ib, db) = (
                io.put(&table)?,
                io.put(bytemuck::cast_slice(&ids))?,
                io.zeros((ne0 * n) as usize)?,
            );
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::get_rows::get_rows(
                        r,
                        ty,
                        b[tb].whole(),
                        b[ib].whole(),
                        b[db].whole(),
                        ne0,
                        n,
                    )
                }),
            )
        }
        Case::RmsNorm { ne0, rows } => {
            let x = values((ne0 * rows) as usize, seed);
            let mut want = vec![0f32; x.len()];
            ops::rms_norm(&x, ne0 as usize, 1e-6, &mut want);
            let (xb, db) = (io.f32s(&x)?, io.zeros(x.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::norm::rms_norm(r, b[xb].whole(), b[db].whole(), ne0, rows, 1e-6)
                }),
            )
        }
        Case::Add { ne0, rows } => {
            let (a, bv) = (
                values((ne0 * rows) as usize, seed),
                values(ne0 as usize, seed + 1),
            );
            let mut want = vec![0f32; a.len()];
            ops::binary(true, &a, &bv, ne0 as usize, &mut want);
            let (ab, bb, db) = (io.f32s(&a)?, io.f32s(&bv)?, io.zeros(a.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::binary::add(
                        r,
                        b[ab].whole(),
                        b[bb].whole(),
                        b[db].whole(),
                        ne0,
                        rows,
                        1,
                    )
                }),
            )
        }
        Case::Swiglu { n } => {
            let (g, u) = (values(n as usize, seed), values(n as usize, seed + 1));
            let mut want = vec![0f32; g.len()];
            ops::swiglu(&g, &u, &mut want);
            let (gb, ub, db) = (io.f32s(&g)?, io.f32s(&u)?, io.zeros(g.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::glu::swiglu(r, b[gb].whole(), b[ub].whole(), b[db].whole(), n)
                }),
            )
        }
        Case::Scale { n } => {
            let a = values(n as usize, seed);
            let want: Vec<f32> = a.iter().map(|&x| x * 1.5 - 0.25).collect();
            let (ab, db) = (io.f32s(&a)?, io.zeros(a.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::scale::scale(
                        r,
                        b[ab].whole(),
                        b[db].whole(),
                        u64::from(n),
                        1.5,
                        -0.25,
                    )
                }),
            )
        }
        Case::Rope {
            head_dim,
            n_dims,
            n_head,
            n,
            neox,
        } => {
            let x = values((head_dim * n_head * n) as usize, seed);
            let pos: Vec<i32> = (0..n as i32).map(|i| i * 37 + 5).collect();
            let mode = if neox {
                RopeMode::Neox
            } else {
                RopeMode::Normal
            };
            let mut want = vec![0f32; x.len()];
            ops::rope(
                &x,
                head_dim as usize,
                n_head as usize,
                &pos,
                mode,
                n_dims as usize,
                1e4,
                1.0,
                &mut want,
            );
            let (xb, pb, db) = (
                io.f32s(&x)?,
                io.put(bytemuck::cast_slice(&pos))?,
                io.zeros(x.len())?,
            );
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::rope::rope(
                        r,
                        b[xb].whole(),
                        b[pb].whole(),
                        b[db].whole(),
                        head_dim,
                        n_head,
                        n,
                        neox,
                        n_dims,
                        1e4,
                        1.0,
                    )
                }),
            )
        }
        Case::Attention {
            d,
            n_head,
            n_head_kv,
            n,
            n_kv,
        } => {
            let q = values((d * n_head * n) as usize, seed);
            let kv = |s| -> Vec<f16> {
                values((d * n_head_kv * n_kv) as usize, s)
                    .iter()
                    .map(|&v| f16::from_f32(v))
                    .collect()
            };
            let (k, v) = (kv(seed + 1), kv(seed + 2));
            // The last n tokens of one sequence whose cells start at row 0.
            let pos: Vec<i32> = (0..n as i32)
                .map(|i| (n_kv as i32 - n as i32 + i).max(0))
                .collect();
            let span = ops::causal_spans(&pos);
            let scale = 1.0 / (d as f32).sqrt();
            let mut want = vec![0f32; q.len()];
            ops::attention(
                &q,
                d as usize,
                n_head as usize,
                &k,
                &v,
                n_head_kv as usize,
                n_kv as usize,
                &span,
                scale,
                &mut want,
            );
            let (qb, kb, vb) = (
                io.f32s(&q)?,
                io.put(bytemuck::cast_slice(&k))?,
                io.put(bytemuck::cast_slice(&v))?,
            );
            let (sb, db) = (io.put(bytemuck::cast_slice(&span))?, io.zeros(q.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::attention::attention(
                        r,
                        b[qb].whole(),
                        b[kb].whole(),
                        b[vb].whole(),
                        b[sb].whole(),
                        b[db].whole(),
                        d,
                        n_head,
                        n_head_kv,
                        n,
                        n_kv,
                        scale,
                    )
                }),
            )
        }
        Case::MoeRoute { n_expert, k, n } => {
            let mut logits = values((n_expert * n) as usize, seed);
            if n_expert == 60 {
                // Whole numbers only: many equal logits, so the tie rule (lower index
                // first) decides which experts are chosen and in what order.
                logits.iter_mut().for_each(|l| *l = l.floor());
            }
            let mut ids = vec![0i32; (k * n) as usize];
            ops::moe_topk(&logits, n_expert as usize, k as usize, &mut ids);
            let mut want = vec![0f32; ids.len()];
            ops::moe_weights(&logits, n_expert as usize, &ids, k as usize, &mut want);
            let (lb, ib, db) = (
                io.f32s(&logits)?,
                io.zeros(ids.len())?,
                io.zeros(ids.len())?,
            );
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::moe::moe_topk(r, b[lb].whole(), b[ib].whole(), n_expert, k, n)?;
                    r.barrier()?;
                    let (l, i, d) = (b[lb].whole(), b[ib].whole(), b[db].whole());
                    dispatch::moe::moe_weights(r, l, i, d, n_expert, k, n)
                }),
            )
        }
        Case::MulMatId {
            ty,
            m,
            k,
            n_expert,
            n_used,
            nx,
            n,
            fused,
        } => {
            // Member stacks (one, or two of m and m + 5 rows), stored one after the other.
            let split: Vec<u32> = if fused { vec![m, m + 5] } else { vec![m] };
            let mut w = Vec::new();
            let mut stacks = Vec::new();
            for (i, &rows) in split.iter().enumerate() {
                let q = quant::quantize(
                    ty,
                    &values((rows * k * n_expert) as usize, seed + 7 * i as u64),
                )?;
                stacks.push((w.len(), q.len(), rows));
                w.extend_from_slice(&q);
            }
            let m_all: u32 = split.iter().sum();
            let x = values((k * nx * n) as usize, seed + 1);
            // Experts n_expert-2 and n_expert-1 receive no token.
            let ids: Vec<i32> = (0..n * n_used)
                .map(|i| ((i * 3 + i / n_used) % (n_expert - 2)) as i32)
                .collect();
            let pairs = (n_used * n) as usize;
            let mut want = vec![0f32; m_all as usize * pairs];
            let mut rest = &mut want[..];
            for &(off, len, rows) in &stacks {
                let (blk, r) = rest.split_at_mut(rows as usize * pairs);
                rest = r;
                ops::mul_mat_id(
                    ty,
                    &w[off..off + len],
                    k as usize,
                    rows as usize,
                    &x,
                    nx as usize,
                    &ids,
                    n_used as usize,
                    blk,
                )?;
            }
            let split = if fused { split } else { vec![] };
            let (wb, xb, ib, db) = (
                io.put(&w)?,
                io.f32s(&x)?,
                io.put(bytemuck::cast_slice(&ids))?,
                io.zeros(want.len())?,
            );
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    dispatch::moe::mul_mat_id(
                        r,
                        ty,
                        b[wb].whole(),
                        b[xb].whole(),
                        b[ib].whole(),
                        b[db].whole(),
                        k,
                        m_all,
                        n_expert,
                        nx,
                        n_used,
                        n,
                        &split,
                    )
                }),
            )
        }
        Case::MoeSum { ne0, n_used, n } => {
            let y = values((ne0 * n_used * n) as usize, seed);
            let wv = values((n_used * n) as usize, seed + 1);
            let mut want = vec![0f32; (ne0 * n) as usize];
            ops::moe_sum(&y, ne0 as usize, n_used as usize, &wv, &mut want);
            let (yb, wb, db) = (io.f32s(&y)?, io.f32s(&wv)?, io.zeros(want.len())?);
            (
                want,
                db,
                Box::new(move |r, io| {
                    let b = &io.bufs;
                    let (y, w, d) = (b[yb].whole(), b[wb].whole(), b[db].whole());
                    dispatch::moe::moe_sum(r, y, w, d, ne0, n_used, n)
                }),
            )
        }
    };
    let n_out = want.len();
    let mut rec = ctx.recorder()?;
    rec.begin()?;
    record(&mut rec, &io)?;
    rec.submit_and_wait()?;
    let got = io.read(out, n_out)?;
    let us = if perf {
        const REPS: usize = 10;
        let mut rec = ctx.recorder()?;
        rec.begin()?;
        rec.timestamp("start")?;
        for _ in 0..REPS {
            record(&mut rec, &io)?;
            rec.barrier()?;
        }
        rec.timestamp("end")?;
        rec.submit_and_wait()?;
        let t = rec.timestamps();
        (t.len() == 2).then(|| (t[1].ns - t[0].ns) / 1e3 / REPS as f64)
    } else {
        None
    };
    Ok((got, want, us))
}

/// Runs the cases whose op is `op` (all with `None`) on `ctx`, printing a line per case
/// prefixed by `label` and a summary; returns (passed, failed, unsupported).
pub fn run(
    ctx: &VulkanContext,
    label: &str,
    op: Option<&str>,
    perf: bool,
    out: &mut dyn std::io::Write,
) -> (usize, usize, usize) {
    let (mut pass, mut fail, mut unsup) = (0, 0, 0);
    for c in cases().iter().filter(|c| op.is_none_or(|o| c.op() == o)) {
        let (o, us) = run_case(ctx, c, perf);
        let timing = us.map_or(String::new(), |us| {
            format!("  {us:9.2} us  {:8.1} GB/s", c.bytes() as f64 / us / 1e3)
        });
        let line = match &o {
            Outcome::Pass { nmse } => {
                pass += 1;
                format!("OK (nmse {nmse:.1e}){timing}")
            }
            Outcome::Fail(why) => {
                fail += 1;
                format!("FAIL: {why}")
            }
            Outcome::Unsupported(why) => {
                unsup += 1;
                format!("unsupported: {why}")
            }
        };
        let _ = writeln!(out, "[{label}] {}: {line}", c.name());
    }
    let _ = writeln!(
        out,
        "[{label}] {pass} passed, {fail} failed, {unsup} unsupported"
    );
    (pass, fail, unsup)
}
