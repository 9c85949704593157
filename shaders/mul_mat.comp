#version 450
// bindings: 3
// push: 64
// workgroup: 256
//
// Tiled matrix-matrix product for prompt batches: dst[j][i] = sum_k w[i][k] * x[j][k],
// any weight type (TYPE_* define, common/dequant.glsl); layout, push constants and
// split-on-write addressing in common/dequant_matmul.glsl.
//
// Scalar path: a 16 x 16 workgroup computes a BM x BN tile (BM weight rows x BN tokens).
// Per BK-wide step of k, the workgroup dequantizes the BM x BK tile of W and loads the
// BN x BK tile of x into shared memory (both k-major, so the inner loop reads
// consecutive addresses), then each invocation accumulates a TM x TN register block:
// rows tx + 16*a, tokens ty + 16*b (strided so shared reads are conflict-free).
// Rows past m, tokens past n and k past the row end are zero-filled.
//
// The body lives in common/mul_mat_tiled_body.glsl, shared with mul_mat_id_tiled.comp
// (the same tile over tokens grouped by expert). mul_mat_coopmat.comp is the
// cooperative-matrix form of this kernel.
#include "common/mul_mat_tiled_body.glsl"
