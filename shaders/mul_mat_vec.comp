#version 450
// bindings: 3
// push: 64
// workgroup: 128
//
// Matrix-vector product for decode (n <= NMAX tokens): dst[j][i] = sum_k w[i][k] * x[j][k]
// for any weight type (TYPE_* define, common/dequant.glsl); layout, push constants and
// split-on-write addressing in common/dequant_matmul.glsl.
//
// One workgroup computes NR consecutive rows (2-D grid: row group = y * groups_x + x).
// A row is a sequence of 16-value chunks (CHUNKS per block); invocation t takes chunks
// t, t + WG, ... so neighbouring invocations read neighbouring bytes (coalesced), and
// each dequantized chunk is used for all n tokens (weights are read once per dispatch).
// Partial sums are reduced with subgroupAdd plus one shared slot per subgroup (SUBGROUP
// variants: any subgroup size, read at run time from gl_SubgroupSize/gl_NumSubgroups)
// or a shared-memory tree (WG must be a power of two).
//
// Specialization constants: 0 = WG (workgroup width), 1 = NR (rows per workgroup),
// 2 = X_VEC4 (common/dequant_matmul.glsl).
#extension GL_GOOGLE_include_directive : require
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common/dequant_matmul.glsl"

// Tokens one dispatch handles at most (the dispatch helper splits larger n).
#define NMAX 8u

layout(constant_id = 0) const uint WG = WG_X;
layout(constant_id = 1) const uint NR = 2;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

shared float red[NR * NMAX * WG];

void main() {
    const uint row0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * NR;
    if (row0 >= p.m) {
        return; // uniform per workgroup
    }
    const uint tid = gl_LocalInvocationID.x;
    const uint n = min(p.n, NMAX);
    const uint units = (p.k / QK) * CHUNKS;

    float acc[NR][NMAX];
    for (uint r = 0u; r < NR; r++) {
        for (uint j = 0u; j < NMAX; j++) {
            acc[r][j] = 0.0;
        }
    }

    for (uint r = 0u; r < NR; r++) {
        const uint row = row0 + r;
        if (row >= p.m) {
            break;
        }
        const uint wbase = row_addr(row).wbase;
        for (uint u = tid; u < units; u += WG) {
            const uint b = u / CHUNKS;
            const uint c = u % CHUNKS;
            const uint bb = wbase + b * BLOCK_BYTES;
            const uint o0 = chunk_xoff(c, 0u), o1 = chunk_xoff(c, 1u);
            const uint o2 = chunk_xoff(c, 2u), o3 = chunk_xoff(c, 3u);
            const vec4 w0 = dq4(bb, o0), w1 = dq4(bb, o1);
            const vec4 w2 = dq4(bb, o2), w3 = dq4(bb, o3);
            const uint xb = b * QK;
            for (uint j = 0u; j < NMAX; j++) {
                if (j >= n) {
                    break;
                }
                const uint e = j * p.k + xb;
                float s = dot(w0, load_x4(e + o0));
                s += dot(w1, load_x4(e + o1));
                s += dot(w2, load_x4(e + o2));
                s += dot(w3, load_x4(e + o3));
                acc[r][j] += s;
            }
        }
    }

    // ---- reduce the NR x n partial sums over the workgroup ----------------------------
    const uint slots = NR * n;
#ifdef SUBGROUP
    for (uint r = 0u; r < NR; r++) {
        for (uint j = 0u; j < NMAX; j++) {
            if (j >= n) {
                break;
            }
            const float s = subgroupAdd(acc[r][j]);
            if (subgroupElect()) {
                red[(r * NMAX + j) * WG + gl_SubgroupID] = s;
            }
        }
    }
    barrier();
    if (tid < slots) {
        const uint r = tid / n, j = tid % n;
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
    for (uint r = 0u; r < NR; r++) {
        for (uint j = 0u; j < NMAX; j++) {
            if (j >= n) {
                break;
            }
            red[(r * NMAX + j) * WG + tid] = acc[r][j];
        }
    }
    barrier();
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
        if (tid < h) {
            for (uint r = 0u; r < NR; r++) {
                for (uint j = 0u; j < NMAX; j++) {
                    if (j >= n) {
                        break;
                    }
                    const uint at = (r * NMAX + j) * WG + tid;
                    red[at] += red[at + h];
                }
            }
        }
        barrier();
    }
    if (tid < slots) {
        const uint r = tid / n, j = tid % n;
        const uint row = row0 + r;
        if (row < p.m) {
            const RowAddr a = row_addr(row);
            dst[a.dbase + j * a.dstride] = red[(r * NMAX + j) * WG];
        }
    }
#endif
}
