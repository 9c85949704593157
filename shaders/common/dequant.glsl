// Block dequantization of ggml weight types, one type per compile (TYPE_* define).
//
// The including shader defines W_BINDING (the weight buffer's binding) before the
// #include. The weight buffer is read through two aliased views: `uint` words for
// 4-byte-aligned loads and `uint16_t` halves for the rest (needs 16-bit storage).
// Every block size is even, so any field of any block starts at an even byte; a
// 4-byte load that starts 2 bytes off a word boundary is made from two halves, which
// never touches a byte outside the block (a binding whose size is not a multiple of 4
// stays in range).
//
// Interface (all offsets in bytes from the start of the binding, values per block):
//   QK                 values per block (floats: a 16-value pseudo-block)
//   BLOCK_BYTES        bytes per block
//   vec4 dq4(bb, o)    the 4 values o..o+3 (o % 4 == 0, o < QK) of the block at byte bb
//   CHUNKS             16-value chunks per block (QK / 16)
//   chunk_xoff(c, g)   first value (block-relative) of 4-value group g (0..3) of chunk c;
//                      a chunk's 4 groups share their packed bytes (e.g. the low and high
//                      nibbles of q4_0's bytes), so a thread that owns a chunk loads each
//                      byte once. Chunks of a block partition its values.
//
// dq4 is exact: it repeats the CPU reference's operations in the same order (src/quant),
// marked `precise` so no FMA contraction changes a rounding; get_rows compares bits.
// Layouts are ggml's (ggml-common.h); field offsets are noted per type.
#ifndef COMMON_DEQUANT_GLSL
#define COMMON_DEQUANT_GLSL

#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : enable
#extension GL_EXT_control_flow_attributes : require

layout(std430, set = 0, binding = W_BINDING) readonly restrict buffer WQ32 { uint w32[]; };
layout(std430, set = 0, binding = W_BINDING) readonly restrict buffer WQ16 { uint16_t w16[]; };
layout(std430, set = 0, binding = W_BINDING) readonly restrict buffer WQ128 { uvec4 w128[]; };

// Alignment (bytes: 2, 4 or 16) the dispatch guarantees for every block start (the
// binding offset, every row and every block are multiples of it). 4 makes ld32 a plain
// word load (no run-time test); 16 lets kernels load 16-byte fields as one uvec4.
// Specialization constant 7; kernels that never set it keep 2 (any even offset).
layout(constant_id = 7) const uint W_ALIGN = 2;

// ---- raw loads ------------------------------------------------------------------------

// 16 bits at even byte offset b.
uint ld16(uint b) {
    return uint(w16[b >> 1]);
}

// 32 bits (little-endian) at even byte offset b (b % 4 == 0 whenever W_ALIGN >= 4 and
// the field is word-aligned in its block).
uint ld32(uint b) {
    if (W_ALIGN >= 4u || (b & 2u) == 0u) {
        return w32[b >> 2];
    }
    return uint(w16[b >> 1]) | (uint(w16[(b >> 1) + 1u]) << 16);
}

// Byte i (0..3) of word w, and the 4 bytes of w as a uvec4.
uint byte_of(uint w, uint i) {
    return (w >> (8u * i)) & 0xffu;
}
uvec4 bytes4(uint w) {
    return (uvec4(w) >> uvec4(0u, 8u, 16u, 24u)) & 0xffu;
}

// f16 at byte b.
float ldh(uint b) {
    return unpackHalf2x16(ld16(b)).x;
}

// Byte at any byte offset b (loads the half that holds it).
uint ld8(uint b) {
    return (ld16(b & ~1u) >> (8u * (b & 1u))) & 0xffu;
}

// ---- per type ---------------------------------------------------------------------------

#if defined(TYPE_F32)
#define QK 16u
#define BLOCK_BYTES 64u
// Needs bb % 4 == 0.
vec4 dq4(uint bb, uint o) {
    const uint i = (bb >> 2) + o;
    return uintBitsToFloat(uvec4(w32[i], w32[i + 1u], w32[i + 2u], w32[i + 3u]));
}

