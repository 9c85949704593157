#version 450
// bindings: 3
// push: 32
// workgroup: 128
//
// GET_ROWS (see Op::GetRows): dst[i][0..ne0] = row ids[i] of the table, dequantized
// (TYPE_* define, common/dequant.glsl; bit-exact with the CPU reference).
// One workgroup per token (2-D grid: token = y * groups_x + x); invocations stride over
// the row's 4-value groups. An id outside 0..nrows yields a row of zeros (the CPU
// reference reports an error; callers validate ids before they reach the GPU).
// binding 0: table (row r at byte t_off + r * row_bytes), binding 1: ids (i32, element
// offset ids_off), binding 2: dst (f32, element offset d_off). Offsets are relative to
// each binding (dispatch::bind rounds operand offsets down to the device alignment).
//
// H16 variants (get_rows_h16_*) write f16 instead, through the cooperative-matrix tile's
// chunk dequantization (dq_chunk_h, common/dequant_type.glsl): dst is read as uint pairs of
// halves (d_off counts uints); each invocation takes one 16-value chunk (dq_chunk_h) or,
// for q2_K / q3_K / q6_K, 8 values (dq8_h), as the coopmat tiles fetch each type. No
// graph op uses them: they are how the tests check that code, which only the GPU's
// cooperative-matrix kernels run.
#extension GL_GOOGLE_include_directive : require
#ifdef H16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define DQ_H16
#endif
#define W_BINDING 0
#include "common/dequant.glsl"

layout(local_size_x = WG_X, local_size_y = 1, local_size_z = 1) in;

layout(std430, set = 0, binding = 1) readonly restrict buffer I { int ids[]; };
#ifdef H16
layout(std430, set = 0, binding = 2) writeonly restrict buffer D { uint dst[]; };
#else
layout(std430, set = 0, binding = 2) writeonly restrict buffer D { float dst[]; };
#endif

layout(push_constant) uniform Push {
    uint ne0;
    uint n;
    uint nrows;
    uint row_bytes;
    uint t_off;
    uint ids_off;
    uint d_off;
    uint pad0;
} p;

void main() {
    const uint i = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (i >= p.n) {
        return;
    }
    const int id = ids[p.ids_off + i];
    const bool valid = id >= 0 && uint(id) < p.nrows;
    const uint base = p.t_off + (valid ? uint(id) : 0u) * p.row_bytes;
#ifdef H16
    const uint dh = p.d_off + i * (p.ne0 / 2u);
    if (CHUNK_SPAN <= 64u) {
        // As the coopmat tiles fetch these types: by 16-value chunks (dq_chunk_h).
        for (uint g = gl_LocalInvocationID.x; g < p.ne0 / 16u; g += WG_X) {
            const uint blk = g / CHUNKS, c = g % CHUNKS;
            uvec4 h[2] = uvec4[2](uvec4(0u), uvec4(0u));
            if (valid) {
                dq_chunk_h(base + blk * BLOCK_BYTES, c, h);
            }
            // h[r]: groups 2r and 2r + 1, 4 values (2 words) each, where chunk_xoff says.
            [[unroll]] for (uint q = 0u; q < 4u; q++) {
                const uint e = (blk * QK + chunk_xoff(c, q)) / 2u;
                dst[dh + e] = h[q / 2u][2u * (q & 1u)];
                dst[dh + e + 1u] = h[q / 2u][2u * (q & 1u) + 1u];
            }
        }
    } else {
        // q2_K, q3_K, q6_K: 8 consecutive values at a time (dq8_h), as the tiles do.
        for (uint g = gl_LocalInvocationID.x; g < p.ne0 / 8u; g += WG_X) {
            const uint blk = g / (QK / 8u), o = 8u * (g % (QK / 8u));
            const uvec4 h = valid ? dq8_h(base + blk * BLOCK_BYTES, o) : uvec4(0u);
            const uint e = (blk * QK + o) / 2u;
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                dst[dh + e + j] = h[j];
            }
        }
    }
#else
    const uint db = p.d_off + i * p.ne0;
    for (uint g = gl_LocalInvocationID.x; g < p.ne0 / 4u; g += WG_X) {
        const uint o = 4u * g;
        const vec4 v = valid ? dq4(base + (o / QK) * BLOCK_BYTES, o % QK) : vec4(0.0);
        dst[db + o] = v.x;
        dst[db + o + 1u] = v.y;
        dst[db + o + 2u] = v.z;
        dst[db + o + 3u] = v.w;
    }
#endif
}
