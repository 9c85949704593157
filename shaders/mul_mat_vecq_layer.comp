#version 450
// bindings: 5
// push: 80
// workgroup: 128
//
// Integer-dot mat-vec with decode-layer fusion (Op::MulMatLayer on the MMVQ path): the
// folds of mul_mat_vec_layer.comp — an RMS-norm prologue (NORM), a residual-add, SwiGLU or
// bias epilogue (EPI), a folded SCALE — around the integer-dot product of
// mul_mat_vecq.comp, with x read as f32 and quantized to q8_1 by the workgroup as it reads
// it. Bindings, push constants and specialization constants are mul_mat_vec_layer.comp's
// (constants 0 = WG, 1 = NR, 2 = X_VEC4, 3 = NMAX, 4 = NORM, 5 = EPI, 6 = NW_VEC4) plus
// 7 = W_ALIGN; common/mul_mat_vecq_body.glsl (LAYER) has the details.
#define LAYER
#extension GL_GOOGLE_include_directive : require
#include "common/mul_mat_vecq_body.glsl"
