// Indexing helpers shared by element-wise kernels.
//
// 1-D kernels are dispatched as a 2-D grid of workgroups (see dispatch::groups_1d in
// src/backend/vulkan/dispatch/mod.rs) so that more than maxComputeWorkGroupCount[0]
// workgroups can run; flat_index() recovers the element index. WG_X is defined by
// build.rs from the shader's `// workgroup:` header.
#ifndef COMMON_INDEX_GLSL
#define COMMON_INDEX_GLSL

uint flat_index() {
    return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * WG_X
        + gl_LocalInvocationID.x;
}

#endif
