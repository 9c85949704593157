//! `mul_mat_vec_group.comp`: one mat-vec dispatch over sibling weights of two different
//! types (DESIGN.md decision 14) — a MUL_MAT (or a MUL_MAT_NORM, `Op::MulMatLayer` with
//! an RMS-norm prologue) over a grouped weight (`TensorKind::GroupedWeight`): Q/K/V of a
//! Q2_K or Q4_K_M mix, whose attn_v has a bigger type.
//!
//! Invariants:
//! - `w` holds the segments back to back, segment `s` = `segs[s].rows` rows of `k` values
//!   of `segs[s].ty` (the loader's placement of a grouped weight); the output is split on
//!   write as for a fused weight (segment `s` is a contiguous `[rows_s, n]` block).
//! - The segments have exactly two distinct types with a compiled pair
//!   ([`group_shader`]: the K-quant pairs), at most `MAX_SEGMENTS` segments, `n <=
//!   MAT_VEC_MAX_N` tokens; larger batches run the members one by one
//!   ([`mul_mat_group_each`]) with the ordinary kernels.
//! - A workgroup's rows never straddle two segments: the rows per workgroup are halved
//!   until they divide every segment but the last.

use bytemuck::{Pod, Zeroable};

use super::mul_mat::{
    grid_2d, has_subgroup_add, kernel_qk, mat_vec_launch, MatVecShape, Push, TiledKernel,
    WeightBinding, MAT_VEC_MAX_N, MAX_SEGMENTS,
};
use super::{bind, count_u32};
use crate::backend::vulkan::{BufferRange, Caps, Recorder, ShaderId};
use crate::quant::GgmlType;
use crate::{Error, Result};

/// One member of a grouped weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupSegment {
    pub ty: GgmlType,
    pub rows: u32,
}

/// Push constants of `mul_mat_vec_group.comp` (`shaders/common/dequant_matmul.glsl`):
/// [`Push`] (its `row_bytes` unused), the LAYER fields, then the GROUP ones; 112 bytes.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GroupPush {
    base: Push,
    nw_off: u32,
    r_off: u32,
    eps: f32,
    scale: f32,
    seg_rb: [u32; 4],
    seg_b: u32,
    pad: [u32; 3],
}

/// The grouped kernel for types `a` and `b` (either order) and whether `b`'s segments are
/// the shader's TYPE_A (the pair is compiled in one order only).
pub fn group_shader(a: GgmlType, b: GgmlType) -> Option<(ShaderId, bool)> {
    use GgmlType as T;
    use ShaderId as S;
    let pick = |x: GgmlType, y: GgmlType| -> Option<ShaderId> {
        Some(match (x, y) {
            (T::Q2K, T::Q3K) => S::mul_mat_vec_group_q2_K_q3_K,
            (T::Q2K, T::Q4K) => S::mul_mat_vec_group_q2_K_q4_K,
            (T::Q2K, T::Q5K) => S::mul_mat_vec_group_q2_K_q5_K,
            (T::Q2K, T::Q6K) => S::mul_mat_vec_group_q2_K_q6_K,
            (T::Q3K, T::Q4K) => S::mul_mat_vec_group_q3_K_q4_K,
            (T::Q3K, T::Q5K) => S::mul_mat_vec_group_q3_K_q5_K,
            (T::Q3K, T::Q6K) => S::mul_mat_vec_group_q3_K_q6_K,
            (T::Q4K, T::Q5K) => S::mul_mat_vec_group_q4_K_q5_K,
            (T::Q4K, T::Q6K) => S::mul_mat_vec_group_q4_K_q6_K,
            (T::Q5K, T::Q6K) => S::mul_mat_vec_group_q5_K_q6_K,
            _ => return None,
        })
    };
    pick(a, b)
        .map(|s| (s, false))
        .or_else(|| pick(b, a).map(|s| (s, true)))
}

