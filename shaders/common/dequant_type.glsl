// The per-type part of common/dequant.glsl: one weight type's block layout and
// dequantization, selected by DQ_TYPE (a T_* number) and named through NS(x) — `x` for a
// single-type compile, `x##_a` / `x##_b` when the grouped mat-vec compiles two types
// into one shader (mul_mat_vec_group.comp). Included by dequant.glsl only, once per
// type; no include guard.
//
// Names per type: NS(QK), NS(BLOCK_BYTES), NS(CHUNKS) (consts), NS(dq4), NS(chunk_xoff),
// NS(dq_chunk); K-quant helpers NS(scale_k3), NS(scale_min_k4), NS(QS_AT).

// ---- per type ---------------------------------------------------------------------------

#if (DQ_TYPE == T_F32)
const uint NS(QK) = 16u;
const uint NS(BLOCK_BYTES) = 64u;
// Needs bb % 4 == 0.
vec4 NS(dq4)(uint bb, uint o) {
    const uint i = (bb >> 2) + o;
    return uintBitsToFloat(uvec4(w32[i], w32[i + 1u], w32[i + 2u], w32[i + 3u]));
}

#elif (DQ_TYPE == T_F16)
const uint NS(QK) = 16u;
const uint NS(BLOCK_BYTES) = 32u;
vec4 NS(dq4)(uint bb, uint o) {
    const uint b = bb + 2u * o;
    return vec4(unpackHalf2x16(ld32(b)), unpackHalf2x16(ld32(b + 4u)));
}

#elif (DQ_TYPE == T_BF16)
const uint NS(QK) = 16u;
const uint NS(BLOCK_BYTES) = 32u;
vec4 NS(dq4)(uint bb, uint o) {
    const uint b = bb + 2u * o;
    const uint a = ld32(b), c = ld32(b + 4u);
    return uintBitsToFloat(uvec4(a << 16, a & 0xffff0000u, c << 16, c & 0xffff0000u));
}

#elif (DQ_TYPE == T_Q4_0)
// d: f16 @0, qs[16] @2: value j = low nibble of qs[j], value j+16 = its high nibble.
const uint NS(QK) = 32u;
const uint NS(BLOCK_BYTES) = 18u;
vec4 NS(dq4)(uint bb, uint o) {
    const float d = ldh(bb);
    const uint q = (ld32(bb + 2u + (o & 15u)) >> (o & 16u) / 4u) & 0x0f0f0f0fu;
    precise vec4 v = vec4(ivec4(bytes4(q)) - 8) * d;
    return v;
}

#elif (DQ_TYPE == T_Q4_1)
// d: f16 @0, m: f16 @2, qs[16] @4 (nibbles as q4_0).
const uint NS(QK) = 32u;
const uint NS(BLOCK_BYTES) = 20u;
vec4 NS(dq4)(uint bb, uint o) {
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uint q = (ld32(bb + 4u + (o & 15u)) >> (o & 16u) / 4u) & 0x0f0f0f0fu;
    precise vec4 v = vec4(bytes4(q)) * dm.x + dm.y;
    return v;
}

#elif (DQ_TYPE == T_Q5_0)
// d: f16 @0, qh: u32 @2 (bit j = 5th bit of value j), qs[16] @6.
const uint NS(QK) = 32u;
const uint NS(BLOCK_BYTES) = 22u;
vec4 NS(dq4)(uint bb, uint o) {
    const float d = ldh(bb);
    const uint qh = ld32(bb + 2u) >> o;
    const uint q = (ld32(bb + 6u + (o & 15u)) >> (o & 16u) / 4u) & 0x0f0f0f0fu;
    const uvec4 h = ((uvec4(qh) >> uvec4(0u, 1u, 2u, 3u)) & 1u) << 4;
    precise vec4 v = vec4(ivec4(bytes4(q) | h) - 16) * d;
    return v;
}

#elif (DQ_TYPE == T_Q5_1)
// d: f16 @0, m: f16 @2, qh: u32 @4, qs[16] @8.
const uint NS(QK) = 32u;
const uint NS(BLOCK_BYTES) = 24u;
vec4 NS(dq4)(uint bb, uint o) {
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uint qh = ld32(bb + 4u) >> o;
    const uint q = (ld32(bb + 8u + (o & 15u)) >> (o & 16u) / 4u) & 0x0f0f0f0fu;
    const uvec4 h = ((uvec4(qh) >> uvec4(0u, 1u, 2u, 3u)) & 1u) << 4;
    precise vec4 v = vec4(bytes4(q) | h) * dm.x + dm.y;
    return v;
}

