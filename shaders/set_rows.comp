#version 450
// bindings: 3
// push: 32
// workgroup: 256
//
// KV-cache write: row i of src (f32 [ne0, n]) goes to row idx[i] of dst (f16 rows of
// ne0), dst[idx[i] * ne0 + j] = f16(src[i * ne0 + j]). The row index comes from a
// buffer (the token positions), so the graph, and a recorded command buffer, is the
// same at every decode step. Offsets are in elements of each buffer's type.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require

#include "common/index.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer S { float src[]; };
layout(std430, set = 0, binding = 1) readonly buffer I { int idx[]; };
layout(std430, set = 0, binding = 2) writeonly buffer D { float16_t dst[]; };

layout(push_constant) uniform Push {
    uint n;        // elements of src
    uint ne0;      // row length
    uint n_rows;   // rows of dst (bounds check)
    uint src_off;
    uint idx_off;
    uint dst_off;
    uint pad0;
    uint pad1;
} p;

void main() {
    const uint e = flat_index();
    if (e >= p.n) {
        return;
    }
    const uint i = e / p.ne0;
    const int row = idx[p.idx_off + i];
    if (row < 0 || uint(row) >= p.n_rows) {
        return;
    }
    dst[p.dst_off + uint(row) * p.ne0 + (e - i * p.ne0)] = float16_t(src[p.src_off + e]);
}
