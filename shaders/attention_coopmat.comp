#version 450
// bindings: 5
// push: 48
// workgroup: 128
//
// Causal multi-head attention with GQA over an f16 KV cache (Op::Attention) for prompt
// batches, on cooperative matrices (VK_KHR_cooperative_matrix, 16 x 8 x 16 f16 products,
// f32 accumulation): the same operands, spans and result as attention.comp
// (common/attention_body.glsl), which keeps decode and devices without the shape.
//   q    f32 [D, n_head, n]         (binding 0)
//   k    f16 [D, n_head_kv, n_kv..] (binding 1, read as uvec4 = 8 halves)
//   v    f16 [D, n_head_kv, n_kv..] (binding 2, read as uvec4)
//   span i32 [2, n]                 (binding 3: token t attends rows span[2t] ..= span[2t+1],
//                                    clamped as attention.comp: never empty)
//   dst  f32 [D, n_head, n]         (binding 4)
//
// A workgroup takes one kv head and ROWS = 64 query rows of it: row R (flattened over
// the batch) is query head g = R % G of token t = R / G, G = n_head / n_head_kv, so the
// query heads sharing a kv head share every K / V load. NSG = 4 subgroups own 16 rows
// each. The workgroup walks the union of its rows' key ranges in tiles of BC = 32 cache
// rows (64 ran 40 % slower at 4,096 tokens on the H100), K and V staged in shared memory
// as f16 rows of D + 8 halves, the next tile's words loading into registers while a tile
// is computed, in one pass with an online softmax:
//   S = q·kᵀ per tile (q scaled, f16, held as D / 16 A matrices per subgroup; kᵀ as B
//   matrices read column-major from the K rows) goes through the subgroup's shared block,
//   where lane (row r, part h) reads keys h·KPL .. of row r, so a row's maximum is a
//   shuffle away; the running maximum m becomes m' = max(m, the tile's), the weights
//   p = exp(S - m') (0 outside the row's span) go to shared memory as f16, l = a·l + sum p
//   with a = exp(m - m'), and o = a·o + p · v on the matrices (p as A, the V rows as
//   row-major B). KHR cooperative matrices have no per-row access, so the row factor a is
//   a 16 x 8 accumulator matrix loaded from shared memory (a[r] in every column) and o is
//   multiplied by it component-wise — skipped when every row of the subgroup has a = 1
//   (the maximum did not move), as it mostly is after the first tiles.
// Then dst = o / l, through the same shared block, one 16 x 8 matrix at a time. Rows past
// the batch (t >= n) have empty ranges and are not written.
//
// Specialization constants: 0 = D (a multiple of 16, <= 128), 1 = workgroup size =
// NSG x the subgroup size (16, 32 or 64: lanes per row LPR = subgroup size / 16).
// GL_KHR_cooperative_matrix, as mul_mat_coopmat.comp.
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_KHR_cooperative_matrix : require

layout(constant_id = 0) const uint D = 128;
layout(constant_id = 1) const uint WGS = 128;
layout(local_size_x_id = 1, local_size_y = 1, local_size_z = 1) in;

#define NSG 4u
#define BR 16u
#ifndef BC
#define BC 32u
#endif
#define TM 16u
#define TN 8u
#define TK 16u
#define ROWS (NSG * BR)
// Row strides: K / V / q staging rows in halves (+8: 16-byte aligned, banks staggered),
// scores in floats (+4), p in halves (+8).
const uint SKS = D + 8u;
const uint SSS = BC + 4u;
const uint SPS = BC + 8u;
const uint D8 = D / 8u;
// Lanes per row (subgroup size / BR: WGS = NSG x the subgroup size) and keys per lane.
const uint LPR = WGS / NSG / BR;
const uint KPL = BC / LPR;
// Scope 3 = Subgroup (a number: gl_ScopeSubgroup needs GL_KHR_memory_scope_semantics).
#define MAT_A coopmat<float16_t, 3, TM, TK, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, 3, TK, TN, gl_MatrixUseB>
#define MAT_C coopmat<float, 3, TM, TN, gl_MatrixUseAccumulator>

