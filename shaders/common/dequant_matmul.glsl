// Bindings, push constants and row/segment addressing shared by mul_mat_vec.comp,
// mul_mat.comp and mul_mat_coopmat.comp (see Op::MulMat and
// src/backend/vulkan/dispatch/mul_mat.rs), and with ID by their expert-indexed forms
// mul_mat_id_tiled.comp / mul_mat_id_coopmat.comp (Op::MulMatId, dispatch/moe.rs).
//
// binding 0: weights, any type (read through common/dequant.glsl)
// binding 1: x, f32 [k, n], starting at element x_off
// binding 2: dst, f32, starting at element d_off
// Offsets are relative to each binding (dispatch::bind). The weight rows form up to 4
// segments (a fused weight's member tensors): segment s has seg_rows[s] rows of
// row_bytes bytes each, its first row at byte seg_woff[s]. Rows are numbered across
// segments (0..m). Output is split on write: row i of segment s (first row start_s) for token j goes to
//   dst[d_off + n*start_s + j*seg_rows[s] + (i - start_s)];
// an unfused weight is one segment, so that is dst[d_off + j*m + i].
#ifndef COMMON_DEQUANT_MATMUL_GLSL
#define COMMON_DEQUANT_MATMUL_GLSL

#define W_BINDING 0
#include "dequant.glsl"

// mul_mat_vecq.comp (Q8_X) reads x as q8_1 blocks from bindings 1 and 2 and writes dst
// at binding 3; x_off then indexes the quant words and x2_off the (d, s) pairs.
#ifndef Q8_X
layout(std430, set = 0, binding = 1) readonly restrict buffer XS { float xs[]; };
layout(std430, set = 0, binding = 1) readonly restrict buffer X4 { vec4 x4[]; };
layout(std430, set = 0, binding = 2) writeonly restrict buffer D { float dst[]; };
#elif defined(LAYER) || defined(ID)
// mul_mat_vecq_layer.comp and mul_mat_vecq_id.comp read back their own and other
// workgroups' results for their q8_1 epilogue (QOUT): coherent.
layout(std430, set = 0, binding = 3) coherent restrict buffer D { float dst[]; };
#else
layout(std430, set = 0, binding = 3) writeonly restrict buffer D { float dst[]; };
#endif

layout(push_constant) uniform Push {
    uint k;
    uint m;
    uint n;
    uint nseg;
    uint x_off;
    uint d_off;
    uint row_bytes;
    uint x2_off;    // mul_mat_vecq.comp: see above; mul_mat_coopmat.comp: k values per split (split-K)
    uvec4 seg_rows;
    uvec4 seg_woff;
#ifdef ID
    // The expert-indexed forms (Op::MulMatId): n counts (token, slot) pairs, each segment
    // is a whole stack of n_expert matrices of seg_rows[s] rows, and binding 3 holds, from
    // word id_off, the grouping by expert (mul_mat_id_tiled.comp, mul_mat_id_coopmat.comp:
    // common/moe_group.glsl) or the ids (mul_mat_vec_id.comp).
    uint n_used;
    uint nx;
    uint n_expert;
    uint id_off;
#if defined(Q8_X) && !defined(LAYER)
    // mul_mat_vecq_id.comp's q8_1 epilogue (QOUT): element offsets in binding 5 of the
    // codes (words) and (d, s) pairs (vec2), in binding 6 of the block counters.
    uint qo_codes;
    uint qo_scales;
    uint qo_cnt;
    uint pad_i0;
#endif
#endif
#ifdef LAYER
    // mul_mat_vec_layer.comp: element offsets of nw (binding 3) and r (binding 4), the
    // norm's epsilon, the factor on the product (a folded SCALE; 1 for none).
    uint nw_off;
    uint r_off;
    float eps;
    float scale;
#ifdef Q8_X
    // mul_mat_vecq_layer.comp: element offset in binding 6 of the per-block sums of
    // squares of x (NORM), in binding 7 of the q8_1 epilogue's (QOUT) codes (words),
    // (d, s) pairs (vec2) and sums of squares (floats), in binding 8 of its counters.
    uint ss_off;
    uint qo_codes;
    uint qo_scales;
    uint qo_ss;
    uint qo_cnt;
    uint pad_q0;
    uint pad_q1;
    uint pad_q2;
#endif
#ifdef GROUP
    // mul_mat_vec_group.comp: bytes per row of each segment (their types differ) and
    // which segments are of TYPE_B (bit s), the others TYPE_A.
    uvec4 seg_rb;
    uint seg_b;
#endif
#endif
} p;

#ifndef Q8_X
// True when x_off is a multiple of 4, so x can be read as vec4 (k is always a multiple
// of 4: every QK is). Set by the dispatch helper.
layout(constant_id = 2) const bool X_VEC4 = true;

// 4 consecutive values of x at element index e (relative to x_off; e % 4 == 0).
vec4 load_x4(uint e) {
    if (X_VEC4) {
        return x4[(p.x_off + e) >> 2];
    }
    const uint i = p.x_off + e;
    return vec4(xs[i], xs[i + 1u], xs[i + 2u], xs[i + 3u]);
}
#endif

#ifdef ID
// The expert whose matrices row_addr addresses (set by main).
uint id_expert;

// The x row (token, slot) pair `pair` = t * n_used + s reads: x is [k, nx, n] with nx = 1
// (every slot reads the token's row) or nx = n_used (slot s reads its own).
uint pair_x_row(uint pair) {
    const uint t = pair / p.n_used;
    const uint s = pair % p.n_used;
    return t * p.nx + s % p.nx;
}
#endif

// Where row i lives and where its results go.
struct RowAddr {
    uint wbase;   // byte offset of the row in binding 0
    uint dbase;   // dst index of token 0's value
    uint dstride; // dst index step per token (the segment's row count)
};

// The segment of row i and its first row: segments in order, the last one takes any
// row past the others.
uint seg_find(uint i, out uint start) {
    start = 0u;
    uint s = 0u;
    for (; s + 1u < p.nseg; s++) {
        if (i < start + p.seg_rows[s]) {
            break;
        }
        start += p.seg_rows[s];
    }
    return s;
}

RowAddr row_addr(uint i) {
    uint start;
    const uint s = seg_find(i, start);
    const uint rows = p.seg_rows[s];
    RowAddr a;
#ifdef GROUP
    a.wbase = p.seg_woff[s] + (i - start) * p.seg_rb[s];
#elif defined(ID)
    a.wbase = p.seg_woff[s] + (id_expert * rows + (i - start)) * p.row_bytes;
#else
    a.wbase = p.seg_woff[s] + (i - start) * p.row_bytes;
#endif
    a.dbase = p.d_off + p.n * start + (i - start);
    a.dstride = rows;
    return a;
}

// The segment of row i.
uint seg_of(uint i) {
    uint start;
    return seg_find(i, start);
}

#endif
