// The body of the integer-dot mat-vec (MMVQ): mul_mat_vecq.comp (dense, Op::MulMat) and,
// with ID defined, mul_mat_vecq_id.comp (expert-indexed, Op::MulMatId at decode: workgroup
// z = (token, slot) pair, NMAX = 1). The algorithm is described in mul_mat_vecq.comp.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_spirv_intrinsics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#define Q8_X
#include "dequant_matmul.glsl"

layout(std430, set = 0, binding = 1) readonly restrict buffer XQ { uvec4 xq[]; };
layout(std430, set = 0, binding = 2) readonly restrict buffer XD { vec2 xds[]; };
#ifdef ID
// The expert of each (token, slot) pair (binding 4: binding 3 is dst on the Q8_X layout).
layout(std430, set = 0, binding = 4) readonly restrict buffer IDS { int ids[]; };
#include "id_pair.glsl"
#define X_UNIT(j) (id_xrow * units)
#define OUT_COL(j) id_pair
#else
#define X_UNIT(j) ((j) * units)
#define OUT_COL(j) (j)
#endif

// OpSDot (4450) on two 4 x int8 packed words (PackedVectorFormat4x8Bit = 0);
// capabilities DotProduct (6019) and DotProductInput4x8BitPacked (6018).
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot_packed(uint a, uint b, spirv_literal int fmt);

int sdot(uint a, uint b) {
    return sdot_packed(a, b, 0);
}

int sdot4(uvec4 a, uvec4 b) {
    return (sdot(a.x, b.x) + sdot(a.y, b.y)) + (sdot(a.z, b.z) + sdot(a.w, b.w));
}

// Bytes 0..255 holding values u in 0..2c-1 become the int8 codes u - c (no borrow
// between bytes: each byte is lifted by 0x80 first).
uint sub_bytes(uint u, uint c4) {
    return ((u | 0x80808080u) - c4) ^ 0x80808080u;
}

// Bits 0..3 of t spread to bit 0 of bytes 0..3.
uint spread4(uint t) {
    return ((t & 15u) * 0x00204081u) & 0x01010101u;
}

layout(constant_id = 0) const uint WG = WG_X;
layout(constant_id = 1) const uint NR = 2;
layout(constant_id = 3) const uint NMAX = 1;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

// One decoded 32-value unit of one row: int8 codes of values 0..15 (wa) and 16..31
// (wb) in x's order, and the coefficients of the formula above.
struct Unit {
    uvec4 wa;
    uvec4 wb;
    vec2 a;  // A_a, A_b
    vec2 mn; // M_a, M_b (q2_K)
    float b; // B
};

// 16 bytes at byte b. One uvec4 load where W_ALIGN == 16 (q4_K, q5_K: every call site
// below is at a 16-byte multiple of the block start for those types), else four words.
uvec4 ld128(uint b) {
    if (W_ALIGN >= 16u) {
        return w128[b >> 4];
    }
    return uvec4(ld32(b), ld32(b + 4u), ld32(b + 8u), ld32(b + 12u));
}

#if defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_Q5_0) || defined(TYPE_Q5_1) \
    || defined(TYPE_Q8_0)
#define SUBS 1u
#else
#define SUBS 8u
#endif

