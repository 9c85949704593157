#version 450
// bindings: 4
// push: 64
// workgroup: 128
//
// Integer-dot matrix-vector product for decode (n = NMAX <= 16 tokens), the MMVQ path:
// dst[j][i] = sum_k w[i][k] * x[j][k] with x quantized to q8_1 blocks by
// quantize_q8_1.comp (binding 1: int8 x 4 per uint; binding 2: (d, s) per 32 values)
// and the weights' integer codes multiplied by the int8 activations four at a time
// with OpSDot (SPV_KHR_integer_dot_product, through GL_EXT_spirv_intrinsics).
// Only the block scales are float: per 32-value unit the result is
//   d_x * (A_a * isum_a + A_b * isum_b - (M_a * xsum_a + M_b * xsum_b)) + B * s_x
// where isum_a/b are the integer dot products of the unit's two 16-value halves,
// A the halves' weight scales, M (q2_K only) their min scales times the halves' integer
// activation sums, and B (q4_1, q5_1) the weight offset times s_x, the f32 sum of the
// 32 original activations. q4_K and q5_K (KCHUNK) take a different unit: an invocation's
// unit is one 16-byte chunk of the block's 4-bit codes, whose low nibbles are half of
// sub-block 2p and whose high nibbles the same half of 2p + 1, so a subgroup's code loads
// are contiguous and none is loaded twice; per chunk
//   d_xa * A_a * isum_a + d_xb * A_b * isum_b - [first half only] (M_a * s_xa + M_b * s_xb)
// with A the sub-blocks' d·scale, M their dmin·min and s_x the x units' sums.
//
// Layout, push constants and split-on-write addressing: common/dequant_matmul.glsl
// (Q8_X: x_off indexes binding 1's words, x2_off binding 2's pairs). One workgroup
// computes NR rows; invocation t takes 32-value units t, t + WG, ... of every row;
// each unit's weights are decoded once and used for all n tokens, each token's x unit
// is loaded once and used for all NR rows. Partial sums: subgroupAdd, then one shared
// slot per subgroup.
//
// Specialization constants: 0 = WG (workgroup width), 1 = NR (rows per workgroup),
// 3 = NMAX (the token count n), 7 = W_ALIGN (common/dequant.glsl).
//
// The body lives in common/mul_mat_vecq_body.glsl, shared with mul_mat_vecq_id.comp.
#extension GL_GOOGLE_include_directive : require
#include "common/mul_mat_vecq_body.glsl"
