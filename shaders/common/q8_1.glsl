// q8_1 activation blocks (the integer-dot mat-vec's input, mul_mat_vecq.comp): 32 f32
// values become 32 int8 codes (4 per uint, little-endian) and a (d, s) pair with
// d = max|v| / 127, code = round(v / d) (half away from zero; 0 when d = 0) and s = the f32
// sum of the 32 values. One function for every writer (quantize_q8_1.comp and the q8
// epilogues of rms_norm / add_rms_norm_mul / swiglu), so all round alike; the arithmetic
// repeats llama.cpp's quantize_row_q8_1 (id = 1/d, v * id).
//
// The including shader defines Q8_CODES (binding of the codes) and Q8_SCALES (binding of
// the pairs) before the #include.
#ifndef COMMON_Q8_1_GLSL
#define COMMON_Q8_1_GLSL

#extension GL_EXT_control_flow_attributes : require

layout(std430, set = 0, binding = Q8_CODES) writeonly restrict buffer Q8C { uint q8_codes[]; };
layout(std430, set = 0, binding = Q8_SCALES) writeonly restrict buffer Q8S { vec2 q8_scales[]; };

uint q8_pack(vec4 v, float id) {
    precise vec4 s = v * id;
    const ivec4 q = ivec4(sign(s) * floor(abs(s) + 0.5));
    return uint(q.x & 255) | (uint(q.y & 255) << 8) | (uint(q.z & 255) << 16)
        | (uint(q.w & 255) << 24);
}

// Writes block `blk` (values v[0..7]) at word q_off + 8 * blk and pair ds_off + blk.
void q8_store(uint q_off, uint ds_off, uint blk, vec4 v[8]) {
    float amax = 0.0;
    precise float sum = 0.0;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        const vec4 a = abs(v[i]);
        amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
        sum += (v[i].x + v[i].y) + (v[i].z + v[i].w);
    }
    const float d = amax / 127.0;
    const float id = d != 0.0 ? 1.0 / d : 0.0;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        q8_codes[q_off + 8u * blk + i] = q8_pack(v[i], id);
    }
    q8_scales[ds_off + blk] = vec2(d, sum);
}

#endif
