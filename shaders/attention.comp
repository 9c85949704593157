#version 450
// bindings: 9
// push: 64
// workgroup: 256
// (the real width is specialization constant 1, NSPLIT x 64: see below)
//
// Causal multi-head attention over the f16 KV cache (Op::Attention); the kernel is
// common/attention_body.glsl (its header comment has the details). attention_rope.comp
// is the same kernel with the RoPE / KV-cache stage folded in.
#extension GL_GOOGLE_include_directive : require
#include "common/attention_body.glsl"
