#version 450
// bindings: 5
// push: 32
// workgroup: 256
//
// SwiGLU (see Op::SwiGlu): dst[i] = silu(g[i]) * u[i], silu(v) = v / (1 + exp(-v)),
// over n_elements contiguous f32 values (1-D, dispatched on a 2-D grid, common/index.glsl).
// g and u are one binding each; the fused gate/up matmul writes them as two contiguous
// blocks of one buffer, which then simply appears in both bindings.
// The Q8 variant runs one invocation per 4 values (n_elements % 32 == 0) and also
// writes the result as q8_1 blocks (common/q8_1.glsl, bindings 3 and 4) for the
// integer-dot mat-vec of ffn_down; the plain variant leaves bindings 3-4 unused.
// Bindings are whole buffers; *_off are element offsets (dispatch/glu.rs).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common/index.glsl"
#ifdef Q8
#define Q8_CODES 3
#define Q8_SCALES 4
#include "common/q8_1.glsl"
#endif

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer G { float g[]; };
layout(std430, set = 0, binding = 1) readonly buffer U { float u[]; };
layout(std430, set = 0, binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
    uint n_elements;
    uint g_off;
    uint u_off;
    uint d_off;
    uint q_off;  // Q8: element offsets of the codes and the pairs
    uint ds_off;
    uint pad0;
    uint pad1;
} p;

float g_at(uint e) {
    return g[p.g_off + e];
}
float u_at(uint e) {
    return u[p.u_off + e];
}

float swiglu1(float v, float up) {
    // exp(-v) overflows to +inf for v < -88: v / inf = -0, the correct limit.
    return v / (1.0 + exp(-v)) * up;
}

void main() {
#ifdef Q8
    // One invocation per 4 values, 8 per 32-value block (WG_X % 8 == 0).
    const uint g = flat_index();
    if (4u * g >= p.n_elements) {
        return; // whole blocks only (n_elements % 32 == 0)
    }
    vec4 v;
    [[unroll]] for (uint c = 0u; c < 4u; c++) {
        const uint e = 4u * g + c;
        v[c] = swiglu1(g_at(e), u_at(e));
        d[p.d_off + e] = v[c];
    }
    q8_store4(p.q_off, p.ds_off, g / 8u, g % 8u, v);
#else
    const uint i = flat_index();
    if (i >= p.n_elements) {
        return;
    }
    d[p.d_off + i] = swiglu1(g[p.g_off + i], u[p.u_off + i]);
#endif
}
