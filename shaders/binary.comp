#version 450
// bindings: 3
// push: 32
// workgroup: 256
//
// Element-wise binary op on f32 rows with row broadcasting of b:
//   dst[r, i] = a[r, i] OP b[r % nrows_b, i]     r < nrows_a, i < ne0
// Variants (shaders/variants.txt): add (OP_ADD), mul (OP_MUL).
// Bindings are whole buffers; *_off are element offsets (dispatch/binary.rs).
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer D { float d[]; };

layout(push_constant) uniform Push {
    uint ne0;
    uint nrows_a;
    uint nrows_b;
    uint a_off;
    uint b_off;
    uint d_off;
    uint pad0;
    uint pad1;
} p;

void main() {
    const uint i = flat_index();
    if (i >= p.ne0 * p.nrows_a) {
        return;
    }
    const uint row = i / p.ne0;
    const uint col = i - row * p.ne0;
    const uint bi = (row % p.nrows_b) * p.ne0 + col;
    const float x = a[p.a_off + i];
    const float y = b[p.b_off + bi];
#if defined(OP_ADD)
    d[p.d_off + i] = x + y;
#elif defined(OP_MUL)
    d[p.d_off + i] = x * y;
#else
#error "binary.comp needs OP_ADD or OP_MUL"
#endif
}
