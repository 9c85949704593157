// One round of a subgroup's top-k selection, shared by MOE_TOPK (common/moe_topk.glsl)
// and the experts' own pick (common/id_pair.glsl's ROUTE): round r finds the best key
// after round r-1's winner (pk, pe) in the order of common/total_order.glsl (key
// descending, ties to the lower index). Each lane offers candidates with
// topk_consider, then topk_round_end picks the subgroup's best (subgroupMax of the key,
// subgroupMin of the index among equal keys) as the next (pk, pe). The includer enables
// GL_KHR_shader_subgroup_basic and GL_KHR_shader_subgroup_arithmetic. Before round 0:
// pe = -1 (none taken); each round starts with bk = TOPK_LOWEST, be = -1.
#ifndef COMMON_TOPK_ROUND_GLSL
#define COMMON_TOPK_ROUND_GLSL
#include "total_order.glsl"

const int TOPK_NONE = 0x7fffffff;
const int TOPK_LOWEST = int(0x80000000); // at or below every key

// Key k of expert e, if it comes after (pk, pe) and beats the lane's best (bk, be).
void topk_consider(int k, int e, int pk, int pe, inout int bk, inout int be) {
    const bool after = pe < 0 || k < pk || (k == pk && e > pe);
    if (after && (be < 0 || k > bk)) {
        bk = k;
        be = e;
    }
}

// The subgroup's best of the lanes' (bk, be) becomes (pk, pe). Subgroup-uniform call.
void topk_round_end(int bk, int be, inout int pk, inout int pe) {
    const int m = subgroupMax(be < 0 ? TOPK_LOWEST : bk);
    pe = subgroupMin(be >= 0 && bk == m ? be : TOPK_NONE);
    pk = m;
}

#endif
