#version 450
// bindings: 7
// push: 96
// workgroup: 128
//
// Decode form of the expert-indexed matmul (Op::MulMatId, up to MAT_VEC_MAX_N tokens) on
// integer dot products: the MMVQ kernel of common/mul_mat_vecq_body.glsl (q8_1 x from
// the producer's q8 epilogue or quantize_q8_1, NR rows per workgroup, subgroup
// reduction) with workgroup z = (token, slot) pair, reading the rows of the expert
// ids[id_off + pair] names (binding 4) and the x row of the pair (its token's, or with
// nx = n_used its own). Push constants: the dense block (n = pairs) plus n_used, nx,
// n_expert, id_off, then the q8_1 epilogue's offsets (common/dequant_matmul.glsl).
// Constant 5 (EPI) = 2: the SwiGLU epilogue over a fused gate/up weight (dst [m/2,
// pairs] = silu(gate)·up, common/id_pair.glsl); constant 8 (QOUT) = 1 with it: that
// output also quantized to q8_1 for the down experts (bindings 5 and 6,
// common/mul_mat_vecq_body.glsl). The float form is mul_mat_vec_id.comp.
#extension GL_GOOGLE_include_directive : require
#define ID
#include "common/mul_mat_vecq_body.glsl"
