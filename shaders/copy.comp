#version 450
// bindings: 2
// push: 16
// workgroup: 256
//
// dst[i] = DST_TYPE(src[i]) over n elements; src is f32.
// Variants (shaders/variants.txt): copy_f32_f32 (DST_F32), copy_f32_f16 (DST_F16,
// needs storageBuffer16BitAccess). Offsets are in elements of each buffer's type.
#extension GL_GOOGLE_include_directive : require
#if defined(DST_F16)
#extension GL_EXT_shader_16bit_storage : require
#define DST_TYPE float16_t
#elif defined(DST_F32)
#define DST_TYPE float
#else
#error "copy.comp needs DST_F32 or DST_F16"
#endif

#include "common/index.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer S { float src[]; };
layout(std430, set = 0, binding = 1) writeonly buffer D { DST_TYPE dst[]; };

layout(push_constant) uniform Push {
    uint n;
    uint src_off;
    uint dst_off;
    uint pad0;
} p;

void main() {
    const uint i = flat_index();
    if (i >= p.n) {
        return;
    }
    dst[p.dst_off + i] = DST_TYPE(src[p.src_off + i]);
}