#elif defined(TYPE_F16)
#define QK 16u
#define BLOCK_BYTES 32u
vec4 dq4(uint bb, uint o) {
    const uint b = bb + 2u * o;
    return vec4(unpackHalf2x16(ld32(b)), unpackHalf2x16(ld32(b + 4u)));
}

#elif defined(TYPE_BF16)
#define QK 16u
#define BLOCK_BYTES 32u
vec4 dq4(uint bb, uint o) {
    const uint b = bb + 2u * o;
    const uint a = ld32(b), c = ld32(b + 4u);
    return uintBitsToFloat(uvec4(a << 16, a & 0xffff0000u, c << 16, c & 0xffff0000u));
}

#elif defined(TYPE_Q4_0)
// d: f16 @0, qs[16] @2: value j = low nibble of qs[j], value j+16 = its high nibble.
#define QK 32u
#define BLOCK_BYTES 18u
vec4 dq4(uint bb, uint o) {
    const float d = ldh(bb);
    const uint q = (ld32(bb + 2u + (o & 15u)) >> (o & 16u) / 4u) & 0x0f0f0f0fu;
    precise vec4 v = vec4(ivec4(bytes4(q)) - 8) * d;
    return v;
}

#elif defined(TYPE_Q4_1)
// d: f16 @0, m: f16 @2, qs[16] @4 (nibbles as q4_0).
#define QK 32u
#define BLOCK_BYTES 20u
vec4 dq4(uint bb, uint o) {
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uint q = (ld32(bb + 4u + (o & 15u)) >> (o & 16u) / 4u) & 0x0f0f0f0fu;
    precise vec4 v = vec4(bytes4(q)) * dm.x + dm.y;
    return v;
}

#elif defined(TYPE_Q5_0)
// d: f16 @0, qh: u32 @2 (bit j = 5th bit of value j), qs[16] @6.
#define QK 32u
#define BLOCK_BYTES 22u
vec4 dq4(uint bb, uint o) {
    const float d = ldh(bb);
    const uint qh = ld32(bb + 2u) >> o;
    const uint q = (ld32(bb + 6u + (o & 15u)) >> (o & 16u) / 4u) & 0x0f0f0f0fu;
    const uvec4 h = ((uvec4(qh) >> uvec4(0u, 1u, 2u, 3u)) & 1u) << 4;
    precise vec4 v = vec4(ivec4(bytes4(q) | h) - 16) * d;
    return v;
}

#elif defined(TYPE_Q5_1)
// d: f16 @0, m: f16 @2, qh: u32 @4, qs[16] @8.
#define QK 32u
#define BLOCK_BYTES 24u
vec4 dq4(uint bb, uint o) {
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uint qh = ld32(bb + 4u) >> o;
    const uint q = (ld32(bb + 8u + (o & 15u)) >> (o & 16u) / 4u) & 0x0f0f0f0fu;
    const uvec4 h = ((uvec4(qh) >> uvec4(0u, 1u, 2u, 3u)) & 1u) << 4;
    precise vec4 v = vec4(bytes4(q) | h) * dm.x + dm.y;
    return v;
}

#elif defined(TYPE_Q8_0)
// d: f16 @0, qs: i8[32] @2.
#define QK 32u
#define BLOCK_BYTES 34u
vec4 dq4(uint bb, uint o) {
    const float d = ldh(bb);
    const ivec4 q = (ivec4(bytes4(ld32(bb + 2u + o))) << 24) >> 24;
    precise vec4 v = vec4(q) * d;
    return v;
}

