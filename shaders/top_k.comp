#version 450
// bindings: 4
// push: 32
// workgroup: 1024
// (the real width is specialization constant 0: see dispatch/top_k.rs)
//
// Op::TopK: the k largest logits of each row with the row's log-sum-exp, so a sampler
// reads back 2 + 2k floats instead of the vocabulary (DESIGN.md decision 15).
//   logits f32 [v, n]          (binding 0, from element l_off)
//   dst    f32 [2 + 2k, n]     (binding 1, from element d_off): per row max, log-sum-exp,
//                               then k pairs (id as f32, logit), largest first, ties to
//                               the lower id (f32::total_cmp order, as sample.rs).
// One workgroup per row, radix select on the order-preserving 32-bit key of each logit:
// a histogram of the top 12 key bits (pass 1, which also computes the row's max and
// sum of exp), the bin holding the k-th largest, then the next 12 and the last 8 bits
// within that bin (passes 2, 3; skipped once a bin is taken whole), giving the threshold
// key T with fewer than k keys above it. A last pass takes every key above T and the
// first keys equal to T in id order (each invocation scans a contiguous id range; an
// exclusive scan of the per-invocation counts orders them), and k invocations sort the
// k candidates by rank. Needs k <= KMAX.
//
// Chunked rows (NCH = gl_NumWorkGroups.x > 1; dispatch/top_k.rs `chunks`): workgroup c
// of a row selects within ids [c*chunk, (c+1)*chunk) (the last chunk to the row's end;
// every chunk holds >= k ids) and writes its record (max, log-sum-exp, k pairs, as dst)
// to `part` (binding 2); the last of the row's NCH workgroups to finish (a counter per
// row in binding 3, reset to 0 by that workgroup) merges them: the row max and
// log-sum-exp from the chunks', and the k largest of the NCH*k candidates (<= MAXC) by
// the same radix select run over the candidates in shared memory, which is the
// one-workgroup answer (each of the row's top k is in its chunk's top k). One workgroup
// per row took ~150 us for a 152k vocabulary on an H200; 64 chunks (k = 1) 19 us.
#extension GL_EXT_control_flow_attributes : require

layout(constant_id = 0) const uint WG = 1024;
layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
#define KMAX 64u
#define BINS 4096u

layout(std430, set = 0, binding = 0) readonly restrict buffer L { float logits[]; };
layout(std430, set = 0, binding = 1) writeonly restrict buffer D { float dst[]; };
layout(std430, set = 0, binding = 2) coherent buffer Part { float part[]; };
layout(std430, set = 0, binding = 3) coherent buffer Cnt { uint cnt[]; };

layout(push_constant) uniform Push {
    uint v;
    uint k;
    uint l_off;
    uint d_off;
    uint chunk;    // ids per chunk (NCH > 1)
    uint part_off; // element offsets in bindings 2, 3 (NCH > 1)
    uint cnt_off;
    uint pad;
} p;

// Most candidates a merge selects from (NCH * k), held in mkey / mid.
#define MAXC 1024u

shared uint hist[BINS];
shared uint scan_a[WG];
shared uint scan_b[WG];
shared float red_m[WG];
shared float red_s[WG];
shared uint cand_key[KMAX];
shared uint cand_id[KMAX];
shared uint sel_bin;
shared uint sel_need;
shared uint last_sh;
// The merge's candidates: keys and global ids, chunk by chunk (each chunk's sorted by key
// descending, ids ascending, and chunk c's ids below chunk c+1's: so among equal keys,
// index order is id order, as the one-workgroup selection needs).
shared uint mkey[MAXC];
shared uint mid[MAXC];

