#version 450
// bindings: 2
// push: 32
// workgroup: 256
//
// dst[i] = a[i] * scale + bias over n f32 elements (a and dst may alias).
// Bindings are whole buffers; *_off are element offsets (dispatch/scale.rs).
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
    uint n;
    uint a_off;
    uint d_off;
    float scale;
    float bias;
    uint pad0;
    uint pad1;
    uint pad2;
} p;

void main() {
    const uint i = flat_index();
    if (i >= p.n) {
        return;
    }
    d[p.d_off + i] = a[p.a_off + i] * p.scale + p.bias;
}