#elif defined(TYPE_Q2_K)
// scales[16] @0 (low nibble scale, high nibble min, per 16 values), qs[64] @16,
// d: f16 @80, dmin: f16 @82. Value v: byte qs[32*(v/128) + v%32], bits 2*((v%128)/32).
#define QK 256u
#define BLOCK_BYTES 84u
vec4 dq4(uint bb, uint o) {
    const vec2 dm = unpackHalf2x16(ld32(bb + 80u));
    const uint sc = ld8(bb + o / 16u);
    const uint shift = 2u * ((o & 127u) / 32u);
    const uint q = (ld32(bb + 16u + 32u * (o / 128u) + (o & 31u)) >> shift) & 0x03030303u;
    precise float dl = dm.x * float(sc & 15u);
    precise float ml = dm.y * float(sc >> 4);
    precise vec4 v = dl * vec4(bytes4(q)) - ml;
    return v;
}

#elif defined(TYPE_Q3_K)
// hmask[32] @0, qs[64] @32, scales[12] @96 (16 packed 6-bit, bias 32), d: f16 @108.
// Value v: low 2 bits as q2_K's, high bit = bit (v/32) of hmask[v%32] (set: +0, clear: -4).
#define QK 256u
#define BLOCK_BYTES 110u
int scale_k3(uint bb, uint j) {
    const uint lo = (ld8(bb + 96u + (j & 7u)) >> (4u * (j / 8u))) & 15u;
    const uint hi = (ld8(bb + 104u + (j & 3u)) >> (2u * (j / 4u))) & 3u;
    return int(lo | (hi << 4)) - 32;
}
vec4 dq4(uint bb, uint o) {
    const float d = ldh(bb + 108u);
    const uint shift = 2u * ((o & 127u) / 32u);
    const uint q = (ld32(bb + 32u + 32u * (o / 128u) + (o & 31u)) >> shift) & 0x03030303u;
    const uint hm = (ld32(bb + (o & 31u)) >> (o / 32u)) & 0x01010101u;
    const ivec4 qv = ivec4(bytes4(q)) - 4 * (1 - ivec4(bytes4(hm)));
    precise float dl = d * float(scale_k3(bb, o / 16u));
    precise vec4 v = dl * vec4(qv);
    return v;
}

