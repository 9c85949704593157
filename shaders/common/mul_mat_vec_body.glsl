// Matrix-vector product for decode (n = NMAX <= 16 tokens): dst[j][i] = sum_k w[i][k] * x[j][k]
// for any weight type (TYPE_* define, common/dequant.glsl); layout, push constants and
// split-on-write addressing in common/dequant_matmul.glsl.
//
// One workgroup computes NR consecutive rows (2-D grid: row group = y * groups_x + x).
// A row is a sequence of 16-value chunks (CHUNKS per block); invocation t takes chunks
// t, t + WG, ... so neighbouring invocations read neighbouring bytes (coalesced); it
// loads chunk u of all NR rows before using them (NR independent loads in flight, x
// read once for NR rows) and uses each dequantized chunk for all n tokens (weights are
// read once per dispatch).
// Partial sums are reduced with subgroupAdd plus one shared slot per subgroup (SUBGROUP
// variants: any subgroup size, read at run time from gl_SubgroupSize/gl_NumSubgroups)
// or a shared-memory tree (WG must be a power of two).
//
// Specialization constants: 0 = WG (workgroup width), 1 = NR (rows per workgroup),
// 2 = X_VEC4 (common/dequant_matmul.glsl), 3 = NMAX (the token count n).
//
// LAYER (mul_mat_vec_layer.comp, Op::MulMatLayer; needs SUBGROUP) adds decode-layer
// fusion, chosen by specialization constants 4 = NORM and 5 = EPI:
// - NORM: x is RMS-normalized per token and multiplied by nw (binding 3, f32 [k] at
//   nw_off; read as vec4 when constant 6, NW_VEC4, says nw_off % 4 == 0) in the prologue. The loop below reads every x value of a token exactly once
//   per workgroup, so it sums x^2 on the way (the reduction carries it with the partial
//   sums) and scales each row's dot product by 1/rms at the end: no extra pass over x.
// - EPI = 1 (add): dst = W.x + r (binding 4, f32 [m, n] at r_off).
// - EPI = 3 (bias): dst = W.x + b, b (binding 4) f32 [m] at r_off, row i (across the
//   segments) of every token plus b[i]; split on write as without an epilogue.
// - EPI = 2 (swiglu): the weight is two equal segments (gate rows, then up rows); a
//   workgroup takes NR/2 gate rows and the up rows with the same index, and writes
//   silu(gate) * up into dst [m/2, n].
// Every variant multiplies the product by p.scale (a folded SCALE) before the epilogue.
//
// GROUP (mul_mat_vec_group.comp; needs LAYER, EPI = 0 or 3) takes segments of two weight
// types, TYPE_A and TYPE_B (bit s of p.seg_b: segment s is TYPE_B), each with its own
// row bytes (p.seg_rb): Q/K/V of a mixed quantization in one dispatch (DESIGN.md
// decision 14). The dispatch makes every segment but the last a multiple of NR rows, so
// a workgroup's rows share one segment and its type is uniform; the accumulation loop
// (common/mul_mat_vec_loop.glsl) is compiled once per type and the workgroup runs one.
// Unused bindings are bound to x by the dispatch helper.
//
// ID (mul_mat_vec_id.comp, Op::MulMatId for decode; NMAX = 1, no LAYER): workgroup z is a
// (token, slot) pair; its expert is ids[id_off + pair] (binding 3), row_addr adds that
// expert's matrix offset, x is the pair's row (pair_x_row) and the results go to dst
// column `pair` (split on write over pairs: stack s's results are a contiguous
// [seg_rows[s], n_used, n] block). An expert id out of
// range writes 0. With constant 5 (EPI) = 2 the SwiGLU epilogue: gate/up row pairs
// (common/mat_vec_layer.glsl's GLU) and silu(gate) * up into dst [m/2, n_used, n]
// (common/id_pair.glsl).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common/dequant_matmul.glsl"

layout(constant_id = 0) const uint WG = WG_X;
layout(constant_id = 1) const uint NR = 2;
// Tokens: exactly p.n (1..16, set by the dispatch helper), so the per-token loops are
// static and only NR * NT accumulators live in registers.
layout(constant_id = 3) const uint NMAX = 1;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

