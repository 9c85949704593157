#version 450
// bindings: 3
// push: 16
// workgroup: 256
//
// SwiGLU (see Op::SwiGlu): dst[i] = silu(g[i]) * u[i], silu(v) = v / (1 + exp(-v)),
// over n_elements contiguous f32 values (1-D, dispatched on a 2-D grid, common/index.glsl).
// g and u are one binding each; the fused gate/up matmul writes them as two contiguous
// blocks of one buffer, which then simply appears in both bindings.
// Bindings are whole buffers; *_off are element offsets (dispatch/glu.rs).
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer G { float g[]; };
layout(std430, set = 0, binding = 1) readonly buffer U { float u[]; };
layout(std430, set = 0, binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
    uint n_elements;
    uint g_off;
    uint u_off;
    uint d_off;
} p;

void main() {
    const uint i = flat_index();
    if (i >= p.n_elements) {
        return;
    }
    const float v = g[p.g_off + i];
    // exp(-v) overflows to +inf for v < -88: v / inf = -0, the correct limit.
    d[p.d_off + i] = v / (1.0 + exp(-v)) * u[p.u_off + i];
}
