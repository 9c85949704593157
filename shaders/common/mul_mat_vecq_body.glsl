// The body of the integer-dot mat-vec (MMVQ): mul_mat_vecq.comp (dense, Op::MulMat),
// with ID defined mul_mat_vecq_id.comp (expert-indexed, Op::MulMatId at decode: workgroup
// z = (token, slot) pair, NMAX = 1; constant 5 = 2 its SwiGLU epilogue, common/id_pair.glsl), and with LAYER mul_mat_vecq_layer.comp (Op::MulMatLayer:
// the decode-layer folds of mul_mat_vec_layer.comp on the integer-dot path). The algorithm
// is described in mul_mat_vecq.comp.
//
// LAYER reads x as q8_1 like the plain kernel (bindings 1, 2; dst binding 3, residual /
// bias 4, the epilogue's norm weight 5, x's sums of squares 6, the epilogue's q8_1 slot
// 7, its block counters 8). With NORM, x holds the
// blocks of x·nw (not of the normalized x) and binding 6 the sums of squares of the raw
// x per 32-value block: rms_norm(x)·nw = (x·nw) / rms, so 1/rms, one number per token
// from those sums, multiplies the dot products at the end (mat_vec_layer_out.glsl) and
// the norm needs no pass of its own. Those blocks and sums come from the producer's q8_1
// epilogue (QOUT, below) or a quantize_q8_1 dispatch (its NORM form).
//
// QOUT (specialization constant 8; 1: q8_1 of the output, 2: of the output times the
// next norm's weight, binding 5, plus the sums of squares of the output per block): the
// output is quantized once, by the kernel that computes it, for the integer-dot matmuls
// that read it next. A 32-row block of the output is spread over 32 / rows-per-workgroup
// workgroups; each publishes its rows (memoryBarrierBuffer) and counts itself in at the
// block's counter (binding 8), and the last to arrive reads the block back (coherent dst)
// and writes its q8_1 codes, (d, s) and sum of squares per token, then resets the counter
// to 0 — the arrival pattern of the split-K attention's merge.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_spirv_intrinsics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#define Q8_X
#include "dequant_matmul.glsl"

layout(std430, set = 0, binding = 1) readonly restrict buffer XQ { uvec4 xq[]; };
layout(std430, set = 0, binding = 2) readonly restrict buffer XD { vec2 xds[]; };
#ifdef LAYER
// The input's sums of squares (NORM, binding 6), the epilogue's arrays (QOUT, binding 7:
// one slot of the q8_1 scratch) and its block counters (binding 8: the scratch's counter
// region, which holds nothing else), at the push block's element offsets. Without them
// the bindings hold ranges this dispatch alone may write (its dst), so the
// declared-writable bindings overlap nothing a sibling in the stage reads.
layout(std430, set = 0, binding = 6) readonly restrict buffer QI { float qf_in[]; };
#define Q8_CODES 7
#define Q8_SCALES 7
#define Q8_QUAL writeonly
#include "q8_1.glsl"
layout(std430, set = 0, binding = 7) buffer QF { float qf[]; };
layout(std430, set = 0, binding = 8) buffer QC { uint qcnt[]; };
layout(constant_id = 8) const uint QOUT = 0u;
shared uint last_sh;
#endif
#ifdef ID
// The expert of each (token, slot) pair (binding 4: binding 3 is dst on the Q8_X layout).
#define IDS_BINDING 4
layout(std430, set = 0, binding = IDS_BINDING) readonly restrict buffer IDS { int ids[]; };
// The SwiGLU form's q8_1 epilogue (QOUT = 1, specialization constant 8): the output
// quantized for the down experts' integer-dot matmul, as LAYER's QOUT 1 does it, with a
// block counter per (pair, block): binding 5 the slot (codes, (d, s)), binding 6 the
// counters (both bound to dst when QOUT = 0).
#define Q8_CODES 5
#define Q8_SCALES 5
#define Q8_QUAL writeonly
#include "q8_1.glsl"
layout(std430, set = 0, binding = 6) buffer QC { uint qcnt[]; };
layout(constant_id = 8) const uint QOUT = 0u;
shared uint last_sh;
#define X_UNIT(j) (id_xrow * units)
#define OUT_COL(j) id_pair
#else
#define X_UNIT(j) ((j) * units)
#define OUT_COL(j) (j)
#endif

