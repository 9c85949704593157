#version 450
// bindings: 6
// push: 48
// workgroup: 256
//
// A mixture-of-experts layer's router and its top-k in one dispatch (Op::MoeRouterTopK,
// decode batches of up to MAX_N tokens): logits[t][e] = dot(W[e], x[t]) for the n_expert
// rows of W (f32 [k_dim, n_expert], binding 0) and the n tokens of x (f32 [k_dim, n],
// binding 1), then ids[t] = the k experts of the largest logits, as moe_topk computes them
// (common/moe_topk.glsl: largest first, ties to the lower index).
//
// Workgroup g computes rows g*RPW .. g*RPW + RPW-1 for every token: TPR = WG_X / RPW
// invocations per row sum vec4 products over k (strided by TPR), reduced by subgroupAdd
// and then over the row's subgroups in shared memory (TPR is a multiple of the subgroup
// size: the dispatch checks), and write logits (binding 2: the router MUL_MAT node's
// output, which MOE_WEIGHTS reads, or a scratch slice). The last workgroup to finish
// (an atomic counter, binding 4, zero between dispatches: that workgroup resets it)
// copies every token's logits into shared memory in one round of loads, as sort keys,
// and ranks them in one pass: each invocation takes (token, expert) entries and counts
// the token's experts that come before its own in cpu::ops::moe_topk's order (logit
// descending by IEEE total order, as f32::total_cmp; ties to the lower index); an entry
// whose rank is below k is the rank-th chosen expert (ids, binding 3). One pass of
// n_expert shared loads (the same address across a token's invocations) instead of k
// dependent subgroup-reduction rounds. Writers publish with memoryBarrierBuffer() before
// the counter increment; the last workgroup issues one after seeing the count, before
// reading (coherent buffers), as top_k.comp's chunk merge does. Offsets: w_off, x_off, nw_off in vec4s; the others in elements
// (dispatch/moe.rs `moe_router_topk`).
//
// NORM (moe_router_norm, Op::MoeRouterTopK with a norm): x is the raw input of the ffn
// norm and binding 5 its weight (f32 [k_dim]): each row's invocations read every x value
// anyway, so they sum x^2 on the way, multiply x by the weight, and scale the row's dot
// product by 1/rms at the end — the router reads rms_norm(x)·nw without waiting for the
// norm's own dispatch. Without NORM binding 5 is not read.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x = WG_X, local_size_y = 1, local_size_z = 1) in;
// Rows (experts) per workgroup; tokens at most (passes::fusion::ROUTER_TOPK_MAX_N);
// experts at most MAX_E (below; dispatch/moe.rs ROUTER_MAX_EXPERTS).
#define RPW 2u
#define MAX_N 8u
const uint TPR = WG_X / RPW;

layout(std430, set = 0, binding = 0) readonly restrict buffer W { vec4 w4[]; };
layout(std430, set = 0, binding = 1) readonly restrict buffer X { vec4 x4[]; };
layout(std430, set = 0, binding = 2) coherent buffer L { float logits[]; };
layout(std430, set = 0, binding = 3) writeonly restrict buffer I { int ids[]; };
layout(std430, set = 0, binding = 4) coherent buffer C { uint cnt[]; };
layout(std430, set = 0, binding = 5) readonly restrict buffer NW { vec4 nw4[]; };
// The last workgroup's copy of every token's logits as sort keys (read n_expert times
// by the ranking: from shared memory, not rounds of coherent loads).
#define MAX_E 256u
shared int ksh[MAX_N * MAX_E];

#include "common/total_order.glsl"

layout(push_constant) uniform Push {
    uint k_dim;    // values per row, a multiple of 4
    uint n_expert;
    uint n;        // tokens, at most MAX_N
    uint k;        // experts chosen per token
    uint w_off;    // vec4 offsets of W and x
    uint x_off;
    uint l_off;    // element offsets of logits, ids and the counter
    uint i_off;
    uint c_off;
    uint nw_off;   // NORM: the norm weight's vec4 offset and epsilon
    float eps;
    uint pad0;
} p;

