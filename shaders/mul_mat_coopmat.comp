#version 450
// bindings: 3
// push: 64
// workgroup: 256
//
// Tiled matrix-matrix product on cooperative matrices (VK_KHR_cooperative_matrix) for
// prompt batches: dst[j][i] = sum_k w[i][k] * x[j][k], any weight type (TYPE_* define,
// common/dequant.glsl). Same bindings, push constants and split-on-write addressing as
// mul_mat.comp (common/dequant_matmul.glsl); f16 products, f32 accumulation.
//
// A workgroup of NSUB = WM x WN = 2 x 4 subgroups computes a BM x BN tile (64 weight rows
// x 256 tokens here; 128 x 128 in the expert-indexed form); each subgroup multiplies its
// SUB_M x SUB_N sub-tile (32 x 64 here) as CM x CN cooperative matrices of 16 x 8 (shape
// M x N x K = 16 x 8 x 16: A = 16 rows x 16 k of W, row-major; B = 16 k x 8 tokens of x,
// column-major; f32 accumulators). Per BK = 64 step of k the W tile (dequantized by
// 16-value chunks where a chunk lies in one step) and the x tile (f16, converted once per
// matmul by the dispatch, or converted here from f32) sit in shared memory as f16, both
// k-contiguous, one buffer each: while the subgroups multiply step s, each thread loads
// its share of step s+1 into registers; a barrier, the stores, a barrier. The shared
// tiles are uvec4 arrays: each thread stores 8 halves at once, and the cooperative-matrix
// loads address them in uvec4 units, so the driver sees 16-byte-aligned rows. Results go
// through a per-subgroup staging block (one 16 x 8 matrix at a time, in the W tile's
// memory once the products are done) to dst, so out-of-range rows/tokens are simply not
// written. Rows past m, tokens past n and k past the row end are zero-filled. The wide
// token side makes each dequantized W value serve 256 tokens (the kernel is bound by its
// loads and dequantization, not by the products: docs/shaders.md).
//
// The body lives in common/mul_mat_coopmat_body.glsl, shared with mul_mat_id_coopmat.comp
// (the same tile over tokens grouped by expert).
//
// Specialization constant 0 = workgroup size = NSUB x the device's subgroup size (SPIR-V
// 1.5 without varying subgroup size: gl_SubgroupSize is the device default).
//
// Written with GL_KHR_cooperative_matrix (shaderc 0.10's glslang compiles it directly).
// The `_small` variants (64 x 32 on 2 x 2 subgroups: dispatch/mul_mat.rs `CoopTile::SMALL`)
// set BM, BN, WM, WN themselves, for grids too small to fill the device with the wide tile.
#ifndef BM
#define BM 64u
#endif
#ifndef BN
#define BN 256u
#endif
#include "common/mul_mat_coopmat_body.glsl"
