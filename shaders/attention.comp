#version 450
// bindings: 5
// push: 48
// workgroup: 256
// (the real width is specialization constant 1, NSPLIT x 64: see below)
//
// Causal multi-head attention with GQA over an f16 KV cache (see Op::Attention),
// flash-attention style: one workgroup per (query head h, query token t) streams the
// cache rows 0..len, len = min(max(pos[t], 0) + 1, n_kv), in tiles of T rows with an
// online softmax (running max m and sum l, f32), so no score matrix is ever stored and
// any context length fits in a fixed few KiB of shared memory.
//   q   f32 [d, n_head, n]          (binding 0)
//   k   f16 [d, n_head_kv, n_kv]    (binding 1, read as uvec4 = 8 halves)
//   v   f16 [d, n_head_kv, n_kv]    (binding 2, read as uint  = 2 halves)
//   pos i32 [n]                     (binding 3)
//   dst f32 [d, n_head, n]          (binding 4)
// Head h reads kv head h / (n_head / n_head_kv).
//
// The workgroup is NSPLIT sub-blocks of T = 64 invocations (its width, local_size_x_id 1,
// is chosen per dispatch: wide for decode over long contexts, narrow for prefill);
// sub-block b takes tiles b, b + NSPLIT, ... with its own (m, l, acc), and the NSPLIT
// partial results are merged at the end, so more loads are in flight per query. Per tile:
// the sub-block scores its T rows (the scaled q is in shared memory), then every
// invocation folds the tile into its own output columns (uint u = 2 halves,
// u = j, j + T, ...). f16 is read as packed uints and unpacked with unpackHalf2x16, so no
// 16-bit storage feature is needed. The head size D is specialization constant 0 so the
// loops over it unroll; dispatch/attention.rs checks D % 8 == 0 and D <= 256 and turns
// byte offsets into the element offsets below (k_off in uvec4, v_off in uint).
#extension GL_EXT_control_flow_attributes : require

layout(constant_id = 0) const uint D = 128;

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
layout(local_size_x_id = 1) in;
#define T 64
// Invocations sharing one K row while scoring, rows scored at once by a sub-block, and
// the padded stride of s_part (L + 1: the row-wise reads then hit distinct banks).
#define L 8
#define RPP (T / L)
#define LP (L + 1)
const uint WG = gl_WorkGroupSize.x;
const uint NSPLIT = WG / T;
const uint D2 = D / 2;
const uint D4 = D / 4;
const uint D8 = D / 8;
// Output uints (pairs of columns) per invocation.
const uint COLS = (D2 + T - 1) / T;

