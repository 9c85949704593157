#version 450
// bindings: 3
// push: 64
// workgroup: 128
//
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

void main() {
    const uint row0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * NR;
    if (row0 >= p.m) {
        return; // uniform per workgroup
    }
    const uint tid = gl_LocalInvocationID.x;
    const uint n = NMAX;
    const uint units = (p.k / QK) * CHUNKS;

    float acc[NR][NMAX];
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            acc[r][j] = 0.0;
        }
    }

    // Rows past m (last workgroup) re-read row0 and their sums are dropped: keeps the
    // loop below branch-free so the NR rows' loads are all in flight together.
    uint wbase[NR];
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        wbase[r] = row_addr(row0 + r < p.m ? row0 + r : row0).wbase;
    }
    for (uint u = tid; u < units; u += WG) {
        const uint b = u / CHUNKS;
        const uint c = u % CHUNKS;
        const uint o0 = chunk_xoff(c, 0u), o1 = chunk_xoff(c, 1u);
        const uint o2 = chunk_xoff(c, 2u), o3 = chunk_xoff(c, 3u);
        vec4 w[NR][4];
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            dq_chunk(wbase[r] + b * BLOCK_BYTES, c, w[r]);
        }
        const uint xb = b * QK;
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            const uint e = j * p.k + xb;
            const vec4 x0 = load_x4(e + o0), x1 = load_x4(e + o1);
            const vec4 x2 = load_x4(e + o2), x3 = load_x4(e + o3);
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                acc[r][j] += dot(w[r][0], x0) + dot(w[r][1], x1) + dot(w[r][2], x2)
                    + dot(w[r][3], x3);
            }
        }
    }

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
    barrier();
    for (uint t = tid; t < slots; t += WG) {
        const uint r = t / n, j = t % n;
        float s = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++) {
            s += red[(r * NMAX + j) * WG + g];
        }
        const uint row = row0 + r;
        if (row < p.m) {
            const RowAddr a = row_addr(row);
            dst[a.dbase + j * a.dstride] = s;
        }
    }
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
    for (uint t = tid; t < slots; t += WG) {
        const uint r = t / n, j = t % n;
        const uint row = row0 + r;
        if (row < p.m) {
            const RowAddr a = row_addr(row);
            dst[a.dbase + j * a.dstride] = red[(r * NMAX + j) * WG];
        }
    }
#endif
}
