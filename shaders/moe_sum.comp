#version 450
// bindings: 4
// push: 32
// workgroup: 256
//
// The weighted sum of a mixture-of-experts layer's expert outputs (see Op::MoeSum):
// dst[t][c] = sum_s w[s][t] * y[t][s][c]; y: f32 [ne0, n_used, n], w: f32 [n_used, n],
// dst: f32 [ne0, n]. One invocation per output value (1-D on a 2-D grid,
// common/index.glsl); offsets are elements (dispatch/moe.rs). The RESIDUAL variant
// (moe_sum_add, Op::MoeSum { residual: true }) adds r (binding 3) to the sum: the
// residual ADD that followed, folded (passes::fusion::moe_sum_add).
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly restrict buffer Y { float y[]; };
layout(std430, set = 0, binding = 1) readonly restrict buffer W { float w[]; };
layout(std430, set = 0, binding = 2) writeonly restrict buffer D { float dst[]; };
#ifdef RESIDUAL
layout(std430, set = 0, binding = 3) readonly restrict buffer R { float r[]; };
#endif

layout(push_constant) uniform Push {
    uint ne0;
    uint n_used;
    uint n;
    uint y_off;
    uint w_off;
    uint d_off;
    uint r_off; // RESIDUAL
    uint pad1;
} p;

void main() {
    const uint i = flat_index();
    if (i >= p.ne0 * p.n) {
        return;
    }
    const uint t = i / p.ne0;
    const uint c = i % p.ne0;
    float acc = 0.0;
    for (uint s = 0u; s < p.n_used; s++) {
        const uint ts = t * p.n_used + s;
        acc += w[p.w_off + ts] * y[p.y_off + ts * p.ne0 + c];
    }
#ifdef RESIDUAL
    acc += r[p.r_off + i];
#endif
    dst[p.d_off + i] = acc;
}
