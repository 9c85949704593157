#version 450
// bindings: 2
// push: 16
// workgroup: 256
//
// dst[i] = DST_TYPE(src[i]) over n elements; src is f32 (vec4 for COPY_VEC4).
// Variants (shaders/variants.txt): copy_f32_f32 (DST_F32), copy_f32_f16 (DST_F16,
// needs storageBuffer16BitAccess), copy_vec4 (COPY_VEC4: 16 bytes per invocation, the
// kernel benches' reference bandwidth beside the one-float copy). Offsets are in
// elements of each buffer's type.
#extension GL_GOOGLE_include_directive : require
#define SRC_TYPE float
#if defined(DST_F16)
#extension GL_EXT_shader_16bit_storage : require
#define DST_TYPE float16_t
#elif defined(DST_F32)
#define DST_TYPE float
#elif defined(COPY_VEC4)
#undef SRC_TYPE
#define SRC_TYPE vec4
#define DST_TYPE vec4
#else
#error "copy.comp needs DST_F32, DST_F16 or COPY_VEC4"
#endif

#include "common/index.glsl"

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer S { SRC_TYPE src[]; };
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
