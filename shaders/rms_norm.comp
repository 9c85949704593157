#version 450
// bindings: 5
// push: 48
// workgroup: 256
//
// RMS norm, one workgroup per row (see Op::RmsNorm):
//   dst[r, i] = x[r, i] / sqrt(mean_i(x[r, i]^2) + eps)            (plain)
//   dst[r, i] = x[r, i] / sqrt(mean_i(x[r, i]^2) + eps) * w[r % w_rows, i]   (MUL)
// The MUL variants fuse the rms_norm+mul pair (binding 1 = the weight rows); the plain
// variants ignore binding 1. The row's sum of squares is reduced with subgroup
// arithmetic (SUBGROUP variants) or a shared-memory tree; nothing assumes a subgroup
// size. Rows are spread over a 2-D grid (row = y * groups_x + x) so any row count fits.
// Q8 variants (MUL only) also write the result as q8_1 blocks (common/q8_1.glsl,
// bindings 3 and 4; ne0 % 32 == 0) for the integer-dot mat-vec that reads it, so no
// separate quantize_q8_1 dispatch is needed; other variants leave bindings 3-4 unused.
// Bindings are whole buffers; *_off are element offsets (dispatch/norm.rs).
#extension GL_GOOGLE_include_directive : require
#include "common/rms_norm_reduce.glsl"
#ifdef Q8
#define Q8_CODES 3
#define Q8_SCALES 4
#include "common/q8_1.glsl"
#endif

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
    uint ne0;
    uint nrows;
    float eps;
    uint w_rows;
    uint x_off;
    uint w_off;
    uint d_off;
    uint q_off;  // Q8: element offsets of the codes and the pairs
    uint ds_off;
    uint pad0;
    uint pad1;
    uint pad2;
} p;

void main() {
    const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= p.nrows) {
        return; // uniform per workgroup: no barrier below is skipped by part of it
    }
    const uint tid = gl_LocalInvocationID.x;
    const uint xb = p.x_off + row * p.ne0;

    float ss = 0.0;
    // RMS_UNROLL loads in flight per invocation (common/rms_norm_reduce.glsl).
    for (uint i0 = tid; i0 < p.ne0; i0 += RMS_UNROLL * WG_X) {
        float v[RMS_UNROLL];
        [[unroll]] for (uint c = 0u; c < RMS_UNROLL; c++) {
            const uint i = i0 + c * WG_X;
            v[c] = i < p.ne0 ? x[xb + i] : 0.0;
        }
        [[unroll]] for (uint c = 0u; c < RMS_UNROLL; c++) {
            ss += v[c] * v[c];
        }
    }
    ss = rms_norm_sum(ss);

    const float scale = inversesqrt(ss / float(p.ne0) + p.eps);
    const uint db = p.d_off + row * p.ne0;
#ifdef MUL
    const uint wb = p.w_off + (row % p.w_rows) * p.ne0;
#endif
#ifdef Q8
    // Groups of 4 values, 8 consecutive invocations per 32-value block (WG_X % 8 == 0).
    const uint nb = p.ne0 / 32u;
    for (uint g = tid; g < 8u * nb; g += WG_X) {
        vec4 v;
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            const uint e = 4u * g + c;
            v[c] = x[xb + e] * scale * w[wb + e];
            d[db + e] = v[c];
        }
        q8_store4(p.q_off, p.ds_off, row * nb + g / 8u, g % 8u, v);
    }
#else
    for (uint i = tid; i < p.ne0; i += WG_X) {
#ifdef MUL
        d[db + i] = x[xb + i] * scale * w[wb + i];
#else
        d[db + i] = x[xb + i] * scale;
#endif
    }
#endif
}
