// Workgroup-wide float sum for rms_norm.comp (and any one-row-per-workgroup kernel).
//
// rms_norm_sum(v) returns the sum of v over the whole workgroup to every invocation.
// All invocations of the workgroup must call it (it contains barriers).
// - SUBGROUP: subgroupAdd inside each subgroup, one partial per subgroup in shared
//   memory, then every invocation adds the gl_NumSubgroups partials. Correct for any
//   subgroup size (8 on lavapipe, 32 on NVIDIA, 64 on AMD) and for partial subgroups.
// - otherwise: a shared-memory tree; WG_X must be a power of two.
#ifndef COMMON_RMS_NORM_REDUCE_GLSL
#define COMMON_RMS_NORM_REDUCE_GLSL
#extension GL_EXT_control_flow_attributes : require

// Elements each invocation loads per round before using them (one row per workgroup
// leaves no other warps to hide load latency).
#define RMS_UNROLL 8u

#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

// gl_NumSubgroups <= WG_X whatever the subgroup size.
shared float rms_norm_partial[WG_X];

float rms_norm_sum(float v) {
    const float s = subgroupAdd(v);
    if (subgroupElect()) {
        rms_norm_partial[gl_SubgroupID] = s;
    }
    barrier();
    float total = 0.0;
    for (uint i = 0; i < gl_NumSubgroups; i++) {
        total += rms_norm_partial[i];
    }
    return total;
}

#else

shared float rms_norm_partial[WG_X];

float rms_norm_sum(float v) {
    const uint tid = gl_LocalInvocationID.x;
    rms_norm_partial[tid] = v;
    barrier();
    for (uint s = WG_X / 2; s > 0; s >>= 1) {
        if (tid < s) {
            rms_norm_partial[tid] += rms_norm_partial[tid + s];
        }
        barrier();
    }
    return rms_norm_partial[0];
}

#endif

#endif
