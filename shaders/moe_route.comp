#version 450
// bindings: 3
// push: 32
// workgroup: 64
//
// Mixture-of-experts routing. logits: f32 [n_expert, n]; ids: i32 [k, n].
// - moe_topk (Op::MoeTopK): one subgroup per token (WG_X / subgroup size tokens per
//   workgroup; the dispatch needs subgroup arithmetic and a subgroup of at most WG_X);
//   writes ids = the k experts of the largest logits, largest first, ties to the lower
//   index, in f32::total_cmp's order (common/moe_topk.glsl).
//   Binding 2 is not used (the dispatch binds ids there too).
// - moe_weights (WEIGHTS, Op::MoeWeights): one invocation per token (1-D on a 2-D grid,
//   common/index.glsl); reads ids, writes w: f32 [k, n] = the softmax of the chosen
//   logits (softmax over all experts renormalized over the chosen).
// Offsets are elements (dispatch/moe.rs).
#extension GL_GOOGLE_include_directive : require
#ifndef WEIGHTS
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common/index.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly restrict buffer L { float logits[]; };
#ifdef WEIGHTS
layout(std430, set = 0, binding = 1) readonly restrict buffer I { int ids[]; };
layout(std430, set = 0, binding = 2) writeonly restrict buffer W { float wts[]; };
#else
layout(std430, set = 0, binding = 1) writeonly restrict buffer I { int ids[]; };
#include "common/moe_topk.glsl"
#endif

layout(push_constant) uniform Push {
    uint n_expert;
    uint k;
    uint n;
    uint l_off;
    uint i_off;
    uint w_off;
    uint pad0;
    uint pad1;
} p;

void main() {
#ifndef WEIGHTS
    const uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    const uint t = wg * gl_NumSubgroups + gl_SubgroupID;
    if (t >= p.n) {
        return; // uniform per subgroup
    }
    moe_topk_token(p.l_off + t * p.n_expert, p.i_off + t * p.k, p.n_expert, p.k);
#else
    const uint t = flat_index();
    if (t >= p.n) {
        return;
    }
    const uint base = p.l_off + t * p.n_expert;
    float mx = -3.402823466e38;
    for (uint s = 0u; s < p.k; s++) {
        mx = max(mx, logits[base + uint(ids[p.i_off + t * p.k + s])]);
    }
    float sum = 0.0;
    for (uint s = 0u; s < p.k; s++) {
        sum += exp(logits[base + uint(ids[p.i_off + t * p.k + s])] - mx);
    }
    for (uint s = 0u; s < p.k; s++) {
        const float l = logits[base + uint(ids[p.i_off + t * p.k + s])];
        wts[p.w_off + t * p.k + s] = exp(l - mx) / sum;
    }
#endif
}
