#version 450
// bindings: 9
// push: 112
// workgroup: 128
//
// Integer-dot mat-vec with decode-layer fusion (Op::MulMatLayer on the MMVQ path): the
// folds of mul_mat_vec_layer.comp — an RMS-norm prologue (NORM), a residual-add, SwiGLU or
// bias epilogue (EPI), a folded SCALE — around the integer-dot product of
// mul_mat_vecq.comp, and a q8_1 epilogue (QOUT) that quantizes the output for the next
// integer-dot matmul, so a decode layer needs no quantize or norm pass of its own.
// x is q8_1 as mul_mat_vecq.comp reads it (with NORM: of x·nw, plus the per-block sums
// of squares of x). Bindings: 0 weights, 1 x codes, 2 x (d, s), 3 dst, 4 residual / bias,
// 5 the next norm's weight (QOUT 2), 6 x's per-block sums of squares (NORM), 7 the
// epilogue's q8_1 slot (codes, (d, s), sums of squares), 8 its block counters. Specialization constants: 0 = WG, 1 = NR, 3 = NMAX,
// 4 = NORM, 5 = EPI, 6 = NW_VEC4, 7 = W_ALIGN, 8 = QOUT; common/mul_mat_vecq_body.glsl
// (LAYER) has the details.
#define LAYER
#extension GL_GOOGLE_include_directive : require
#include "common/mul_mat_vecq_body.glsl"
