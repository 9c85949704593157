// The body of the cooperative-matrix tiled matmul: mul_mat_coopmat.comp (dense, Op::MulMat)
// and, with ID defined, mul_mat_id_coopmat.comp (expert-indexed, Op::MulMatId, tokens
// grouped by expert). The algorithm is described in mul_mat_coopmat.comp.
//
// Columns of a tile: dense, tile column c is token n0 + c. With ID, the workgroup works
// for expert (bucket) gl_WorkGroupID.z and its tile columns are entries n0 + c of that
// expert's list of (token, slot) pairs written by moe_group.comp into binding 3
// (common/moe_group.glsl); c_x / c_d hold each column's x row and dst column (the pair).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_cooperative_matrix : require
// W chunks straight to halves (dq_chunk_h, common/dequant_type.glsl): packed f16 math
// instead of integer-to-float conversions and f32 -> f16 packs.
#define DQ_H16
#include "dequant_matmul.glsl"

layout(constant_id = 0) const uint WGS = WG_X;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
// Constant 1: x is f16 (binding 1 read as uvec4s of 8 halves; x_off in halves, a multiple
// of 8) instead of f32 — the dispatch converts x once per matmul, so the tiles load half
// the bytes and convert nothing (the kernel is load-bound: docs/shaders.md).
layout(constant_id = 1) const bool X_F16 = false;
layout(std430, set = 0, binding = 1) readonly restrict buffer XH { uvec4 xh[]; };

// Tile: BM weight rows x BN tokens, BK of k per step, WM x WN subgroups (dispatch/
// mul_mat.rs `CoopTile::DENSE` / `CoopTile::ID` must agree). The including .comp may
// set BM and BN (the dense kernel: 64 x 256, so each dequantized W value serves 256
// tokens; the expert-indexed one keeps 128 x 128: an expert's bucket is seldom full).
#ifndef BM
#define BM 128u
#endif
#ifndef BN
#define BN 128u
#endif
#define BK 64u
#ifndef WM
#define WM 2u
#endif
#ifndef WN
#define WN 4u
#endif
// Cooperative-matrix shape (M x N x K) and tiles per subgroup.
#define TM 16u
#define TN 8u
#define TK 16u
#define NSUB (WM * WN)
#define SUB_M (BM / WM)
#define SUB_N (BN / WN)
#define CM (SUB_M / TM)
#define CN (SUB_N / TN)
// Row strides of the shared tiles in halves: +8 keeps rows 16-byte aligned and
// staggers banks.
#define SWS (BK + 8u)
#define SXS (BK + 8u)
// Groups of 8 values per thread and step: W tile, x tile (WGS divides both: NSUB
// subgroups of a power-of-two size; the dispatch checks).
const uint NW = BM * (BK / 8u) / WGS;
const uint NX = BN * (BK / 8u) / WGS;
// The W tile is fetched by chunks (common/dequant.glsl: 16 values whose packed bytes and
// scales are loaded once) where a chunk's values lie inside one step (CHUNK_SPAN <= BK:
// every type but q2_K, q3_K, q6_K), else by groups of 8 (dq4 twice). A thread fetches
// NWC chunks = NW groups either way.
const bool CHUNKED = CHUNK_SPAN <= BK;
const uint NWC = NW / 2u;
// Scope 3 = Subgroup (a number: gl_ScopeSubgroup needs GL_KHR_memory_scope_semantics).
#define MAT_A coopmat<float16_t, 3, TM, TK, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, 3, TK, TN, gl_MatrixUseB>
#define MAT_C coopmat<float, 3, TM, TN, gl_MatrixUseAccumulator>

// Shared tiles of uvec4 (SV = 8 halves each; offsets and strides in halves / SV), one
// buffer each: the next step waits in registers (pw, px) while this one is multiplied.
#define SV 8u
shared uvec4 sw[BM * SWS / SV];
shared uvec4 sx[BN * SXS / SV];
// Output staging: one TM x TN matrix (column-major, 16 rows per token, f32 as uint bits)
// per subgroup, in the W tile's memory once the products are done (STAGE4 uvec4 each).
#define STAGE4 (TM * TN / 4u)
// Per tile row: weight byte offset, dst index of token 0, dst step per token.
shared uint r_w[BM];
shared uint r_d[BM];
shared uint r_s[BM];

#ifdef ID
#include "moe_group.glsl"
// This workgroup's bucket: its pair count and whether its weights exist (the last
// bucket holds pairs whose id is out of range; they get 0).
uint id_count;
bool id_weights;
#define W_OK id_weights
#else
#define COL_OK(c) (n0 + (c) < p.n)
#define COL_X(c) ((n0 + (c)) * p.k)
#define COL_D(c) (n0 + (c))
#define W_OK true
#endif

uvec4 pw[NW];
uvec4 px[NX];

uvec4 pack8(vec4 a, vec4 b) {
    return uvec4(packFloat2x16(f16vec2(a.xy)), packFloat2x16(f16vec2(a.zw)),
                 packFloat2x16(f16vec2(b.xy)), packFloat2x16(f16vec2(b.zw)));
}

