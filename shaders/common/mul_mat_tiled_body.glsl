// The body of the scalar tiled matmul: mul_mat.comp (dense, Op::MulMat) and, with ID
// defined, mul_mat_id_tiled.comp (expert-indexed, Op::MulMatId, tokens grouped by
// expert). The algorithm is described in mul_mat.comp; tile columns as in
// common/mul_mat_coopmat_body.glsl.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "dequant_matmul.glsl"

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

#ifdef ID
#include "moe_group.glsl"
bool id_weights;
#define W_OK id_weights
#else
#define COL_OK(c) (n0 + (c) < p.n)
#define COL_X(c) ((n0 + (c)) * p.k)
#define COL_D(c) (n0 + (c))
#define W_OK true
#endif

void mul_tile(uint m0, uint n0, uint tid) {
    const uint tx = tid % 16u, ty = tid / 16u;

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
            if (m0 + lrow[i] < p.m && kk < p.k && W_OK) {
                w = dq4(lbase[i] + (kk / QK) * BLOCK_BYTES, kk % QK);
            }
            vec4 xv = vec4(0.0);
            if (COL_OK(lrow[i]) && kk < p.k) {
                xv = load_x4(COL_X(lrow[i]) + kk);
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
            const uint c = ty + 16u * b;
            if (COL_OK(c)) {
                dst[ad.dbase + COL_D(c) * ad.dstride] = acc[a][b];
            }
        }
    }
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint m0 = gl_WorkGroupID.x * BM;
#ifdef ID
    id_expert = gl_WorkGroupID.z;
    id_weights = id_expert < p.n_expert;
    const uint count = group_count(id_expert);
    // Tiles y, y + grid y, ... of the bucket (more than one only when a token's ids
    // repeat an expert: MOE_TOPK's never do); a workgroup past the bucket's end leaves.
    for (uint n0 = gl_WorkGroupID.y * BN; n0 < count; n0 += gl_NumWorkGroups.y * BN) {
        set_columns(n0, count, tid, WG_X);
        barrier();
        mul_tile(m0, n0, tid);
        // The output loop's reads of c_d finish before the next tile's columns land.
        barrier();
    }
#else
    mul_tile(m0, gl_WorkGroupID.y * BN, tid);
#endif
}
