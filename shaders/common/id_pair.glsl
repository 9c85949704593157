// The (token, slot) pair setup shared by the decode expert-indexed mat-vecs
// (mul_mat_vec_id.comp through common/mul_mat_vec_body.glsl, mul_mat_vecq_id.comp through
// common/mul_mat_vecq_body.glsl): workgroup z is the pair, ids[id_off + pair] its expert.
// The including body declares `ids` (its binding differs) and `dst` and includes
// common/dequant_matmul.glsl (with ID) first.
#ifndef COMMON_ID_PAIR_GLSL
#define COMMON_ID_PAIR_GLSL

// Sets id_expert to the pair's expert and returns true; for an id out of range writes 0
// to the workgroup's rows row0 .. row0 + nr - 1 of the pair's dst column and returns
// false (uniform per workgroup: the caller returns).
bool id_pair_begin(uint pair, uint row0, uint nr, uint tid, uint wg) {
    const int e = ids[p.id_off + pair];
    if (e < 0 || uint(e) >= p.n_expert) {
        for (uint r = tid; r < nr; r += wg) {
            if (row0 + r < p.m) {
                const RowAddr a = row_addr(row0 + r);
                dst[a.dbase + pair * a.dstride] = 0.0;
            }
        }
        return false;
    }
    id_expert = uint(e);
    return true;
}

#endif
