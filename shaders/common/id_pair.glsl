// The (token, slot) pair setup and output shared by the decode expert-indexed mat-vecs
// (mul_mat_vec_id.comp through common/mul_mat_vec_body.glsl, mul_mat_vecq_id.comp through
// common/mul_mat_vecq_body.glsl): workgroup z is the pair, ids[id_off + pair] its expert.
// The including body declares `ids` at binding IDS_BINDING (it differs), `dst` and (with SUBGROUP_RED
// defined: a subgroup reduction) `red`, and includes common/dequant_matmul.glsl (with
// ID) and common/mat_vec_layer.glsl (GLU, phys_row, row_in) first.
#ifndef COMMON_ID_PAIR_GLSL
#define COMMON_ID_PAIR_GLSL

// Writes the pair's result for row slot r of the workgroup's rows (group), given its sum
// s and, with GLU, the sum u of slot r + 1 (the up row of the same index): dst column
// `pair` of the physical row, or with GLU silu(s) * u to row L of dst [m/2, n_used, n]
// for the even slots (odd slots write nothing).
void id_out(uint group, uint r, uint pair, float s, float u) {
    if (!row_in(group, r)) {
        return;
    }
    if (GLU) {
        if (r % 2u == 0u) {
            const uint l = group * (NR / 2u) + r / 2u;
            dst[p.d_off + pair * p.seg_rows[0] + l] = s / (1.0 + exp(-s)) * u;
        }
        return;
    }
    const RowAddr a = row_addr(phys_row(group, r));
    dst[a.dbase + pair * a.dstride] = s;
}

#ifdef SUBGROUP_RED
// After a subgroup reduction (one partial per subgroup and row slot in red, NMAX = 1):
// each row slot's sum, zero for a pair whose id was out of range (ok false); with GLU
// slot r + 1 is slot r's up row.
void id_out_subgroups(uint group, uint pair, bool ok, uint tid) {
    for (uint r = tid; r < NR; r += WG) {
        float s = 0.0, u = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++) {
            s += red[r * WG + g];
            u += GLU ? red[((r + 1u) % NR) * WG + g] : 0.0;
        }
        id_out(group, r, pair, ok ? s : 0.0, ok ? u : 0.0);
    }
}
#endif

// ROUTE (specialization constant 9: Op::MulMatId with `route`, the experts routing
// themselves): binding IDS_BINDING holds the router's logits f32 [n_expert, n] (id_off
// their offset) instead of ids, and pair (t, s) = t * n_used + s takes the expert of
// rank s among token t's logits in MOE_TOPK's order (total order, ties to the lower
// index: common/total_order.glsl), the expert the MOE_TOPK beside this dispatch writes
// to ids[s] for the later readers. With subgroup arithmetic (SUBGROUP_RED) the first
// subgroup picks it in s + 1 rounds as common/moe_topk.glsl does — each lane's best key
// after the previous round's winner, then subgroupMax / subgroupMin — and the others
// wait at the barrier; the keys are loaded into registers once (up to ROUTE_KEYS per
// lane), so the rounds touch no memory. (The first version ranked every expert in
// every invocation, n_expert loads each — 128 x 128 per workgroup of the 30B's gate/up,
// thousands of workgroups: 38 us for the stage on an H100, against 14 without routing.)
// Only the subgroup variants have it (SUBGROUP_RED): mul_mat_id_with refuses ROUTE on
// the shared-memory float variant, and the executor does not route there.
layout(constant_id = 9) const bool ROUTE = false;
#ifdef SUBGROUP_RED
// Keys per lane held in registers by the subgroup pick (more experts: reloaded per round).
#define ROUTE_KEYS 8u
layout(std430, set = 0, binding = IDS_BINDING) readonly restrict buffer RL { float route_logits[]; };
#include "topk_round.glsl"
shared uint route_sh;

// Pair (t, s)'s expert into route_sh (uniform call; a barrier after it is the caller's).
void route_pick(uint pair) {
    const uint t = pair / p.n_used;
    const uint s = pair - t * p.n_used;
    const uint base = p.id_off + t * p.n_expert;
    if (gl_SubgroupID != 0u) {
        return;
    }
    const uint lane = gl_SubgroupInvocationID;
    int pk = 0;
    int pe = -1; // none taken yet
    if (p.n_expert <= ROUTE_KEYS * gl_SubgroupSize) {
        // Every key in registers, loaded at once (128 experts: 4 per lane on 32 lanes):
        // the rounds then touch no memory.
        int kk[ROUTE_KEYS];
        [[unroll]] for (uint c = 0u; c < ROUTE_KEYS; c++) {
            const uint e = lane + c * gl_SubgroupSize;
            kk[c] = e < p.n_expert ? total_key(route_logits[base + e]) : TOPK_LOWEST;
        }
        for (uint r = 0u; r <= s; r++) {
            int bk = TOPK_LOWEST;
            int be = -1;
            [[unroll]] for (uint c = 0u; c < ROUTE_KEYS; c++) {
                const uint e = lane + c * gl_SubgroupSize;
                if (e < p.n_expert) {
                    topk_consider(kk[c], int(e), pk, pe, bk, be);
                }
            }
            topk_round_end(bk, be, pk, pe);
        }
    } else {
        for (uint r = 0u; r <= s; r++) {
            int bk = TOPK_LOWEST;
            int be = -1;
            for (uint e = lane; e < p.n_expert; e += gl_SubgroupSize) {
                topk_consider(total_key(route_logits[base + e]), int(e), pk, pe, bk, be);
            }
            topk_round_end(bk, be, pk, pe);
        }
    }
    if (subgroupElect()) {
        route_sh = uint(pe);
    }
}
#endif

// Sets id_expert to the pair's expert and returns true; for an id out of range sets
// expert 0 (valid memory to read) and returns false: the caller writes 0 for the pair's
// rows (id_out with zero sums) and still takes part in any epilogue. Uniform call (ROUTE
// has a barrier).
bool id_pair_begin(uint pair) {
#ifdef SUBGROUP_RED
    if (ROUTE) {
        route_pick(pair);
        barrier();
        id_expert = route_sh;
        return true;
    }
#endif
    const int e = ids[p.id_off + pair];
    const bool ok = e >= 0 && uint(e) < p.n_expert;
    id_expert = ok ? uint(e) : 0u;
    return ok;
}

#endif