/// The two distinct types of `segs` (in order of first appearance), or why the grouped
/// kernel cannot take them.
fn two_types(segs: &[GroupSegment]) -> std::result::Result<(GgmlType, GgmlType), String> {
    let mut types: Vec<GgmlType> = Vec::new();
    for s in segs {
        if !types.contains(&s.ty) {
            types.push(s.ty);
        }
    }
    match types.as_slice() {
        [a, b] => Ok((*a, *b)),
        [_] => Err("one weight type (a fused matmul, not a grouped one)".into()),
        _ => Err(format!(
            "{} weight types ({}); the grouped mat-vec takes two",
            types.len(),
            types
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Why the grouped mat-vec cannot take segments `segs` with rows of `k` values on this
/// device (for any batch up to `MAT_VEC_MAX_N`), or `Ok` — the checks
/// [`mul_mat_vec_group`] makes, for plan time (`Backend::groups_mat_vec`).
pub fn group_support(
    caps: &Caps,
    segs: &[GroupSegment],
    k: u64,
) -> std::result::Result<(), String> {
    if segs.len() > MAX_SEGMENTS {
        return Err(format!(
            "{} members; the grouped mat-vec takes at most {MAX_SEGMENTS}",
            segs.len()
        ));
    }
    let (a, b) = two_types(segs)?;
    if group_shader(a, b).is_none() {
        return Err(format!("no grouped mat-vec kernel for {a} + {b}"));
    }
    if !has_subgroup_add(caps) || !caps.storage_16bit {
        return Err(format!(
            "{} lacks subgroup arithmetic or 16-bit storage",
            caps.name
        ));
    }
    for s in segs {
        let qk = u64::from(kernel_qk(s.ty));
        if k == 0 || k % qk != 0 {
            return Err(format!(
                "k = {k} is not a multiple of {}'s {qk}-value block",
                s.ty
            ));
        }
    }
    let k = u32::try_from(k).map_err(|_| format!("k = {k} exceeds 32 bits"))?;
    mat_vec_launch(caps, a, k, MAT_VEC_MAX_N, None, 1, "grouped mat-vec")
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Records `dst = scale · W · x' (+ bias)` for a grouped weight `w` (segments `segs`, back
/// to back) and `n <= MAT_VEC_MAX_N` tokens in one dispatch: `x'` is `x` or, with `norm`,
/// `rms_norm(x) * nw` per token (nw f32 `[k]`); `bias` (f32 `[m]`, rows numbered across the
/// segments) is added per row. `dst` is split on write per segment.
/// `Error::Unsupported` where [`group_support`] says so.
#[allow(clippy::too_many_arguments)]
pub fn mul_mat_vec_group(
    rec: &mut Recorder,
    segs: &[GroupSegment],
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    norm: Option<(BufferRange<'_>, f32)>,
    bias: Option<BufferRange<'_>>,
    scale: f32,
    dst: BufferRange<'_>,
    k: u32,
    n: u32,
    shape: Option<MatVecShape>,
) -> Result<()> {
    let m: u32 = segs.iter().map(|s| s.rows).sum();
    let types: Vec<&str> = segs.iter().map(|s| s.ty.name()).collect();
    let what = format!(
        "mul_mat_vec_group(types={},m={m},k={k},n={n})",
        types.join("+")
    );
    let caps = rec.caps();
    group_support(caps, segs, u64::from(k))
        .map_err(|e| Error::Unsupported(format!("{what}: {e}")))?;
    if n > MAT_VEC_MAX_N {
        return Err(Error::Unsupported(format!(
            "{what}: the grouped mat-vec takes at most {MAT_VEC_MAX_N} tokens"
        )));
    }
    let (a, b) = two_types(segs).expect("checked by group_support");
    let (shader, swapped) = group_shader(a, b).expect("checked by group_support");
    let kn = u64::from(k) * u64::from(n);
    let mn = u64::from(m) * u64::from(n);
    count_u32(kn, &what)?;
    count_u32(mn, &what)?;
    // The weight binding: every segment, 2-byte elements (all block sizes are even).
    let mut seg_rows = [0u32; 4];
    let mut seg_rb = [0u32; 4];
    let mut rel = [0u64; 4];
    let mut seg_b = 0u32;
    let mut total = 0u64;
    for (s, seg) in segs.iter().enumerate() {
        let rb = seg
            .ty
            .row_bytes(k as usize)
            .expect("checked by group_support") as u64;
        seg_rows[s] = seg.rows;
        seg_rb[s] = u32::try_from(rb)
            .map_err(|_| Error::Unsupported(format!("{what}: row of {rb} bytes")))?;
        rel[s] = total;
        total += rb * u64::from(seg.rows);
        if (seg.ty == b) != swapped {
            seg_b |= 1 << s;
        }
    }
    let (rw, w_off) = bind(caps, &w, 2, total / 2, &format!("{what} weights"))?;
    let w_off = u64::from(w_off) * 2;
    if w_off + total > u64::from(u32::MAX) {
        return Err(Error::Unsupported(format!(
            "{what}: {total} weight bytes exceed the kernels' 32-bit byte offsets"
        )));
    }
    let mut seg_woff = [0u32; 4];
    for s in 0..segs.len() {
        seg_woff[s] = (w_off + rel[s]) as u32; // checked above
    }
    let (rx, x_off) = bind(caps, &x, 4, kn, &format!("{what} x"))?;
    let (rd, d_off) = bind(caps, &dst, 4, mn, &format!("{what} dst"))?;
    let (rnw, nw_off, eps) = match &norm {
        Some((nw, eps)) => {
            let (r, o) = bind(caps, nw, 4, u64::from(k), &format!("{what} norm weight"))?;
            (r, o, *eps)
        }
        None => (rx, 0, 0.0),
    };
    let (rb, r_off) = match &bias {
        Some(b) => bind(caps, b, 4, u64::from(m), &format!("{what} bias"))?,
        None => (rx, 0),
    };
    if m == 0 || n == 0 {
        return Ok(());
    }
    let (mut shape, wg) = mat_vec_launch(caps, a, k, n, shape, 1, &what)?;
    // A workgroup's rows stay within one segment (so its type is uniform).
    let inner = &segs[..segs.len() - 1];
    while shape.rows > 1 && inner.iter().any(|s| s.rows % shape.rows != 0) {
        shape.rows /= 2;
    }
    let wb = WeightBinding {
        range: rw,
        nseg: segs.len() as u32,
        row_bytes: 0,
        seg_rows,
        seg_woff,
    };
    let push = GroupPush {
        base: Push::new(k, m, n, &wb, x_off, 0, d_off),
        nw_off,
        r_off,
        eps,
        scale,
        seg_rb,
        seg_b,
        pad: [0; 3],
    };
    let groups = grid_2d(caps, m.div_ceil(shape.rows), &what)?;
    rec.dispatch(
        shader,
        &[
            wg,
            shape.rows,
            u32::from(x_off % 4 == 0),
            n,
            u32::from(norm.is_some()),
            if bias.is_some() { 3 } else { 0 },
            u32::from(nw_off % 4 == 0),
        ],
        &[wb.range, rx, rd, rnw, rb],
        bytemuck::bytes_of(&push),
        groups,
    )
}

/// Records a grouped weight's product member by member with the ordinary matmul kernels
/// (`dispatch::mul_mat::mul_mat_with`, one dispatch per segment, no barrier between:
/// they write disjoint blocks of `dst`) — batches beyond the grouped mat-vec.
#[allow(clippy::too_many_arguments)]
pub fn mul_mat_group_each(
    rec: &mut Recorder,
    segs: &[GroupSegment],
    w: BufferRange<'_>,
    x: BufferRange<'_>,
    dst: BufferRange<'_>,
    k: u32,
    n: u32,
    shape: Option<MatVecShape>,
    tiled: TiledKernel,
) -> Result<()> {
    let mut wat = 0u64;
    let mut dat = 0u64;
    for seg in segs {
        let rb = seg.ty.row_bytes(k as usize).ok_or_else(|| {
            Error::Unsupported(format!(
                "grouped matmul: k = {k} is not a multiple of {}'s block",
                seg.ty
            ))
        })? as u64;
        let wb = rb * u64::from(seg.rows);
        let db = 4 * u64::from(seg.rows) * u64::from(n);
        if wat + wb > w.size || dat + db > dst.size {
            return Err(Error::Usage(format!(
                "grouped matmul: segments {segs:?} exceed the weight or output range"
            )));
        }
        let ws = w.buffer.range(w.offset + wat, wb);
        let ds = dst.buffer.range(dst.offset + dat, db);
        super::mul_mat::mul_mat_with(
            rec,
            seg.ty,
            ws,
            x,
            ds,
            k,
            seg.rows,
            n,
            &[],
            shape,
            tiled,
            None,
        )?;
        wat += wb;
        dat += db;
    }
    Ok(())
}
