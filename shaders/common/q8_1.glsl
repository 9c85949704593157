// q8_1 activation blocks (the integer-dot mat-vec's input, mul_mat_vecq.comp): 32 f32
// values become 32 int8 codes (4 per uint, little-endian) and a (d, s) pair with
// d = max|v| / 127, code = round(v / d) (half away from zero; 0 when d = 0) and s = the f32
// sum of the 32 values. One function for every writer (quantize_q8_1.comp and the q8
// epilogues of rms_norm / add_rms_norm_mul / swiglu / attention / mul_mat_vecq_layer), so all round alike; the arithmetic
// repeats llama.cpp's quantize_row_q8_1 (id = 1/d, v * id).
//
// A writer through q8_store4 defines Q8_CODES (binding of the codes) and Q8_SCALES
// (binding of the pairs) before the #include.
//
// Writers hand over a block as 8 lanes of 4 values (q8_store4): 8 consecutive
// invocations of one subgroup (the subgroup size is a multiple of 8; dispatch code
// checks), which meet through subgroupShuffleXor 1, 2, 4, so no invocation walks 32
// values alone (that made the epilogues latency-bound). max is exact in any order, so d
// and the codes are the same whoever writes them; s is summed pairwise.
#ifndef COMMON_Q8_1_GLSL
#define COMMON_Q8_1_GLSL

#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

uint q8_pack(vec4 v, float id) {
    precise vec4 s = v * id;
    const ivec4 q = ivec4(sign(s) * floor(abs(s) + 0.5));
    return uint(q.x & 255) | (uint(q.y & 255) << 8) | (uint(q.z & 255) << 16)
        | (uint(q.w & 255) << 24);
}

// The sum of squares of a block's 32 values, handed over as q8_store4 takes them (lane
// = 4 values; the 8 lanes of the block call it together): every lane gets it. For the
// RMS-norm that a reader of q8_1 blocks of x·nw applies (mul_mat_vecq_layer.comp).
float q8_sumsq8(vec4 v) {
    float q = dot(v, v);
    [[unroll]] for (uint m = 1u; m < 8u; m <<= 1) {
        q += subgroupShuffleXor(q, m);
    }
    return q;
}

#ifdef Q8_CODES
// Q8_QUAL: the writer's qualifiers (without restrict where both arrays share a binding).
#ifndef Q8_QUAL
#define Q8_QUAL writeonly restrict
#endif
layout(std430, set = 0, binding = Q8_CODES) Q8_QUAL buffer Q8C { uint q8_codes[]; };
layout(std430, set = 0, binding = Q8_SCALES) Q8_QUAL buffer Q8S { vec2 q8_scales[]; };

// Lane `lane` (= gl_SubgroupInvocationID % 8, the 4 values 4 * lane .. of block blk)
// of the 8 invocations writing block `blk`; all 8 must call it together.
void q8_store4(uint q_off, uint ds_off, uint blk, uint lane, vec4 v) {
    const vec4 a = abs(v);
    float amax = max(max(a.x, a.y), max(a.z, a.w));
    precise float sum = (v.x + v.y) + (v.z + v.w);
    [[unroll]] for (uint m = 1u; m < 8u; m <<= 1) {
        amax = max(amax, subgroupShuffleXor(amax, m));
        sum = sum + subgroupShuffleXor(sum, m);
    }
    const float d = amax / 127.0;
    const float id = d != 0.0 ? 1.0 / d : 0.0;
    q8_codes[q_off + 8u * blk + lane] = q8_pack(v, id);
    if (lane == 0u) {
        q8_scales[ds_off + blk] = vec2(d, sum);
    }
}
#endif

#endif
