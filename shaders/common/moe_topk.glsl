// Top-k experts of one token's router logits, by one subgroup (moe_route.comp's
// moe_topk). The including shader declares `ids[]` (writable) and `logits[]` (readable),
// and requires GL_KHR_shader_subgroup_basic and GL_KHR_shader_subgroup_arithmetic.
// Pass s takes the best expert that comes after pass s-1's in the strict order (logit
// descending by f32::total_cmp's order — common/total_order.glsl — index ascending), so
// no "taken" list: each lane scans experts lane, lane + subgroup size, ..., then
// subgroupMax / subgroupMin pick the winner (common/topk_round.glsl). The same choice as
// cpu::ops::moe_topk, moe_router.comp's rank and common/id_pair.glsl's ROUTE.
// Subgroup-uniform call; lane 0 writes ids[i_base + s], s < k.
#include "topk_round.glsl"

void moe_topk_token(uint l_base, uint i_base, uint n_expert, uint k) {
    const uint lane = gl_SubgroupInvocationID;
    int pk = 0;
    int pe = -1; // none chosen yet
    for (uint s = 0u; s < k; s++) {
        int bk = TOPK_LOWEST;
        int be = -1;
        for (uint e = lane; e < n_expert; e += gl_SubgroupSize) {
            topk_consider(total_key(logits[l_base + e]), int(e), pk, pe, bk, be);
        }
        topk_round_end(bk, be, pk, pe);
        if (lane == 0u) {
            ids[i_base + s] = pe;
        }
    }
}
