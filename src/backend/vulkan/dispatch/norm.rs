//! `rms_norm.comp`: RMS normalization of f32 rows, optionally fused with the
//! multiplication by a weight row that follows it in every transformer block.
//!
//! `dst[r, i] = x[r, i] / sqrt(mean_i(x[r, i]²) + eps)` (times `w[r % w_rows, i]` for
//! [`rms_norm_mul`]), one workgroup per row. The subgroup variants are chosen when the
//! device reports basic + arithmetic subgroup operations in compute shaders; the
//! shared-memory variants work everywhere. Neither assumes a subgroup size.

use ash::vk;
use bytemuck::{Pod, Zeroable};

use super::mul_mat_vecq::XQ;
use super::{bind, count_u32, groups_1d};
use crate::backend::vulkan::{BufferRange, Caps, Recorder, ShaderId};
use crate::{Error, Result};

/// Push constants of `shaders/rms_norm.comp` (must match its `Push` block).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    ne0: u32,
    nrows: u32,
    eps: f32,
    w_rows: u32,
    x_off: u32,
    w_off: u32,
    d_off: u32,
    q_off: u32,
    ds_off: u32,
    pad: [u32; 3],
}

/// How a workgroup sums its row: subgroup arithmetic or a shared-memory tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Subgroup,
    Shared,
}

impl Reduce {
    /// The best path on this device: subgroups when basic + arithmetic subgroup
    /// operations are available to compute shaders.
    pub fn best(caps: &Caps) -> Reduce {
        if caps
            .subgroup_ops
            .contains(vk::SubgroupFeatureFlags::BASIC | vk::SubgroupFeatureFlags::ARITHMETIC)
        {
            Reduce::Subgroup
        } else {
            Reduce::Shared
        }
    }
}

/// `dst = rms_norm(x)` over `nrows` rows of `ne0` f32 values.
pub fn rms_norm(
    rec: &mut Recorder,
    x: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    nrows: u32,
    eps: f32,
) -> Result<()> {
    let reduce = Reduce::best(rec.caps());
    rms_norm_with(rec, reduce, x, None, dst, ne0, nrows, eps)
}

/// `dst = rms_norm(x) * w`, row `r` of the result multiplied by row `r % w_rows` of `w`
/// (the fused `RMS_NORM` + `MUL` pair; usually `w_rows` = 1).
#[allow(clippy::too_many_arguments)]
pub fn rms_norm_mul(
    rec: &mut Recorder,
    x: BufferRange<'_>,
    w: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    nrows: u32,
    w_rows: u32,
    eps: f32,
) -> Result<()> {
    let reduce = Reduce::best(rec.caps());
    rms_norm_with(rec, reduce, x, Some((w, w_rows)), dst, ne0, nrows, eps)
}

/// [`rms_norm_mul`] that also writes its result as q8_1 blocks into `q8` (the input of an
/// integer-dot mat-vec, `dispatch::mul_mat_vecq`); needs `ne0 % 32 == 0`.
#[allow(clippy::too_many_arguments)]
pub fn rms_norm_mul_q8(
    rec: &mut Recorder,
    x: BufferRange<'_>,
    w: BufferRange<'_>,
    dst: BufferRange<'_>,
    q8: XQ<'_>,
    ne0: u32,
    nrows: u32,
    w_rows: u32,
    eps: f32,
) -> Result<()> {
    let shader = match Reduce::best(rec.caps()) {
        Reduce::Subgroup => ShaderId::rms_norm_mul_sg_q8,
        Reduce::Shared => ShaderId::rms_norm_mul_q8,
    };
    record(
        rec,
        shader,
        x,
        Some((w, w_rows)),
        dst,
        Some(q8),
        ne0,
        nrows,
        eps,
    )
}