// Per subgroup and token: its share of a row's dot product (subgroups of at least 4
// invocations: the dispatch checks).
shared float part[(WG_X / 4u) * MAX_N];
#ifdef NORM
shared float part_ss[(WG_X / 4u) * MAX_N];
#endif
shared uint last_sh;

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint k4 = p.k_dim / 4u;
    const uint row = gl_WorkGroupID.x * RPW + tid / TPR;
    float acc[MAX_N];
    float ss[MAX_N]; // NORM: sum(x^2) per token over this invocation's values
    [[unroll]] for (uint t = 0u; t < MAX_N; t++) {
        acc[t] = 0.0;
        ss[t] = 0.0;
    }
    if (row < p.n_expert) {
        // UNR vec4s of the row in flight per round.
        const uint UNR = 4u;
        for (uint j0 = tid % TPR; j0 < k4; j0 += UNR * TPR) {
            vec4 wv[UNR];
            [[unroll]] for (uint c = 0u; c < UNR; c++) {
                const uint j = j0 + c * TPR;
                wv[c] = j < k4 ? w4[p.w_off + row * k4 + j] : vec4(0.0);
            }
            [[unroll]] for (uint t = 0u; t < MAX_N; t++) {
                if (t < p.n) {
                    [[unroll]] for (uint c = 0u; c < UNR; c++) {
                        const uint j = j0 + c * TPR;
                        if (j < k4) {
                            vec4 xv = x4[p.x_off + t * k4 + j];
#ifdef NORM
                            ss[t] += dot(xv, xv);
                            xv *= nw4[p.nw_off + j];
#endif
                            acc[t] += dot(wv[c], xv);
                        }
                    }
                }
            }
        }
    }
    [[unroll]] for (uint t = 0u; t < MAX_N; t++) {
        const float s = subgroupAdd(acc[t]);
#ifdef NORM
        const float q = subgroupAdd(ss[t]);
#endif
        if (subgroupElect()) {
            part[gl_SubgroupID * MAX_N + t] = s;
#ifdef NORM
            part_ss[gl_SubgroupID * MAX_N + t] = q;
#endif
        }
    }
    barrier();
    const uint spr = TPR / gl_SubgroupSize; // subgroups per row
    if (tid < RPW * MAX_N) {
        const uint rl = tid / MAX_N;
        const uint t = tid % MAX_N;
        const uint r = gl_WorkGroupID.x * RPW + rl;
        if (r < p.n_expert && t < p.n) {
            float s = 0.0;
            for (uint q = 0u; q < spr; q++) {
                s += part[(rl * spr + q) * MAX_N + t];
            }
#ifdef NORM
            float sq = 0.0;
            for (uint q = 0u; q < spr; q++) {
                sq += part_ss[(rl * spr + q) * MAX_N + t];
            }
            s *= inversesqrt(sq / float(p.k_dim) + p.eps);
#endif
            logits[p.l_off + t * p.n_expert + r] = s;
        }
    }

    // ---- the last workgroup to finish chooses the experts ----
    memoryBarrierBuffer();
    barrier();
    if (tid == 0u) {
        const uint before = atomicAdd(cnt[p.c_off], 1u);
        last_sh = before == gl_NumWorkGroups.x - 1u ? 1u : 0u;
    }
    barrier();
    if (last_sh == 0u) {
        return; // uniform per workgroup
    }
    memoryBarrierBuffer();
    for (uint i = tid; i < p.n * p.n_expert; i += WG_X) {
        ksh[i] = total_key(logits[p.l_off + i]);
    }
    barrier();
    for (uint i = tid; i < p.n * p.n_expert; i += WG_X) {
        const uint t = i / p.n_expert;
        const uint e = i - t * p.n_expert;
        const uint base = t * p.n_expert;
        const int ke = ksh[i];
        uint rank = 0u;
        uint j = 0u;
        // Four keys in flight per round.
        for (; j + 4u <= p.n_expert; j += 4u) {
            const ivec4 kj = ivec4(ksh[base + j], ksh[base + j + 1u], ksh[base + j + 2u],
                                   ksh[base + j + 3u]);
            const uvec4 jj = uvec4(j, j + 1u, j + 2u, j + 3u);
            const uvec4 before = uvec4(greaterThan(kj, ivec4(ke)))
                | (uvec4(equal(kj, ivec4(ke))) & uvec4(lessThan(jj, uvec4(e))));
            rank += before.x + before.y + before.z + before.w;
        }
        for (; j < p.n_expert; j++) {
            const int kj = ksh[base + j];
            rank += uint(kj > ke || (kj == ke && j < e));
        }
        if (rank < p.k) {
            ids[p.i_off + t * p.k + rank] = int(e);
        }
    }
    if (tid == 0u) {
        cnt[p.c_off] = 0u;
    }
}