// OpSDot (4450) on two 4 x int8 packed words (PackedVectorFormat4x8Bit = 0);
// capabilities DotProduct (6019) and DotProductInput4x8BitPacked (6018).
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot_packed(uint a, uint b, spirv_literal int fmt);

int sdot(uint a, uint b) {
    return sdot_packed(a, b, 0);
}

int sdot4(uvec4 a, uvec4 b) {
    return (sdot(a.x, b.x) + sdot(a.y, b.y)) + (sdot(a.z, b.z) + sdot(a.w, b.w));
}

// Bytes 0..255 holding values u in 0..2c-1 become the int8 codes u - c (no borrow
// between bytes: each byte is lifted by 0x80 first).
uint sub_bytes(uint u, uint c4) {
    return ((u | 0x80808080u) - c4) ^ 0x80808080u;
}

// Bits 0..3 of t spread to bit 0 of bytes 0..3.
uint spread4(uint t) {
    return ((t & 15u) * 0x00204081u) & 0x01010101u;
}

layout(constant_id = 0) const uint WG = WG_X;
layout(constant_id = 1) const uint NR = 2;
layout(constant_id = 3) const uint NMAX = 1;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

#include "mat_vec_layer.glsl"


// One decoded 32-value unit of one row: int8 codes of values 0..15 (wa) and 16..31
// (wb) in x's order, and the coefficients of the formula above.
struct Unit {
    uvec4 wa;
    uvec4 wb;
    vec2 a;  // A_a, A_b
    vec2 mn; // M_a, M_b (q2_K)
    float b; // B
};

#if defined(TYPE_Q4_0) || defined(TYPE_Q4_1) || defined(TYPE_Q5_0) || defined(TYPE_Q5_1) \
    || defined(TYPE_Q8_0)
#define SUBS 1u
#else
#define SUBS 8u
#endif

#if (defined(TYPE_Q2_K) || defined(TYPE_Q3_K)) && !defined(UNITS32)
// The 16-byte chunks of a q2_K / q3_K block's 2-bit codes are the units (KCHUNK4, see
// main): chunk c (0..3) of the block holds, in bit pairs t = 0..3 of each byte, values
// 16·hf .. 16·hf + 15 (hf = c % 2) of the four 32-value sub-blocks 4h + t (h = c / 2),
// so one 16-byte load serves four half x units, where a 32-value unit loaded 32 bytes
// for 8 (and q3_K another 32 of high bits for 4). UNITS32 (the `_u32` variants, for more
// than mul_mat_vecq::CHUNK4_MAX_N tokens, where chunks measured slower) keeps the
// 32-value units.
#define KCHUNK4

// Chunk c's codes of the four sub-blocks (int8, offsets applied), their scales and (q2_K)
// min scales times dmin.
struct Unit4 {
    uvec4 w[4];
    vec4 a;
    vec4 mn;
};

