#version 450
// bindings: 3
// push: 64
// workgroup: 128
//
// Decode mat-vec, dst = W·x for any weight type: common/mul_mat_vec_body.glsl.
#extension GL_GOOGLE_include_directive : require
#include "common/mul_mat_vec_body.glsl"
