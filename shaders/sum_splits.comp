#version 450
// bindings: 2
// push: 16
// workgroup: 256
//
// The reduction of a split-K matmul (mul_mat_coopmat.comp with more than one workgroup
// along z, dispatch/mul_mat_tiled.rs `split_k`): dst[i] = sum over z < ks of part[z * len + i],
// i < len, the splits summed in order (z = 0 first), so the result does not depend on
// which workgroup finished first. Offsets are element offsets (dispatch::bind).
#extension GL_GOOGLE_include_directive : require
#include "common/index.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly restrict buffer P { float part[]; };
layout(std430, set = 0, binding = 1) writeonly restrict buffer D { float dst[]; };

layout(push_constant) uniform Push {
    uint len;   // values of one split's result (m x n)
    uint ks;    // splits
    uint p_off;
    uint d_off;
} p;

void main() {
    const uint i = flat_index();
    if (i >= p.len) {
        return;
    }
    float s = 0.0;
    for (uint z = 0u; z < p.ks; z++) {
        s += part[p.p_off + z * p.len + i];
    }
    dst[p.d_off + i] = s;
}