Unit4 dq_unit4(uint bb, uint c) {
    Unit4 r;
    const uint h = c >> 1, hf = c & 1u;
#ifdef TYPE_Q2_K
    const uvec4 q = ld128(bb + 16u + 32u * h + 16u * hf);
    const vec2 dm = unpackHalf2x16(ld32(bb + 80u));
    // scales[2·(4h + t) + hf]: bytes 8h + hf, 8h + 2 + hf, 8h + 4 + hf, 8h + 6 + hf.
    const uvec2 sw = uvec2(ld32(bb + 8u * h), ld32(bb + 8u * h + 4u)) >> (8u * hf);
    const uvec4 sc = uvec4(sw.x, sw.x >> 16, sw.y, sw.y >> 16) & 0xffu;
    [[unroll]] for (uint t = 0u; t < 4u; t++) {
        r.w[t] = (q >> (2u * t)) & 0x03030303u;
    }
    r.a = dm.x * vec4(sc & 15u);
    r.mn = dm.y * vec4(sc >> 4);
#else
    const uvec4 q = ld128(bb + 32u + 32u * h + 16u * hf);
    const uvec4 hm = ld128(bb + 16u * hf);
    const float d = ldh(bb + 108u);
    const uint cc = 0x04040404u;
    [[unroll]] for (uint t = 0u; t < 4u; t++) {
        const uvec4 u = ((q >> (2u * t)) & 0x03030303u) | (((hm >> (4u * h + t)) & 0x01010101u) << 2);
        r.w[t] = uvec4(sub_bytes(u.x, cc), sub_bytes(u.y, cc), sub_bytes(u.z, cc), sub_bytes(u.w, cc));
    }
    const uint j = 8u * h + hf;
    r.a = d * vec4(float(scale_k3(bb, j)), float(scale_k3(bb, j + 2u)), float(scale_k3(bb, j + 4u)),
                   float(scale_k3(bb, j + 6u)));
    r.mn = vec4(0.0);
#endif
    return r;
}
#endif

#if defined(TYPE_Q5_K) || defined(TYPE_Q6_K)
// The 16-byte chunks of a q5_K / q6_K block's 4-bit codes are the units (KCHUNK, see
// main): chunk s covers half s % 2 of two x units, KX_A(s) and KX_A(s) + KX_D. (q4_K keeps
// 32-value units: its 16-byte-aligned code runs already load as whole uvec4s, and chunks
// measured 8 % slower there on the H100 — docs/BENCHMARKS.md, twelfth session.)
#define KCHUNK
#ifdef TYPE_Q6_K
#define KX_A(s) (4u * ((s) / 4u) + (((s) & 3u) >> 1))
#define KX_D 2u
#else
#define KX_A(s) ((s) & 6u)
#define KX_D 1u
#endif
#endif

#if defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
// Scale and min (6 bits each) of sub-block j (0..7) from the 12 scale bytes as 3 words,
// without a branch (a subgroup's lanes take both halves of j at once).
uvec2 sc_mn_k4(uvec3 sw, uint j) {
    const uint sh = 8u * (j & 3u);
    const uint lo = sw.x >> sh, ml = sw.y >> sh, hi = sw.z >> sh;
    const uvec2 low = uvec2(lo & 63u, ml & 63u);
    const uvec2 high = uvec2((hi & 15u) | (((lo >> 6) & 3u) << 4), ((hi >> 4) & 15u) | (((ml >> 6) & 3u) << 4));
    return j < 4u ? low : high;
}
#endif

