// The output of a fused mat-vec (LAYER; common/mat_vec_layer.glsl): a statement block of
// main, included by common/mul_mat_vec_body.glsl and common/mul_mat_vecq_body.glsl after
// the barrier that follows their reduction. Reads red (the NR x NMAX partial sums, one
// slot per subgroup), red_ss (NORM: per token sum(x^2)), group, tid, n and slots; writes
// one value per (logical row, token): scale · W·x (times 1/rms with NORM), then the
// epilogue (EPI 1 residual, 2 SwiGLU of a gate/up pair, 3 per-row bias, 4 / 5 a LoRA
// product added to the up / gate half of a fused gate/up output in binding 4 — gate
// block, then up block, m x n each — then SwiGLU: Epilogue::AddSwiGlu).
{
    // One output per (logical row, token): a gate/up pair with GLU.
    const uint per = GLU ? 2u : 1u;
    for (uint t = tid; t < slots / per; t += WG) {
        const uint r = (t / n) * per, j = t % n;
        if (!row_in(group, r)) {
            continue;
        }
        float scale = p.scale;
        if (NORM) {
            float q = 0.0;
            for (uint g = 0u; g < gl_NumSubgroups; g++) {
                q += red_ss[j * WG + g];
            }
            scale *= inversesqrt(q / float(p.k) + p.eps);
        }
        float s = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++) {
            s += red[(r * NMAX + j) * WG + g];
        }
        s *= scale;
        const uint row = phys_row(group, r);
        if (GLU) {
            float u = 0.0;
            for (uint g = 0u; g < gl_NumSubgroups; g++) {
                u += red[((r + 1u) * NMAX + j) * WG + g];
            }
            u *= scale;
            dst[p.d_off + j * p.seg_rows[0] + row] = s / (1.0 + exp(-s)) * u;
        } else if (EPI == 1u) {
            dst[p.d_off + j * p.m + row] = s + rs[p.r_off + j * p.m + row];
        } else if (EPI == 4u || EPI == 5u) {
            // As MUL_MAT_ADD then SWIGLU: the sum first, then silu(gate) * up.
            const uint e = p.r_off + j * p.m + row, mn = p.m * p.n;
            const float gt = EPI == 5u ? s + rs[e] : rs[e];
            const float up = EPI == 4u ? s + rs[e + mn] : rs[e + mn];
            dst[p.d_off + j * p.m + row] = gt / (1.0 + exp(-gt)) * up;
        } else if (EPI == 3u) {
            const RowAddr a = row_addr(row);
            dst[a.dbase + j * a.dstride] = s + rs[p.r_off + row];
        } else {
            const RowAddr a = row_addr(row);
            dst[a.dbase + j * a.dstride] = s;
        }
    }
}