#elif (DQ_TYPE == T_Q8_0)
// d: f16 @0, qs: i8[32] @2.
const uint NS(QK) = 32u;
const uint NS(BLOCK_BYTES) = 34u;
vec4 NS(dq4)(uint bb, uint o) {
    const float d = ldh(bb);
    const ivec4 q = (ivec4(bytes4(ld32(bb + 2u + o))) << 24) >> 24;
    precise vec4 v = vec4(q) * d;
    return v;
}

#elif (DQ_TYPE == T_Q2_K)
// scales[16] @0 (low nibble scale, high nibble min, per 16 values), qs[64] @16,
// d: f16 @80, dmin: f16 @82. Value v: byte qs[32*(v/128) + v%32], bits 2*((v%128)/32).
const uint NS(QK) = 256u;
const uint NS(BLOCK_BYTES) = 84u;
vec4 NS(dq4)(uint bb, uint o) {
    const vec2 dm = unpackHalf2x16(ld32(bb + 80u));
    const uint sc = ld8(bb + o / 16u);
    const uint shift = 2u * ((o & 127u) / 32u);
    const uint q = (ld32(bb + 16u + 32u * (o / 128u) + (o & 31u)) >> shift) & 0x03030303u;
    precise float dl = dm.x * float(sc & 15u);
    precise float ml = dm.y * float(sc >> 4);
    precise vec4 v = dl * vec4(bytes4(q)) - ml;
    return v;
}

#elif (DQ_TYPE == T_Q3_K)
// hmask[32] @0, qs[64] @32, scales[12] @96 (16 packed 6-bit, bias 32), d: f16 @108.
// Value v: low 2 bits as q2_K's, high bit = bit (v/32) of hmask[v%32] (set: +0, clear: -4).
const uint NS(QK) = 256u;
const uint NS(BLOCK_BYTES) = 110u;
int NS(scale_k3)(uint bb, uint j) {
    const uint lo = (ld8(bb + 96u + (j & 7u)) >> (4u * (j / 8u))) & 15u;
    const uint hi = (ld8(bb + 104u + (j & 3u)) >> (2u * (j / 4u))) & 3u;
    return int(lo | (hi << 4)) - 32;
}
vec4 NS(dq4)(uint bb, uint o) {
    const float d = ldh(bb + 108u);
    const uint shift = 2u * ((o & 127u) / 32u);
    const uint q = (ld32(bb + 32u + 32u * (o / 128u) + (o & 31u)) >> shift) & 0x03030303u;
    const uint hm = (ld32(bb + (o & 31u)) >> (o / 32u)) & 0x01010101u;
    const ivec4 qv = ivec4(bytes4(q)) - 4 * (1 - ivec4(bytes4(hm)));
    precise float dl = d * float(NS(scale_k3)(bb, o / 16u));
    precise vec4 v = dl * vec4(qv);
    return v;
}

#elif (DQ_TYPE == T_Q4_K) || (DQ_TYPE == T_Q5_K)
// d: f16 @0, dmin: f16 @2, scales[12] @4 (8 × 6-bit scale and min, packed).
// q4_K: qs[128] @16.  q5_K: qh[32] @16, qs[128] @48.
// Value v: byte qs[32*(v/64) + v%32], low nibble if (v%64) < 32 else high; sub-block v/32;
// q5_K's 5th bit is bit (v/32) of qh[v%32].
const uint NS(QK) = 256u;
#if DQ_TYPE == T_Q4_K
const uint NS(BLOCK_BYTES) = 144u;
const uint NS(QS_AT) = 16u;
#else
const uint NS(BLOCK_BYTES) = 176u;
const uint NS(QS_AT) = 48u;
#endif
// (scale, min) of sub-block j (0..7).
uvec2 NS(scale_min_k4)(uint bb, uint j) {
    const uint s = bb + 4u;
    if (j < 4u) {
        return uvec2(ld8(s + j) & 63u, ld8(s + j + 4u) & 63u);
    }
    const uint a = ld8(s + j + 4u);
    return uvec2((a & 15u) | ((ld8(s + j - 4u) >> 6) << 4), (a >> 4) | ((ld8(s + j) >> 6) << 4));
}
vec4 NS(dq4)(uint bb, uint o) {
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uint j = o / 32u;
    const uvec2 sm = NS(scale_min_k4)(bb, j);
    const uint q = (ld32(bb + NS(QS_AT) + 32u * (o / 64u) + (o & 31u)) >> (4u * (j & 1u)))
        & 0x0f0f0f0fu;
#if DQ_TYPE == T_Q4_K
    const uvec4 qv = bytes4(q);
#else
    const uint qh = (ld32(bb + 16u + (o & 31u)) >> j) & 0x01010101u;
    const uvec4 qv = bytes4(q) + (bytes4(qh) << 4);
#endif
    precise float dl = dm.x * float(sm.x);
    precise float ml = dm.y * float(sm.y);
    precise vec4 v = dl * vec4(qv) - ml;
    return v;
}

