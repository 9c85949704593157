#version 450
// bindings: 1
// push: 16
// workgroup: 64
//
// A test aid (dispatch/debug.rs, tests/vk_runtime.rs fence_timeout_is_an_error): every
// invocation polls flag[0] until the host writes a non-zero word there through mapped
// memory, or max_iters polls pass, then raises flag[1] to the polls it made. On a GPU one
// invocation alone would spin until released; Mesa's llvmpipe ends any loop after 65,535
// rounds, so callers launch many workgroups to make the submission outlast the fence
// timeout there too. Released afterwards, nothing is left running.
layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) coherent buffer F { uint flag[]; };

layout(push_constant) uniform Push {
    uint max_iters;
    uint pad0;
    uint pad1;
    uint pad2;
} p;

void main() {
    uint i = 0;
    while (i < p.max_iters && atomicAdd(flag[0], 0u) == 0u) {
        i++;
    }
    atomicMax(flag[1], i);
}
