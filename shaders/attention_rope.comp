#version 450
// bindings: 15
// push: 112
// workgroup: 256
// (the real width is specialization constant 1, NSPLIT x 64)
//
// Causal multi-head attention with the decode layer's RoPE / KV-cache stage folded in
// (Op::Attention with `rope: Some`, one token): q rotated as it is loaded, the new K/V
// row computed, written to the cache and attended by the workgroup that owns its cell.
// common/attention_body.glsl (ROPE) has the details.
#define ROPE
#extension GL_GOOGLE_include_directive : require
#include "common/attention_body.glsl"
