#version 450
// bindings: 4
// push: 64
// workgroup: 64
//
// Expert-indexed matrix-vector products of mixture-of-experts FFNs (see Op::MulMatId):
// dst[t][s] = W[ids[s][t]] · x[t][s mod nx], any weight type (TYPE_* define,
// common/dequant.glsl). Binding 0 holds nseg (1 or 2) expert stacks — a fused weight's
// members, e.g. gate and up — stack s from byte seg_woff[s]: n_expert matrices of
// seg_rows[s] rows of row_bytes each. x is f32 [k, nx, n]; ids i32 [n_used, n]; dst f32,
// split on write: stack s's results are a contiguous [seg_rows[s], n_used, n] block
// (rows numbered across stacks: 0..m).
//
// One workgroup computes row gl_WorkGroupID.x of pair gl_WorkGroupID.y = t * n_used + s:
// its invocations stride over the row's 4-value groups (dq4, the exact dequantization),
// then reduce through a shared-memory tree (WG_X is a power of two). A prompt reads an
// expert's rows once per token that chose it (no grouping of tokens by expert yet).
// An id outside 0..n_expert (the ids come from MOE_TOPK on the same device, so only a
// bug could make one) gives 0, not an out-of-range read.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#define W_BINDING 0
#include "common/dequant.glsl"

layout(local_size_x = WG_X, local_size_y = 1, local_size_z = 1) in;

layout(std430, set = 0, binding = 1) readonly restrict buffer X { float x[]; };
layout(std430, set = 0, binding = 2) writeonly restrict buffer D { float dst[]; };
layout(std430, set = 0, binding = 3) readonly restrict buffer I { int ids[]; };

layout(push_constant) uniform Push {
    uint k;
    uint m;
    uint nx;
    uint n_used;
    uint n_expert;
    uint x_off;
    uint d_off;
    uint ids_off;
    uint row_bytes;
    uint nseg;
    uvec2 seg_rows;
    uvec2 seg_woff;    // bytes
    uvec2 pad;
} p;

shared float red[WG_X];

void main() {
    const uint i = gl_WorkGroupID.x;
    const uint ts = gl_WorkGroupID.y;
    const uint t = ts / p.n_used;
    const uint s = ts % p.n_used;
    const uint tid = gl_LocalInvocationID.x;
    const int e = ids[p.ids_off + ts];
    // Which stack row i is in, its row there, where its results go.
    const bool second = p.nseg > 1u && i >= p.seg_rows.x;
    const uint rows = second ? p.seg_rows.y : p.seg_rows.x;
    const uint r = second ? i - p.seg_rows.x : i;
    const uint start = second ? p.seg_rows.x : 0u;
    const uint woff = second ? p.seg_woff.y : p.seg_woff.x;
    float acc = 0.0;
    if (e >= 0 && uint(e) < p.n_expert && i < p.m) {
        const uint rb = woff + (uint(e) * rows + r) * p.row_bytes;
        const uint xb = p.x_off + (t * p.nx + s % p.nx) * p.k;
        for (uint g = tid; g < p.k / 4u; g += WG_X) {
            const uint kk = 4u * g;
            const vec4 w = dq4(rb + (kk / QK) * BLOCK_BYTES, kk % QK);
            const vec4 xv = vec4(x[xb + kk], x[xb + kk + 1u], x[xb + kk + 2u], x[xb + kk + 3u]);
            acc += dot(w, xv);
        }
    }
    red[tid] = acc;
    barrier();
    for (uint h = WG_X / 2u; h > 0u; h >>= 1) {
        if (tid < h) {
            red[tid] += red[tid + h];
        }
        barrier();
    }
    if (tid == 0u && i < p.m) {
        dst[p.d_off + gl_NumWorkGroups.y * start + ts * rows + r] = red[0];
    }
}