#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
// d: f16 @0, dmin: f16 @2, scales[12] @4 (8 × 6-bit scale and min, packed).
// q4_K: qs[128] @16.  q5_K: qh[32] @16, qs[128] @48.
// Value v: byte qs[32*(v/64) + v%32], low nibble if (v%64) < 32 else high; sub-block v/32;
// q5_K's 5th bit is bit (v/32) of qh[v%32].
#define QK 256u
#ifdef TYPE_Q4_K
#define BLOCK_BYTES 144u
#define QS_AT 16u
#else
#define BLOCK_BYTES 176u
#define QS_AT 48u
#endif
// (scale, min) of sub-block j (0..7).
uvec2 scale_min_k4(uint bb, uint j) {
    const uint s = bb + 4u;
    if (j < 4u) {
        return uvec2(ld8(s + j) & 63u, ld8(s + j + 4u) & 63u);
    }
    const uint a = ld8(s + j + 4u);
    return uvec2((a & 15u) | ((ld8(s + j - 4u) >> 6) << 4), (a >> 4) | ((ld8(s + j) >> 6) << 4));
}
vec4 dq4(uint bb, uint o) {
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uint j = o / 32u;
    const uvec2 sm = scale_min_k4(bb, j);
    const uint q = (ld32(bb + QS_AT + 32u * (o / 64u) + (o & 31u)) >> (4u * (j & 1u)))
        & 0x0f0f0f0fu;
#ifdef TYPE_Q4_K
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

#elif defined(TYPE_Q6_K)
// ql[128] @0, qh[64] @128, scales: i8[16] @192, d: f16 @208.
// Value v (h = v/128, quarter t = (v%128)/32, l = v%32): low 4 bits from
// ql[64h + l + 32*(t&1)] (high nibble if t >= 2), bits 4-5 from qh[32h + l] >> 2t;
// scale scales[v/16]; value = d * scale * (q - 32).
#define QK 256u
#define BLOCK_BYTES 210u
vec4 dq4(uint bb, uint o) {
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
#error "dequant.glsl needs a TYPE_* define"
#endif

// ---- chunks (for mat-vec threads) ---------------------------------------------------------

#define CHUNKS (QK / 16u)

#if defined(TYPE_F32) || defined(TYPE_F16) || defined(TYPE_BF16) || defined(TYPE_Q8_0)
// 16 consecutive values.
uint chunk_xoff(uint c, uint g) {
    return 16u * c + 4u * g;
}
#elif defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
// Legacy 4/5-bit: 8 bytes of qs = values 8c..8c+7 (low nibbles) and 16+8c.. (high).
uint chunk_xoff(uint c, uint g) {
    return 8u * c + 4u * (g & 1u) + 16u * (g >> 1);
}
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
// 8 bytes of qs (l = 8*(c%4)) of 64-value sub-block pair c/4: low and high nibbles.
uint chunk_xoff(uint c, uint g) {
    return 64u * (c / 4u) + 8u * (c & 3u) + 4u * (g & 1u) + 32u * (g >> 1);
}
#else
// q2_K, q3_K, q6_K: 4 bytes (l = 4*(c%8)) of half c/8 hold one value of each 32-run.
uint chunk_xoff(uint c, uint g) {
    return 128u * (c / 8u) + 4u * (c & 7u) + 32u * g;
}
#endif

// dq_chunk(bb, c, v): the 4 groups of chunk c (v[g] = values chunk_xoff(c, g)..+3).
// K-quants load the chunk's packed bytes and scales once; the others call dq4 (whose
// repeated loads the compiler merges). Not `precise`: mat-vec only, FMA welcome.
#if defined(TYPE_Q2_K)
void dq_chunk(uint bb, uint c, out vec4 v[4]) {
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
#elif defined(TYPE_Q3_K)
void dq_chunk(uint bb, uint c, out vec4 v[4]) {
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
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
void dq_chunk(uint bb, uint c, out vec4 v[4]) {
    const uint jp = c / 4u, l = 8u * (c & 3u);
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uvec3 s = uvec3(ld32(bb + 4u), ld32(bb + 8u), ld32(bb + 12u));
    const uvec2 q = uvec2(ld32(bb + QS_AT + 32u * jp + l), ld32(bb + QS_AT + 32u * jp + l + 4u));
#ifdef TYPE_Q5_K
    const uvec2 qh = uvec2(ld32(bb + 16u + l), ld32(bb + 20u + l));
#endif
    [[unroll]] for (uint half_ = 0u; half_ < 2u; half_++) {
        // sub-block j = 2*jp + half_ (scale_min_k4 on the 12 bytes in s)
        const uint j = 2u * jp + half_;
        uint sc, mn;
        if (j < 4u) {
            sc = (s.x >> (8u * j)) & 63u;
            mn = (s.y >> (8u * j)) & 63u;
        } else {
            const uint a = s.z >> (8u * (j - 4u));
            sc = (a & 15u) | (((s.x >> (8u * (j - 4u))) >> 6 & 3u) << 4);
            mn = ((a >> 4) & 15u) | (((s.y >> (8u * (j - 4u))) >> 6 & 3u) << 4);
        }
        const float dl = dm.x * float(sc), ml = dm.y * float(mn);
        [[unroll]] for (uint i = 0u; i < 2u; i++) {
            uvec4 qv = bytes4((q[i] >> (4u * half_)) & 0x0f0f0f0fu);
#ifdef TYPE_Q5_K
            qv += bytes4((qh[i] >> j) & 0x01010101u) << 4;
#endif
            v[2u * half_ + i] = dl * vec4(qv) - ml;
        }
    }
}
#elif defined(TYPE_Q6_K)
void dq_chunk(uint bb, uint c, out vec4 v[4]) {
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
void dq_chunk(uint bb, uint c, out vec4 v[4]) {
    [[unroll]] for (uint g = 0u; g < 4u; g++) {
        v[g] = dq4(bb, chunk_xoff(c, g));
    }
}
#endif

#endif