// Unit s (0..SUBS-1) of the block at byte bb.
Unit dq_unit(uint bb, uint s) {
    Unit r;
    r.mn = vec2(0.0);
    r.b = 0.0;
#if defined(TYPE_Q4_0)
    const uvec4 q = ld128(bb + 2u);
    r.wa = uvec4(sub_bytes(q.x & 0x0f0f0f0fu, 0x08080808u), sub_bytes(q.y & 0x0f0f0f0fu, 0x08080808u),
                 sub_bytes(q.z & 0x0f0f0f0fu, 0x08080808u), sub_bytes(q.w & 0x0f0f0f0fu, 0x08080808u));
    const uvec4 h = (q >> 4) & 0x0f0f0f0fu;
    r.wb = uvec4(sub_bytes(h.x, 0x08080808u), sub_bytes(h.y, 0x08080808u),
                 sub_bytes(h.z, 0x08080808u), sub_bytes(h.w, 0x08080808u));
    r.a = vec2(ldh(bb));
#elif defined(TYPE_Q4_1)
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uvec4 q = ld128(bb + 4u);
    r.wa = q & 0x0f0f0f0fu;
    r.wb = (q >> 4) & 0x0f0f0f0fu;
    r.a = vec2(dm.x);
    r.b = dm.y;
#elif defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
#ifdef TYPE_Q5_0
    const uint qh = ld32(bb + 2u);
    const uvec4 q = ld128(bb + 6u);
#else
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uint qh = ld32(bb + 4u);
    const uvec4 q = ld128(bb + 8u);
#endif
    const uvec4 hl = uvec4(spread4(qh), spread4(qh >> 4), spread4(qh >> 8), spread4(qh >> 12)) << 4;
    const uvec4 hh = uvec4(spread4(qh >> 16), spread4(qh >> 20), spread4(qh >> 24), spread4(qh >> 28)) << 4;
    const uvec4 ua = (q & 0x0f0f0f0fu) | hl;
    const uvec4 ub = ((q >> 4) & 0x0f0f0f0fu) | hh;
#ifdef TYPE_Q5_0
    const uint c = 0x10101010u;
    r.wa = uvec4(sub_bytes(ua.x, c), sub_bytes(ua.y, c), sub_bytes(ua.z, c), sub_bytes(ua.w, c));
    r.wb = uvec4(sub_bytes(ub.x, c), sub_bytes(ub.y, c), sub_bytes(ub.z, c), sub_bytes(ub.w, c));
    r.a = vec2(ldh(bb));
#else
    r.wa = ua;
    r.wb = ub;
    r.a = vec2(dm.x);
    r.b = dm.y;
#endif
#elif defined(TYPE_Q8_0)
    r.wa = ld128(bb + 2u);
    r.wb = ld128(bb + 18u);
    r.a = vec2(ldh(bb));
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uvec3 sw = uvec3(ld32(bb + 4u), ld32(bb + 8u), ld32(bb + 12u));
    uint sc, mn;
    if (s < 4u) {
        sc = (sw.x >> (8u * s)) & 63u;
        mn = (sw.y >> (8u * s)) & 63u;
    } else {
        const uint a = sw.z >> (8u * (s - 4u));
        sc = (a & 15u) | (((sw.x >> (8u * (s - 4u))) >> 6 & 3u) << 4);
        mn = ((a >> 4) & 15u) | (((sw.y >> (8u * (s - 4u))) >> 6 & 3u) << 4);
    }
    const uint qb = bb + QS_AT + 32u * (s / 2u);
    const uint sh = 4u * (s & 1u);
    r.wa = (ld128(qb) >> sh) & 0x0f0f0f0fu;
    r.wb = (ld128(qb + 16u) >> sh) & 0x0f0f0f0fu;
#ifdef TYPE_Q5_K
    r.wa |= ((ld128(bb + 16u) >> s) & 0x01010101u) << 4;
    r.wb |= ((ld128(bb + 32u) >> s) & 0x01010101u) << 4;
#endif
    r.a = vec2(dm.x * float(sc));
    r.b = -dm.y * float(mn);
#elif defined(TYPE_Q6_K)
    const uint h = s / 4u, t = s & 3u;
    const float d = ldh(bb + 208u);
    const uint lb = bb + 64u * h + 32u * (t & 1u);
    const uint hb = bb + 128u + 32u * h;
    const uint ls = 4u * (t / 2u), hs = 2u * t;
    const uvec4 ua = ((ld128(lb) >> ls) & 0x0f0f0f0fu) | (((ld128(hb) >> hs) & 0x03030303u) << 4);
    const uvec4 ub = ((ld128(lb + 16u) >> ls) & 0x0f0f0f0fu) | (((ld128(hb + 16u) >> hs) & 0x03030303u) << 4);
    const uint c = 0x20202020u;
    r.wa = uvec4(sub_bytes(ua.x, c), sub_bytes(ua.y, c), sub_bytes(ua.z, c), sub_bytes(ua.w, c));
    r.wb = uvec4(sub_bytes(ub.x, c), sub_bytes(ub.y, c), sub_bytes(ub.z, c), sub_bytes(ub.w, c));
    // scales[2s], scales[2s + 1] (int8)
    const uint sc2 = ld16(bb + 192u + 2u * s);
    r.a = d * vec2(float((int(sc2) << 24) >> 24), float((int(sc2) << 16) >> 24));
#elif defined(TYPE_Q3_K)
    const uint h = s / 4u, t = s & 3u;
    const float d = ldh(bb + 108u);
    const uint qb = bb + 32u + 32u * h;
    const uint sh = 2u * t;
    const uvec4 ua = ((ld128(qb) >> sh) & 0x03030303u) | (((ld128(bb) >> s) & 0x01010101u) << 2);
    const uvec4 ub = ((ld128(qb + 16u) >> sh) & 0x03030303u) | (((ld128(bb + 16u) >> s) & 0x01010101u) << 2);
    const uint c = 0x04040404u;
    r.wa = uvec4(sub_bytes(ua.x, c), sub_bytes(ua.y, c), sub_bytes(ua.z, c), sub_bytes(ua.w, c));
    r.wb = uvec4(sub_bytes(ub.x, c), sub_bytes(ub.y, c), sub_bytes(ub.z, c), sub_bytes(ub.w, c));
    r.a = d * vec2(float(scale_k3(bb, 2u * s)), float(scale_k3(bb, 2u * s + 1u)));
#elif defined(TYPE_Q2_K)
    const uint h = s / 4u, t = s & 3u;
    const vec2 dm = unpackHalf2x16(ld32(bb + 80u));
    const uint qb = bb + 16u + 32u * h;
    const uint sh = 2u * t;
    r.wa = (ld128(qb) >> sh) & 0x03030303u;
    r.wb = (ld128(qb + 16u) >> sh) & 0x03030303u;
    const uint sc2 = ld16(bb + 2u * s);
    r.a = dm.x * vec2(float(sc2 & 15u), float((sc2 >> 8) & 15u));
    r.mn = dm.y * vec2(float((sc2 >> 4) & 15u), float(sc2 >> 12));
#else
#error "mul_mat_vecq.comp has no integer-dot path for this TYPE_*"
#endif
    return r;
}

