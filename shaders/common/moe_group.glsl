// The grouping of MUL_MAT_ID's (token, slot) pairs by expert that moe_group.comp writes
// and the expert-indexed tiled kernels (mul_mat_id_tiled.comp, mul_mat_id_coopmat.comp)
// read, at word id_off of binding 3, with NB = n_expert + 1 buckets (the last one holds
// the pairs whose id is outside 0..n_expert):
//   [0, NB)            pairs per bucket
//   [NB, 2 NB)         first list entry of each bucket (exclusive prefix sum)
//   [2 NB, 2 NB + P)   the P = n_used * n pair indices (t * n_used + s), bucket by bucket
// Within a bucket the order is whatever the atomics gave: every output element depends
// on its own pair only, so results do not depend on it.
#ifndef COMMON_MOE_GROUP_GLSL
#define COMMON_MOE_GROUP_GLSL

layout(std430, set = 0, binding = 3) readonly restrict buffer G { uint grp[]; };

uint group_count(uint bucket) {
    return grp[p.id_off + bucket];
}

// Entry i of the bucket's list: a pair index t * n_used + s.
uint group_pair(uint bucket, uint i) {
    const uint nb = p.n_expert + 1u;
    return grp[p.id_off + 2u * nb + grp[p.id_off + nb + bucket] + i];
}

// The tile columns of the expert-indexed tiled kernels (the includer defines BN, the
// tile's column count): per column the x element index of its row (c_x) and its dst
// column, the pair (c_d), or NO_COL past the bucket's end. COL_OK / COL_X / COL_D are
// what the dense bodies compute from the token index.
shared uint c_x[BN];
shared uint c_d[BN];
#define NO_COL 0xffffffffu
#define COL_OK(c) (c_d[c] != NO_COL)
#define COL_X(c) c_x[c]
#define COL_D(c) c_d[c]

// Fills the columns of the tile whose first list entry is n0 (`count` pairs in the
// bucket, invocations tid, tid + wg, ...); the caller's barrier publishes them.
void set_columns(uint n0, uint count, uint tid, uint wg) {
    for (uint c = tid; c < BN; c += wg) {
        uint xr = 0u, d = NO_COL;
        if (n0 + c < count) {
            d = group_pair(id_expert, n0 + c);
            xr = pair_x_row(d) * p.k;
        }
        c_x[c] = xr;
        c_d[c] = d;
    }
}

#endif
