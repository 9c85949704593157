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
// Seam for a cooperative-matrix path (VK_KHR_cooperative_matrix, later): a COOPMAT
// variant keeps this file's loads (dequantize to shared, f16) and replaces the register
// block with coopmat tiles; dispatch/mul_mat.rs picks it when Caps lists a usable shape
// (see the commented slot in shaders/variants.txt).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common/dequant_matmul.glsl"

layout(local_size_x = WG_X, local_size_y = 1, local_size_z = 1) in;

#define BM 64u
#define BN 64u
#define BK 32u
#define TM 4u
#define TN 4u
// Padding keeps the transposed stores from hitting one bank.
#define SW (BM + 4u)
#define SX (BN + 4u)

shared float sw[BK * SW];
shared float sx[BK * SX];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint tx = tid % 16u, ty = tid / 16u;
    const uint m0 = gl_WorkGroupID.x * BM;
    const uint n0 = gl_WorkGroupID.y * BN;

    // Loads: 512 vec4 groups per tile, 2 per invocation; group g -> (row or token g/8,
    // k offset 4*(g%8)), so 8 neighbouring invocations read one row's 128 bytes of x.
    uint lrow[2];
    uint lbase[2];
    [[unroll]] for (uint i = 0u; i < 2u; i++) {
        lrow[i] = (tid + 256u * i) / 8u;
        const uint row = m0 + lrow[i];
        lbase[i] = row < p.m ? row_addr(row).wbase : 0u;
    }
    const uint lk = 4u * (tid % 8u);

    float acc[TM][TN];
    [[unroll]] for (uint a = 0u; a < TM; a++) {
        [[unroll]] for (uint b = 0u; b < TN; b++) {
            acc[a][b] = 0.0;
        }
    }

    for (uint k0 = 0u; k0 < p.k; k0 += BK) {
        const uint kk = k0 + lk;
        [[unroll]] for (uint i = 0u; i < 2u; i++) {
            vec4 w = vec4(0.0);
            if (m0 + lrow[i] < p.m && kk < p.k) {
                w = dq4(lbase[i] + (kk / QK) * BLOCK_BYTES, kk % QK);
            }
            vec4 xv = vec4(0.0);
            const uint tok = n0 + lrow[i];
            if (tok < p.n && kk < p.k) {
                xv = load_x4(tok * p.k + kk);
            }
            [[unroll]] for (uint e = 0u; e < 4u; e++) {
                sw[(lk + e) * SW + lrow[i]] = w[e];
                sx[(lk + e) * SX + lrow[i]] = xv[e];
            }
        }
        barrier();
        for (uint q = 0u; q < BK; q++) {
            float wa[TM];
            float xb[TN];
            [[unroll]] for (uint a = 0u; a < TM; a++) {
                wa[a] = sw[q * SW + tx + 16u * a];
            }
            [[unroll]] for (uint b = 0u; b < TN; b++) {
                xb[b] = sx[q * SX + ty + 16u * b];
            }
            [[unroll]] for (uint a = 0u; a < TM; a++) {
                [[unroll]] for (uint b = 0u; b < TN; b++) {
                    acc[a][b] = fma(wa[a], xb[b], acc[a][b]);
                }
            }
        }
        barrier();
    }

    [[unroll]] for (uint a = 0u; a < TM; a++) {
        const uint row = m0 + tx + 16u * a;
        if (row >= p.m) {
            continue;
        }
        const RowAddr ad = row_addr(row);
        [[unroll]] for (uint b = 0u; b < TN; b++) {
            const uint tok = n0 + ty + 16u * b;
            if (tok < p.n) {
                dst[ad.dbase + tok * ad.dstride] = acc[a][b];
            }
        }
    }
}