layout(std430, set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(std430, set = 0, binding = 1) readonly buffer K { uvec4 k4[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { uint v2[]; };
layout(std430, set = 0, binding = 3) readonly buffer P { int pos[]; };
layout(std430, set = 0, binding = 4) writeonly buffer O { float dst[]; };

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

shared vec4 q_sh[D4];
shared float s_part[NSPLIT * T * LP]; // partial dot products
shared float s_sh[WG]; // scores of the current tiles (T per sub-block)
shared float p_sh[WG]; // their exp(score - m_new)
shared float m_sh[NSPLIT];
shared float l_sh[NSPLIT];
shared vec2 acc_sh[NSPLIT * D2];

void main() {
    const uint h = gl_WorkGroupID.x;
    const uint t = gl_WorkGroupID.y;
    const uint tid = gl_LocalInvocationID.x;
    const uint sb = tid / T; // sub-block
    const uint lt = tid % T; // invocation within the sub-block
    const uint kh = h / (p.n_head / p.n_head_kv);
    const uint kv_row8 = p.n_head_kv * D8; // uvec4 per cache row (all kv heads)
    const uint kv_row2 = p.n_head_kv * D2; // uint per cache row

    const uint qb = p.q_off + (t * p.n_head + h) * D;
    for (uint i = tid; i < D4; i += WG) {
        q_sh[i] = vec4(q[qb + 4 * i], q[qb + 4 * i + 1], q[qb + 4 * i + 2], q[qb + 4 * i + 3])
            * p.scale;
    }
    const uint len = min(uint(max(pos[p.pos_off + t], 0)) + 1, p.n_kv);
    barrier();

    const float NEG_INF = uintBitsToFloat(0xff800000u);
    float m = NEG_INF; // running max of this sub-block's scores
    float l = 0.0;     // running sum of exp(score - m)
    vec2 acc[COLS];
    [[unroll]] for (uint c = 0; c < COLS; c++) {
        acc[c] = vec2(0.0);
    }

    const uint rounds = (len + T * NSPLIT - 1) / (T * NSPLIT);
    for (uint r = 0; r < rounds; r++) {
        const uint k0 = (r * NSPLIT + sb) * T;
        const uint tile = k0 < len ? min(T, len - k0) : 0;
        // 1. scores. L invocations share a row, each taking every L-th uvec4 of it, so a
        // subgroup's loads cover whole contiguous rows (coalesced); the L partial dot
        // products meet in s_part and invocation j of the sub-block adds those of row j.
        [[unroll]] for (uint pass = 0; pass < T / RPP; pass++) {
            const uint row = pass * RPP + lt / L;
            float part = 0.0;
            if (row < tile) {
                const uint kb = p.k_off + (k0 + row) * kv_row8 + kh * D8;
                [[unroll]] for (uint ii = 0; ii < (D8 + L - 1) / L; ii++) {
                    const uint i = lt % L + ii * L;
                    if (i < D8) {
                        const uvec4 w = k4[kb + i];
                        part += dot(q_sh[2 * i], vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)));
                        part += dot(q_sh[2 * i + 1], vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)));
                    }
                }
            }
            s_part[(sb * T + row) * LP + lt % L] = part;
        }
        barrier();
        float s = NEG_INF;
        if (lt < tile) {
            s = 0.0;
            [[unroll]] for (uint j = 0; j < L; j++) {
                s += s_part[(sb * T + lt) * LP + j];
            }
        }
        s_sh[tid] = s;
        barrier();
        // 2. the sub-block's new running max (same value in all its invocations); rows
        // past the tile scored -inf. A non-empty tile has a finite score, so
        // exp(m - m_new) is 0 on the first tile.
        float m_new = m;
        if (tile > 0) {
            float m_tile = NEG_INF;
            [[unroll]] for (uint j = 0; j < T; j++) {
                m_tile = max(m_tile, s_sh[sb * T + j]);
            }
            m_new = max(m, m_tile);
        }
        p_sh[tid] = tile > 0 ? exp(s - m_new) : 0.0; // 0 past the tile
        barrier();
        // 3. fold the tile into l and the output columns. (s_sh is free again: it was
        // last read before the barrier; p_sh is next written after the next barrier.)
        // The loop runs over all T rows so it unrolls and keeps many loads in flight;
        // rows past the tile have weight 0 and read row tile - 1 (valid data) instead.
        if (tile > 0) {
            const float alpha = exp(m - m_new);
            l *= alpha;
            [[unroll]] for (uint c = 0; c < COLS; c++) {
                acc[c] *= alpha;
            }
            const uint vb = p.v_off + k0 * kv_row2 + kh * D2;
            [[unroll]] for (uint j = 0; j < T; j++) {
                const float pj = p_sh[sb * T + j];
                const uint row = min(j, tile - 1);
                l += pj;
                [[unroll]] for (uint c = 0; c < COLS; c++) {
                    const uint u = min(lt + c * T, D2 - 1);
                    acc[c] += pj * unpackHalf2x16(v2[vb + row * kv_row2 + u]);
                }
            }
            m = m_new;
        }
    }

    // Merge the sub-blocks: out = sum_b e^(m_b - M) acc_b / sum_b e^(m_b - M) l_b.
    // Sub-block 0 always saw row 0, so M is finite; idle sub-blocks (m_b = -inf) add 0.
    if (lt == 0) {
        m_sh[sb] = m;
        l_sh[sb] = l;
    }
    [[unroll]] for (uint c = 0; c < COLS; c++) {
        const uint u = lt + c * T;
        if (u < D2) {
            acc_sh[sb * D2 + u] = acc[c];
        }
    }
    barrier();
    float mx = NEG_INF;
    [[unroll]] for (uint b = 0; b < NSPLIT; b++) {
        mx = max(mx, m_sh[b]);
    }
    float lsum = 0.0;
    [[unroll]] for (uint b = 0; b < NSPLIT; b++) {
        lsum += exp(m_sh[b] - mx) * l_sh[b];
    }
    const float inv_l = 1.0 / lsum;
    const uint ob = p.d_off + (t * p.n_head + h) * D;
    for (uint u = tid; u < D2; u += WG) {
        vec2 o = vec2(0.0);
        [[unroll]] for (uint b = 0; b < NSPLIT; b++) {
            o += exp(m_sh[b] - mx) * acc_sh[b * D2 + u];
        }
        dst[ob + 2 * u] = o.x * inv_l;
        dst[ob + 2 * u + 1] = o.y * inv_l;
    }
}
