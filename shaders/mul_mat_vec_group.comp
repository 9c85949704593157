#version 450
// bindings: 5
// push: 112
// workgroup: 128
//
// Grouped mat-vec (DESIGN.md decision 14): sibling weights of two types (TYPE_A, TYPE_B)
// back to back in one binding, one dispatch for all their rows, the output split on
// write as a fused weight's; the RMS-norm prologue of mul_mat_vec_layer.comp optional.
// common/mul_mat_vec_body.glsl (GROUP) has the details.
#define LAYER
#define GROUP
#extension GL_GOOGLE_include_directive : require
#include "common/mul_mat_vec_body.glsl"