#elif (DQ_TYPE == T_Q6_K)
// ql[128] @0, qh[64] @128, scales: i8[16] @192, d: f16 @208.
// Value v (h = v/128, quarter t = (v%128)/32, l = v%32): low 4 bits from
// ql[64h + l + 32*(t&1)] (high nibble if t >= 2), bits 4-5 from qh[32h + l] >> 2t;
// scale scales[v/16]; value = d * scale * (q - 32).
const uint NS(QK) = 256u;
const uint NS(BLOCK_BYTES) = 210u;
vec4 NS(dq4)(uint bb, uint o) {
    const float d = ldh(bb + 208u);
    const uint h = o / 128u, t = (o & 127u) / 32u, l = o & 31u;
    const uint ql = (ld32(bb + 64u * h + l + 32u * (t & 1u)) >> (4u * (t / 2u))) & 0x0f0f0f0fu;
    const uint qh = (ld32(bb + 128u + 32u * h + l) >> (2u * t)) & 0x03030303u;
    const ivec4 q = ivec4(bytes4(ql) | (bytes4(qh) << 4)) - 32;
    const int sc = (int(ld8(bb + 192u + o / 16u)) << 24) >> 24;
    precise float ds = d * float(sc);
    precise vec4 v = ds * vec4(q);
    return v;
}

#else
#error "dequant_type.glsl: DQ_TYPE is not a known T_* type"
#endif

// ---- chunks (for mat-vec threads) ---------------------------------------------------------

const uint NS(CHUNKS) = NS(QK) / 16u;

// NS(CHUNK_SPAN): the aligned run of a block's values that holds a chunk's 4 groups (a
// chunk's groups 0-1 and 2-3 are each 8 consecutive values, 8-aligned, in every type).
#if (DQ_TYPE == T_F32) || (DQ_TYPE == T_F16) || (DQ_TYPE == T_BF16) || (DQ_TYPE == T_Q8_0)
const uint NS(CHUNK_SPAN) = 16u;
// 16 consecutive values.
uint NS(chunk_xoff)(uint c, uint g) {
    return 16u * c + 4u * g;
}
#elif (DQ_TYPE == T_Q4_0) || (DQ_TYPE == T_Q4_1) || (DQ_TYPE == T_Q5_0) || (DQ_TYPE == T_Q5_1)
const uint NS(CHUNK_SPAN) = 32u;
// Legacy 4/5-bit: 8 bytes of qs = values 8c..8c+7 (low nibbles) and 16+8c.. (high).
uint NS(chunk_xoff)(uint c, uint g) {
    return 8u * c + 4u * (g & 1u) + 16u * (g >> 1);
}
#elif (DQ_TYPE == T_Q4_K) || (DQ_TYPE == T_Q5_K)
const uint NS(CHUNK_SPAN) = 64u;
// 8 bytes of qs (l = 8*(c%4)) of 64-value sub-block pair c/4: low and high nibbles.
uint NS(chunk_xoff)(uint c, uint g) {
    return 64u * (c / 4u) + 8u * (c & 3u) + 4u * (g & 1u) + 32u * (g >> 1);
}
#else
const uint NS(CHUNK_SPAN) = 128u;
// q2_K, q3_K, q6_K: 4 bytes (l = 4*(c%8)) of half c/8 hold one value of each 32-run.
uint NS(chunk_xoff)(uint c, uint g) {
    return 128u * (c / 8u) + 4u * (c & 7u) + 32u * g;
}
#endif

