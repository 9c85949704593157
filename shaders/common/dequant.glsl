// Block dequantization of ggml weight types: one type per compile (TYPE_* define), or
// two (TYPE_A and TYPE_B, each a T_* number below: the grouped mat-vec), whose names
// then carry a suffix (_a, _b; see common/dequant_type.glsl).
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
//   dq_chunk(bb, c, v) the 4 groups of chunk c (v[g] = values chunk_xoff(c, g)..+3)
//   CHUNK_SPAN         the chunks of a block fill aligned runs of CHUNK_SPAN values, in
//                      order (chunk c lies in run c / (CHUNK_SPAN / 16)); where
//                      CHUNK_SPAN <= 64 groups 0-1 and 2-3 of a chunk are each 8
//                      consecutive values, 8-aligned (q2_K, q3_K, q6_K: groups 32 apart)
//   dq_chunk_h(bb, c, h) with DQ_H16 defined: chunk c as halves, h[r] = groups 2r, 2r+1
//   (QK, BLOCK_BYTES, CHUNKS and CHUNK_SPAN are consts; with TYPE_A/TYPE_B every name has _a / _b.)
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
// the field is word-aligned in its block). At b = 4i + 2 the aligned word i holds the low
// half (bytes b - 2 .. b + 1: the binding starts 4-aligned, so b - 2 is inside it) and one
// 16-bit load the high half: the aligned load is common to both cases, so a subgroup
// whose lanes straddle both issues two loads, not three.
uint ld32(uint b) {
    const uint w = w32[b >> 2];
    if (W_ALIGN >= 4u || (b & 2u) == 0u) {
        return w;
    }
    return (w >> 16) | (uint(w16[(b >> 1) + 1u]) << 16);
}

// 16 bytes at even byte offset b: one uvec4 where W_ALIGN == 16 (the caller guarantees b
// is then a 16-byte multiple), else the four aligned words from b & ~3 and, at b = 4i + 2,
// the last two bytes as one 16-bit load (never past b + 16, so never past the binding),
// funnel-shifted: five loads at most, where four 32-bit loads of mixed alignment took up
// to twelve (the aligned and unaligned paths of ld32 both run in a mixed subgroup).
uvec4 ld128(uint b) {
    if (W_ALIGN >= 16u) {
        return w128[b >> 4];
    }
    const uint i = b >> 2;
    const uvec4 w = uvec4(w32[i], w32[i + 1u], w32[i + 2u], w32[i + 3u]);
    if (W_ALIGN >= 4u || (b & 2u) == 0u) {
        return w;
    }
    const uint t = uint(w16[(b >> 1) + 7u]);
    return (w >> 16) | (uvec4(w.yzw, t) << 16);
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

// ---- per type (common/dequant_type.glsl) ----------------------------------------------

#define T_F32 1
#define T_F16 2
#define T_BF16 3
#define T_Q4_0 4
#define T_Q4_1 5
#define T_Q5_0 6
#define T_Q5_1 7
#define T_Q8_0 8
#define T_Q2_K 9
#define T_Q3_K 10
#define T_Q4_K 11
#define T_Q5_K 12
#define T_Q6_K 13

#if defined(TYPE_A) && defined(TYPE_B)
#define DQ_TYPE TYPE_A
#define NS(x) x##_a
#include "dequant_type.glsl"
#undef DQ_TYPE
#undef NS
#define DQ_TYPE TYPE_B
#define NS(x) x##_b
#include "dequant_type.glsl"
#undef DQ_TYPE
#undef NS
#else
#if defined(TYPE_F32)
#define DQ_TYPE T_F32
#elif defined(TYPE_F16)
#define DQ_TYPE T_F16
#elif defined(TYPE_BF16)
#define DQ_TYPE T_BF16
#elif defined(TYPE_Q4_0)
#define DQ_TYPE T_Q4_0
#elif defined(TYPE_Q4_1)
#define DQ_TYPE T_Q4_1
#elif defined(TYPE_Q5_0)
#define DQ_TYPE T_Q5_0
#elif defined(TYPE_Q5_1)
#define DQ_TYPE T_Q5_1
#elif defined(TYPE_Q8_0)
#define DQ_TYPE T_Q8_0
#elif defined(TYPE_Q2_K)
#define DQ_TYPE T_Q2_K
#elif defined(TYPE_Q3_K)
#define DQ_TYPE T_Q3_K
#elif defined(TYPE_Q4_K)
#define DQ_TYPE T_Q4_K
#elif defined(TYPE_Q5_K)
#define DQ_TYPE T_Q5_K
#elif defined(TYPE_Q6_K)
#define DQ_TYPE T_Q6_K
#else
#error "dequant.glsl needs a TYPE_* define (or TYPE_A and TYPE_B)"
#endif
#define NS(x) x
#include "dequant_type.glsl"
#undef NS
#endif

#endif
