#version 450
// bindings: 5
// push: 64
// workgroup: 256
//
// Rotary position embedding (see Op::Rope). x is f32 [head_dim, n_head, n], pos is
// i32 [n]. One invocation per pair slot j < head_dim/2 of each (head, token):
//   j <  n_dims/2: rotate the pair by theta = pos * freq_scale * freq_base^(-2j/n_dims)
//                  NORMAL: (x[2j], x[2j+1])        NEOX: (x[j], x[j + n_dims/2])
//   j >= n_dims/2: copy two untouched values (dims n_dims..head_dim).
// sin/cos come from rope_sincos (explicit range reduction), because Vulkan only bounds
// the built-ins' error on [-pi, pi] and positions reach thousands of radians.
// SET_ROWS variants (Op::RopeSetRows) write the rotated values as f16 into row
// rows[token] (binding 4, i32 [n]: the token's KV-cache cell) of a table of rows of
// n_head*head_dim (the KV cache) instead of into a copy of x: the rope of K fused with its
// cache write. pad0 then holds the table's row count. Other variants leave binding 4 unused.
// NORM variants fold the RMS norm of each head row before it (qwen3's q_norm / k_norm,
// Op::Rope { norm: Some(eps) }): x := x / sqrt(mean(x^2) + eps) * w over the head_dim
// values of the row (w, binding 3, f32 [head_dim]; other variants leave binding 3
// unused). A NORM workgroup takes whole rows (WG_X / (head_dim / 2) of them), so the
// row's sum of squares meets in shared memory.
// Bindings are whole buffers; *_off are element offsets (dispatch/rope.rs).
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"
#include "common/rope_sincos.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer P { int pos[]; };
#ifdef SET_ROWS
#extension GL_EXT_shader_16bit_storage : require
layout(std430, set = 0, binding = 2) writeonly buffer D { float16_t d[]; };
#define STORE(idx, v) d[idx] = float16_t(v)
#else
layout(std430, set = 0, binding = 2) writeonly buffer D { float d[]; };
#define STORE(idx, v) d[idx] = (v)
#endif

layout(std430, set = 0, binding = 3) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 4) readonly buffer R { int rows[]; };

layout(push_constant) uniform Push {
    uint head_dim;
    uint n_head;
    uint n;
    uint n_dims;
    float freq_base;
    float freq_scale;
    uint x_off;
    uint pos_off;
    uint d_off;
    uint pad0;
    uint w_off; // NORM: element offset of w
    float eps;  // NORM
    uint rows_off; // SET_ROWS: element offset of rows
    uint pad1;
    uint pad2;
    uint pad3;
} p;

#ifdef NORM
shared float norm_part[WG_X];
#endif

void main() {
    const uint half_hd = p.head_dim / 2;
#ifdef NORM
    // Whole rows per workgroup; every invocation reaches the barrier.
    const uint rpw = WG_X / half_hd;
    const uint lid = gl_LocalInvocationID.x;
    const uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    const uint row = wg * rpw + lid / half_hd; // head + n_head * token
    const uint j = lid % half_hd;
    const bool live = lid < rpw * half_hd && row < p.n_head * p.n;
    // The two values this invocation rotates (or copies past n_dims).
    const uint hr = p.n_dims / 2;
#ifdef NEOX
    const uint r0 = j, r1 = j + hr;
#else
    const uint r0 = 2 * j, r1 = 2 * j + 1;
#endif
    const uint e0 = j < hr ? r0 : p.n_dims + 2 * (j - hr);
    const uint e1 = j < hr ? r1 : e0 + 1;
    float v0 = 0.0, v1 = 0.0;
    if (live) {
        v0 = x[p.x_off + row * p.head_dim + e0];
        v1 = x[p.x_off + row * p.head_dim + e1];
    }
    norm_part[lid] = v0 * v0 + v1 * v1;
    barrier();
    float ss = 0.0;
    if (live) {
        const uint first = lid - j;
        for (uint t = 0; t < half_hd; t++) {
            ss += norm_part[first + t];
        }
    }
    if (!live) {
        return; // after the only barrier
    }
    const float scale = inversesqrt(ss / float(p.head_dim) + p.eps);
#define XV(e) (x[p.x_off + base + (e)] * scale * w[p.w_off + (e)])
#else
    const uint i = flat_index();
    if (i >= half_hd * p.n_head * p.n) {
        return;
    }
    const uint row = i / half_hd; // head + n_head * token
    const uint j = i - row * half_hd;
#define XV(e) x[p.x_off + base + (e)]
#endif
    const uint token = row / p.n_head;
    const uint base = row * p.head_dim;
#ifdef SET_ROWS
    const int dst_row = rows[p.rows_off + token];
    if (dst_row < 0 || uint(dst_row) >= p.pad0) {
        return;
    }
    // Row dst_row of the table, head (row - token * n_head) inside it.
    const uint dbase = (uint(dst_row) * p.n_head + (row - token * p.n_head)) * p.head_dim;
#else
    const uint dbase = base;
#endif
    const uint half_rot = p.n_dims / 2;

    if (j >= half_rot) {
        const uint c = p.n_dims + 2 * (j - half_rot);
        STORE(p.d_off + dbase + c, XV(c));
        STORE(p.d_off + dbase + c + 1, XV(c + 1));
        return;
    }
#ifdef NEOX
    const uint i0 = j;
    const uint i1 = j + half_rot;
#else
    const uint i0 = 2 * j;
    const uint i1 = 2 * j + 1;
#endif
    // freq_base^(-2j/n_dims) = exp2(-(2j/n_dims) * log2(freq_base))
    const float inv_freq = exp2(-float(2 * j) / float(p.n_dims) * log2(p.freq_base));
    const float theta = float(pos[p.pos_off + token]) * p.freq_scale * inv_freq;
    const vec2 sc = rope_sincos(theta);
    const float x0 = XV(i0);
    const float x1 = XV(i1);
    STORE(p.d_off + dbase + i0, x0 * sc.y - x1 * sc.x);
    STORE(p.d_off + dbase + i1, x0 * sc.x + x1 * sc.y);
}