// Unit s (0..SUBS-1) of the block at byte bb.
Unit dq_unit(uint bb, uint s) {
    Unit r;
    r.mn = vec2(0.0);
    r.b = 0.0;
#if defined(TYPE_Q4_0)
    const uvec4 q = ld128(bb + 2u);
    r.wa = uvec4(sub_bytes(q.x & 0x0f0f0f0fu, 0x08080808u), sub_bytes(q.y & 0x0f0f0f0fu, 0x08080808u),
                 sub_bytes(q.z & 0x0f0f0f0fu, 0x08080808u), sub_bytes(q.w & 0x0f0f0f0fu, 0x08080808u));
    const uvec4 h = (q >> 4) & 0x0f0f0f0fu;
    r.wb = uvec4(sub_bytes(h.x, 0x08080808u), sub_bytes(h.y, 0x08080808u),
                 sub_bytes(h.z, 0x08080808u), sub_bytes(h.w, 0x08080808u));
    r.a = vec2(ldh(bb));
#elif defined(TYPE_Q4_1)
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uvec4 q = ld128(bb + 4u);
    r.wa = q & 0x0f0f0f0fu;
    r.wb = (q >> 4) & 0x0f0f0f0fu;
    r.a = vec2(dm.x);
    r.b = dm.y;
#elif defined(TYPE_Q5_0) || defined(TYPE_Q5_1)
#ifdef TYPE_Q5_0
    const uint qh = ld32(bb + 2u);
    const uvec4 q = ld128(bb + 6u);
#else
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uint qh = ld32(bb + 4u);
    const uvec4 q = ld128(bb + 8u);
#endif
    const uvec4 hl = uvec4(spread4(qh), spread4(qh >> 4), spread4(qh >> 8), spread4(qh >> 12)) << 4;
    const uvec4 hh = uvec4(spread4(qh >> 16), spread4(qh >> 20), spread4(qh >> 24), spread4(qh >> 28)) << 4;
    const uvec4 ua = (q & 0x0f0f0f0fu) | hl;
    const uvec4 ub = ((q >> 4) & 0x0f0f0f0fu) | hh;
#ifdef TYPE_Q5_0
    const uint c = 0x10101010u;
    r.wa = uvec4(sub_bytes(ua.x, c), sub_bytes(ua.y, c), sub_bytes(ua.z, c), sub_bytes(ua.w, c));
    r.wb = uvec4(sub_bytes(ub.x, c), sub_bytes(ub.y, c), sub_bytes(ub.z, c), sub_bytes(ub.w, c));
    r.a = vec2(ldh(bb));
#else
    r.wa = ua;
    r.wb = ub;
    r.a = vec2(dm.x);
    r.b = dm.y;
#endif
#elif defined(TYPE_Q8_0)
    r.wa = ld128(bb + 2u);
    r.wb = ld128(bb + 18u);
    r.a = vec2(ldh(bb));
#elif defined(TYPE_Q4_K)
    // A 32-value unit: sub-block s, whose codes are the low (s even) or high nibbles of 32
    // bytes shared with its neighbour.
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uvec3 sw = uvec3(ld32(bb + 4u), ld32(bb + 8u), ld32(bb + 12u));
    const uvec2 sm = sc_mn_k4(sw, s);
    const uint qb = bb + QS_AT + 32u * (s / 2u);
    const uint sh = 4u * (s & 1u);
    r.wa = (ld128(qb) >> sh) & 0x0f0f0f0fu;
    r.wb = (ld128(qb + 16u) >> sh) & 0x0f0f0f0fu;
    r.a = vec2(dm.x * float(sm.x));
    r.b = -dm.y * float(sm.y);
#elif defined(TYPE_Q5_K)
    // KCHUNK: s is the block's 16-byte quant chunk (see main): its low nibbles are values
    // 16·hf .. 16·hf + 15 of sub-block 2p, its high nibbles the same values of 2p + 1.
    const uint pr = s >> 1, hf = s & 1u;
    const vec2 dm = unpackHalf2x16(ld32(bb));
    const uvec3 sw = uvec3(ld32(bb + 4u), ld32(bb + 8u), ld32(bb + 12u));
    const uvec2 s0 = sc_mn_k4(sw, 2u * pr), s1 = sc_mn_k4(sw, 2u * pr + 1u);
    const uvec4 q = ld128(bb + QS_AT + 32u * pr + 16u * hf);
    r.wa = q & 0x0f0f0f0fu;
    r.wb = (q >> 4) & 0x0f0f0f0fu;
#ifdef TYPE_Q5_K
    const uvec4 qh = ld128(bb + 16u + 16u * hf);
    r.wa |= ((qh >> (2u * pr)) & 0x01010101u) << 4;
    r.wb |= ((qh >> (2u * pr + 1u)) & 0x01010101u) << 4;
#endif
    r.a = dm.x * vec2(float(s0.x), float(s1.x));
    // The offsets -dmin·m of both sub-blocks, applied once per sub-block (by hf = 0).
    r.mn = hf == 0u ? -dm.y * vec2(float(s0.y), float(s1.y)) : vec2(0.0);
#elif defined(TYPE_Q6_K)
    // KCHUNK: s is a 16-byte chunk of the block's low 4-bit planes (ql): in half h of the
    // block, chunk cc = s % 4 holds values 16·hf .. 16·hf + 15 (hf = cc % 2) of 32-value
    // sub-block ta = cc / 2 in its low nibbles and of ta + 2 in its high nibbles; their
    // 2-bit high parts are bit pairs ta and ta + 2 of the same 16 bytes of qh.
    const uint h = s / 4u, cc = s & 3u, ta = cc >> 1, hf = cc & 1u;
    const float d = ldh(bb + 208u);
    const uvec4 ql = ld128(bb + 64u * h + 16u * cc);
    const uvec4 qh = ld128(bb + 128u + 32u * h + 16u * hf);
    const uvec4 ua = (ql & 0x0f0f0f0fu) | (((qh >> (2u * ta)) & 0x03030303u) << 4);
    const uvec4 ub = ((ql >> 4) & 0x0f0f0f0fu) | (((qh >> (2u * ta + 4u)) & 0x03030303u) << 4);
    const uint c = 0x20202020u;
    r.wa = uvec4(sub_bytes(ua.x, c), sub_bytes(ua.y, c), sub_bytes(ua.z, c), sub_bytes(ua.w, c));
    r.wb = uvec4(sub_bytes(ub.x, c), sub_bytes(ub.y, c), sub_bytes(ub.z, c), sub_bytes(ub.w, c));
    // int8 scales of 16 values: [2·(4h + ta) + hf] and [2·(4h + ta + 2) + hf].
    const uint sa = 8u * h + 2u * ta + hf;
    const int ka = (int(ld8(bb + 192u + sa)) << 24) >> 24;
    const int kb = (int(ld8(bb + 196u + sa)) << 24) >> 24;
    r.a = d * vec2(float(ka), float(kb));
#elif defined(TYPE_Q3_K)
    const uint h = s / 4u, t = s & 3u;
    const float d = ldh(bb + 108u);
    const uint qb = bb + 32u + 32u * h;
    const uint sh = 2u * t;
    const uvec4 ua = ((ld128(qb) >> sh) & 0x03030303u) | (((ld128(bb) >> s) & 0x01010101u) << 2);
    const uvec4 ub = ((ld128(qb + 16u) >> sh) & 0x03030303u) | (((ld128(bb + 16u) >> s) & 0x01010101u) << 2);
    const uint c = 0x04040404u;
    r.wa = uvec4(sub_bytes(ua.x, c), sub_bytes(ua.y, c), sub_bytes(ua.z, c), sub_bytes(ua.w, c));
    r.wb = uvec4(sub_bytes(ub.x, c), sub_bytes(ub.y, c), sub_bytes(ub.z, c), sub_bytes(ub.w, c));
    r.a = d * vec2(float(scale_k3(bb, 2u * s)), float(scale_k3(bb, 2u * s + 1u)));
#elif defined(TYPE_Q2_K)
    const uint h = s / 4u, t = s & 3u;
    const vec2 dm = unpackHalf2x16(ld32(bb + 80u));
    const uint qb = bb + 16u + 32u * h;
    const uint sh = 2u * t;
    r.wa = (ld128(qb) >> sh) & 0x03030303u;
    r.wb = (ld128(qb + 16u) >> sh) & 0x03030303u;
    const uint sc2 = ld16(bb + 2u * s);
    r.a = dm.x * vec2(float(sc2 & 15u), float((sc2 >> 8) & 15u));
    r.mn = dm.y * vec2(float((sc2 >> 4) & 15u), float(sc2 >> 12));
#else
#error "mul_mat_vecq.comp has no integer-dot path for this TYPE_*"
#endif
    return r;
}

