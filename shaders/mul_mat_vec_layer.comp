#version 450
// bindings: 5
// push: 80
// workgroup: 128
//
// Decode mat-vec with decode-layer fusion (Op::MulMatLayer): an RMS-norm prologue, a
// residual-add or SwiGLU epilogue; common/mul_mat_vec_body.glsl (LAYER) has the details.
#define LAYER
#extension GL_GOOGLE_include_directive : require
#include "common/mul_mat_vec_body.glsl"