/// [`rms_norm`] (`w` = `None`) or [`rms_norm_mul`] (`w` = `Some((w, w_rows))`) with an
/// explicit reduction path (tests exercise both on every device).
#[allow(clippy::too_many_arguments)]
pub fn rms_norm_with(
    rec: &mut Recorder,
    reduce: Reduce,
    x: BufferRange<'_>,
    w: Option<(BufferRange<'_>, u32)>,
    dst: BufferRange<'_>,
    ne0: u32,
    nrows: u32,
    eps: f32,
) -> Result<()> {
    if reduce == Reduce::Subgroup && Reduce::best(rec.caps()) != Reduce::Subgroup {
        return Err(Error::Unsupported(format!(
            "rms_norm: {} lacks subgroup arithmetic in compute shaders",
            rec.caps().name
        )));
    }
    let shader = match (reduce, w.is_some()) {
        (Reduce::Subgroup, false) => ShaderId::rms_norm_sg,
        (Reduce::Shared, false) => ShaderId::rms_norm,
        (Reduce::Subgroup, true) => ShaderId::rms_norm_mul_sg,
        (Reduce::Shared, true) => ShaderId::rms_norm_mul,
    };
    record(rec, shader, x, w, dst, None, ne0, nrows, eps)
}

#[allow(clippy::too_many_arguments)]
fn record(
    rec: &mut Recorder,
    shader: ShaderId,
    x: BufferRange<'_>,
    w: Option<(BufferRange<'_>, u32)>,
    dst: BufferRange<'_>,
    q8: Option<XQ<'_>>,
    ne0: u32,
    nrows: u32,
    eps: f32,
) -> Result<()> {
    let n = u64::from(ne0) * u64::from(nrows);
    count_u32(n, shader.name())?;
    check_eps(shader, eps)?;
    let caps = rec.caps();
    let (rx, x_off) = bind(caps, &x, 4, n, &format!("{shader} x"))?;
    let (rw, w_rows, w_off) = match w {
        Some((w, w_rows)) => {
            check_w_rows(shader, w_rows, nrows)?;
            let nw = u64::from(ne0) * u64::from(w_rows);
            let (rw, w_off) = bind(caps, &w, 4, nw, &format!("{shader} w"))?;
            (rw, w_rows, w_off)
        }
        // The plain variants never read binding 1; x stands in for it.
        None => (rx, 1, x_off),
    };
    let (rd, d_off) = bind(caps, &dst, 4, n, &format!("{shader} dst"))?;
    let (rq, q_off, rs, ds_off) = bind_q8(caps, q8, rd, ne0, n, shader)?;
    let push = Push {
        ne0,
        nrows,
        eps,
        w_rows,
        x_off,
        w_off,
        d_off,
        q_off,
        ds_off,
        pad: [0; 3],
    };
    if n == 0 {
        return Ok(());
    }
    // One workgroup per row, on a 2-D grid (row = y * groups_x + x in the shader).
    let wg = u64::from(shader.workgroup()[0]);
    let groups = groups_1d(caps, shader, u64::from(nrows) * wg)?;
    rec.dispatch(
        shader,
        &[],
        &[rx, rw, rd, rq, rs],
        bytemuck::bytes_of(&push),
        groups,
    )
}

/// Push constants of `shaders/add_rms_norm_mul.comp` (must match its `Push` block).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct AddPush {
    ne0: u32,
    nrows: u32,
    eps: f32,
    w_rows: u32,
    a_off: u32,
    b_off: u32,
    w_off: u32,
    d_off: u32,
    q_off: u32,
    ds_off: u32,
    s_off: u32,
    pad: u32,
    n_used: u32,
    m_off: u32,
    pad2: [u32; 2],
}

/// `dst = rms_norm(a + b) * w` over `nrows` rows of `ne0` (row `r` of `w` is `r % w_rows`):
/// the residual add feeding a norm, fused so the norm need not wait for the add.
#[allow(clippy::too_many_arguments)]
pub fn add_rms_norm_mul(
    rec: &mut Recorder,
    a: BufferRange<'_>,
    b: BufferRange<'_>,
    w: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    nrows: u32,
    w_rows: u32,
    eps: f32,
) -> Result<()> {
    add_rms_norm_mul_with(rec, a, b, w, dst, None, None, ne0, nrows, w_rows, eps)
}

/// [`add_rms_norm_mul`], also writing the result as q8_1 blocks into `q8` when given
/// (see [`rms_norm_mul_q8`]) and `a + b` itself into `sum` when given (the residual ADD
/// folded into the same dispatch).
#[allow(clippy::too_many_arguments)]
pub fn add_rms_norm_mul_with(
    rec: &mut Recorder,
    a: BufferRange<'_>,
    b: BufferRange<'_>,
    w: BufferRange<'_>,
    dst: BufferRange<'_>,
    q8: Option<XQ<'_>>,
    sum: Option<BufferRange<'_>>,
    ne0: u32,
    nrows: u32,
    w_rows: u32,
    eps: f32,
) -> Result<()> {
    sum_rms_norm_mul(rec, a, b, None, w, dst, q8, sum, ne0, nrows, w_rows, eps)
}

/// The experts' weighted outputs of a mixture-of-experts layer, `r` (the residual) added
/// and RMS-normalized (Op::MoeSumRmsNormMul): `s = r + Σ_j wts[j][t] · y[t][j]` summed as
/// [`super::moe::moe_sum`] sums, `dst = rms_norm(s) * w`, and `s` itself into `sum` when
/// given (the MOE_SUM_ADD node folded into this dispatch). `y`: f32 `[ne0, n_used,
/// nrows]`, `wts`: f32 `[n_used, nrows]`; `q8` as in [`add_rms_norm_mul_with`].
#[allow(clippy::too_many_arguments)]
pub fn moe_sum_rms_norm_mul(
    rec: &mut Recorder,
    r: BufferRange<'_>,
    y: BufferRange<'_>,
    wts: BufferRange<'_>,
    n_used: u32,
    w: BufferRange<'_>,
    dst: BufferRange<'_>,
    q8: Option<XQ<'_>>,
    sum: Option<BufferRange<'_>>,
    ne0: u32,
    nrows: u32,
    w_rows: u32,
    eps: f32,
) -> Result<()> {
    if n_used == 0 {
        return Err(Error::Usage(
            "moe_sum_rms_norm_mul: no experts per token (n_used = 0)".into(),
        ));
    }
    moe_sum_rms_norm_support(rec.caps(), ne0)?;
    sum_rms_norm_mul(
        rec,
        r,
        y,
        Some((wts, n_used)),
        w,
        dst,
        q8,
        sum,
        ne0,
        nrows,
        w_rows,
        eps,
    )
}

/// Longest row the MOE variants take (`MOE_MAX_NE0`: the row's values stay in shared
/// memory between the two passes).
pub const MOE_SUM_MAX_NE0: u32 = 4096;

/// Why [`moe_sum_rms_norm_mul`] cannot take rows of `ne0` on this device, or `Ok`: rows
/// of at most [`MOE_SUM_MAX_NE0`] and room for them in shared memory.
pub fn moe_sum_rms_norm_support(caps: &Caps, ne0: u32) -> Result<()> {
    let need = 4 * MOE_SUM_MAX_NE0 + 4096;
    if ne0 > MOE_SUM_MAX_NE0 {
        return Err(Error::Unsupported(format!(
            "moe_sum_rms_norm_mul: rows of {ne0} values (at most {MOE_SUM_MAX_NE0})"
        )));
    }
    if caps.max_compute_shared_memory_size < need {
        return Err(Error::Unsupported(format!(
            "moe_sum_rms_norm_mul: needs {need} bytes of shared memory, the device has {}",
            caps.max_compute_shared_memory_size
        )));
    }
    Ok(())
}

/// `shaders/add_rms_norm_mul.comp` in all its variants: `b` is the second addend, or with
/// `moe` = (weights, n_used) the experts' outputs to sum.
#[allow(clippy::too_many_arguments)]
fn sum_rms_norm_mul(
    rec: &mut Recorder,
    a: BufferRange<'_>,
    b: BufferRange<'_>,
    moe: Option<(BufferRange<'_>, u32)>,
    w: BufferRange<'_>,
    dst: BufferRange<'_>,
    q8: Option<XQ<'_>>,
    sum: Option<BufferRange<'_>>,
    ne0: u32,
    nrows: u32,
    w_rows: u32,
    eps: f32,
) -> Result<()> {
    use ShaderId as S;
    let caps = rec.caps();
    // A few long rows (decode): 1024 invocations per row instead of 256.
    let wide = Reduce::best(caps) == Reduce::Subgroup
        && ne0 >= 2048
        && nrows <= 16
        && caps.device_type != vk::PhysicalDeviceType::CPU
        && caps.max_compute_work_group_invocations >= 1024
        && caps.max_compute_work_group_size[0] >= 1024;
    let sg = Reduce::best(caps) == Reduce::Subgroup;
    let shader = match (moe.is_some(), sg, q8.is_some(), sum.is_some()) {
        (false, true, false, false) if wide => S::add_rms_norm_mul_sg_wide,
        (false, true, true, false) if wide => S::add_rms_norm_mul_sg_q8_wide,
        (false, true, false, true) if wide => S::add_rms_norm_mul_sg_sum_wide,
        (false, true, true, true) if wide => S::add_rms_norm_mul_sg_q8_sum_wide,
        (false, true, false, false) => S::add_rms_norm_mul_sg,
        (false, false, false, false) => S::add_rms_norm_mul,
        (false, true, true, false) => S::add_rms_norm_mul_sg_q8,
        (false, false, true, false) => S::add_rms_norm_mul_q8,
        (false, true, false, true) => S::add_rms_norm_mul_sg_sum,
        (false, false, false, true) => S::add_rms_norm_mul_sum,
        (false, true, true, true) => S::add_rms_norm_mul_sg_q8_sum,
        (false, false, true, true) => S::add_rms_norm_mul_q8_sum,
        (true, true, false, false) if wide => S::moe_sum_rms_norm_mul_sg_wide,
        (true, true, true, false) if wide => S::moe_sum_rms_norm_mul_sg_q8_wide,
        (true, true, false, true) if wide => S::moe_sum_rms_norm_mul_sg_sum_wide,
        (true, true, true, true) if wide => S::moe_sum_rms_norm_mul_sg_q8_sum_wide,
        (true, true, false, false) => S::moe_sum_rms_norm_mul_sg,
        (true, false, false, false) => S::moe_sum_rms_norm_mul,
        (true, true, true, false) => S::moe_sum_rms_norm_mul_sg_q8,
        (true, false, true, false) => S::moe_sum_rms_norm_mul_q8,
        (true, true, false, true) => S::moe_sum_rms_norm_mul_sg_sum,
        (true, false, false, true) => S::moe_sum_rms_norm_mul_sum,
        (true, true, true, true) => S::moe_sum_rms_norm_mul_sg_q8_sum,
        (true, false, true, true) => S::moe_sum_rms_norm_mul_q8_sum,
    };
    let n = u64::from(ne0) * u64::from(nrows);
    count_u32(n, shader.name())?;
    check_eps(shader, eps)?;
    check_w_rows(shader, w_rows, nrows)?;
    let n_used = moe.as_ref().map_or(1, |m| m.1);
    let ny = n * u64::from(n_used);
    count_u32(ny, shader.name())?;
    let (ra, a_off) = bind(caps, &a, 4, n, &format!("{shader} a"))?;
    let (rb, b_off) = bind(caps, &b, 4, ny, &format!("{shader} b"))?;
    let nw = u64::from(ne0) * u64::from(w_rows);
    let (rw, w_off) = bind(caps, &w, 4, nw, &format!("{shader} w"))?;
    let (rd, d_off) = bind(caps, &dst, 4, n, &format!("{shader} dst"))?;
    let (rq, q_off, rs, ds_off) = bind_q8(caps, q8, rd, ne0, n, shader)?;
    let (rsum, s_off) = match &sum {
        Some(sum) => bind(caps, sum, 4, n, &format!("{shader} sum"))?,
        None => (rd, 0),
    };
    let (rm, m_off) = match &moe {
        Some((wts, _)) => {
            let nm = u64::from(n_used) * u64::from(nrows);
            bind(caps, wts, 4, nm, &format!("{shader} expert weights"))?
        }
        None => (rd, 0),
    };
    let push = AddPush {
        ne0,
        nrows,
        eps,
        w_rows,
        a_off,
        b_off,
        w_off,
        d_off,
        q_off,
        ds_off,
        s_off,
        pad: 0,
        n_used,
        m_off,
        pad2: [0; 2],
    };
    if n == 0 {
        return Ok(());
    }
    let wg = u64::from(shader.workgroup()[0]);
    let groups = groups_1d(caps, shader, u64::from(nrows) * wg)?;
    rec.dispatch(
        shader,
        &[],
        &[ra, rb, rw, rd, rq, rs, rsum, rm],
        bytemuck::bytes_of(&push),
        groups,
    )
}

/// Bindings and element offsets of a q8_1 output (`None`: `unused` stands in, offsets 0),
/// for `n` values in rows of `ne0` (a multiple of 32).
pub(crate) fn bind_q8<'a>(
    caps: &Caps,
    q8: Option<XQ<'a>>,
    unused: BufferRange<'a>,
    ne0: u32,
    n: u64,
    shader: ShaderId,
) -> Result<(BufferRange<'a>, u32, BufferRange<'a>, u32)> {
    let Some(q8) = q8 else {
        return Ok((unused, 0, unused, 0));
    };
    if ne0 % 32 != 0 {
        return Err(Error::Unsupported(format!(
            "{shader}: a q8_1 output needs rows of a multiple of 32 values, not {ne0}"
        )));
    }
    let (rq, q_off) = bind(caps, &q8.codes, 4, n / 4, &format!("{shader} q8 codes"))?;
    let (rs, ds_off) = bind(caps, &q8.scales, 8, n / 32, &format!("{shader} q8 scales"))?;
    Ok((rq, q_off, rs, ds_off))
}

fn check_eps(shader: ShaderId, eps: f32) -> Result<()> {
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(Error::Usage(format!(
            "{shader}: eps {eps} must be finite and >= 0"
        )));
    }
    Ok(())
}

/// The weight's rows must divide x's rows (row `r` uses weight row `r % w_rows`).
fn check_w_rows(shader: ShaderId, w_rows: u32, nrows: u32) -> Result<()> {
    if w_rows == 0 || nrows % w_rows != 0 {
        return Err(Error::Usage(format!(
            "{shader}: weight has {w_rows} rows, which does not divide x's {nrows} rows"
        )));
    }
    Ok(())
}
