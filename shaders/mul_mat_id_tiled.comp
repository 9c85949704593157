#version 450
// bindings: 4
// push: 80
// workgroup: 256
//
// Expert-indexed matmul for prompt batches, scalar (Op::MulMatId with more than
// MAT_VEC_MAX_N tokens where cooperative matrices are off or absent): the 64 x 64 tile of
// mul_mat.comp over the (token, slot) pairs that chose one expert, so each expert's
// weights are dequantized once per 64 pairs instead of once per pair. Grid, grouping,
// buckets, split-on-write output and push constants as mul_mat_id_coopmat.comp's.
#define ID
#include "common/mul_mat_tiled_body.glsl"
