#version 450
// bindings: 4
// push: 80
// workgroup: 256
//
// Expert-indexed matmul for prompt batches on cooperative matrices (Op::MulMatId with
// more than MAT_VEC_MAX_N tokens): the tile of mul_mat_coopmat.comp (BM weight rows x
// BN columns, below; f16 products, f32 accumulation) where the columns are the (token,
// slot) pairs that chose one expert, so each expert's weights are dequantized once per BN
// pairs instead of once per pair as the decode kernel (mul_mat_vec_id.comp) reads them.
//
// Grid: (m / BM row tiles, n / BN column tiles, n_expert + 1 buckets); workgroup z runs
// the tiles of bucket z of the grouping moe_group.comp wrote (binding 3,
// common/moe_group.glsl) and leaves at once when the bucket has fewer pairs than its y
// offset. The last bucket (ids out of range) writes 0. dst is split on write as for
// mul_mat_vec_id.comp: stack s's results are a contiguous [seg_rows[s], n_used, n] block.
// Bindings 0-2 and the first 64 bytes of push constants are mul_mat_coopmat.comp's
// (common/dequant_matmul.glsl, with n = n_used * n pairs).
//
// Specialization constants as mul_mat_coopmat.comp's.
//
// Tile: the body's default, 128 x 128 on 2 x 4 subgroups (dispatch/mul_mat.rs
// `CoopTile::ID` must agree). Narrower ones for the small buckets of a prompt batch (512
// tokens x 8 of 128 experts: 32 pairs on average) measured no faster: 64 x 32 and 64 x 64
// on 2 x 2 +0.5-1 % (noise), 128 x 32 on 4 x 1 -40 % (H100, qwen3-30b-a3b pp512;
// docs/BENCHMARKS.md).
#define ID
#include "common/mul_mat_coopmat_body.glsl"
