// The accumulation loop of common/mul_mat_vec_body.glsl (a statement block of its
// main, included once per weight type: NS(x) names the type's dequantization, see
// common/dequant_type.glsl). Reads tid, wbase[NR]; adds into acc[NR][NMAX] and, with
// NORM, ss[NMAX].
{
    const uint units = (p.k / NS(QK)) * NS(CHUNKS);
    for (uint u = tid; u < units; u += WG) {
        const uint b = u / NS(CHUNKS);
        const uint c = u % NS(CHUNKS);
        const uint o0 = NS(chunk_xoff)(c, 0u), o1 = NS(chunk_xoff)(c, 1u);
        const uint o2 = NS(chunk_xoff)(c, 2u), o3 = NS(chunk_xoff)(c, 3u);
        vec4 w[NR][4];
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            NS(dq_chunk)(wbase[r] + b * NS(BLOCK_BYTES), c, w[r]);
        }
        const uint xb = b * NS(QK);
        [[unroll]] for (uint j = 0u; j < NMAX; j++) {
            const uint e = X_ROW(j) * p.k + xb;
            vec4 x0 = load_x4(e + o0), x1 = load_x4(e + o1);
            vec4 x2 = load_x4(e + o2), x3 = load_x4(e + o3);
#ifdef LAYER
            if (NORM) {
                // nw is re-read per token (L1) rather than held in registers.
                ss[j] += dot(x0, x0) + dot(x1, x1) + dot(x2, x2) + dot(x3, x3);
                x0 *= nw4(xb + o0), x1 *= nw4(xb + o1), x2 *= nw4(xb + o2), x3 *= nw4(xb + o3);
            }
#endif
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                acc[r][j] += dot(w[r][0], x0) + dot(w[r][1], x1) + dot(w[r][2], x2)
                    + dot(w[r][3], x3);
            }
        }
    }
}
