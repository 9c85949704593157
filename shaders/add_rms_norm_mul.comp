#version 450
// bindings: 4
// push: 32
// workgroup: 256
//
// dst[r, i] = (a + b)[r, i] / sqrt(mean_i((a + b)[r, i]^2) + eps) * w[r % w_rows, i]:
// the residual ADD feeding a norm, fused into the norm (Op::AddRmsNormMul). The ADD node
// itself still writes the residual; this kernel only no longer waits for it, so the
// two run in one stage. One workgroup per row; the reduction is rms_norm's
// (common/rms_norm_reduce.glsl, subgroup or shared memory, any subgroup size).
// Bindings are narrowed ranges; *_off are element offsets (dispatch/norm.rs).
#extension GL_GOOGLE_include_directive : require
#include "common/rms_norm_reduce.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 3) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
    uint ne0;
    uint nrows;
    float eps;
    uint w_rows;
    uint a_off;
    uint b_off;
    uint w_off;
    uint d_off;
} p;

void main() {
    const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= p.nrows) {
        return; // uniform per workgroup: no barrier below is skipped by part of it
    }
    const uint tid = gl_LocalInvocationID.x;
    const uint ab = p.a_off + row * p.ne0;
    const uint bb = p.b_off + row * p.ne0;

    float ss = 0.0;
    for (uint i = tid; i < p.ne0; i += WG_X) {
        const float v = a[ab + i] + b[bb + i];
        ss += v * v;
    }
    ss = rms_norm_sum(ss);

    const float scale = inversesqrt(ss / float(p.ne0) + p.eps);
    const uint db = p.d_off + row * p.ne0;
    const uint wb = p.w_off + (row % p.w_rows) * p.ne0;
    for (uint i = tid; i < p.ne0; i += WG_X) {
        d[db + i] = (a[ab + i] + b[bb + i]) * scale * w[wb + i];
    }
}
