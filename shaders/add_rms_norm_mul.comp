#version 450
// bindings: 8
// push: 64
// workgroup: 256
//
// dst[r, i] = (a + b)[r, i] / sqrt(mean_i((a + b)[r, i]^2) + eps) * w[r % w_rows, i]:
// the residual ADD feeding a norm, fused into the norm (Op::AddRmsNormMul). The ADD node
// itself still writes the residual; this kernel only no longer waits for it, so the
// two run in one stage. One workgroup per row; the reduction is rms_norm's
// (common/rms_norm_reduce.glsl, subgroup or shared memory, any subgroup size).
// Q8 variants also write the result as q8_1 blocks (common/q8_1.glsl, bindings 4 and 5;
// ne0 % 32 == 0) for the integer-dot mat-vec; the others leave bindings 4-5 unused.
// SUM variants also write a + b itself to binding 6 (the residual the ADD node would
// write: the executor then records no separate ADD dispatch); the others leave it unused.
// MOE variants (moe_sum_rms_norm_mul*, Op::MoeSumRmsNormMul) take a mixture-of-experts
// layer's output in place of b: b is then y, the experts' outputs f32 [ne0, n_used, nrows],
// and binding 7 their weights f32 [n_used, nrows]; the value normalized is
// a + sum_s mw[s] * y[s], summed as moe_sum.comp sums (the slots in order, then a), so the
// SUM output is the MOE_SUM_ADD node's residual (the executor records that node no more).
// The other variants leave binding 7 unused.
// Bindings are narrowed ranges; *_off are element offsets (dispatch/norm.rs).
#extension GL_GOOGLE_include_directive : require
#include "common/rms_norm_reduce.glsl"
#ifdef Q8
#define Q8_CODES 4
#define Q8_SCALES 5
#include "common/q8_1.glsl"
#endif

layout(local_size_x = WG_X, local_size_y = WG_Y, local_size_z = WG_Z) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 3) writeonly buffer D { float d[]; };
#ifdef SUM
layout(std430, set = 0, binding = 6) writeonly buffer S { float sum_out[]; };
#endif
#ifdef MOE
layout(std430, set = 0, binding = 7) readonly buffer MW { float mw[]; };
#endif

layout(push_constant) uniform Push {
    uint ne0;
    uint nrows;
    float eps;
    uint w_rows;
    uint a_off;
    uint b_off;
    uint w_off;
    uint d_off;
    uint q_off;  // Q8: element offsets of the codes and the pairs
    uint ds_off;
    uint s_off;  // SUM: element offset of the sum
    uint pad1;
    uint n_used; // MOE: experts per token; element offset of their weights
    uint m_off;
    uint pad2;
    uint pad3;
} p;

#ifdef MOE
// The row's values, computed once (the sum reads n_used + 1 values each): the second
// pass reads them here. ne0 <= MOE_MAX_NE0 (dispatch/norm.rs checks).
#define MOE_MAX_NE0 4096u
shared float vals[MOE_MAX_NE0];
#endif

// Element i of row `row` before the norm: a + b, or (MOE) a + the weighted expert sum.
float value(uint row, uint i) {
#ifdef MOE
    // Slots 8 at a time, their loads issued together; summed in order, as moe_sum.comp.
    float acc = 0.0;
    for (uint s0 = 0u; s0 < p.n_used; s0 += 8u) {
        float wv[8], yv[8];
        [[unroll]] for (uint c = 0u; c < 8u; c++) {
            const uint ts = row * p.n_used + min(s0 + c, p.n_used - 1u);
            wv[c] = mw[p.m_off + ts];
            yv[c] = b[p.b_off + ts * p.ne0 + i];
        }
        [[unroll]] for (uint c = 0u; c < 8u; c++) {
            if (s0 + c < p.n_used) {
                acc += wv[c] * yv[c];
            }
        }
    }
    acc += a[p.a_off + row * p.ne0 + i];
    return acc;
#else
    return a[p.a_off + row * p.ne0 + i] + b[p.b_off + row * p.ne0 + i];
#endif
}

void main() {
    const uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= p.nrows) {
        return; // uniform per workgroup: no barrier below is skipped by part of it
    }
    const uint tid = gl_LocalInvocationID.x;

    // RMS_UNROLL elements per invocation and round, all loaded before any is used: a
    // decode row is one workgroup, so no other warps hide the loads' latency.
    float ss = 0.0;
    for (uint i0 = tid; i0 < p.ne0; i0 += RMS_UNROLL * WG_X) {
        float v[RMS_UNROLL];
        [[unroll]] for (uint c = 0u; c < RMS_UNROLL; c++) {
            const uint i = i0 + c * WG_X;
            v[c] = i < p.ne0 ? value(row, i) : 0.0;
#ifdef MOE
            if (i < p.ne0) {
                vals[i] = v[c];
            }
#endif
        }
        [[unroll]] for (uint c = 0u; c < RMS_UNROLL; c++) {
            ss += v[c] * v[c];
#ifdef SUM
            const uint i = i0 + c * WG_X;
            if (i < p.ne0) {
                sum_out[p.s_off + row * p.ne0 + i] = v[c];
            }
#endif
        }
    }
    ss = rms_norm_sum(ss);
#ifdef MOE
    barrier(); // vals complete (uniform: a workgroup is one row)
#define VALUE(row, i) vals[i]
#else
#define VALUE(row, i) value(row, i)
#endif

    const float scale = inversesqrt(ss / float(p.ne0) + p.eps);
    const uint db = p.d_off + row * p.ne0;
    const uint wb = p.w_off + (row % p.w_rows) * p.ne0;
#ifdef Q8
    // Groups of 4 values, 8 consecutive invocations per 32-value block (WG_X % 8 == 0).
    const uint nb = p.ne0 / 32u;
    for (uint g = tid; g < 8u * nb; g += WG_X) {
        vec4 v;
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            const uint e = 4u * g + c;
            v[c] = VALUE(row, e) * scale * w[wb + e];
            d[db + e] = v[c];
        }
        q8_store4(p.q_off, p.ds_off, row * nb + g / 8u, g % 8u, v);
    }
#else
    for (uint i = tid; i < p.ne0; i += WG_X) {
        d[db + i] = VALUE(row, i) * scale * w[wb + i];
    }
#endif
}
