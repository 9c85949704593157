#version 450
// bindings: 5
// push: 48
// workgroup: 64
//
// Causal multi-head attention with GQA over an f16 KV cache (see Op::Attention),
// flash-attention style: one workgroup per (query head h, query token t) streams the
// cache rows 0..len, len = min(max(pos[t], 0) + 1, n_kv), in tiles of WG_X rows with an
// online softmax (running max m and sum l, f32), so no score matrix is ever stored and
// any context length fits in a fixed 1.3 KiB of shared memory.
//   q   f32 [d, n_head, n]          (binding 0)
//   k   f16 [d, n_head_kv, n_kv]    (binding 1, read as uvec4 = 8 halves)
//   v   f16 [d, n_head_kv, n_kv]    (binding 2, read as uint  = 2 halves)
//   pos i32 [n]                     (binding 3)
//   dst f32 [d, n_head, n]          (binding 4)
// Head h reads kv head h / (n_head / n_head_kv). Per tile: invocation j scores row
// k0 + j (dot of the scaled q, held in shared memory, with the K row); then every
// invocation folds the tile into its own output columns (uint u = 2 halves, u = tid,
// tid + WG_X, ...). The f16 data is read as packed uints and unpacked with
// unpackHalf2x16, so no 16-bit storage feature is needed.
// Requires d % 8 == 0 and d <= D_MAX; checked by dispatch/attention.rs, which also
// converts byte offsets to the element offsets below (k_off in uvec4, v_off in uint).
#extension GL_GOOGLE_include_directive : require

#ifndef D_MAX
#define D_MAX 256
#endif
// Output uints (pairs of columns) per invocation.
#define COLS ((D_MAX / 2 + WG_X - 1) / WG_X)

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(std430, set = 0, binding = 1) readonly buffer K { uvec4 k4[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { uint v2[]; };
layout(std430, set = 0, binding = 3) readonly buffer P { int pos[]; };
layout(std430, set = 0, binding = 4) writeonly buffer D { float dst[]; };

layout(push_constant) uniform Push {
    uint d;
    uint n_head;
    uint n_head_kv;
    uint n;
    uint n_kv;
    float scale;
    uint q_off;
    uint k_off;
    uint v_off;
    uint pos_off;
    uint d_off;
    uint pad0;
} p;

shared vec4 q_sh[D_MAX / 4];
shared float s_sh[WG_X];

void main() {
    const uint h = gl_WorkGroupID.x;
    const uint t = gl_WorkGroupID.y;
    const uint tid = gl_LocalInvocationID.x;
    const uint kh = h / (p.n_head / p.n_head_kv);
    const uint d4 = p.d / 4;
    const uint d8 = p.d / 8;
    const uint d2 = p.d / 2;
    const uint kv_row8 = p.n_head_kv * d8; // uvec4 per cache row (all kv heads)
    const uint kv_row2 = p.n_head_kv * d2; // uint per cache row

    const uint qb = p.q_off + (t * p.n_head + h) * p.d;
    for (uint i = tid; i < d4; i += WG_X) {
        q_sh[i] = vec4(q[qb + 4 * i], q[qb + 4 * i + 1], q[qb + 4 * i + 2], q[qb + 4 * i + 3])
            * p.scale;
    }
    const uint len = min(uint(max(pos[p.pos_off + t], 0)) + 1, p.n_kv);
    barrier();

    const float NEG_INF = uintBitsToFloat(0xff800000u);
    float m = NEG_INF; // running max of the scores seen so far (same in every invocation)
    float l = 0.0;     // running sum of exp(score - m)
    vec2 acc[COLS];
    for (uint c = 0; c < COLS; c++) {
        acc[c] = vec2(0.0);
    }

    for (uint k0 = 0; k0 < len; k0 += WG_X) {
        const uint tile = min(WG_X, len - k0);
        // 1. score of row k0 + tid
        float s = NEG_INF;
        if (tid < tile) {
            const uint kb = p.k_off + (k0 + tid) * kv_row8 + kh * d8;
            float dot_ = 0.0;
            for (uint i = 0; i < d8; i++) {
                const uvec4 w = k4[kb + i];
                const vec4 qa = q_sh[2 * i];
                const vec4 qc = q_sh[2 * i + 1];
                dot_ += dot(qa, vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)));
                dot_ += dot(qc, vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)));
            }
            s = dot_;
        }
        s_sh[tid] = s;
        barrier();
        // 2. new running max (every invocation computes the same value); the tile has at
        // least one valid row, so m_new is finite and exp(m - m_new) is 0 on the first tile.
        float m_tile = NEG_INF;
        for (uint j = 0; j < tile; j++) {
            m_tile = max(m_tile, s_sh[j]);
        }
        const float m_new = max(m, m_tile);
        const float alpha = exp(m - m_new);
        barrier();
        s_sh[tid] = exp(s - m_new); // 0 for rows past the tile
        barrier();
        // 3. fold the tile into l and the output columns
        l *= alpha;
        for (uint c = 0; c < COLS; c++) {
            acc[c] *= alpha;
        }
        const uint vb = p.v_off + k0 * kv_row2 + kh * d2;
        for (uint j = 0; j < tile; j++) {
            const float pj = s_sh[j];
            l += pj;
            for (uint c = 0; c < COLS; c++) {
                const uint u = tid + c * WG_X;
                if (u < d2) {
                    acc[c] += pj * unpackHalf2x16(v2[vb + j * kv_row2 + u]);
                }
            }
        }
        m = m_new;
        barrier(); // s_sh is rewritten by the next tile
    }

    const float inv_l = 1.0 / l;
    const uint ob = p.d_off + (t * p.n_head + h) * p.d;
    for (uint c = 0; c < COLS; c++) {
        const uint u = tid + c * WG_X;
        if (u < d2) {
            dst[ob + 2 * u] = acc[c].x * inv_l;
            dst[ob + 2 * u + 1] = acc[c].y * inv_l;
        }
    }
}
