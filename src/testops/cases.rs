//! The op suite's cases: what each op instance is (`Case`), its name as `-o` and the output
//! print it, the bytes it moves (for `--perf`), and the fixed list every run walks
//! ([`cases`]).

use crate::backend::vulkan::dispatch;
use crate::quant::GgmlType;

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
    /// 2 SwiGLU (two segments of `m` rows: gate, up), 3 a per-row bias (over `segs`),
    /// 4 / 5 the product added to the up / gate half of a gate/up output, then SwiGLU
    /// (`Epilogue::AddSwiGlu`: float kernel only).
    MulMatLayer {
        ty: GgmlType,
        m: u32,
        k: u32,
        n: u32,
        norm: bool,
        epi: u8,
        segs: u32,
        /// The integer-dot fused mat-vec (`mul_mat_vecq_layer`; x quantized by
        /// quantize_q8_1, of x·nw with the norm).
        int8: bool,
        /// int8 only: its q8_1 epilogue quantizes the output times a second norm weight,
        /// read by a second fused mat-vec with the norm (32 rows of the same type): the
        /// case checks that second output, so the epilogue's codes, scales and sums of
        /// squares are all checked.
        qout: bool,
    },
    /// A grouped weight (`TensorKind::GroupedWeight`): segments of `rows[s]` rows of
    /// `types[s]`, one grouped mat-vec dispatch (`n` ≤ 16; optional RMS-norm prologue; a
    /// per-row bias epilogue when `n` is odd) or the members one by one (`n` > 16).
    MulMatGroup {
        types: [GgmlType; 3],
        rows: [u32; 3],
        k: u32,
        n: u32,
        norm: bool,
    },
    /// `Op::TopK` over `n` rows of `v` logits; `ties`: logits rounded to a few values;
    /// `periodic`: logit i = -(i mod 1000), so every chunk of a chunked row has the same
    /// top values (the merge's many-survivors path).
    TopK {
        v: u32,
        k: u32,
        n: u32,
        ties: bool,
        periodic: bool,
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
    /// The attention with the RoPE / KV-cache stage folded in (`Op::Attention` with
    /// `rope: Some`): one token at the last of `n_kv` cells, its new K/V row written by the
    /// kernel and attended; `norm`: qwen3's head norms too; `lora`: LoRA B products added
    /// to the base projections first (`attention_rope_lora`): 0 none, 1 q and v (f32 B,
    /// rank 16), 2 q, k and v (f16 B, rank 8).
    AttentionRope {
        d: u32,
        n_head: u32,
        n_head_kv: u32,
        n_kv: u32,
        neox: bool,
        norm: bool,
        lora: u8,
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
    /// MOE_ROUTER_TOPK (the router matmul and the top-k in one dispatch), checked through
    /// MOE_WEIGHTS of the logits and ids it writes.
    MoeRouterTopK {
        k_dim: u32,
        n_expert: u32,
        k: u32,
        n: u32,
        /// The router reads rms_norm(x)·nw of the raw x (`moe_router_norm`).
        norm: bool,
    },
    /// MUL_MAT_ID with ids that leave the last two experts without a token; `fused`: a
    /// second expert stack of m + 5 rows after the first (a fused gate/up weight). More
    /// than 16 tokens take the grouped-by-expert kernels; `q8` (decode batches,
    /// quantized types): the integer-dot kernel on a q8_1 copy of x. `glu` (with `fused`,
    /// decode batches): the second stack has m rows too and the kernel's SwiGLU epilogue
    /// writes silu(gate)·up (MUL_MAT_ID_SWIGLU). `route` (decode batches): the kernel
    /// reads whole-number router logits (ties decided by the index) and ranks them for
    /// each pair's expert itself (`Op::MulMatId`'s `route`).
    MulMatId {
        ty: GgmlType,
        m: u32,
        k: u32,
        n_expert: u32,
        n_used: u32,
        nx: u32,
        n: u32,
        fused: bool,
        q8: bool,
        glu: bool,
        route: bool,
    },
    /// MOE_SUM; `residual`: MOE_SUM_ADD (a residual added to the sum).
    MoeSum {
        ne0: u32,
        n_used: u32,
        n: u32,
        residual: bool,
    },
    /// MOE_SUM_ADD_RMS_NORM_MUL: the next norm over a MOE_SUM_ADD's value, one dispatch
    /// that also writes that value (as the executor records the pair).
    MoeSumNorm {
        ne0: u32,
        n_used: u32,
        n: u32,
    },
}

impl Case {
    /// The op's name (what `-o` matches).
    pub fn op(&self) -> &'static str {
        match self {
            Case::MulMat { n, .. } if *n <= dispatch::mul_mat::MAT_VEC_MAX_N => "mul_mat_vec",
            Case::MulMat { .. } => "mul_mat",
            Case::MulMatVecq { .. } => "mul_mat_vecq",
            Case::MulMatLayer { int8: true, .. } => "mul_mat_vecq_layer",
            Case::MulMatLayer { .. } => "mul_mat_vec_layer",
            Case::MulMatGroup { n, .. } if *n <= dispatch::mul_mat::MAT_VEC_MAX_N => {
                "mul_mat_vec_group"
            }
            Case::MulMatGroup { .. } => "mul_mat_group",
            Case::TopK { .. } => "top_k",
            Case::GetRows { .. } => "get_rows",
            Case::RmsNorm { .. } => "rms_norm",
            Case::Add { .. } => "add",
            Case::Swiglu { .. } => "swiglu",
            Case::Scale { .. } => "scale",
            Case::Rope { .. } => "rope",
            Case::Attention { .. } => "attention",
            Case::AttentionRope { .. } => "attention_rope",
            Case::MoeRoute { .. } => "moe_route",
            Case::MoeRouterTopK { .. } => "moe_router_topk",
            Case::MulMatId { q8: true, .. } => "mul_mat_vecq_id",
            Case::MulMatId { .. } => "mul_mat_id",
            Case::MoeSum {
                residual: false, ..
            } => "moe_sum",
            Case::MoeSum { residual: true, .. } => "moe_sum_add",
            Case::MoeSumNorm { .. } => "moe_sum_add_rms_norm_mul",
        }
    }

    /// `op(params)`, the name a run prints.
    pub fn name(&self) -> String {
        let p = match self {
            Case::MulMat { ty, m, k, n } | Case::MulMatVecq { ty, m, k, n } => {
                format!("type={ty},m={m},k={k},n={n}")
            }
            Case::MulMatGroup {
                types,
                rows,
                k,
                n,
                norm,
            } => format!(
                "types={}+{}+{},m={}+{}+{},k={k},n={n}{}",
                types[0],
                types[1],
                types[2],
                rows[0],
                rows[1],
                rows[2],
                if *norm { ",norm" } else { "" }
            ),
            Case::MulMatLayer {
                ty,
                m,
                k,
                n,
                norm,
                epi,
                segs,
                qout,
                ..
            } => format!(
                "type={ty},m={m}x{segs},k={k},n={n},{}{}{}",
                // Cases without the norm also scale the product (a folded SCALE).
                if *norm { "norm," } else { "scale," },
                [
                    "none",
                    "add",
                    "swiglu",
                    "bias",
                    "add_swiglu_up",
                    "add_swiglu_gate"
                ][*epi as usize],
                if *qout {
                    ",q8out+norm+mat_vecq_layer"
                } else {
                    ""
                }
            ),
            Case::TopK {
                v,
                k,
                n,
                ties,
                periodic,
            } => {
                let pat = match (*ties, *periodic) {
                    (_, true) => ",periodic",
                    (true, _) => ",ties",
                    _ => "",
                };
                format!("v={v},k={k},n={n}{pat}")
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
            Case::MoeRouterTopK {
                k_dim,
                n_expert,
                k,
                n,
                norm,
            } => format!(
                "k_dim={k_dim},experts={n_expert},k={k},n={n}{}",
                if *norm { ",norm" } else { "" }
            ),
            Case::MulMatId {
                ty,
                m,
                k,
                n_expert,
                n_used,
                nx,
                n,
                fused,
                glu,
                route,
                ..
            } => format!(
                "type={ty},m={m}{},k={k},experts={n_expert}/{n_used},nx={nx},n={n}{}",
                match (fused, glu) {
                    (_, true) => format!("+{m},swiglu"),
                    (true, false) => format!("+{}", m + 5),
                    (false, false) => String::new(),
                },
                if *route { ",route" } else { "" }
            ),
            Case::MoeSum { ne0, n_used, n, .. } | Case::MoeSumNorm { ne0, n_used, n } => {
                format!("ne0={ne0},used={n_used},n={n}")
            }
            Case::AttentionRope {
                d,
                n_head,
                n_head_kv,
                n_kv,
                neox,
                norm,
                lora,
            } => format!(
                "d={d},h={n_head}/{n_head_kv},kv={n_kv},mode={}{}{}",
                if *neox { "neox" } else { "normal" },
                if *norm { ",norm" } else { "" },
                ["", ",lora=qv", ",lora=qkv-f16"][*lora as usize]
            ),
        };
        format!("{}({p})", self.op())
    }

    /// Bytes the op reads and writes (for `--perf`'s GB/s).
    pub(super) fn bytes(&self) -> u64 {
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
            Case::MulMatGroup {
                types, rows, k, n, ..
            } => {
                let w: u64 = types
                    .iter()
                    .zip(rows)
                    .map(|(t, r)| t.row_bytes(k as usize).unwrap_or(0) as u64 * u64::from(r))
                    .sum();
                let m: u32 = rows.iter().sum();
                w + 4 * u64::from(k * n + m * n)
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
            Case::AttentionRope {
                d,
                n_head,
                n_head_kv,
                n_kv,
                ..
            } => 8 * u64::from(d * n_head) + 4 * u64::from(d * n_head_kv * (n_kv + 4)),
            Case::MoeRoute { n_expert, k, n } => 4 * u64::from(n * (n_expert + 2 * k)),
            Case::MoeRouterTopK {
                k_dim,
                n_expert,
                k,
                n,
                ..
            } => 4 * u64::from(k_dim * (n_expert + n) + n * (n_expert + 2 * k)),
            Case::MulMatId {
                ty,
                m,
                k,
                n_used,
                nx,
                n,
                fused,
                glu,
                ..
            } => {
                let (m, out) = match (fused, glu) {
                    (_, true) => (2 * m, m),
                    (true, false) => (2 * m + 5, 2 * m + 5),
                    (false, false) => (m, m),
                };
                let w = ty.row_bytes(k as usize).unwrap_or(0) as u64 * u64::from(m);
                u64::from(n_used * n) * w + 4 * u64::from(k * nx * n + out * n_used * n)
            }
            Case::MoeSum {
                ne0,
                n_used,
                n,
                residual,
            } => 4 * u64::from(ne0 * n * (n_used + 1 + u32::from(residual)) + n_used * n),
            // y, the weights, r, the norm weight row, dst and the sum.
            Case::MoeSumNorm { ne0, n_used, n } => {
                4 * u64::from(ne0 * n * (n_used + 3) + n_used * n + ne0)
            }
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
    for (vocab, k, n, ties, periodic) in [
        (1000u32, 1u32, 1u32, false, false),
        (151_936, 40, 1, false, false),
        (151_936, 1, 2, true, false),
        (32_000, 64, 3, true, false),
        (5, 5, 1, true, false),
        (4096, 40, 2, false, false),
        (32_000, 64, 1, false, true),
    ] {
        v.push(Case::TopK {
            v: vocab,
            k,
            n,
            ties,
            periodic,
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
            (true, 3, 3),
            (false, 4, 1),
            (false, 5, 1),
        ];
        for (i, (norm, epi, segs)) in folds.into_iter().enumerate() {
            let (m, k, n) = [
                (33u32, 256u32, 1u32),
                (64, 512, 16),
                (7, 768, 5),
                (100, 1024, 2),
                (20, 256, 9),
                (24, 512, 3),
                (48, 256, 1),
                (17, 512, 4),
            ][i];
            v.push(Case::MulMatLayer {
                ty,
                m,
                k,
                n,
                norm,
                epi,
                segs,
                int8: false,
                qout: false,
            });
        }
    }
    // The integer-dot fused mat-vec: every quantized type × each fold, token counts up to
    // 8; the last three chain its q8_1 epilogue (whole 32-row blocks) into a second one.
    for ty in GgmlType::WEIGHT_TYPES {
        if !ty.is_quantized() {
            continue;
        }
        let folds = [
            (true, 0u8, 3u32, 33u32, 256u32, 1u32, false),
            (false, 1, 1, 64, 512, 8, false),
            (true, 1, 1, 7, 768, 5, false),
            (true, 2, 2, 100, 1024, 2, false),
            (false, 2, 2, 20, 256, 3, false),
            (true, 3, 3, 24, 512, 1, false),
            (true, 1, 1, 256, 512, 3, true),
            (true, 2, 2, 256, 256, 1, true),
            (false, 0, 1, 512, 256, 8, true),
        ];
        for (norm, epi, segs, m, k, n, qout) in folds {
            v.push(Case::MulMatLayer {
                ty,
                m,
                k,
                n,
                norm,
                epi,
                segs,
                int8: true,
                qout,
            });
        }
    }
    // The grouped mat-vec: every compiled type pair as Q/K/V (a, a, b), the norm prologue
    // and the token count rotating; rows that make the kernel halve its rows per
    // workgroup, the bigger type first, and a prompt batch (members one by one).
    {
        use GgmlType as T;
        let ks = [T::Q2K, T::Q3K, T::Q4K, T::Q5K, T::Q6K];
        let mut i = 0u32;
        for (x, &a) in ks.iter().enumerate() {
            for &b in &ks[x + 1..] {
                v.push(Case::MulMatGroup {
                    types: [a, a, b],
                    rows: [64, 32, 32],
                    k: 256 * (1 + i % 2),
                    n: [1u32, 5, 16][(i % 3) as usize],
                    norm: i % 2 == 0,
                });
                i += 1;
            }
        }
        for (types, rows, k, n, norm) in [
            ([T::Q2K, T::Q2K, T::Q3K], [34u32, 18, 7], 512u32, 3u32, true),
            ([T::Q6K, T::Q4K, T::Q4K], [16, 48, 33], 256, 1, false),
            ([T::Q4K, T::Q4K, T::Q6K], [64, 32, 32], 512, 20, false),
        ] {
            v.push(Case::MulMatGroup {
                types,
                rows,
                k,
                n,
                norm,
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
    for (i, (d, n_head, n_head_kv, n_kv)) in [
        (64u32, 4u32, 2u32, 1u32),
        (128, 4, 2, 13),
        (128, 8, 1, 300),
        (64, 4, 4, 70),
    ]
    .into_iter()
    .enumerate()
    {
        v.push(Case::AttentionRope {
            d,
            n_head,
            n_head_kv,
            n_kv,
            neox: i % 2 == 1,
            norm: i >= 2,
            lora: 0,
        });
    }
    // LoRA B products in the prologue: f32 and f16 factors, with and without head norms.
    for (d, n_head, n_head_kv, n_kv, norm, lora) in [
        (64u32, 4u32, 2u32, 5u32, false, 1u8),
        (128, 8, 2, 40, true, 2),
        (64, 4, 4, 1, true, 1),
    ] {
        v.push(Case::AttentionRope {
            d,
            n_head,
            n_head_kv,
            n_kv,
            neox: true,
            norm,
            lora,
        });
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
        // Prompt batches: on devices with cooperative matrices these take
        // attention_coopmat.comp (dispatch::attention_coopmat::MIN_TOKENS and up).
        for (n_head, n_head_kv) in [(8u32, 2u32), (12, 4), (16, 16)] {
            for (n, n_kv) in [(16u32, 16u32), (40, 300)] {
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
    for (n_expert, k) in [(8u32, 2u32), (60, 4), (128, 8)] {
        for n in [1u32, 5, 17] {
            v.push(Case::MoeRoute { n_expert, k, n });
        }
    }
    // (2048, 128, 8, n): Qwen3-30B-A3B's router at decode; (64, 60, 4, 5): whole-number
    // operands, so many logits tie exactly (on the CPU and the GPU alike) and the tie rule
    // decides; (256, 8, 2, 1): the tiny-moe preset's.
    for (k_dim, n_expert, k, n) in [
        (2048u32, 128u32, 8u32, 1u32),
        (2048, 128, 8, 8),
        (64, 60, 4, 5),
        (256, 8, 2, 1),
    ] {
        for norm in [false, true] {
            // The norm form on whole-number operands would only rescale the ties away.
            if norm && n_expert == 60 {
                continue;
            }
            v.push(Case::MoeRouterTopK {
                k_dim,
                n_expert,
                k,
                n,
                norm,
            });
        }
    }
    for ty in GgmlType::WEIGHT_TYPES {
        // n <= 16: the per-pair kernel; n > 16: grouped by expert (dispatch::moe).
        for (m, k) in [(33u32, 256u32), (7, 768)] {
            for (nx, n, fused) in [
                (1u32, 1u32, false),
                (1, 3, false),
                (2, 17, false),
                (1, 3, true),
                (1, 40, true),
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
                    q8: false,
                    glu: false,
                    route: false,
                });
            }
            // The SwiGLU epilogue (decode: n <= 16) on the float and integer-dot kernels.
            for (n, q8) in [(1u32, false), (3, false), (1, true), (3, true)] {
                if q8 && !ty.is_quantized() {
                    continue;
                }
                v.push(Case::MulMatId {
                    ty,
                    m,
                    k,
                    n_expert: 8,
                    n_used: 2,
                    nx: 1,
                    n,
                    fused: true,
                    q8,
                    glu: true,
                    route: false,
                });
            }
            // Routing in the kernel (decode): gate/up with SwiGLU as a layer runs it, and a
            // plain stack; 10 experts, and 70 (more keys than a subgroup of 8 lanes holds
            // in registers: the pick's reloading loop on lavapipe).
            for (n, q8, glu, n_expert) in [
                (1u32, false, true, 10u32),
                (3, true, true, 10),
                (3, false, false, 10),
                (3, false, true, 70),
            ] {
                if q8 && !ty.is_quantized() {
                    continue;
                }
                v.push(Case::MulMatId {
                    ty,
                    m,
                    k,
                    n_expert,
                    n_used: 3,
                    nx: 1,
                    n,
                    fused: glu,
                    q8,
                    glu,
                    route: true,
                });
            }
            if ty.is_quantized() {
                for (nx, n, fused) in [(1u32, 1u32, false), (2, 3, false), (1, 3, true)] {
                    v.push(Case::MulMatId {
                        ty,
                        m,
                        k,
                        n_expert: 8,
                        n_used: 2,
                        nx,
                        n,
                        fused,
                        q8: true,
                        glu: false,
                        route: false,
                    });
                }
            }
        }
        // Grouped: several row tiles (a fused 130 + 135 rows); 3 experts, so every pair
        // goes to expert 0 (2 x 70 pairs: more than one column tile of the bucket, and a
        // token whose two slots chose the same expert).
        for (m, n_expert, nx, n) in [(130u32, 8u32, 2u32, 24u32), (33, 3, 1, 70)] {
            v.push(Case::MulMatId {
                ty,
                m,
                k: 256,
                n_expert,
                n_used: 2,
                nx,
                n,
                fused: m == 130,
                q8: false,
                glu: false,
                route: false,
            });
        }
    }
    for (ne0, n_used, n) in [(256u32, 2u32, 1u32), (2048, 8, 3), (100, 3, 17)] {
        for residual in [false, true] {
            v.push(Case::MoeSum {
                ne0,
                n_used,
                n,
                residual,
            });
        }
    }
    // (2048, 8, 1): a 30B-A3B decode row (the wide variant on GPUs); (256, 10, 2): slots
    // beyond the kernel's first round of 8.
    for (ne0, n_used, n) in [
        (256u32, 2u32, 1u32),
        (256, 10, 2),
        (2048, 8, 1),
        (2048, 8, 3),
        (100, 3, 17),
    ] {
        v.push(Case::MoeSumNorm { ne0, n_used, n });
    }
    v
}
