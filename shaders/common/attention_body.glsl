// Causal multi-head attention with GQA over an f16 KV cache (see Op::Attention),
// flash-attention style: one workgroup per (QB query heads of one kv head, query token
// t) streams its cache rows lo..hi in tiles of T
// rows with an online softmax (running max m and sum l, f32), so no score matrix is ever stored and
// any context length fits in a fixed few KiB of shared memory.
//   q   f32 [d, n_head, n]          (binding 0)
//   k   f16 [d, n_head_kv, n_kv]    (binding 1, read as uvec4 = 8 halves)
//   v   f16 [d, n_head_kv, n_kv]    (binding 2, read as uint  = 2 halves)
//   span i32 [2, n]                 (binding 3: token t attends rows span[2t] ..= span[2t+1],
//                                    its sequence's cells; hi = min(max(span[2t+1], 0) + 1,
//                                    n_kv), lo = min(max(span[2t], 0), hi - 1): never empty,
//                                    as cpu::ops::kv_range)
//   dst f32 [d, n_head, n]          (binding 4)
//   part f32 partial results        (binding 5, split-K only; else bound to dst, unused)
//   cnt  u32 arrival counters       (binding 6, split-K only; zero between dispatches)
//   q8   codes, (d, s) pairs        (bindings 7, 8; Q8 variant only: the output also as
//                                    q8_1 blocks, common/q8_1.glsl, for the integer-dot
//                                    mat-vec of attn_output; D % 32 == 0)
// Head h reads kv head h / (n_head / n_head_kv); workgroup x covers heads x*QB ..
// x*QB + QB - 1 (QB, specialization constant 2, divides n_head / n_head_kv).
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
//
// Split-K (flash-decoding), when the grid has NZ = gl_NumWorkGroups.z > 1: workgroup z
// takes only rows [z*R, (z+1)*R) of its token's causal range (R = len / NZ rounded up
// to a tile, so short contexts leave the upper splits empty and cheap), and writes its
// unnormalized partial result (m, l, acc) to `part`. The last of the NZ workgroups to
// finish (an atomic counter per (head group, token), reset to 0 by that workgroup so
// the next dispatch finds zeros) merges the NZ partials by log-sum-exp and writes dst.
// Writers publish with memoryBarrierBuffer() before the counter increment; the merging
// workgroup issues one after seeing the count, before reading (coherent buffers). A
// partial record is (m, l, 2 pad, acc[D]) so acc reads as vec4; the merge loads every
// split's (m, l) at once (one invocation each), then each invocation sums its vec4 of
// acc over the splits MZ at a time (independent loads in flight: coherent loads in a
// plain loop were issued one after another, ~30 us at NZ = 32 on an H200).
//
// ROPE (attention_rope.comp, Op::Attention with `rope: Some`, one token: passes::layer)
// folds the decode layer's RoPE / KV-cache stage in. q (binding 0) is then the raw q
// projection; each workgroup rotates its QB q rows as it loads them (RMS-normalized and
// multiplied by binding 13 first when HNORM, qwen3's q_norm) at position pos[t] (binding
// 9), as rope.comp does. The workgroup whose row range holds the token's cell (binding 10:
// cells[t]) also computes the new K row of its kv head from k_new (binding 11; HNORM:
// binding 14's k_norm) and copies v_new (binding 12) and writes both into the cache as
// f16. It never reads that row back from memory: it keeps the f16 values in shared memory
// (kn_sh4, vn_sh2), each invocation packs its K words and V columns of them into
// registers, and the loops swap those in (a select) where they reach row `cells[t]`; so
// its cache loads need not wait for its own stores (no memoryBarrierBuffer, no coherent
// loads) and with VPRE they are issued before the prologue (one memory round trip for the
// prologue's inputs and the first tile's K and V). A load of that row that races with the
// store is discarded. No other workgroup of the dispatch attends the row (one token);
// workgroups of the same kv head (QB < group size) write identical values.
// Specialization constants 3 = NEOX (else the adjacent-pair layout), 4 = HNORM.
//
// LORA (attention_rope_lora.comp): q, k_new and v_new are the base projections, and
// each that an adapter corrects gets s · B·a added as it is loaded — B f32 [r, m] (row i
// of the projection: r values at i·r; binding 15 / 17 / 19 for q / k / v), a = A·x f32
// [r] (binding 16 / 18 / 20) — before the head norm and the rotation, as the MUL_MAT_ADD
// nodes it replaces did (product, times s, plus the base). Constants 6 = r (LORA_R),
// 7 / 8 / 9 = the scales of q / k / v (0: no adapter there, its bindings unused),
// 10 = the B factors are f16 (LORA_F16).
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const uint D = 128;
// Query heads per workgroup: QB heads that share one kv head (GQA) share every K/V load.
layout(constant_id = 2) const uint QB = 1;
// VPRE: each round's V words are loaded into registers before its scores are computed,
// so the K and V loads of a tile are in flight together (T * COLS registers more per
// invocation: the dispatch sets it for decode only). The first round's K words (KPRE,
// head sizes up to 128: NI * T / RPP registers more) and V words are then loaded before
// q (and the RoPE prologue), so those loads overlap too.
layout(constant_id = 5) const bool VPRE = false;

