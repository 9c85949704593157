#version 450
// bindings: 2
// push: 16
// workgroup: 256
//
// Groups the (token, slot) pairs of a MUL_MAT_ID by expert for the tiled expert-indexed
// kernels (layout in common/moe_group.glsl): ids i32 [n_used, n] at ids_off of binding 0,
// the grouping at word g_off of binding 1. One workgroup: counts per bucket by shared
// atomics, an exclusive prefix sum (each invocation sums a run of buckets, then a
// Hillis-Steele scan of the runs), then each pair takes the next slot of its bucket.
// Up to MAX_BUCKETS = n_expert + 1 buckets (dispatch/moe.rs checks).
#extension GL_EXT_control_flow_attributes : require

#define MAX_BUCKETS 1024u

layout(local_size_x = WG_X, local_size_y = 1, local_size_z = 1) in;

layout(std430, set = 0, binding = 0) readonly restrict buffer I { int ids[]; };
layout(std430, set = 0, binding = 1) writeonly restrict buffer G { uint grp[]; };

layout(push_constant) uniform Push {
    uint n_expert;
    uint pairs;
    uint ids_off;
    uint g_off;
} p;

shared uint cnt[MAX_BUCKETS];
shared uint next[MAX_BUCKETS];
shared uint part[WG_X];

uint bucket_of(uint i) {
    const int e = ids[p.ids_off + i];
    return (e >= 0 && uint(e) < p.n_expert) ? uint(e) : p.n_expert;
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint nb = p.n_expert + 1u;
    for (uint b = tid; b < nb; b += WG_X) {
        cnt[b] = 0u;
    }
    barrier();
    for (uint i = tid; i < p.pairs; i += WG_X) {
        atomicAdd(cnt[bucket_of(i)], 1u);
    }
    barrier();
    // Invocation tid owns buckets tid * per .. tid * per + per - 1.
    const uint per = (nb + WG_X - 1u) / WG_X;
    uint sum = 0u;
    for (uint j = 0u; j < per; j++) {
        const uint b = tid * per + j;
        if (b < nb) {
            sum += cnt[b];
        }
    }
    part[tid] = sum;
    barrier();
    for (uint d = 1u; d < WG_X; d <<= 1) {
        const uint v = tid >= d ? part[tid - d] : 0u;
        barrier();
        part[tid] += v;
        barrier();
    }
    uint at = part[tid] - sum;
    for (uint j = 0u; j < per; j++) {
        const uint b = tid * per + j;
        if (b < nb) {
            const uint c = cnt[b];
            grp[p.g_off + b] = c;
            grp[p.g_off + nb + b] = at;
            next[b] = at;
            at += c;
        }
    }
    barrier();
    for (uint i = tid; i < p.pairs; i += WG_X) {
        const uint slot = atomicAdd(next[bucket_of(i)], 1u);
        grp[p.g_off + 2u * nb + slot] = i;
    }
}