shared float red[NR * NMAX * WG];

void main() {
    const uint row0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * NR;
    if (row0 >= p.m) {
        return; // uniform per workgroup
    }
    const uint tid = gl_LocalInvocationID.x;
    const uint units = p.k / 32u;
#ifdef ID
    // Workgroup z is a (token, slot) pair: its expert's rows, its token's (or slot's) x
    // row, its dst column; a pair whose id is out of range gets 0.
    const uint id_pair = gl_WorkGroupID.z;
    const uint id_xrow = pair_x_row(id_pair);
    if (!id_pair_begin(id_pair, row0, NR, tid, WG)) {
        return; // uniform per workgroup
    }
#endif

    float acc[NR][NMAX];
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            acc[r][j] = 0.0;
        }
    }
    // Rows past m (last workgroup) re-read row0; their sums are dropped.
    uint wbase[NR];
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        wbase[r] = row_addr(row0 + r < p.m ? row0 + r : row0).wbase;
    }
    for (uint u = tid; u < units; u += WG) {
        const uint blk = u / SUBS, s = u % SUBS;
        Unit w[NR];
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            w[r] = dq_unit(wbase[r] + blk * BLOCK_BYTES, s);
        }
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            const uint xu = X_UNIT(j) + u;
            const uvec4 xa = xq[(p.x_off >> 2) + 2u * xu];
            const uvec4 xb = xq[(p.x_off >> 2) + 2u * xu + 1u];
            const vec2 ds = xds[p.x2_off + xu];
#ifdef TYPE_Q2_K
            const float sa = float(sdot4(uvec4(0x01010101u), xa));
            const float sb = float(sdot4(uvec4(0x01010101u), xb));
#endif
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                const float ia = float(sdot4(w[r].wa, xa));
                const float ib = float(sdot4(w[r].wb, xb));
                float v = w[r].a.x * ia + w[r].a.y * ib;
#ifdef TYPE_Q2_K
                v -= w[r].mn.x * sa + w[r].mn.y * sb;
#endif
                acc[r][j] += ds.x * v + w[r].b * ds.y;
            }
        }
    }

    const uint slots = NR * NMAX;
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            const float s = subgroupAdd(acc[r][j]);
            if (subgroupElect()) {
                red[(r * NMAX + j) * WG + gl_SubgroupID] = s;
            }
        }
    }
    barrier();
    for (uint t = tid; t < slots; t += WG) {
        const uint r = t / NMAX, j = t % NMAX;
        float s = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++) {
            s += red[(r * NMAX + j) * WG + g];
        }
        const uint row = row0 + r;
        if (row < p.m) {
            const RowAddr a = row_addr(row);
            dst[a.dbase + OUT_COL(j) * a.dstride] = s;
        }
    }
}