layout(std430, set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(std430, set = 0, binding = 1) readonly buffer K { uvec4 k4[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { uvec4 v4[]; };
layout(std430, set = 0, binding = 3) readonly buffer P { int span[]; };
layout(std430, set = 0, binding = 4) writeonly buffer O { float dst[]; };

layout(push_constant) uniform Push {
    uint d;
    uint n_head;
    uint n_head_kv;
    uint n;
    uint n_kv;
    float scale;
    uint q_off;  // floats
    uint k_off;  // uvec4
    uint v_off;  // uvec4
    uint span_off;
    uint d_off;  // floats
    uint pad;
} p;

// K tile then V tile (BC rows of SKS halves each); at the start, the workgroup's ROWS
// scaled q rows (ROWS <= 2 BC).
shared uvec4 skv[2u * BC * SKS / 8u];
// Per subgroup: BR x BC scores (f32 bits, row-major, SSS floats per row), later one
// 16 x 8 output matrix at a time.
shared uvec4 ss[NSG * BR * SSS / 4u];
// Per subgroup: BR x BC weights p as f16 (SPS halves per row).
shared uvec4 sp[NSG * BR * SPS / 8u];
// Per subgroup: the rows' rescale factors as a column-major 16 x 8 matrix (a[r] at r + 16 c).
shared float sa[NSG * TM * TN];
shared uint r_lo[ROWS];
shared uint r_hi[ROWS];
shared float r_l[ROWS];

uvec4 pack8(vec4 a, vec4 b) {
    return uvec4(packFloat2x16(f16vec2(a.xy)), packFloat2x16(f16vec2(a.zw)),
                 packFloat2x16(f16vec2(b.xy)), packFloat2x16(f16vec2(b.zw)));
}

// Cache rows j0 .. j0 + BC - 1 of kv head kh, K then V: invocation tid takes the words
// i = tid, tid + WGS, ... (NW of each); rows at or past khi are zeros (their weights are
// 0, and 0 · v must not meet a NaN).
const uint NW = (BC * D8 + WGS - 1u) / WGS;
void fetch_tile(uint j0, uint khi, uint kh, out uvec4 wk[NW], out uvec4 wv[NW]) {
    [[unroll]] for (uint u = 0u; u < NW; u++) {
        const uint i = gl_LocalInvocationID.x + u * WGS;
        const uint j = j0 + i / D8;
        const uint src = (j * p.n_head_kv + kh) * D8 + i % D8;
        const bool in_tile = i < BC * D8 && j < khi;
        wk[u] = in_tile ? k4[p.k_off + src] : uvec4(0u);
        wv[u] = in_tile ? v4[p.v_off + src] : uvec4(0u);
    }
}
void stash_tile(uvec4 wk[NW], uvec4 wv[NW]) {
    [[unroll]] for (uint u = 0u; u < NW; u++) {
        const uint i = gl_LocalInvocationID.x + u * WGS;
        if (i < BC * D8) {
            skv[(i / D8) * (SKS / 8u) + i % D8] = wk[u];
            skv[(BC + i / D8) * (SKS / 8u) + i % D8] = wv[u];
        }
    }
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint sid = gl_SubgroupID;
    const uint lane = gl_SubgroupInvocationID;
    const uint kh = gl_WorkGroupID.x;
    const uint G = p.n_head / p.n_head_kv;
    const uint R0 = gl_WorkGroupID.y * ROWS;

    // Rows: their clamped spans (empty past the batch) and their scaled q rows as f16.
    for (uint r = tid; r < ROWS; r += WGS) {
        const uint t = (R0 + r) / G;
        uint lo = 0u, hi = 0u;
        if (t < p.n) {
            hi = min(uint(max(span[p.span_off + 2u * t + 1u], 0)) + 1u, p.n_kv);
            lo = min(uint(max(span[p.span_off + 2u * t], 0)), hi - 1u);
        }
        r_lo[r] = lo;
        r_hi[r] = hi;
    }
    for (uint i = tid; i < ROWS * D8; i += WGS) {
        const uint r = i / D8;
        const uint c = i % D8;
        const uint t = (R0 + r) / G;
        const uint g = (R0 + r) % G;
        uvec4 v = uvec4(0u);
        if (t < p.n) {
            const uint b = p.q_off + (t * p.n_head + kh * G + g) * D + 8u * c;
            v = pack8(vec4(q[b], q[b + 1u], q[b + 2u], q[b + 3u]) * p.scale,
                      vec4(q[b + 4u], q[b + 5u], q[b + 6u], q[b + 7u]) * p.scale);
        }
        skv[r * (SKS / 8u) + c] = v;
    }
    barrier();
    MAT_A qa[D / TK];
    [[unroll]] for (uint i = 0u; i < D / TK; i++) {
        coopMatLoad(qa[i], skv, (sid * BR * SKS + i * TK) / 8u, SKS / 8u,
                    gl_CooperativeMatrixLayoutRowMajor);
    }
    // The union of the rows' ranges (uniform).
    uint klo = p.n_kv, khi = 0u;
    for (uint r = 0u; r < ROWS; r++) {
        if (r_hi[r] > r_lo[r]) {
            klo = min(klo, r_lo[r]);
            khi = max(khi, r_hi[r]);
        }
    }
    barrier(); // every subgroup holds its q: skv becomes the K / V tiles

    // Lane (row rr, part h) of its subgroup's 16 rows: keys h·KPL .. h·KPL + KPL - 1 of
    // each tile. The LPR lanes of a row are lanes rr, rr + 16, ...
    const uint rr = lane % BR;
    const uint h = lane / BR;
    const uint rw = sid * BR + rr;
    const uint lo = r_lo[rw];
    const uint hi = r_hi[rw];
    const uint sbase = sid * BR * SSS + rr * SSS + h * KPL;

    // Online softmax: m = the row's running maximum (over its lanes' keys so far, equal on
    // the row's LPR lanes), l = this lane's part of the sum of p, acc = sum p v.
    float NEG_INF = uintBitsToFloat(0xff800000u);
    float m = NEG_INF;
    float l = 0.0;
    MAT_C acc[D / TN];
    [[unroll]] for (uint c = 0u; c < D / TN; c++) {
        acc[c] = MAT_C(0.0);
    }
    const uint pbase = sid * BR * SPS + rr * SPS + h * KPL; // in halves
    uvec4 wk[NW], wv[NW];
    if (klo < khi) {
        fetch_tile(klo, khi, kh, wk, wv);
    }
    for (uint j0 = klo; j0 < khi; j0 += BC) {
        stash_tile(wk, wv);
        barrier();
        // The next tile's words load while this one is computed.
        if (j0 + BC < khi) {
            fetch_tile(j0 + BC, khi, kh, wk, wv);
        }
        // The subgroup's BR x BC scores into its block of ss.
        [[unroll]] for (uint cb = 0u; cb < BC / TN; cb++) {
            MAT_C s = MAT_C(0.0);
            [[unroll]] for (uint i = 0u; i < D / TK; i++) {
                MAT_B kb;
                coopMatLoad(kb, skv, (cb * TN * SKS + i * TK) / 8u, SKS / 8u,
                            gl_CooperativeMatrixLayoutColumnMajor);
                s = coopMatMulAdd(qa[i], kb, s);
            }
            coopMatStore(s, ss, (sid * BR * SSS + cb * TN) / 4u, SSS / 4u,
                         gl_CooperativeMatrixLayoutRowMajor);
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        // The lane's scores (masked to the row's span), the row's new maximum.
        float sv[KPL];
        float tm = NEG_INF;
        [[unroll]] for (uint e = 0u; e < KPL; e++) {
            const uint j = j0 + h * KPL + e;
            const uint f = sbase + e;
            sv[e] = j >= lo && j < hi ? uintBitsToFloat(ss[f / 4u][f % 4u]) : NEG_INF;
            tm = max(tm, sv[e]);
        }
        for (uint o = BR; o < BR * LPR; o <<= 1) {
            tm = max(tm, subgroupShuffleXor(tm, o));
        }
        const float mn = max(m, tm);
        // a = 1 while the row has no key yet (mn = -inf: exp would give NaN) or its maximum
        // stays; exp(-inf) = 0 when the first keys arrive (acc and l are 0 then anyway).
        const float a = mn == m ? 1.0 : exp(m - mn);
        m = mn;
        l *= a;
        [[unroll]] for (uint e = 0u; e < KPL; e += 8u) {
            float w[8];
            [[unroll]] for (uint u = 0u; u < 8u; u++) {
                w[u] = sv[e + u] == NEG_INF ? 0.0 : exp(sv[e + u] - mn);
                l += w[u];
            }
            sp[(pbase + e) / 8u] = pack8(vec4(w[0], w[1], w[2], w[3]),
                                         vec4(w[4], w[5], w[6], w[7]));
        }
        const bool rescale = !subgroupAll(a == 1.0);
        if (rescale) {
            // Lane (rr, h) writes a into columns h, h + LPR, ... of row rr.
            for (uint c = h; c < TN; c += LPR) {
                sa[sid * TM * TN + c * TM + rr] = a;
            }
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        if (rescale) {
            MAT_C am;
            coopMatLoad(am, sa, sid * TM * TN, TM, gl_CooperativeMatrixLayoutColumnMajor);
            [[unroll]] for (uint c = 0u; c < D / TN; c++) {
                acc[c] = acc[c] * am;
            }
        }
        [[unroll]] for (uint kk = 0u; kk < BC / TK; kk++) {
            MAT_A pa;
            coopMatLoad(pa, sp, (sid * BR * SPS + kk * TK) / 8u, SPS / 8u,
                        gl_CooperativeMatrixLayoutRowMajor);
            [[unroll]] for (uint c = 0u; c < D / TN; c++) {
                MAT_B vb;
                coopMatLoad(vb, skv, ((BC + kk * TK) * SKS + c * TN) / 8u,
                            SKS / 8u, gl_CooperativeMatrixLayoutRowMajor);
                acc[c] = coopMatMulAdd(pa, vb, acc[c]);
            }
        }
        barrier(); // the tiles are restashed
    }
    for (uint o = BR; o < BR * LPR; o <<= 1) {
        l += subgroupShuffleXor(l, o);
    }
    if (h == 0u) {
        r_l[rw] = l;
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();

    // dst = o / l: each 16 x 8 matrix through the subgroup's score block (column-major,
    // 16 floats per column), then lane e writes row e % 16, column e / 16.
    const uint obase = sid * BR * SSS;
    [[unroll]] for (uint c = 0u; c < D / TN; c++) {
        coopMatStore(acc[c], ss, obase / 4u, TM / 4u,
                     gl_CooperativeMatrixLayoutColumnMajor);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (uint e = lane; e < TM * TN; e += gl_SubgroupSize) {
            const uint r = e % TM;
            const uint R = R0 + sid * BR + r;
            const uint t = R / G;
            if (t < p.n) {
                const uint f = obase + e;
                const uint ob = p.d_off + (t * p.n_head + kh * G + R % G) * D + c * TN + e / TM;
                dst[ob] = uintBitsToFloat(ss[f / 4u][f % 4u]) / r_l[sid * BR + r];
            }
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
    }
}
