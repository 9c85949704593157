// Top-k experts of one token's router logits, by one subgroup (moe_route.comp's
// moe_topk, moe_router.comp's last workgroup). The including shader declares `ids[]`
// (writable) and either `logits[]` (readable) or its own TOPK_LOGIT(i) (moe_router.comp:
// a shared-memory copy), and requires GL_KHR_shader_subgroup_basic and
// GL_KHR_shader_subgroup_arithmetic. Pass s takes the best expert that comes after pass s-1's in the
// strict order (logit descending, index ascending), so no "taken" list: each lane scans
// experts lane, lane + subgroup size, ..., then subgroupMax / subgroupMin pick the
// winner. Subgroup-uniform call; lane 0 writes ids[i_base + s], s < k.

#ifndef TOPK_LOGIT
#define TOPK_LOGIT(i) logits[i]
#endif

void moe_topk_token(uint l_base, uint i_base, uint n_expert, uint k) {
    const uint lane = gl_SubgroupInvocationID;
    const int NONE = 0x7fffffff;
    float pl = 0.0;
    int pe = -1; // none chosen yet
    for (uint s = 0u; s < k; s++) {
        float bl = 0.0;
        int be = -1;
        for (uint e = lane; e < n_expert; e += gl_SubgroupSize) {
            const float l = TOPK_LOGIT(l_base + e);
            const bool after = pe < 0 || l < pl || (l == pl && int(e) > pe);
            if (after && (be < 0 || l > bl)) {
                bl = l;
                be = int(e);
            }
        }
        // The best over the lanes; among equal logits the lowest index.
        const float m = subgroupMax(be < 0 ? -3.402823466e38 : bl);
        const int e = subgroupMin(be >= 0 && bl == m ? be : NONE);
        if (lane == 0u) {
            ids[i_base + s] = e;
        }
        pl = m;
        pe = e;
    }
}