// NS(dq_chunk)(bb, c, v): the 4 groups of chunk c (v[g] = values NS(chunk_xoff)(c, g)..+3).
// K-quants load the chunk's packed bytes and scales once; the others call dq4 (whose
// repeated loads the compiler merges). Not `precise`: mat-vec only, FMA welcome.
#if (DQ_TYPE == T_Q2_K)
void NS(dq_chunk)(uint bb, uint c, out vec4 v[4]) {
    const uint h = c / 8u, l = 4u * (c & 7u);
    const vec2 dm = unpackHalf2x16(ld32(bb + 80u));
    const uint q = ld32(bb + 16u + 32u * h + l);
    // scales 8h + l/16 + 2t, t = 0..3: bytes of the 8 scale bytes of this half.
    const uvec2 sw = uvec2(ld32(bb + 8u * h), ld32(bb + 8u * h + 4u)) >> (8u * (l / 16u));
    const uvec4 sc = uvec4(sw.x, sw.x >> 16, sw.y, sw.y >> 16) & 0xffu;
    [[unroll]] for (uint t = 0u; t < 4u; t++) {
        const uvec4 qv = bytes4((q >> (2u * t)) & 0x03030303u);
        v[t] = (dm.x * float(sc[t] & 15u)) * vec4(qv) - dm.y * float(sc[t] >> 4);
    }
}
#elif (DQ_TYPE == T_Q3_K)
void NS(dq_chunk)(uint bb, uint c, out vec4 v[4]) {
    const uint h = c / 8u, l = 4u * (c & 7u);
    const float d = ldh(bb + 108u);
    const uint q = ld32(bb + 32u + 32u * h + l);
    const uint hm = ld32(bb + l) >> (4u * h);
    const uvec3 s = uvec3(ld32(bb + 96u), ld32(bb + 100u), ld32(bb + 104u));
    [[unroll]] for (uint t = 0u; t < 4u; t++) {
        const uint j = 8u * h + l / 16u + 2u * t;
        const uint lo = ((j & 4u) == 0u ? s.x : s.y) >> (8u * (j & 3u) + 4u * (j / 8u));
        const uint hi = s.z >> (8u * (j & 3u) + 2u * (j / 4u));
        const int scale = int((lo & 15u) | ((hi & 3u) << 4)) - 32;
        const ivec4 qv = ivec4(bytes4((q >> (2u * t)) & 0x03030303u))
            - 4 * (1 - ivec4(bytes4((hm >> t) & 0x01010101u)));
        v[t] = (d * float(scale)) * vec4(qv);
    }
}
#elif (DQ_TYPE == T_Q4_K) || (DQ_TYPE == T_Q5_K)
// (scale, min) of sub-block j from the 12 scale bytes as 3 words s (scale_min_k4).
uvec2 NS(scale_min_k4w)(uvec3 s, uint j) {
    if (j < 4u) {
        return uvec2((s.x >> (8u * j)) & 63u, (s.y >> (8u * j)) & 63u);
    }
    const uint a = s.z >> (8u * (j - 4u));
    return uvec2((a & 15u) | (((s.x >> (8u * (j - 4u))) >> 6 & 3u) << 4),
                 ((a >> 4) & 15u) | (((s.y >> (8u * (j - 4u))) >> 6 & 3u) << 4));
}
// Chunk c of a q4_K / q5_K block: for g = 0, 1 (sub-block 2 (c / 4) + g: the low
// nibbles of the chunk's 8 qs bytes, then the high ones) the 8 codes as the bytes of
// q[g] (q5_K: with their 5th bit) and the sub-block's (d * scale, dmin * min).
struct NS(K4Chunk) {
    uvec2 q[2];
    vec2 dm[2];
};
NS(K4Chunk) NS(k4_chunk)(uint bb, uint c) {
    const uint jp = c / 4u, l = 8u * (c & 3u);
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uvec3 s = uvec3(ld32(bb + 4u), ld32(bb + 8u), ld32(bb + 12u));
    const uint qa = bb + NS(QS_AT) + 32u * jp + l;
    const uvec2 q = uvec2(ld32(qa), ld32(qa + 4u));
#if DQ_TYPE == T_Q5_K
    const uvec2 qh = uvec2(ld32(bb + 16u + l), ld32(bb + 20u + l));
#endif
    NS(K4Chunk) k;
    [[unroll]] for (uint g = 0u; g < 2u; g++) {
        const uint j = 2u * jp + g;
        const uvec2 sm = NS(scale_min_k4w)(s, j);
        k.dm[g] = vec2(dm.x * float(sm.x), dm.y * float(sm.y));
        k.q[g] = (q >> (4u * g)) & 0x0f0f0f0fu;
#if DQ_TYPE == T_Q5_K
        k.q[g] |= ((qh >> j) & 0x01010101u) << 4;
#endif
    }
    return k;
}
void NS(dq_chunk)(uint bb, uint c, out vec4 v[4]) {
    const NS(K4Chunk) k = NS(k4_chunk)(bb, c);
    [[unroll]] for (uint g = 0u; g < 2u; g++) {
        [[unroll]] for (uint i = 0u; i < 2u; i++) {
            v[2u * g + i] = k.dm[g].x * vec4(bytes4(k.q[g][i])) - k.dm[g].y;
        }
    }
}
#elif (DQ_TYPE == T_Q6_K)
void NS(dq_chunk)(uint bb, uint c, out vec4 v[4]) {
    const uint h = c / 8u, l = 4u * (c & 7u);
    const float d = ldh(bb + 208u);
    const uvec2 ql = uvec2(ld32(bb + 64u * h + l), ld32(bb + 64u * h + 32u + l));
    const uint qh = ld32(bb + 128u + 32u * h + l);
    // scales 8h + l/16 + 2t: bytes of the 8 scale bytes of this half.
    const uvec2 sw = uvec2(ld32(bb + 192u + 8u * h), ld32(bb + 196u + 8u * h)) >> (8u * (l / 16u));
    const uvec4 su = uvec4(sw.x, sw.x >> 16, sw.y, sw.y >> 16) & 0xffu;
    [[unroll]] for (uint t = 0u; t < 4u; t++) {
        const uint lo = (ql[t & 1u] >> (4u * (t / 2u))) & 0x0f0f0f0fu;
        const uint hi = (qh >> (2u * t)) & 0x03030303u;
        const ivec4 qv = ivec4(bytes4(lo) | (bytes4(hi) << 4)) - 32;
        const int sc = (int(su[t]) << 24) >> 24;
        v[t] = (d * float(sc)) * vec4(qv);
    }
}
#else
void NS(dq_chunk)(uint bb, uint c, out vec4 v[4]) {
    [[unroll]] for (uint g = 0u; g < 4u; g++) {
        v[g] = NS(dq4)(bb, NS(chunk_xoff)(c, g));
    }
}
#endif

