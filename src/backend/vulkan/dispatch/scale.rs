//! `scale.comp`: `dst[i] = a[i] * scale + bias` over `n` f32 elements.

use bytemuck::{Pod, Zeroable};

use super::{bind, count_u32, groups_1d};
use crate::backend::vulkan::{BufferRange, Recorder, ShaderId};
use crate::Result;

/// Push constants of `shaders/scale.comp` (must match its `Push` block).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    n: u32,
    a_off: u32,
    d_off: u32,
    scale: f32,
    bias: f32,
    pad: [u32; 3],
}

/// `dst = a * scale + bias` (f32; `a` and `dst` may be the same range).
pub fn scale(
    rec: &mut Recorder,
    a: BufferRange<'_>,
    dst: BufferRange<'_>,
    n: u64,
    scale: f32,
    bias: f32,
) -> Result<()> {
    let shader = ShaderId::scale;
    let caps = rec.caps();
    let (ra, a_off) = bind(caps, &a, 4, n, "scale a")?;
    let (rd, d_off) = bind(caps, &dst, 4, n, "scale dst")?;
    let push = Push {
        n: count_u32(n, "scale")?,
        a_off,
        d_off,
        scale,
        bias,
        pad: [0; 3],
    };
    if n == 0 {
        return Ok(());
    }
    let groups = groups_1d(caps, shader, n)?;
    rec.dispatch(shader, &[], &[ra, rd], bytemuck::bytes_of(&push), groups)
}
