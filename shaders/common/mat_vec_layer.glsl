// Decode-layer fusion declarations shared by the float fused mat-vec
// (common/mul_mat_vec_body.glsl) and the integer-dot one (common/mul_mat_vecq_body.glsl),
// both with LAYER defined (Op::MulMatLayer): specialization constants 4 = NORM, 5 = EPI,
// 6 = NW_VEC4, the norm weight (binding 3) and residual / bias (binding 4), the per-token
// sum(x^2) slots, and the physical-row mapping of a GLU epilogue (gate/up pairs).
// Without LAYER: NORM false, rows in order, except for the expert-indexed kernels' GLU
// (ID: constant 5 as EPI). Needs NR, NMAX, WG and p (the push
// constants of common/dequant_matmul.glsl) declared first.
#ifndef COMMON_MAT_VEC_LAYER_GLSL
#define COMMON_MAT_VEC_LAYER_GLSL

#ifdef LAYER
layout(constant_id = 4) const bool NORM = false;
layout(constant_id = 5) const uint EPI = 0u;
layout(constant_id = 6) const bool NW_VEC4 = false;
// The norm weight: the float kernel's prologue reads it at binding 3; the integer-dot
// kernel (Q8_X, its dst at binding 3) reads the next norm's weight at binding 5 for its
// q8_1 epilogue (QOUT 2).
#ifdef Q8_X
#define NW_BINDING 5
#else
#define NW_BINDING 3
#endif
layout(std430, set = 0, binding = NW_BINDING) readonly restrict buffer NW { float nws[]; };
layout(std430, set = 0, binding = NW_BINDING) readonly restrict buffer NW4 { vec4 nw4s[]; };
layout(std430, set = 0, binding = 4) readonly restrict buffer R { float rs[]; };
shared float red_ss[NMAX * WG];
const bool GLU = EPI == 2u;
// The dispatch's rows: row group g covers physical rows g*NR .. (a gate/up pair per two
// rows with GLU: gate row L and up row h + L for L = g*NR/2 + r/2).
uint phys_row(uint group, uint r) {
    if (GLU) {
        return (r % 2u == 0u ? 0u : p.seg_rows[0]) + group * (NR / 2u) + r / 2u;
    }
    return group * NR + r;
}
// NORM: this subgroup's share of each token's sum(x^2) into red_ss (every invocation
// calls it, before the barrier that precedes mat_vec_layer_out.glsl).
void store_ss(float ss[NMAX]) {
    if (NORM) {
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            const float s = subgroupAdd(ss[j]);
            if (subgroupElect()) {
                red_ss[j * WG + gl_SubgroupID] = s;
            }
        }
    }
}
// 4 consecutive norm-weight values (one vec4 load when nw_off % 4 == 0: NW_VEC4).
vec4 nw4(uint e) {
    const uint i = p.nw_off + e;
    if (NW_VEC4) {
        return nw4s[i >> 2];
    }
    return vec4(nws[i], nws[i + 1u], nws[i + 2u], nws[i + 3u]);
}
#else
const bool NORM = false;
#ifdef ID
// The expert-indexed decode kernels' SwiGLU epilogue (Op::MulMatId with glu): EPI = 2
// pairs gate and up rows as below and writes silu(gate) * up (common/id_pair.glsl).
layout(constant_id = 5) const uint EPI = 0u;
const bool GLU = EPI == 2u;
#else
const bool GLU = false;
#endif
uint phys_row(uint group, uint r) {
    if (GLU) {
        return (r % 2u == 0u ? 0u : p.seg_rows[0]) + group * (NR / 2u) + r / 2u;
    }
    return group * NR + r;
}
#endif
// Whether physical row `row` exists (GLU: its logical row is below the gate count).
bool row_in(uint group, uint r) {
    if (GLU) {
        return group * (NR / 2u) + r / 2u < p.seg_rows[0];
    }
    return group * NR + r < p.m;
}

#endif