// Thread t takes groups (chunks) t, t + WGS, t + 2 WGS, ... (row-major over BK/8 groups
// per row): a subgroup's load instruction covers consecutive groups, i.e. whole rows of
// the step, so its global loads coalesce.
void fetch(uint m0, uint n0, uint k0, uint tid) {
    if (CHUNKED) {
        // Chunk u = i * WGS + tid (consecutive threads, consecutive chunks of a row): row u / (BK / 16), chunk gc = k0 / 16 + u % (BK / 16)
        // of the row (blocks in order, CHUNKS each); its two runs of 8 go to pw[2i], pw[2i+1].
        [[unroll]] for (uint i = 0u; i < NWC; i++) {
            const uint u = i * WGS + tid;
            const uint r = u / (BK / 16u);
            const uint gc = k0 / 16u + u % (BK / 16u);
            uvec4 h[2] = uvec4[2](uvec4(0u), uvec4(0u));
            if (m0 + r < p.m && (gc / CHUNKS) * QK < p.k && W_OK) {
                dq_chunk_h(r_w[r] + (gc / CHUNKS) * BLOCK_BYTES, gc % CHUNKS, h);
            }
            pw[2u * i] = h[0];
            pw[2u * i + 1u] = h[1];
        }
    } else {
        [[unroll]] for (uint i = 0u; i < NW; i++) {
            const uint g = i * WGS + tid;
            const uint r = g / (BK / 8u);
            const uint kk = k0 + 8u * (g % (BK / 8u));
            uvec4 h = uvec4(0u);
            if (m0 + r < p.m && kk < p.k && W_OK) {
                // k is a multiple of QK >= 16, so kk + 7 is in the same block and row.
                h = dq8_h(r_w[r] + (kk / QK) * BLOCK_BYTES, kk % QK);
            }
            pw[i] = h;
        }
    }
    // x groups are spread across the workgroup (group g = i * WGS + tid): a subgroup's
    // load instruction reads whole 128-byte token rows (BK / 8 consecutive uvec4s per
    // token), not one uvec4 from each of 32 token rows.
    [[unroll]] for (uint i = 0u; i < NX; i++) {
        const uint g = i * WGS + tid;
        const uint t = g / (BK / 8u);
        const uint kk = k0 + 8u * (g % (BK / 8u));
        uvec4 v = uvec4(0u);
        if (COL_OK(t) && kk < p.k) {
            if (X_F16) {
                v = xh[(p.x_off + COL_X(t) + kk) >> 3];
            } else {
                v = pack8(load_x4(COL_X(t) + kk), load_x4(COL_X(t) + kk + 4u));
            }
        }
        px[i] = v;
    }
}

// Where pw[j] of the step at k0 goes in the W tile, in uvec4 units (row-major, SWS / SV
// per row).
uint w_slot(uint tid, uint j, uint k0) {
    if (CHUNKED) {
        // As fetch: chunk u of the step, run j % 2 of it (groups 0-1 or 2-3), which
        // starts at value chunk_xoff(c, 2 (j % 2)) of its block: within the step.
        const uint u = (j / 2u) * WGS + tid;
        const uint gc = k0 / 16u + u % (BK / 16u);
        const uint v0 = (gc / CHUNKS) * QK + chunk_xoff(gc % CHUNKS, 2u * (j % 2u)) - k0;
        return (u / (BK / 16u)) * (SWS / SV) + v0 / 8u;
    }
    const uint g = j * WGS + tid;
    return (g / (BK / 8u)) * (SWS / SV) + g % (BK / 8u);
}

void stash(uint tid, uint k0) {
    [[unroll]] for (uint i = 0u; i < NW; i++) {
        sw[w_slot(tid, i, k0)] = pw[i];
    }
    [[unroll]] for (uint i = 0u; i < NX; i++) {
        const uint g = i * WGS + tid;
        sx[(g / (BK / 8u)) * (SXS / SV) + g % (BK / 8u)] = px[i];
    }
}

