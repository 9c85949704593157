#version 450
// bindings: 4
// push: 80
// workgroup: 128
//
// Decode form of the expert-indexed matmul (Op::MulMatId, up to MAT_VEC_MAX_N tokens):
// the float mat-vec of common/mul_mat_vec_body.glsl (NR rows per workgroup, coalesced
// 16-value chunks, subgroup reduction) with workgroup z = (token, slot) pair, reading
// the rows of the expert ids[id_off + pair] names (binding 3). Push constants: the dense
// block (n = pairs) plus n_used, nx, n_expert, id_off (common/dequant_matmul.glsl).
// Variants: SUBGROUP (subgroup reduction) and _shmem (shared-memory tree), as the dense
// mat-vec's. It replaced mul_mat_id.comp, one 64-wide workgroup per row and pair.
#extension GL_GOOGLE_include_directive : require
#define ID
#include "common/mul_mat_vec_body.glsl"