shared float red[NR * NMAX * WG];
#ifdef ID
#define SUBGROUP_RED
#include "id_pair.glsl"
#endif

#if defined(LAYER) || defined(ID)
// The q8_1 epilogues' arrival: this workgroup publishes its dst rows and counts itself in
// at counter c; true (uniform) for the last of `arrivals`, which may then read the
// others' rows (coherent dst) and must reset the counter to 0.
bool arrive_last(uint c, uint arrivals) {
    memoryBarrierBuffer();
    barrier();
    if (gl_LocalInvocationID.x == 0u) {
        const uint before = atomicAdd(qcnt[c], 1u);
        last_sh = before == arrivals - 1u ? 1u : 0u;
    }
    barrier();
    const bool last = last_sh != 0u;
    if (last) {
        memoryBarrierBuffer();
    }
    return last;
}
#endif

void main() {
    const uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (!row_in(group, 0u)) {
        return; // uniform per workgroup
    }
    const uint row0 = phys_row(group, 0u);
    const uint tid = gl_LocalInvocationID.x;
    const uint units = p.k / 32u;
    const uint n = NMAX;
#ifdef ID
    // Workgroup z is a (token, slot) pair: its expert's rows, its token's (or slot's) x
    // row, its dst column; a pair whose id is out of range gets 0.
    const uint id_pair = gl_WorkGroupID.z;
    const uint id_xrow = pair_x_row(id_pair);
    // An id out of range computes expert 0's rows and writes 0 (no early return: the
    // q8_1 epilogue's counters need every workgroup).
    const bool id_ok = id_pair_begin(id_pair);
#endif

    float acc[NR][NMAX];
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            acc[r][j] = 0.0;
        }
    }
    float ss[NMAX]; // NORM: this invocation's share of sum(x^2) per token
    [[unroll]] for (uint j = 0u; j < NMAX; j++) {
        ss[j] = 0.0;
    }
    // Rows past m (last workgroup) re-read row0; their sums are dropped.
    uint wbase[NR];
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        wbase[r] = row_addr(row_in(group, r) ? phys_row(group, r) : row0).wbase;
    }
