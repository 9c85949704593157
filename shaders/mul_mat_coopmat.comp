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
// A workgroup of 8 subgroups computes a BM x BN tile (128 weight rows x 64 tokens). Per
// BK-wide step of k it dequantizes the W tile and converts the x tile to f16 in shared
// memory (both k-contiguous), then each subgroup multiplies its 32 x 32 sub-tile as
// CM x CN cooperative matrices of 16 x 8 (shape M x N x K = 16 x 8 x 16: A = 16 rows x
// 16 k of W, row-major; B = 16 k x 8 tokens of x, column-major; f32 accumulators).
// Results go through shared memory to dst, so out-of-range rows/tokens are simply not
// written. Rows past m, tokens past n and k past the row end are zero-filled.
//
// Specialization constant 0 = workgroup size = 8 x the device's subgroup size (SPIR-V
// 1.5 without varying subgroup size: gl_SubgroupSize is the device default).
//
// Compiler note: build.rs's glslang predates GL_KHR_cooperative_matrix, so this file
// uses the GL_NV_cooperative_matrix syntax and build.rs rewrites the SPIR-V to
// SPV_KHR_cooperative_matrix (variants with COOPMAT_NV_TO_KHR; see build/coopmat_spirv.rs).
// The rewrite takes each matrix type's use (A, B, accumulator) from the multiply-adds,
// so the A, B and accumulator types must differ: hence 16 x 8 x 16, not 16 x 16 x 16.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_NV_cooperative_matrix : require
#include "common/dequant_matmul.glsl"

layout(constant_id = 0) const uint WGS = WG_X;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#define BM 128u
#define BN 64u
#define BK 32u
// Cooperative-matrix shape (M x N x K) and tiles per subgroup (4 x 2 subgroups).
#define TM 16u
#define TN 8u
#define TK 16u
#define CM 2u
#define CN 4u
#define SUB_M (CM * TM)
#define SUB_N (CN * TN)
// Row strides of the shared tiles in halves: +8 keeps rows 16-byte aligned and
// staggers banks.
#define SWS (BK + 8u)
#define SXS (BK + 8u)
// Scope 3 = Subgroup (written as a number: gl_ScopeSubgroup needs another extension).
#define MAT_A fcoopmatNV<16, 3, TM, TK>
#define MAT_B fcoopmatNV<16, 3, TK, TN>
#define MAT_C fcoopmatNV<32, 3, TM, TN>

shared float16_t sw[BM * SWS];
shared float16_t sx[BN * SXS];
// Output staging: one SUB_N x TM block (column-major, 16 rows per token) per subgroup.
shared float stage[8u * SUB_N * TM];
// Per tile row: weight byte offset, dst index of token 0, dst step per token.
shared uint r_w[BM];
shared uint r_d[BM];
shared uint r_s[BM];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint m0 = gl_WorkGroupID.x * BM;
    const uint n0 = gl_WorkGroupID.y * BN;
    const uint sid = gl_SubgroupID;
    const uint wr = sid / 2u; // sub-tile row (0..3)
    const uint wc = sid % 2u; // sub-tile column (0..1)

    for (uint r = tid; r < BM; r += WGS) {
        if (m0 + r < p.m) {
            const RowAddr ad = row_addr(m0 + r);
            r_w[r] = ad.wbase;
            r_d[r] = ad.dbase;
            r_s[r] = ad.dstride;
        }
    }

    MAT_C acc[CM * CN];
    [[unroll]] for (uint c = 0u; c < CM * CN; c++) {
        acc[c] = MAT_C(0.0);
    }
    barrier();

    for (uint k0 = 0u; k0 < p.k; k0 += BK) {
        // W tile: BM rows x BK/4 groups of 4 values.
        for (uint g = tid; g < BM * (BK / 4u); g += WGS) {
            const uint r = g / (BK / 4u);
            const uint kq = 4u * (g % (BK / 4u));
            const uint kk = k0 + kq;
            vec4 w = vec4(0.0);
            if (m0 + r < p.m && kk < p.k) {
                w = dq4(r_w[r] + (kk / QK) * BLOCK_BYTES, kk % QK);
            }
            const uint at = r * SWS + kq;
            [[unroll]] for (uint e = 0u; e < 4u; e++) {
                sw[at + e] = float16_t(w[e]);
            }
        }
        // x tile: BN tokens x BK/4 groups.
        for (uint g = tid; g < BN * (BK / 4u); g += WGS) {
            const uint t = g / (BK / 4u);
            const uint kq = 4u * (g % (BK / 4u));
            const uint kk = k0 + kq;
            const uint tok = n0 + t;
            vec4 xv = vec4(0.0);
            if (tok < p.n && kk < p.k) {
                xv = load_x4(tok * p.k + kk);
            }
            const uint at = t * SXS + kq;
            [[unroll]] for (uint e = 0u; e < 4u; e++) {
                sx[at + e] = float16_t(xv[e]);
            }
        }
        barrier();
        [[unroll]] for (uint ks = 0u; ks < BK; ks += TK) {
            MAT_A a[CM];
            MAT_B b[CN];
            [[unroll]] for (uint i = 0u; i < CM; i++) {
                coopMatLoadNV(a[i], sw, (wr * SUB_M + i * TM) * SWS + ks, SWS, false);
            }
            [[unroll]] for (uint j = 0u; j < CN; j++) {
                coopMatLoadNV(b[j], sx, (wc * SUB_N + j * TN) * SXS + ks, SXS, true);
            }
            [[unroll]] for (uint i = 0u; i < CM; i++) {
                [[unroll]] for (uint j = 0u; j < CN; j++) {
                    acc[i * CN + j] = coopMatMulAddNV(a[i], b[j], acc[i * CN + j]);
                }
            }
        }
        barrier();
    }

    // Write out, one 16-row band of the sub-tile at a time: stage[tt * TM + r] holds row
    // r, token tt (0..SUB_N) of the band.
    const uint sbase = sid * (SUB_N * TM);
    const uint lane = gl_SubgroupInvocationID;
    [[unroll]] for (uint i = 0u; i < CM; i++) {
        [[unroll]] for (uint j = 0u; j < CN; j++) {
            coopMatStoreNV(acc[i * CN + j], stage, sbase + j * (TN * TM), TM, true);
        }
        barrier();
        const uint lr0 = wr * SUB_M + i * TM;
        for (uint e = lane; e < SUB_N * TM; e += gl_SubgroupSize) {
            const uint lr = lr0 + e % TM;
            const uint tok = n0 + wc * SUB_N + e / TM;
            if (m0 + lr < p.m && tok < p.n) {
                dst[r_d[lr] + tok * r_s[lr]] = stage[sbase + e];
            }
        }
        barrier();
    }
}
