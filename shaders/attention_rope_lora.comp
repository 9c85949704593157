#version 450
// bindings: 21
// push: 128
// workgroup: 256
// (the real width is specialization constant 1, NSPLIT x 64)
//
// attention_rope.comp with LoRA B factors folded in (Op::Attention with a rope whose
// `lora` holds a scale for q, k or v: passes::layer): before the RoPE prologue rotates q
// and computes the new K/V row, it adds s · B·a to each of q, k_new, v_new that an
// adapter corrects — the B factor's mat-vec (rank r, a few values per output) done per
// element by the invocations that load it, so the B factors need no stage of their own.
// common/attention_body.glsl (ROPE, LORA) has the details.
#define ROPE
#define LORA
#extension GL_GOOGLE_include_directive : require
#include "common/attention_body.glsl"
