//! `binary.comp`: element-wise f32 `add` / `mul` with row broadcasting of `b`.
//!
//! `dst[r, i] = a[r, i] op b[r % nrows_b, i]` for `r < nrows_a`, `i < ne0`, where
//! `nrows_a` is a multiple of `nrows_b` (usually `nrows_b` is `nrows_a` or 1).

use bytemuck::{Pod, Zeroable};

use super::{bind, count_u32, groups_1d};
use crate::backend::vulkan::{BufferRange, Recorder, ShaderId};
use crate::{Error, Result};

/// Push constants of `shaders/binary.comp` (must match its `Push` block).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    ne0: u32,
    nrows_a: u32,
    nrows_b: u32,
    a_off: u32,
    b_off: u32,
    d_off: u32,
    pad: [u32; 2],
}

/// `dst = a + b` (f32, `b` broadcast over rows).
pub fn add(
    rec: &mut Recorder,
    a: BufferRange<'_>,
    b: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    nrows_a: u32,
    nrows_b: u32,
) -> Result<()> {
    binary(rec, ShaderId::add, a, b, dst, ne0, nrows_a, nrows_b)
}

/// `dst = a * b` (f32, `b` broadcast over rows).
pub fn mul(
    rec: &mut Recorder,
    a: BufferRange<'_>,
    b: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    nrows_a: u32,
    nrows_b: u32,
) -> Result<()> {
    binary(rec, ShaderId::mul, a, b, dst, ne0, nrows_a, nrows_b)
}

#[allow(clippy::too_many_arguments)]
fn binary(
    rec: &mut Recorder,
    shader: ShaderId,
    a: BufferRange<'_>,
    b: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    nrows_a: u32,
    nrows_b: u32,
) -> Result<()> {
    if nrows_b == 0 || nrows_a % nrows_b != 0 {
        return Err(Error::Usage(format!(
            "{shader}: b has {nrows_b} rows, which does not divide a's {nrows_a} rows"
        )));
    }
    let n = u64::from(ne0) * u64::from(nrows_a);
    count_u32(n, shader.name())?;
    let nb = u64::from(ne0) * u64::from(nrows_b);
    let caps = rec.caps();
    let (ra, a_off) = bind(caps, &a, 4, n, &format!("{shader} a"))?;
    let (rb, b_off) = bind(caps, &b, 4, nb, &format!("{shader} b"))?;
    let (rd, d_off) = bind(caps, &dst, 4, n, &format!("{shader} dst"))?;
    let push = Push {
        ne0,
        nrows_a,
        nrows_b,
        a_off,
        b_off,
        d_off,
        pad: [0; 2],
    };
    if n == 0 {
        return Ok(());
    }
    let groups = groups_1d(caps, shader, n)?;
    rec.dispatch(
        shader,
        &[],
        &[ra, rb, rd],
        bytemuck::bytes_of(&push),
        groups,
    )
}