#ifdef KCHUNK4
    for (uint u = tid; u < units / 2u; u += WG) {
        const uint blk = u / 4u, c = u % 4u;
        Unit4 w[NR];
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            w[r] = dq_unit4(wbase[r] + blk * BLOCK_BYTES, c);
        }
        const uint xu0 = blk * 8u + 4u * (c >> 1); // x unit of sub-block t = 0
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            uvec4 xc[4];
            vec2 ds[4];
            [[unroll]] for (uint t = 0u; t < 4u; t++) {
                const uint xu = X_UNIT(j) + xu0 + t;
                xc[t] = xq[(p.x_off >> 2) + 2u * xu + (c & 1u)];
                ds[t] = xds[p.x2_off + xu];
            }
#ifdef TYPE_Q2_K
            vec4 xs;
            [[unroll]] for (uint t = 0u; t < 4u; t++) {
                xs[t] = float(sdot4(uvec4(0x01010101u), xc[t]));
            }
#endif
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                float v = 0.0;
                [[unroll]] for (uint t = 0u; t < 4u; t++) {
                    float it = w[r].a[t] * float(sdot4(w[r].w[t], xc[t]));
#ifdef TYPE_Q2_K
                    it -= w[r].mn[t] * xs[t];
#endif
                    v += ds[t].x * it;
                }
                acc[r][j] += v;
            }
        }
    }
#else
    for (uint u = tid; u < units; u += WG) {
        const uint blk = u / SUBS, s = u % SUBS;
        Unit w[NR];
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            w[r] = dq_unit(wbase[r] + blk * BLOCK_BYTES, s);
        }
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
#ifdef KCHUNK
            // Chunk s holds half hf of x units 2p and 2p + 1 of the block (8 per block).
            const uint xu = X_UNIT(j) + blk * 8u + KX_A(s);
            const uvec4 xa = xq[(p.x_off >> 2) + 2u * xu + (s & 1u)];
            const uvec4 xb = xq[(p.x_off >> 2) + 2u * (xu + KX_D) + (s & 1u)];
            const vec2 ds = xds[p.x2_off + xu];
            const vec2 ds1 = xds[p.x2_off + xu + KX_D];
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                const float ia = float(sdot4(w[r].wa, xa));
                const float ib = float(sdot4(w[r].wb, xb));
                acc[r][j] += ds.x * (w[r].a.x * ia) + ds1.x * (w[r].a.y * ib)
                    + (w[r].mn.x * ds.y + w[r].mn.y * ds1.y);
            }
#else
            const uint xu = X_UNIT(j) + u;
            const uvec4 xa = xq[(p.x_off >> 2) + 2u * xu];
            const uvec4 xb = xq[(p.x_off >> 2) + 2u * xu + 1u];
            const vec2 ds = xds[p.x2_off + xu];