// ---- chunks as halves (the cooperative-matrix tiles) ---------------------------------------
//
// With DQ_H16 defined (the including shader has GL_EXT_shader_explicit_arithmetic_types_
// float16): NS(dq_chunk_h)(bb, c, h) writes chunk c as f16, h[0] = its groups 0-1 and h[1]
// its groups 2-3, each a uvec4 of 8 halves (group 2r in the first 4) — what packing
// dq_chunk's floats gives, without the integer-to-float conversions and the f32 -> f16
// packs. (Groups 2r, 2r + 1 are 8 consecutive values except in q2_K, q3_K and q6_K,
// whose chunks the coopmat tiles do not use.)
// A small code q (0..1023) becomes a half by bit pattern alone: 0x6400 | q is the half
// 1024 + q, and 1024 + q - 1024 (or - 1024 - bias) is exact; then one f16 multiply (or
// fma) per pair of values, in packed f16x2 arithmetic.
// - f16: the bytes themselves. q4_0, q8_0: (1024 + q - (1024 + bias)) * d is
//   q - bias exactly times d, rounded once: the same half as packing dq4's exact f32
//   product (on lavapipe bit-exact; Vulkan leaves the direction of each rounding to the
//   implementation, so tests/vk_get_rows.rs accepts either half around the value).
// - q4_K, q5_K: q * dl - ml in one f16 fma with dl = d * scale and ml = dmin * min
//   rounded to f16 first: four roundings of at most 1 ulp each (Vulkan's fma may round
//   the product and the sum apart), within 2^-10 (3 q dl + 2 ml) of the value, where
//   packing the exact f32 value is within 2^-10 |value|.
// Other types pack dq_chunk's floats.
#ifdef DQ_H16
#ifndef DQ_H16_HELPERS
#define DQ_H16_HELPERS
// Bytes 0-1 (h16_lo) or 2-3 (h16_hi) of w as the halves (1024 + b0, 1024 + b1).
uint h16_lo(uint w) {
    return (w & 0xffu) | ((w << 8) & 0xff0000u) | 0x64006400u;
}
uint h16_hi(uint w) {
    return ((w >> 16) & 0xffu) | ((w >> 8) & 0xff0000u) | 0x64006400u;
}
// The 4 bytes of w as 4 halves 1024 + b (two words).
uvec2 h16_bytes(uint w) {
    return uvec2(h16_lo(w), h16_hi(w));
}
// (x - off) * d per half of the pair u, packed.
uint h16_sub_mul(uint u, float16_t off, float16_t d) {
    return packFloat2x16((unpackFloat2x16(u) - f16vec2(off)) * f16vec2(d));
}
// (x - 1024) * dl - ml per half of the pair u, packed (one fma).
uint h16_fma(uint u, float16_t dl, float16_t ml) {
    return packFloat2x16(fma(unpackFloat2x16(u) - f16vec2(1024.0hf), f16vec2(dl), f16vec2(-ml)));
}
uvec4 h16_pack8(vec4 a, vec4 b) {
    return uvec4(packFloat2x16(f16vec2(a.xy)), packFloat2x16(f16vec2(a.zw)),
                 packFloat2x16(f16vec2(b.xy)), packFloat2x16(f16vec2(b.zw)));
}
#endif