shared float red[NR * NMAX * WG];

#ifdef ID
#define IDS_BINDING 3
layout(std430, set = 0, binding = IDS_BINDING) readonly restrict buffer IDS { int ids[]; };
// The x row of token j and the dst column of its results (see ID above).
#define X_ROW(j) id_xrow
#define OUT_COL(j) id_pair
#else
#define X_ROW(j) (j)
#define OUT_COL(j) (j)
#endif

#include "mat_vec_layer.glsl"
#ifdef ID
#ifdef SUBGROUP
#define SUBGROUP_RED
#endif
#include "common/id_pair.glsl"
#endif

void main() {
    const uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (!row_in(group, 0u)) {
        return; // uniform per workgroup
    }
    const uint row0 = phys_row(group, 0u);
    const uint tid = gl_LocalInvocationID.x;
    const uint n = NMAX;
#ifdef ID
    const uint id_pair = gl_WorkGroupID.z;
    const uint id_xrow = pair_x_row(id_pair);
    // An id out of range computes expert 0's rows and writes 0.
    const bool id_ok = id_pair_begin(id_pair);
#endif

    float acc[NR][NMAX];
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            acc[r][j] = 0.0;
        }
    }
    float ss[NMAX]; // NORM: this invocation's share of sum(x^2) per token
    [[unroll]] for (uint j = 0u; j < NMAX; j++) {
        ss[j] = 0.0;
    }

    // Rows past m (last workgroup) re-read row0 and their sums are dropped: keeps the
    // loop below branch-free so the NR rows' loads are all in flight together.
    uint wbase[NR];
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        wbase[r] = row_addr(row_in(group, r) ? phys_row(group, r) : row0).wbase;
    }
#ifdef GROUP
    if (((p.seg_b >> seg_of(row0)) & 1u) != 0u) {
#define NS(x) x##_b
#include "mul_mat_vec_loop.glsl"
#undef NS
    } else {
#define NS(x) x##_a
#include "mul_mat_vec_loop.glsl"
#undef NS
    }
#else
#define NS(x) x
#include "mul_mat_vec_loop.glsl"
#undef NS
#endif

    // ---- reduce the NR x n partial sums over the workgroup ----------------------------
    const uint slots = NR * n;
#ifdef SUBGROUP
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            const float s = subgroupAdd(acc[r][j]);
            if (subgroupElect()) {
                red[(r * NMAX + j) * WG + gl_SubgroupID] = s;
            }
        }
    }
#ifdef LAYER
    store_ss(ss);
#endif
    barrier();
#ifdef LAYER
#include "mat_vec_layer_out.glsl"
#elif defined(ID)
    id_out_subgroups(group, id_pair, id_ok, tid);
#else
    for (uint t = tid; t < slots; t += WG) {
        const uint r = t / n, j = t % n;
        float s = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++) {
            s += red[(r * NMAX + j) * WG + g];
        }
        const uint row = row0 + r;
        if (row < p.m) {
            const RowAddr a = row_addr(row);
            dst[a.dbase + OUT_COL(j) * a.dstride] = s;
        }
    }
#endif
#else
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            red[(r * NMAX + j) * WG + tid] = acc[r][j];
        }
    }
    barrier();
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
        if (tid < h) {
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                [[unroll]] for (uint j = 0u; j < NMAX; j++) {
                    const uint at = (r * NMAX + j) * WG + tid;
                    red[at] += red[at + h];
                }
            }
        }
        barrier();
    }
#ifdef ID
    for (uint r = tid; r < NR; r += WG) {
        const float u = GLU ? red[((r + 1u) % NR) * WG] : 0.0;
        id_out(group, r, id_pair, id_ok ? red[r * WG] : 0.0, id_ok ? u : 0.0);
    }
#else
    for (uint t = tid; t < slots; t += WG) {
        const uint r = t / n, j = t % n;
        const uint row = row0 + r;
        if (row < p.m) {
            const RowAddr a = row_addr(row);
            dst[a.dbase + OUT_COL(j) * a.dstride] = red[(r * NMAX + j) * WG];
        }
    }
#endif
#endif
}
