// Sort keys for f32 in the order of Rust's f32::total_cmp, shared by the MoE routing
// kernels (common/moe_topk.glsl, moe_router.comp, common/id_pair.glsl's ROUTE) so every
// one of them picks the experts cpu::ops::moe_topk picks, NaN and signed zeros included.
#ifndef COMMON_TOTAL_ORDER_GLSL
#define COMMON_TOTAL_ORDER_GLSL

// f32 bits as an int ordered like f32::total_cmp (negative values' magnitude bits
// flipped): -NaN < -inf < ... < -0 < +0 < ... < +inf < +NaN.
int total_key(float v) {
    const int b = floatBitsToInt(v);
    return b ^ ((b >> 31) & 0x7fffffff);
}

#endif