#if (DQ_TYPE == T_F16)
void NS(dq_chunk_h)(uint bb, uint c, out uvec4 h[2]) {
    h[0] = ld128(bb + 32u * c);
    h[1] = ld128(bb + 32u * c + 16u);
}
#elif (DQ_TYPE == T_Q4_0)
void NS(dq_chunk_h)(uint bb, uint c, out uvec4 h[2]) {
    const float16_t d = unpackFloat2x16(ld16(bb)).x;
    const uvec2 w = uvec2(ld32(bb + 2u + 8u * c), ld32(bb + 6u + 8u * c));
    [[unroll]] for (uint g = 0u; g < 2u; g++) {
        // g = 0: low nibbles (values 8c..8c+7), g = 1: high (16 + 8c..).
        const uvec2 q = (w >> (4u * g)) & 0x0f0f0f0fu;
        const uvec4 b = uvec4(h16_bytes(q.x), h16_bytes(q.y));
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            h[g][i] = h16_sub_mul(b[i], 1032.0hf, d);
        }
    }
}
#elif (DQ_TYPE == T_Q8_0)
void NS(dq_chunk_h)(uint bb, uint c, out uvec4 h[2]) {
    const float16_t d = unpackFloat2x16(ld16(bb)).x;
    [[unroll]] for (uint g = 0u; g < 2u; g++) {
        // Signed bytes: q + 128 = q ^ 0x80 as unsigned.
        const uint a = bb + 2u + 16u * c + 8u * g;
        const uvec2 q = uvec2(ld32(a), ld32(a + 4u)) ^ 0x80808080u;
        const uvec4 b = uvec4(h16_bytes(q.x), h16_bytes(q.y));
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            h[g][i] = h16_sub_mul(b[i], 1152.0hf, d);
        }
    }
}
#elif (DQ_TYPE == T_Q4_K) || (DQ_TYPE == T_Q5_K)
void NS(dq_chunk_h)(uint bb, uint c, out uvec4 h[2]) {
    const NS(K4Chunk) k = NS(k4_chunk)(bb, c);
    [[unroll]] for (uint g = 0u; g < 2u; g++) {
        const float16_t dl = float16_t(k.dm[g].x);
        const float16_t ml = float16_t(k.dm[g].y);
        const uvec4 b = uvec4(h16_bytes(k.q[g].x), h16_bytes(k.q[g].y));
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            h[g][i] = h16_fma(b[i], dl, ml);
        }
    }
}
#else
void NS(dq_chunk_h)(uint bb, uint c, out uvec4 h[2]) {
    vec4 v[4];
    NS(dq_chunk)(bb, c, v);
    h[0] = h16_pack8(v[0], v[1]);
    h[1] = h16_pack8(v[2], v[3]);
}
#endif