// One BM x BN tile: rows m0.., columns n0.. (r_w / r_d / r_s, and with ID c_x / c_d, set),
// over k values kb .. ke - 1 (kb a multiple of BK; ke a multiple of BK or p.k, so a step
// never straddles it and the loads' bounds checks against p.k stay exact), its results
// written d_z elements past their dst index (split-K: this split's partial block).
void mul_tile(uint m0, uint n0, uint kb, uint ke, uint d_z, uint tid) {
    const uint sid = gl_SubgroupID;
    const uint wr = sid / WN; // sub-tile row (0..WM-1)
    const uint wc = sid % WN; // sub-tile column (0..WN-1)

    MAT_C acc[CM * CN];
    [[unroll]] for (uint c = 0u; c < CM * CN; c++) {
        acc[c] = MAT_C(0.0);
    }
    fetch(m0, n0, kb, tid);
    stash(tid, kb);
    barrier();

    // A subgroup whose columns are all past the batch's (the bucket's) end skips the
    // products (uniform in the subgroup); it still loads its share of the tiles.
#ifdef ID
    const bool live = n0 + wc * SUB_N < id_count;
#else
    const bool live = n0 + wc * SUB_N < p.n;
#endif
    for (uint k0 = kb; k0 < ke; k0 += BK) {
        const bool more = k0 + BK < ke;
        if (more) {
            fetch(m0, n0, k0 + BK, tid); // in flight while the tiles are multiplied
        }
        if (live) {
            [[unroll]] for (uint ks = 0u; ks < BK; ks += TK) {
                MAT_A a[CM];
                [[unroll]] for (uint i = 0u; i < CM; i++) {
                    coopMatLoad(a[i], sw, ((wr * SUB_M + i * TM) * SWS + ks) / SV,
                                SWS / SV, gl_CooperativeMatrixLayoutRowMajor);
                }
                MAT_B b[CN];
                [[unroll]] for (uint j = 0u; j < CN; j++) {
                    coopMatLoad(b[j], sx, ((wc * SUB_N + j * TN) * SXS + ks) / SV,
                                SXS / SV, gl_CooperativeMatrixLayoutColumnMajor);
                }
                [[unroll]] for (uint i = 0u; i < CM; i++) {
                    [[unroll]] for (uint j = 0u; j < CN; j++) {
                        acc[i * CN + j] = coopMatMulAdd(a[i], b[j], acc[i * CN + j]);
                    }
                }
            }
        }
        if (more) {
            barrier(); // every subgroup is done with this step's tiles
            stash(tid, k0 + BK);
            barrier();
        }
    }

    // The W tile becomes the staging area: every subgroup is done reading it.
    barrier();
    // Write out one 16 x 8 matrix at a time: staged value e (row e % TM, token e / TM)
    // is word e % 4 of sw[sbase + e / 4]. The staging block is the subgroup's own.
    const uint sbase = sid * STAGE4;
    const uint lane = gl_SubgroupInvocationID;
    [[unroll]] for (uint i = 0u; i < CM; i++) {
        [[unroll]] for (uint j = 0u; j < CN; j++) {
            coopMatStore(acc[i * CN + j], sw, sbase, TM / 4u, gl_CooperativeMatrixLayoutColumnMajor);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            const uint lr0 = wr * SUB_M + i * TM;
            const uint c0 = wc * SUB_N + j * TN;
            for (uint e = lane; e < TM * TN; e += gl_SubgroupSize) {
                const uint lr = lr0 + e % TM;
                const uint c = c0 + e / TM;
                if (m0 + lr < p.m && COL_OK(c)) {
                    dst[d_z + r_d[lr] + COL_D(c) * r_s[lr]] = uintBitsToFloat(sw[sbase + e / 4u][e % 4u]);
                }
            }
            subgroupMemoryBarrierShared();
            subgroupBarrier();
        }
    }
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint m0 = gl_WorkGroupID.x * BM;
#ifdef ID
    id_expert = gl_WorkGroupID.z;
    id_weights = id_expert < p.n_expert;
    id_count = group_count(id_expert);
    if (gl_WorkGroupID.y * BN >= id_count) {
        return; // uniform: the whole workgroup leaves (most buckets get few pairs)
    }
#endif
    for (uint r = tid; r < BM; r += WGS) {
        if (m0 + r < p.m) {
            const RowAddr ad = row_addr(m0 + r);
            r_w[r] = ad.wbase;
            r_d[r] = ad.dbase;
            r_s[r] = ad.dstride;
        }
    }
#ifdef ID
    // Tiles y, y + grid y, ... of the bucket (more than one only when a token's ids
    // repeat an expert: MOE_TOPK's never do).
    for (uint n0 = gl_WorkGroupID.y * BN; n0 < id_count; n0 += gl_NumWorkGroups.y * BN) {
        set_columns(n0, id_count, tid, WGS);
        barrier();
        mul_tile(m0, n0, 0u, p.k, 0u, tid);
        // mul_tile ends with the output loop: its reads of c_d finish before the next
        // tile's columns are written.
        barrier();
    }
#else
    // Split-K (dispatch/mul_mat_tiled.rs `split_k`, grids too small to fill the device): with
    // ks = gl_NumWorkGroups.z > 1 workgroups along z, workgroup z takes k values
    // z * kc .. (z + 1) * kc - 1 (kc = p.x2_off, a multiple of BK) and writes its partial
    // result as block z of m x n values past dst's (unsplit weights: the plain [m, n]
    // layout); sum_splits.comp adds the blocks up.
    const uint ks = gl_NumWorkGroups.z;
    const uint kb = ks > 1u ? gl_WorkGroupID.z * p.x2_off : 0u;
    const uint ke = ks > 1u ? min(kb + p.x2_off, p.k) : p.k;
    barrier();
    mul_tile(m0, gl_WorkGroupID.y * BN, kb, ke, gl_WorkGroupID.z * p.m * p.n, tid);
#endif
}
