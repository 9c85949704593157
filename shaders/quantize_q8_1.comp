#version 450
// bindings: 5
// push: 32
// workgroup: 128
//
// Activation quantization for the integer-dot mat-vec (mul_mat_vecq.comp): x, f32
// [k, n] (k % 32 == 0), becomes q8_1-style blocks of 32 values, split into two arrays:
//   qs  int8 x 4 per uint, [n * k / 4]    (binding 1, from element q_off)
//   ds  vec2 (d, s) per block, [n * k / 32] (binding 2, from element ds_off)
// as common/q8_1.glsl defines them (s, the f32 block sum, is what the min/offset terms
// of q4_1, q5_1, q4_K and q5_K multiply).
// NORM (specialization constant 0), for mul_mat_vecq_layer.comp's RMS-norm prologue:
// the blocks are of x·nw (nw f32 [k], binding 3, from element nw_off), and the sum of
// squares of each block's raw x values goes to binding 4 (f32 [n * k / 32], from
// element ss_off). Without NORM bindings 3-4 are unused.
// One invocation per 4 values (8 per block, q8_store4).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common/index.glsl"
#define Q8_CODES 1
#define Q8_SCALES 2
#include "common/q8_1.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;
layout(constant_id = 0) const bool NORM = false;

layout(std430, set = 0, binding = 0) readonly restrict buffer X { vec4 x4[]; };
layout(std430, set = 0, binding = 3) readonly restrict buffer NW { float nw[]; };
layout(std430, set = 0, binding = 4) writeonly restrict buffer SS { float ss[]; };
layout(push_constant) uniform Push {
    uint nblocks; // n * k / 32
    uint x_off;   // in vec4
    uint q_off;   // in uint
    uint ds_off;  // in vec2
    uint k;       // NORM: values per row
    uint nw_off;  // NORM: in float
    uint ss_off;  // NORM: in float
    uint pad0;
} p;

void main() {
    const uint g = flat_index(); // WG_X % 8 == 0: a block's 8 lanes share a subgroup
    if (g >= 8u * p.nblocks) {
        return; // whole blocks only (8 * nblocks is a multiple of 8)
    }
    vec4 v = x4[p.x_off + g];
    if (NORM) {
        const float q = q8_sumsq8(v);
        if (g % 8u == 0u) {
            ss[p.ss_off + g / 8u] = q;
        }
        const uint e = p.nw_off + (4u * g) % p.k;
        v *= vec4(nw[e], nw[e + 1u], nw[e + 2u], nw[e + 3u]);
    }
    q8_store4(p.q_off, p.ds_off, g / 8u, g % 8u, v);
}
