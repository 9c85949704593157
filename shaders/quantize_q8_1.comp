#version 450
// bindings: 3
// push: 32
// workgroup: 128
//
// Activation quantization for the integer-dot mat-vec (mul_mat_vecq.comp): x, f32
// [k, n] (k % 32 == 0), becomes q8_1-style blocks of 32 values, split into two arrays:
//   qs  int8 x 4 per uint, [n * k / 4]    (binding 1, from element q_off)
//   ds  vec2 (d, s) per block, [n * k / 32] (binding 2, from element ds_off)
// with d = max|x| / 127, q = round(x / d) (half away from zero; 0 when d = 0), and
// s = the f32 sum of the block's 32 original values (what the min/offset terms of
// q4_1, q5_1, q4_K and q5_K multiply). The arithmetic repeats llama.cpp's
// quantize_row_q8_1 (id = 1/d, x * id), so the same x gives the same q.
// One invocation per block: it reads 8 vec4, writes 8 words and one vec2.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common/index.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly restrict buffer X { vec4 x4[]; };
layout(std430, set = 0, binding = 1) writeonly restrict buffer Q { uint qs[]; };
layout(std430, set = 0, binding = 2) writeonly restrict buffer DS { vec2 ds[]; };

layout(push_constant) uniform Push {
    uint nblocks; // n * k / 32
    uint x_off;   // in vec4
    uint q_off;   // in uint
    uint ds_off;  // in vec2
    uint pad0;
    uint pad1;
    uint pad2;
    uint pad3;
} p;

uint pack_q(vec4 v, float id) {
    precise vec4 s = v * id;
    const ivec4 q = ivec4(sign(s) * floor(abs(s) + 0.5));
    return uint(q.x & 255) | (uint(q.y & 255) << 8) | (uint(q.z & 255) << 16)
        | (uint(q.w & 255) << 24);
}

void main() {
    const uint b = flat_index();
    if (b >= p.nblocks) {
        return;
    }
    vec4 v[8];
    float amax = 0.0;
    float sum = 0.0;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        v[i] = x4[p.x_off + 8u * b + i];
        const vec4 a = abs(v[i]);
        amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
        sum += (v[i].x + v[i].y) + (v[i].z + v[i].w);
    }
    const float d = amax / 127.0;
    const float id = d != 0.0 ? 1.0 / d : 0.0;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        qs[p.q_off + 8u * b + i] = pack_q(v[i], id);
    }
    ds[p.ds_off + b] = vec2(d, sum);
}