layout(local_size_x = 256, local_size_y = 1, local_size_z = 1) in;
layout(local_size_x_id = 1) in;
#define T 64
// Invocations sharing one K row while scoring, rows scored at once by a sub-block, and
// uvec4 of a row per invocation (its slice of q stays in registers).
#define L 8
#define RPP (T / L)
#define NI ((D8 + L - 1) / L)
const uint WG = gl_WorkGroupSize.x;
const uint NSPLIT = WG / T;
const uint D2 = D / 2;
const uint D4 = D / 4;
const uint D8 = D / 8;
// Output uints (pairs of columns) per invocation.
const uint COLS = (D2 + T - 1) / T;
const bool KPRE = VPRE && D <= 128;

layout(std430, set = 0, binding = 0) readonly buffer Q { float q[]; };
// ROPE also writes the cache (the new row, through the kw16 / vw16 views below), but
// never reads what it writes here: the owner takes that row from shared memory.
layout(std430, set = 0, binding = 1) readonly buffer K { uvec4 k4[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { uint v2[]; };
layout(std430, set = 0, binding = 3) readonly buffer P { int span[]; };
layout(std430, set = 0, binding = 4) writeonly buffer O { float dst[]; };
layout(std430, set = 0, binding = 5) coherent buffer Part { float part[]; };
layout(std430, set = 0, binding = 5) coherent buffer Part4 { vec4 part4[]; };
layout(std430, set = 0, binding = 6) coherent buffer Cnt { uint cnt[]; };
#ifdef Q8
#define Q8_CODES 7
#define Q8_SCALES 8
#include "common/q8_1.glsl"
// The QB heads' outputs, staged for quantization in blocks of 32.
shared float out_sh[QB * D];
#endif

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
    uint span_off;
    uint d_off;
    uint part_off; // element offset of part (split-K)
    uint cnt_off;  // element offset of cnt (split-K)
    uint q8_off;   // Q8: element offsets of the codes and the pairs
    uint q8s_off;
    uint pad0;
#ifdef ROPE
    uint pos_off; // element offsets of pos, cells, k_new, v_new, q_w, k_w
    uint cell_off;
    uint knew_off;
    uint vnew_off;
    uint qw_off;
    uint kw_off;
    uint n_dims;
    float freq_base;
    float freq_scale;
    float eps; // HNORM
#ifdef LORA
    uint lb_off[3]; // element offsets of q's, k's and v's B factor (bindings 15, 17, 19)
    uint la_off[3]; // and of their A products (bindings 16, 18, 20)
#else
    uint pad1;
    uint pad2;
#endif
#endif
} p;

// Writes output pair u of head g (of this workgroup's QB) for token t.
void store_out(uint t, uint h0, uint g, uint u, vec2 o) {
    const uint ob = p.d_off + (t * p.n_head + h0 + g) * D + 2 * u;
    dst[ob] = o.x;
    dst[ob + 1] = o.y;
#ifdef Q8
    out_sh[g * D + 2 * u] = o.x;
    out_sh[g * D + 2 * u + 1] = o.y;
#endif
}

// Q8: after every store_out of the workgroup, its QB heads' q8_1 blocks (uniform call).
void store_q8(uint t, uint h0) {
#ifdef Q8
    barrier();
    // 8 consecutive invocations per 32-value block (the width is a multiple of 64).
    const uint nb = D / 32;
    for (uint g = gl_LocalInvocationID.x; g < QB * D / 4; g += gl_WorkGroupSize.x) {
        const vec4 v = vec4(out_sh[4 * g], out_sh[4 * g + 1], out_sh[4 * g + 2], out_sh[4 * g + 3]);
        // Heads h0.. are consecutive, so the block index runs on across them.
        q8_store4(p.q8_off, p.q8s_off, (t * p.n_head + h0) * nb + g / 8, g % 8, v);
    }
#endif
}

// Shared arrays of floats are read as vec4 (4x fewer shared-memory transactions, the
// bottleneck of prefill); f >> 2, f & 3 address float f.
shared vec4 q_sh[QB * D4];
shared vec4 s_part4[QB * NSPLIT * T * L / 4]; // partial dot products [head][row][lane]
shared vec4 s_sh4[QB * WG / 4]; // scores of the current tiles (T per sub-block)
shared vec4 p_sh4[QB * WG / 4]; // their exp(score - m_new)
shared float m_sh[QB * NSPLIT];
shared float l_sh[QB * NSPLIT];
shared vec2 acc_sh[QB * NSPLIT * D2];
shared uint last_sh;
// Split-K merge: per (head, split) the weight e^(m_z - M) / L of split z.
#define MAX_NZ 64
#define MZ 8
shared float wz_sh[QB * MAX_NZ];

#ifdef ROPE
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common/rope_sincos.glsl"
layout(constant_id = 3) const bool NEOX = false;
layout(constant_id = 4) const bool HNORM = false;
layout(std430, set = 0, binding = 1) coherent writeonly buffer KW { float16_t kw16[]; };
layout(std430, set = 0, binding = 2) coherent writeonly buffer VW { float16_t vw16[]; };
layout(std430, set = 0, binding = 9) readonly buffer RPos { int rpos[]; };
layout(std430, set = 0, binding = 10) readonly buffer RCell { int rcell[]; };
layout(std430, set = 0, binding = 11) readonly buffer KNew { float knew[]; };
layout(std430, set = 0, binding = 12) readonly buffer VNew { float vnew[]; };
layout(std430, set = 0, binding = 13) readonly buffer QNw { float qnw[]; };
layout(std430, set = 0, binding = 14) readonly buffer KNw { float knw[]; };
// Pairs of a head row per invocation: pair j holds the two values RoPE rotates
// together (rope.comp's mapping; past n_dims, two values copied), so the rotation needs
// no exchange and a row's sum of squares is one reduction.
const uint NP = (D2 + WG - 1) / WG;
// Per row (QB q rows, then the new K row) and subgroup: partial sums of squares (the
// dispatch helper checks subgroups of at least 4 invocations: at most WG / 4 of them).
const uint NSG = WG / 4;
shared float rn_sh[(QB + 1) * NSG];
// The owner's new K and V row, as stored (f16 values): what it attends for row cells[t].
shared vec4 kn_sh4[D4];
shared vec2 vn_sh2[D2];

#ifdef LORA
layout(constant_id = 6) const uint LORA_R = 16;
layout(constant_id = 7) const float LORA_SQ = 0.0;
layout(constant_id = 8) const float LORA_SK = 0.0;
layout(constant_id = 9) const float LORA_SV = 0.0;
// B factors in f16 (LORA_F16: every adapted target's; offsets then count halves).
layout(constant_id = 10) const bool LORA_F16 = false;
layout(std430, set = 0, binding = 15) readonly buffer LBQ { float lbq[]; };
layout(std430, set = 0, binding = 15) readonly buffer LBQ16 { float16_t lbq16[]; };
layout(std430, set = 0, binding = 16) readonly buffer LAQ { float laq[]; };
layout(std430, set = 0, binding = 17) readonly buffer LBK { float lbk[]; };
layout(std430, set = 0, binding = 17) readonly buffer LBK16 { float16_t lbk16[]; };
layout(std430, set = 0, binding = 18) readonly buffer LAK { float lak[]; };
layout(std430, set = 0, binding = 19) readonly buffer LBV { float lbv[]; };
layout(std430, set = 0, binding = 19) readonly buffer LBV16 { float16_t lbv16[]; };
layout(std430, set = 0, binding = 20) readonly buffer LAV { float lav[]; };
// s · (B·a) for rows i and i2 of target w (0 q, 1 k, 2 v): each row's r products in
// order, summed in f32.
vec2 lora2(uint w, uint i, uint i2) {
    vec2 acc = vec2(0.0);
    for (uint j = 0u; j < LORA_R; j++) {
        float a, b0, b1;
        const uint o0 = p.lb_off[w] + i * LORA_R + j, o1 = p.lb_off[w] + i2 * LORA_R + j;
        if (w == 0u) {
            a = laq[p.la_off[0] + j];
            b0 = LORA_F16 ? float(lbq16[o0]) : lbq[o0];
            b1 = LORA_F16 ? float(lbq16[o1]) : lbq[o1];
        } else if (w == 1u) {
            a = lak[p.la_off[1] + j];
            b0 = LORA_F16 ? float(lbk16[o0]) : lbk[o0];
            b1 = LORA_F16 ? float(lbk16[o1]) : lbk[o1];
        } else {
            a = lav[p.la_off[2] + j];
            b0 = LORA_F16 ? float(lbv16[o0]) : lbv[o0];
            b1 = LORA_F16 ? float(lbv16[o1]) : lbv[o1];
        }
        acc += vec2(b0, b1) * a;
    }
    return acc * (w == 0u ? LORA_SQ : w == 1u ? LORA_SK : LORA_SV);
}
#endif

// The elements of pair j of a head row.
uvec2 pair_at(uint j) {
    const uint hr = p.n_dims / 2;
    if (j >= hr) {
        const uint e = p.n_dims + 2 * (j - hr);
        return uvec2(e, e + 1);
    }
    return NEOX ? uvec2(j, j + hr) : uvec2(2 * j, 2 * j + 1);
}

// The folded RoPE / KV-cache stage (see the header): q_sh := the QB rotated, scaled q
// rows; the owner of the token's cell writes its new K/V row of kv head kh into the cache
// and into kn_sh4 / vn_sh2. Every global value it needs is loaded up front (one memory
// round trip: the new row is loaded by every workgroup, used by the owner), the head norms
// reduce with subgroup sums, and it ends with the one barrier the attention needs anyway.
// Returns the cache row this workgroup must take from shared memory (its own new row
// when it attends it, else ~0u). Uniform.
uint rope_prologue(uint t, uint h0, uint kh, uint lo, uint hi, uint r_begin, uint r_end) {
    const uint tid = gl_LocalInvocationID.x;
    const int ps = rpos[p.pos_off + t];
    const int cell = rcell[p.cell_off + t];
    const uint c = uint(max(cell, 0));
    const bool inside = cell >= 0 && c >= lo && c < hi;
    const bool owner = (inside ? c >= r_begin && c < r_end : gl_WorkGroupID.z == 0u)
        && cell >= 0 && c < p.n_kv;
    const uint kb = p.knew_off + (t * p.n_head_kv + kh) * D;
    const uint vb = p.vnew_off + (t * p.n_head_kv + kh) * D;
    vec2 qv[QB * NP], kv[NP], vv[NP], qw[NP], kw[NP], sc[NP];
    [[unroll]] for (uint i = 0; i < NP; i++) {
        const uint j = min(tid + i * WG, D2 - 1); // duplicates past D2 are dropped below
        const uvec2 e = pair_at(j);
        [[unroll]] for (uint g = 0; g < QB; g++) {
            const uint qb = p.q_off + (t * p.n_head + h0 + g) * D;
            qv[g * NP + i] = vec2(q[qb + e.x], q[qb + e.y]);
#ifdef LORA
            if (LORA_SQ != 0.0) {
                const uint hr = (h0 + g) * D; // one token: row hr + e of the q projection
                qv[g * NP + i] += lora2(0u, hr + e.x, hr + e.y);
            }
#endif
        }
        kv[i] = vec2(knew[kb + e.x], knew[kb + e.y]);
        vv[i] = vec2(vnew[vb + e.x], vnew[vb + e.y]);
#ifdef LORA
        if (LORA_SK != 0.0) {
            kv[i] += lora2(1u, kh * D + e.x, kh * D + e.y);
        }
        if (LORA_SV != 0.0) {
            vv[i] += lora2(2u, kh * D + e.x, kh * D + e.y);
        }
#endif
        qw[i] = HNORM ? vec2(qnw[p.qw_off + e.x], qnw[p.qw_off + e.y]) : vec2(1.0);
        kw[i] = HNORM ? vec2(knw[p.kw_off + e.x], knw[p.kw_off + e.y]) : vec2(1.0);
        // freq_base^(-2j/n_dims) = exp2(-(2j/n_dims) * log2(freq_base)), as rope.comp
        const float inv_freq = exp2(-float(2 * j) / float(p.n_dims) * log2(p.freq_base));
        sc[i] = j < p.n_dims / 2 ? rope_sincos(float(ps) * p.freq_scale * inv_freq)
                                 : vec2(0.0, 1.0); // past n_dims: copied
    }
    // Head norms: 1/rms per row (QB q rows, row QB the new K row).
    float inv[QB + 1];
    [[unroll]] for (uint g = 0; g <= QB; g++) {
        inv[g] = 1.0;
    }
    if (HNORM) {
        [[unroll]] for (uint g = 0; g <= QB; g++) {
            float part = 0.0;
            [[unroll]] for (uint i = 0; i < NP; i++) {
                const vec2 x = g < QB ? qv[g * NP + i] : kv[i];
                part += tid + i * WG < D2 ? dot(x, x) : 0.0;
            }
            const float s = subgroupAdd(part);
            if (subgroupElect()) {
                rn_sh[g * NSG + gl_SubgroupID] = s;
            }
        }
        barrier();
        [[unroll]] for (uint g = 0; g <= QB; g++) {
            float ss = 0.0;
            for (uint b = 0; b < gl_NumSubgroups; b++) {
                ss += rn_sh[g * NSG + b];
            }
            inv[g] = inversesqrt(ss / float(D) + p.eps);
        }
    }
    // Rotate (x0, x1) by sc = (sin, cos) after the norm: as rope.comp, x * scale * w.
    [[unroll]] for (uint i = 0; i < NP; i++) {
        const uint j = tid + i * WG;
        if (j >= D2) {
            continue;
        }
        const uvec2 e = pair_at(j);
        [[unroll]] for (uint g = 0; g < QB; g++) {
            const vec2 x = qv[g * NP + i] * inv[g] * qw[i];
            const float r0 = (x.x * sc[i].y - x.y * sc[i].x) * p.scale;
            const float r1 = (x.x * sc[i].x + x.y * sc[i].y) * p.scale;
            const uint f0 = g * D + e.x, f1 = g * D + e.y;
            q_sh[f0 >> 2][f0 & 3] = r0;
            q_sh[f1 >> 2][f1 & 3] = r1;
        }
        if (owner) {
            const vec2 x = kv[i] * inv[QB] * kw[i];
            // Rounded to f16 once: the cache and shared memory get the same values (the
            // stores convert exactly representable values).
            const vec2 kr = unpackHalf2x16(packHalf2x16(
                vec2(x.x * sc[i].y - x.y * sc[i].x, x.x * sc[i].x + x.y * sc[i].y)));
            const vec2 vr = unpackHalf2x16(packHalf2x16(vv[i]));
            // Halves: k_off counts uvec4 (8 halves), v_off uint (2 halves).
            const uint row = (c * p.n_head_kv + kh) * D;
            kw16[8 * p.k_off + row + e.x] = float16_t(kr.x);
            kw16[8 * p.k_off + row + e.y] = float16_t(kr.y);
            vw16[2 * p.v_off + row + e.x] = float16_t(vr.x);
            vw16[2 * p.v_off + row + e.y] = float16_t(vr.y);
            kn_sh4[e.x >> 2][e.x & 3] = kr.x;
            kn_sh4[e.y >> 2][e.y & 3] = kr.y;
            vn_sh2[e.x >> 1][e.x & 1] = vr.x;
            vn_sh2[e.y >> 1][e.y & 1] = vr.y;
        }
    }
    barrier();
    return owner && inside ? c : ~0u;
}
#endif

void main() {
    const uint h0 = gl_WorkGroupID.x * QB; // first of the QB query heads
    const uint t = gl_WorkGroupID.y;
    const uint tid = gl_LocalInvocationID.x;
    const uint sb = tid / T; // sub-block
    const uint lt = tid % T; // invocation within the sub-block
    const uint kh = h0 / (p.n_head / p.n_head_kv); // QB divides the group size
    const uint kv_row8 = p.n_head_kv * D8; // uvec4 per cache row (all kv heads)
    const uint kv_row2 = p.n_head_kv * D2; // uint per cache row
    const uint lane = lt % L; // lane within the L invocations that share a K row

    const uint hi = min(uint(max(span[p.span_off + 2 * t + 1], 0)) + 1, p.n_kv);
    const uint lo = min(uint(max(span[p.span_off + 2 * t], 0)), hi - 1);
    const uint len = hi - lo;
    // This workgroup's rows [r_begin, r_end) of the causal range (all of it unless split).
    const uint nz = gl_NumWorkGroups.z;
    const uint z = gl_WorkGroupID.z;
    const uint per = ((len + nz - 1) / nz + T - 1) / T * T;
    const uint r_begin = lo + min(z * per, len);
    const uint r_end = min(r_begin + per, hi);
    // KPRE / VPRE: the first round's K and V words, loaded before q so that both are one
    // memory round trip (rows past the tile read its last row; unused).
    const uint tile0 = r_begin + sb * T < r_end ? min(T, r_end - r_begin - sb * T) : 0;
    uvec4 kpre[KPRE ? T / RPP * NI : 1];
    uint vpre[VPRE ? T * COLS : 1];
    if (KPRE && tile0 > 0) {
        [[unroll]] for (uint pass = 0; pass < T / RPP; pass++) {
            const uint row = min(pass * RPP + lt / L, tile0 - 1);
            const uint kb = p.k_off + (r_begin + sb * T + row) * kv_row8 + kh * D8;
            [[unroll]] for (uint ii = 0; ii < NI; ii++) {
                kpre[pass * NI + ii] = k4[kb + min(lane + ii * L, D8 - 1)];
            }
        }
    }
    if (VPRE && tile0 > 0) {
        const uint vb = p.v_off + (r_begin + sb * T) * kv_row2 + kh * D2;
        [[unroll]] for (uint j = 0; j < T; j++) {
            const uint row = min(j, tile0 - 1);
            [[unroll]] for (uint c = 0; c < COLS; c++) {
                vpre[j * COLS + c] = v2[vb + row * kv_row2 + min(lt + c * T, D2 - 1)];
            }
        }
    }
    // The cache row taken from shared memory (ROPE: the owner's new row), else ~0u.
    uint new_row = ~0u;
#ifdef ROPE
    new_row = rope_prologue(t, h0, kh, lo, hi, r_begin, r_end);
#else
    // The QB heads' q rows are contiguous.
    const uint qb = p.q_off + (t * p.n_head + h0) * D;
    for (uint i = tid; i < QB * D4; i += WG) {
        q_sh[i] = vec4(q[qb + 4 * i], q[qb + 4 * i + 1], q[qb + 4 * i + 2], q[qb + 4 * i + 3])
            * p.scale;
    }
    barrier();
#endif
    // This invocation's slice of each head's q: uvec4 i = lane + ii * L of every K row.
    vec4 qa[QB * NI];
    vec4 qc[QB * NI];
    [[unroll]] for (uint g = 0; g < QB; g++) {
        [[unroll]] for (uint ii = 0; ii < NI; ii++) {
            const uint i = min(lane + ii * L, D8 - 1);
            qa[g * NI + ii] = q_sh[g * D4 + 2 * i];
            qc[g * NI + ii] = q_sh[g * D4 + 2 * i + 1];
        }
    }

#ifdef ROPE
    // The owner's new row, packed as the cache holds it, for this invocation's K words
    // and V columns: in registers, so the loops below swap it in with a select (a shared
    // load per element in them cost the split launches ~1 us a layer).
    // Only the owner wrote kn_sh4 / vn_sh2 (new_row is uniform per workgroup).
    uvec4 kn_w[NI];
    uint vn_w[COLS];
    [[unroll]] for (uint ii = 0; ii < NI; ii++) {
        kn_w[ii] = uvec4(0u);
        if (new_row != ~0u) {
            const uint i = min(lane + ii * L, D8 - 1);
            const vec4 a = kn_sh4[2 * i], b = kn_sh4[2 * i + 1];
            kn_w[ii] = uvec4(packHalf2x16(a.xy), packHalf2x16(a.zw), packHalf2x16(b.xy),
                             packHalf2x16(b.zw));
        }
    }
    [[unroll]] for (uint c = 0; c < COLS; c++) {
        vn_w[c] = new_row != ~0u ? packHalf2x16(vn_sh2[min(lt + c * T, D2 - 1)]) : 0u;
    }
#endif
    const float NEG_INF = uintBitsToFloat(0xff800000u);
    float m[QB]; // running max of this sub-block's scores, per head
    float l[QB]; // running sum of exp(score - m)
    vec2 acc[QB * COLS];
    [[unroll]] for (uint g = 0; g < QB; g++) {
        m[g] = NEG_INF;
        l[g] = 0.0;
        [[unroll]] for (uint c = 0; c < COLS; c++) {
            acc[g * COLS + c] = vec2(0.0);
        }
    }

    const uint rounds = (r_end - r_begin + T * NSPLIT - 1) / (T * NSPLIT);
    for (uint r = 0; r < rounds; r++) {
        const uint k0 = r_begin + (r * NSPLIT + sb) * T;
        const uint tile = k0 < r_end ? min(T, r_end - k0) : 0;
        const uint vb = p.v_off + k0 * kv_row2 + kh * D2;
        if (VPRE && r > 0 && tile > 0) {
            [[unroll]] for (uint j = 0; j < T; j++) {
                const uint row = min(j, tile - 1);
                [[unroll]] for (uint c = 0; c < COLS; c++) {
                    vpre[j * COLS + c] = v2[vb + row * kv_row2 + min(lt + c * T, D2 - 1)];
                }
            }
        }
        // 1. scores. L invocations share a row, each taking every L-th uvec4 of it, so a
        // subgroup's loads cover whole contiguous rows (coalesced); the L partial dot
        // products meet in s_part4 and invocation j of the sub-block adds those of row j.
        // Each K value loaded serves all QB heads.
        [[unroll]] for (uint pass = 0; pass < T / RPP; pass++) {
            const uint row = pass * RPP + lt / L;
            float part[QB];
            [[unroll]] for (uint g = 0; g < QB; g++) {
                part[g] = 0.0;
            }
            if (row < tile) {
                const uint kb = p.k_off + (k0 + row) * kv_row8 + kh * D8;
                [[unroll]] for (uint ii = 0; ii < NI; ii++) {
                    const uint i = lane + ii * L;
                    if (i < D8) {
                        uvec4 w = KPRE && r == 0 ? kpre[pass * NI + ii] : k4[kb + i];
#ifdef ROPE
                        w = k0 + row == new_row ? kn_w[ii] : w;
#endif
                        const vec4 ka = vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
                        const vec4 kc = vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w));
                        [[unroll]] for (uint g = 0; g < QB; g++) {
                            part[g] += dot(qa[g * NI + ii], ka) + dot(qc[g * NI + ii], kc);
                        }
                    }
                }
            }
            [[unroll]] for (uint g = 0; g < QB; g++) {
                const uint f = ((g * NSPLIT + sb) * T + row) * L + lane;
                s_part4[f >> 2][f & 3] = part[g];
            }
        }
        barrier();
        float s[QB];
        [[unroll]] for (uint g = 0; g < QB; g++) {
            s[g] = NEG_INF;
            if (lt < tile) {
                const uint b4 = ((g * NSPLIT + sb) * T + lt) * (L / 4);
                vec4 v = vec4(0.0);
                [[unroll]] for (uint j = 0; j < L / 4; j++) {
                    v += s_part4[b4 + j];
                }
                s[g] = (v.x + v.y) + (v.z + v.w);
            }
            const uint f = g * WG + tid;
            s_sh4[f >> 2][f & 3] = s[g];
        }
        barrier();
        // 2. the sub-block's new running max per head (same value in all its
        // invocations); rows past the tile scored -inf. A non-empty tile has a finite
        // score, so exp(m - m_new) is 0 on the first tile.
        float m_new[QB];
        [[unroll]] for (uint g = 0; g < QB; g++) {
            m_new[g] = m[g];
            if (tile > 0) {
                vec4 m4 = vec4(NEG_INF);
                [[unroll]] for (uint j = 0; j < T / 4; j++) {
                    m4 = max(m4, s_sh4[(g * WG + sb * T) / 4 + j]);
                }
                m_new[g] = max(m[g], max(max(m4.x, m4.y), max(m4.z, m4.w)));
            }
            const uint f = g * WG + tid;
            p_sh4[f >> 2][f & 3] = tile > 0 ? exp(s[g] - m_new[g]) : 0.0; // 0 past the tile
        }
        barrier();
        // 3. fold the tile into l and the output columns. (s_sh is free again: it was
        // last read before the barrier; p_sh is next written after the next barrier.)
        // The loop runs over all T rows so it unrolls and keeps many loads in flight;
        // rows past the tile have weight 0 and read row tile - 1 (valid data) instead.
        if (tile > 0) {
            [[unroll]] for (uint g = 0; g < QB; g++) {
                const float alpha = exp(m[g] - m_new[g]);
                l[g] *= alpha;
                [[unroll]] for (uint c = 0; c < COLS; c++) {
                    acc[g * COLS + c] *= alpha;
                }
                m[g] = m_new[g];
            }
            [[unroll]] for (uint j4 = 0; j4 < T / 4; j4++) {
                vec4 p4[QB];
                [[unroll]] for (uint g = 0; g < QB; g++) {
                    p4[g] = p_sh4[(g * WG + sb * T) / 4 + j4];
                    l[g] += (p4[g].x + p4[g].y) + (p4[g].z + p4[g].w);
                }
                [[unroll]] for (uint jj = 0; jj < 4; jj++) {
                    const uint row = min(4 * j4 + jj, tile - 1);
                    [[unroll]] for (uint c = 0; c < COLS; c++) {
                        const uint u = min(lt + c * T, D2 - 1);
                        uint vw = VPRE ? vpre[(4 * j4 + jj) * COLS + c]
                                       : v2[vb + row * kv_row2 + u];
#ifdef ROPE
                        vw = k0 + row == new_row ? vn_w[c] : vw;
#endif
                        const vec2 v = unpackHalf2x16(vw);
                        [[unroll]] for (uint g = 0; g < QB; g++) {
                            acc[g * COLS + c] += p4[g][jj] * v;
                        }
                    }
                }
            }
        }
    }

    // Merge the sub-blocks: out = sum_b e^(m_b - M) acc_b / sum_b e^(m_b - M) l_b.
    // Sub-block 0 saw row r_begin, so M is finite when the range is non-empty; idle
    // sub-blocks (m_b = -inf) add 0. An empty range (split-K only) yields m = -inf,
    // l = 0, acc = 0.
    [[unroll]] for (uint g = 0; g < QB; g++) {
        if (lt == 0) {
            m_sh[g * NSPLIT + sb] = m[g];
            l_sh[g * NSPLIT + sb] = l[g];
        }
        [[unroll]] for (uint c = 0; c < COLS; c++) {
            const uint u = lt + c * T;
            if (u < D2) {
                acc_sh[(g * NSPLIT + sb) * D2 + u] = acc[g * COLS + c];
            }
        }
    }
    barrier();
    const bool empty = r_begin >= r_end;
    // Partial record of (head group x, token t, split z): QB x (m, l, pad, pad, acc[D]).
    const uint rec = D + 4;
    const uint pbase = p.part_off + ((t * gl_NumWorkGroups.x + gl_WorkGroupID.x) * nz) * QB * rec;
    for (uint idx = tid; idx < QB * D2; idx += WG) {
        const uint g = idx / D2;
        const uint u = idx - g * D2;
        float mx = NEG_INF;
        [[unroll]] for (uint b = 0; b < NSPLIT; b++) {
            mx = max(mx, m_sh[g * NSPLIT + b]);
        }
        float lsum = 0.0;
        vec2 o = vec2(0.0);
        if (!empty) {
            [[unroll]] for (uint b = 0; b < NSPLIT; b++) {
                const float wb = exp(m_sh[g * NSPLIT + b] - mx);
                lsum += wb * l_sh[g * NSPLIT + b];
                o += wb * acc_sh[(g * NSPLIT + b) * D2 + u];
            }
        }
        if (nz == 1) {
            store_out(t, h0, g, u, o / lsum);
        } else {
            const uint pb = pbase + (z * QB + g) * rec;
            part[pb + 4 + 2 * u] = o.x;
            part[pb + 5 + 2 * u] = o.y;
            if (u == 0) {
                part[pb] = mx;
                part[pb + 1] = lsum;
            }
        }
    }
    if (nz == 1) {
        store_q8(t, h0);
        return; // uniform per dispatch
    }
    // Split-K: the last workgroup of this (head group, token) to arrive merges.
    memoryBarrierBuffer();
    barrier();
    const uint ci = p.cnt_off + t * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (tid == 0) {
        const uint before = atomicAdd(cnt[ci], 1u);
        last_sh = before == nz - 1 ? 1u : 0u;
    }
    barrier();
    if (last_sh == 0u) {
        return; // uniform per workgroup
    }
    memoryBarrierBuffer();
    // Every split's (m, l) at once; then per head M = max m_z, L = sum e^(m_z - M) l_z,
    // and the weight of split z. Split 0 holds row 0, so M is finite; empty splits
    // (m = -inf) weigh 0.
    for (uint i = tid; i < QB * nz; i += WG) {
        const uint g = i / nz;
        const uint zz = i - g * nz;
        const uint pb = pbase + (zz * QB + g) * rec;
        wz_sh[g * MAX_NZ + zz] = part[pb];
    }
    barrier();
    for (uint idx = tid; idx < QB * D4; idx += WG) {
        const uint g = idx / D4;
        const uint u4 = idx - g * D4;
        float mx = NEG_INF;
        for (uint zz = 0; zz < nz; zz++) {
            mx = max(mx, wz_sh[g * MAX_NZ + zz]);
        }
        float lsum = 0.0;
        vec4 o = vec4(0.0);
        // MZ splits' loads in flight at once; past nz the last split is read again
        // with weight 0.
        for (uint z0 = 0; z0 < nz; z0 += MZ) {
            float lz[MZ];
            vec4 az[MZ];
            [[unroll]] for (uint j = 0; j < MZ; j++) {
                const uint zz = min(z0 + j, nz - 1);
                const uint pb = pbase + (zz * QB + g) * rec;
                lz[j] = part[pb + 1];
                az[j] = part4[(pb + 4) / 4 + u4];
            }
            [[unroll]] for (uint j = 0; j < MZ; j++) {
                const uint zz = min(z0 + j, nz - 1);
                const float wz = z0 + j < nz ? exp(wz_sh[g * MAX_NZ + zz] - mx) : 0.0;
                lsum += wz * lz[j];
                o += wz * az[j];
            }
        }
        o /= lsum;
        store_out(t, h0, g, 2 * u4, o.xy);
        store_out(t, h0, g, 2 * u4 + 1, o.zw);
    }
    if (tid == 0) {
        cnt[ci] = 0u;
    }
    store_q8(t, h0);
}