uint okey(float f) {
    const uint u = floatBitsToUint(f);
    return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

// Inclusive suffix scan of scan_a over the workgroup (scan_a[t] = sum of t.. WG-1).
void suffix_scan() {
    const uint t = gl_LocalInvocationID.x;
    for (uint off = 1u; off < WG; off <<= 1) {
        barrier();
        const uint add = t + off < WG ? scan_a[t + off] : 0u;
        barrier();
        scan_a[t] += add;
    }
    barrier();
}

// Inclusive prefix scan of scan_b over the workgroup.
void prefix_scan() {
    const uint t = gl_LocalInvocationID.x;
    for (uint off = 1u; off < WG; off <<= 1) {
        barrier();
        const uint add = t >= off ? scan_b[t - off] : 0u;
        barrier();
        scan_b[t] += add;
    }
    barrier();
}

// The key of element i: logit i of the workgroup's range, or merge candidate i.
uint key_at(bool merge, uint base, uint i) {
    return merge ? mkey[i] : okey(logits[base + i]);
}

// The logit of a key (okey is order-preserving and invertible).
float key_logit(uint key) {
    return uintBitsToFloat((key & 0x80000000u) != 0u ? key & 0x7fffffffu : ~key);
}

// Radix select of the k best of n keys (key_at), ties to the lower index: leaves them in
// cand_key / cand_id (indices) [0, k), unordered. The level-0 histogram (top 12 bits) is
// in `hist` already when `hist0`, else built here. Uniform; ends after a barrier.
void select_top(bool merge, uint base, uint n, uint k, bool hist0) {
    const uint t = gl_LocalInvocationID.x;
    if (!hist0) {
        for (uint b = t; b < BINS; b += WG) {
            hist[b] = 0u;
        }
        barrier();
        for (uint i = t; i < n; i += WG) {
            atomicAdd(hist[key_at(merge, base, i) >> 20], 1u);
        }
        barrier();
    }
    // ---- levels of 12, 12 and 8 key bits ----
    uint prefix = 0u;   // key bits fixed so far (the top `nfixed` bits)
    uint nfixed = 0u;
    uint need = k;      // how many still to take from keys with this prefix
    bool whole = false; // the last chosen bin is taken entirely
    for (uint level = 0u; level < 3u; level++) {
        const uint bits = level < 2u ? 12u : 8u;
        const uint shift = 32u - nfixed - bits;
        const uint nb = 1u << bits;
        if (level > 0u) {
            for (uint b = t; b < BINS; b += WG) {
                hist[b] = 0u;
            }
            barrier();
            for (uint i = t; i < n; i += WG) {
                const uint key = key_at(merge, base, i);
                if ((key >> (32u - nfixed)) == prefix) {
                    atomicAdd(hist[(key >> shift) & (nb - 1u)], 1u);
                }
            }
            barrier();
        }
        // Bins per invocation (contiguous), then a suffix scan over invocations.
        const uint per = (nb + WG - 1u) / WG;
        uint local = 0u;
        for (uint j = 0u; j < per; j++) {
            const uint b = t * per + j;
            local += b < nb ? hist[b] : 0u;
        }
        scan_a[t] = local;
        suffix_scan();
        // above(t): count in bins after this invocation's range.
        uint above = t + 1u < WG ? scan_a[t + 1u] : 0u;
        for (uint jj = per; jj > 0u; jj--) {
            const uint b = t * per + jj - 1u;
            if (b >= nb) {
                continue;
            }
            const uint c = hist[b];
            if (above < need && above + c >= need) {
                sel_bin = b;
                sel_need = need - above;
            }
            above += c;
        }
        barrier();
        const uint b = sel_bin;
        need = sel_need;
        prefix = (prefix << bits) | b;
        nfixed += bits;
        whole = hist[b] == need;
        barrier();
        if (whole) {
            break;
        }
    }

    // ---- collect: keys above the prefix, then `need` keys equal to it in index order ----
    const uint chunk = (n + WG - 1u) / WG;
    const uint lo = min(t * chunk, n), hi = min(lo + chunk, n);
    uint n_above = 0u, n_eq = 0u;
    for (uint i = lo; i < hi; i++) {
        const uint kp = key_at(merge, base, i) >> (32u - nfixed);
        n_above += kp > prefix ? 1u : 0u;
        n_eq += kp == prefix ? 1u : 0u;
    }
    // Exclusive positions: equal keys by a prefix scan of n_eq, then keys above by one
    // of n_above.
    scan_b[t] = n_eq;
    prefix_scan();
    const uint eq_before = scan_b[t] - n_eq;
    barrier();
    scan_b[t] = n_above;
    prefix_scan();
    const uint above_before = scan_b[t] - n_above;
    const uint total_above = scan_b[WG - 1u];
    uint ia = above_before, ie = eq_before;
    for (uint i = lo; i < hi; i++) {
        const uint key = key_at(merge, base, i);
        const uint kp = key >> (32u - nfixed);
        if (kp > prefix) {
            if (ia < KMAX) {
                cand_key[ia] = key;
                cand_id[ia] = i;
            }
            ia++;
        } else if (kp == prefix) {
            if (ie < need) {
                cand_key[total_above + ie] = key;
                cand_id[total_above + ie] = i;
            }
            ie++;
        }
    }
    barrier();
}

// Writes the k selected (cand_*) as (id, logit) pairs, largest first, ties to the lower
// id, after (max, lse), at element o of dst (to_dst) or part; ids are c0 + index, or the
// merge candidates' ids. Uniform.
void write_top(bool to_dst, bool merge, uint o, uint c0, uint k, float mx, float lse) {
    const uint t = gl_LocalInvocationID.x;
    if (t == 0u) {
        if (to_dst) {
            dst[o] = mx;
            dst[o + 1u] = lse;
        } else {
            part[o] = mx;
            part[o + 1u] = lse;
        }
    }
    if (t < k) {
        const uint my_key = cand_key[t];
        const uint my_id = merge ? mid[cand_id[t]] : c0 + cand_id[t];
        uint rank = 0u;
        for (uint j = 0u; j < k; j++) {
            const uint kj = cand_key[j];
            const uint ij = merge ? mid[cand_id[j]] : c0 + cand_id[j];
            rank += (kj > my_key || (kj == my_key && ij < my_id)) ? 1u : 0u;
        }
        const uint w = o + 2u + 2u * rank;
        if (to_dst) {
            dst[w] = float(my_id);
            dst[w + 1u] = key_logit(my_key);
        } else {
            part[w] = float(my_id);
            part[w + 1u] = key_logit(my_key);
        }
    }
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint row = gl_WorkGroupID.y;
    const uint nch = gl_NumWorkGroups.x;
    const uint c0 = gl_WorkGroupID.x * p.chunk; // first id of this workgroup's chunk
    const uint len = gl_WorkGroupID.x + 1u == nch ? p.v - c0 : p.chunk;
    const uint base = p.l_off + row * p.v + c0;
    const uint k = p.k;
    const uint rec = 2u + 2u * k;

    // ---- pass 1: max, sum of exp, histogram of the top 12 key bits ----
    for (uint b = t; b < BINS; b += WG) {
        hist[b] = 0u;
    }
    barrier();
    float m = -1.0 / 0.0;
    float s = 0.0;
    for (uint i = t; i < len; i += WG) {
        const float x = logits[base + i];
        if (x > m) {
            s = s * exp(m - x) + 1.0;
            m = x;
        } else if (x > -1.0 / 0.0) {
            s += exp(x - m);
        }
        atomicAdd(hist[okey(x) >> 20], 1u);
    }
    red_m[t] = m;
    red_s[t] = s;
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
        barrier();
        if (t < h) {
            const float m2 = red_m[t + h], s2 = red_s[t + h];
            const float mm = max(red_m[t], m2);
            // exp(-inf - -inf) is NaN: a side with nothing contributes nothing.
            const float a = red_s[t] == 0.0 ? 0.0 : red_s[t] * exp(red_m[t] - mm);
            const float c = s2 == 0.0 ? 0.0 : s2 * exp(m2 - mm);
            red_m[t] = mm;
            red_s[t] = a + c;
        }
    }
    barrier();
    const float row_max = red_m[0];
    const float row_lse = row_max + log(red_s[0]);

    select_top(false, base, len, k, true);
    // One workgroup per row: the record goes to dst; chunked: to this chunk's slot.
    if (nch == 1u) {
        write_top(true, false, p.d_off + row * rec, c0, k, row_max, row_lse);
        return; // uniform per dispatch
    }
    write_top(false, false, p.part_off + (row * nch + gl_WorkGroupID.x) * rec, c0, k,
              row_max, row_lse);

    // ---- chunked: the row's last workgroup to finish merges the NCH records ----
    memoryBarrierBuffer();
    barrier();
    if (t == 0u) {
        const uint before = atomicAdd(cnt[p.cnt_off + row], 1u);
        last_sh = before == nch - 1u ? 1u : 0u;
    }
    barrier();
    if (last_sh == 0u) {
        return; // uniform per workgroup
    }
    memoryBarrierBuffer();
    const uint pb = p.part_off + row * nch * rec;
    // Row max and log-sum-exp: lse = M + log(sum_c exp(lse_c - M)).
    float mm = -1.0 / 0.0;
    for (uint c = t; c < nch; c += WG) {
        mm = max(mm, part[pb + c * rec]);
    }
    red_m[t] = mm;
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
        barrier();
        if (t < h) {
            red_m[t] = max(red_m[t], red_m[t + h]);
        }
    }
    barrier();
    const float gmax = red_m[0];
    float ss = 0.0;
    for (uint c = t; c < nch; c += WG) {
        const float l = part[pb + c * rec + 1u];
        ss += l > -1.0 / 0.0 ? exp(l - gmax) : 0.0;
    }
    red_s[t] = ss;
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
        barrier();
        if (t < h) {
            red_s[t] += red_s[t + h];
        }
    }
    // The NCH * k candidates, chunk by chunk.
    const uint nc = nch * k;
    for (uint i = t; i < nc; i += WG) {
        const uint c = i / k;
        const uint j = i - c * k;
        const uint o = pb + c * rec + 2u + 2u * j;
        mkey[i] = okey(part[o + 1u]);
        mid[i] = uint(part[o]);
    }
    barrier();
    const float gl = gmax + log(red_s[0]);
    select_top(true, 0u, nc, k, false);
    write_top(true, true, p.d_off + row * rec, 0u, k, gmax, gl);
    if (t == 0u) {
        cnt[p.cnt_off + row] = 0u;
    }
}