#ifdef TYPE_Q2_K
            const float sa = float(sdot4(uvec4(0x01010101u), xa));
            const float sb = float(sdot4(uvec4(0x01010101u), xb));
#endif
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                const float ia = float(sdot4(w[r].wa, xa));
                const float ib = float(sdot4(w[r].wb, xb));
                float v = w[r].a.x * ia + w[r].a.y * ib;
#ifdef TYPE_Q2_K
                v -= w[r].mn.x * sa + w[r].mn.y * sb;
#endif
                acc[r][j] += ds.x * v + w[r].b * ds.y;
            }
#endif
        }
    }

#endif
    const uint slots = NR * NMAX;
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            const float s = subgroupAdd(acc[r][j]);
            if (subgroupElect()) {
                red[(r * NMAX + j) * WG + gl_SubgroupID] = s;
            }
        }
    }
#ifdef LAYER
    if (NORM) {
        // The sums of squares of x's blocks, from the producer (units = blocks of x).
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            for (uint b = tid; b < units; b += WG) {
                ss[j] += qf_in[p.ss_off + j * units + b];
            }
        }
    }
    store_ss(ss);
    barrier();
#include "mat_vec_layer_out.glsl"
    if (QOUT != 0u) {
        // The q8_1 epilogue (see the top): rows_out | 32 and m_out % 32 == 0 (checked by
        // the dispatch), so this workgroup's rows lie in one block and every block is whole.
        const uint rows_out = GLU ? NR / 2u : NR;
        const uint m_out = GLU ? p.seg_rows[0] : p.m;
        const uint blk = (group * rows_out) / 32u;
        const uint nb = m_out / 32u;
        if (!arrive_last(p.qo_cnt + blk, 32u / rows_out)) {
            return; // uniform per workgroup
        }
        // 8 lanes per (token, block), as q8_store4 takes them (WG % 8 == 0).
        for (uint i = tid; i < 8u * n; i += WG) {
            const uint j = i / 8u, lane = i % 8u;
            const uint e = 32u * blk + 4u * lane;
            const uint o = p.d_off + j * m_out + e;
            vec4 v = vec4(dst[o], dst[o + 1u], dst[o + 2u], dst[o + 3u]);
            if (QOUT == 2u) {
                const float q = q8_sumsq8(v);
                if (lane == 0u) {
                    qf[p.qo_ss + j * nb + blk] = q;
                }
                v *= nw4(e);
            }
            q8_store4(p.qo_codes, p.qo_scales, j * nb + blk, lane, v);
        }
        if (tid == 0u) {
            qcnt[p.qo_cnt + blk] = 0u;
        }
    }
#elif defined(ID)
    barrier();
    id_out_subgroups(group, id_pair, id_ok, tid);
    if (QOUT != 0u) {
        // GLU only (the dispatch checks): NR / 2 output rows per workgroup dividing 32,
        // seg_rows[0] % 32 == 0. Block qb of the pair's output row (dst [m/2, pairs]).
        const uint rows_out = NR / 2u;
        const uint qb = id_pair * (p.seg_rows[0] / 32u) + (group * rows_out) / 32u;
        if (arrive_last(p.qo_cnt + qb, 32u / rows_out)) {
            if (tid < 8u) {
                const uint o = p.d_off + 32u * qb + 4u * tid;
                const vec4 v = vec4(dst[o], dst[o + 1u], dst[o + 2u], dst[o + 3u]);
                q8_store4(p.qo_codes, p.qo_scales, qb, tid, v);
            }
            if (tid == 0u) {
                qcnt[p.qo_cnt + qb] = 0u;
            }
        }
    }
#else
    barrier();
    for (uint t = tid; t < slots; t += WG) {
        const uint r = t / NMAX, j = t % NMAX;
        float s = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++) {
            s += red[(r * NMAX + j) * WG + g];
        }
        const uint row = row0 + r;
        if (row < p.m) {
            const RowAddr a = row_addr(row);
            dst[a.dbase + OUT_COL(j) * a.dstride] = s;
        }
    }
#endif
}