// NS(dq8_h)(bb, o): values o..o+7 (o % 8 == 0) as 8 halves: what the coopmat tiles fetch
// for the types whose chunks span more than a step (q2_K, q3_K, q6_K). Their 8 values
// share one scale (16-value scale groups) and one packed-byte run:
// - q2_K: q * dl - ml as q4_K (one f16 fma, dl and ml rounded to f16): within
//   2^-10 (3 q dl + 2 ml) of the value.
// - q3_K, q6_K: (q - bias) exactly, times d * scale rounded to f16: two roundings, within
//   2^-9 (1 + 2^-10) |value|.
// Other types pack dq4's floats (the nearest halves).
#if (DQ_TYPE == T_Q2_K)
uvec4 NS(dq8_h)(uint bb, uint o) {
    const vec2 dm = unpackHalf2x16(ld32(bb + 80u));
    const uint sc = ld8(bb + o / 16u);
    const uint a = bb + 16u + 32u * (o / 128u) + (o & 31u);
    const uvec2 q = (uvec2(ld32(a), ld32(a + 4u)) >> (2u * ((o & 127u) / 32u))) & 0x03030303u;
    const float16_t dl = float16_t(dm.x * float(sc & 15u));
    const float16_t ml = float16_t(dm.y * float(sc >> 4));
    const uvec4 b = uvec4(h16_bytes(q.x), h16_bytes(q.y));
    uvec4 h;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        h[i] = h16_fma(b[i], dl, ml);
    }
    return h;
}
#elif (DQ_TYPE == T_Q3_K)
uvec4 NS(dq8_h)(uint bb, uint o) {
    const float d = ldh(bb + 108u);
    const uint l = o & 31u, sh = 2u * ((o & 127u) / 32u);
    const uint a = bb + 32u + 32u * (o / 128u) + l;
    const uvec2 q = (uvec2(ld32(a), ld32(a + 4u)) >> sh) & 0x03030303u;
    // High bit (v / 32) of hmask[v % 32]: set +0, clear -4, so the code q | h << 2 has
    // bias 4.
    const uvec2 hm = (uvec2(ld32(bb + l), ld32(bb + l + 4u)) >> (o / 32u)) & 0x01010101u;
    const float16_t ds = float16_t(d * float(NS(scale_k3)(bb, o / 16u)));
    const uvec4 b = uvec4(h16_bytes(q.x | (hm.x << 2)), h16_bytes(q.y | (hm.y << 2)));
    uvec4 h;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        h[i] = h16_sub_mul(b[i], 1028.0hf, ds);
    }
    return h;
}
#elif (DQ_TYPE == T_Q6_K)
uvec4 NS(dq8_h)(uint bb, uint o) {
    const float d = ldh(bb + 208u);
    const uint hh = o / 128u, t = (o & 127u) / 32u, l = o & 31u;
    const uint al = bb + 64u * hh + l + 32u * (t & 1u), ah = bb + 128u + 32u * hh + l;
    const uvec2 ql = (uvec2(ld32(al), ld32(al + 4u)) >> (4u * (t / 2u))) & 0x0f0f0f0fu;
    const uvec2 qh = (uvec2(ld32(ah), ld32(ah + 4u)) >> (2u * t)) & 0x03030303u;
    const int sc = (int(ld8(bb + 192u + o / 16u)) << 24) >> 24;
    const float16_t ds = float16_t(d * float(sc));
    const uvec2 q = ql | (qh << 4);
    const uvec4 b = uvec4(h16_bytes(q.x), h16_bytes(q.y));
    uvec4 h;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        h[i] = h16_sub_mul(b[i], 1056.0hf, ds);
    }
    return h;
}
#else
uvec4 NS(dq8_h)(uint bb, uint o) {
    return h16_pack8(NS(dq4)(bb, o), NS(dq4)(bb, o + 4u));
}
#endif
#endif
