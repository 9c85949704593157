//! `swiglu.comp`: gated linear units of the FFN, `dst = silu(g) · u` over
//! `n_elements` f32 values (see `Op::SwiGlu`).
//!
//! `g` and `u` may be sub-ranges of one buffer (the two halves written by a fused
//! gate/up matmul); `dst` may equal `g` or `u` (element-wise, in place).

use bytemuck::{Pod, Zeroable};

use super::{bind, count_u32, groups_1d};
use crate::backend::vulkan::{BufferRange, Recorder, ShaderId};
use crate::Result;

/// Push constants of `shaders/swiglu.comp` (must match its `Push` block).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    n_elements: u32,
    g_off: u32,
    u_off: u32,
    d_off: u32,
}

/// `dst = silu(g) * u`, `silu(v) = v / (1 + e^-v)`.
pub fn swiglu(
    rec: &mut Recorder,
    g: BufferRange<'_>,
    u: BufferRange<'_>,
    dst: BufferRange<'_>,
    n_elements: u32,
) -> Result<()> {
    let shader = ShaderId::swiglu;
    let n = u64::from(n_elements);
    count_u32(n, shader.name())?;
    let caps = rec.caps();
    let (rg, g_off) = bind(caps, &g, 4, n, "swiglu g")?;
    let (ru, u_off) = bind(caps, &u, 4, n, "swiglu u")?;
    let (rd, d_off) = bind(caps, &dst, 4, n, "swiglu dst")?;
    let push = Push {
        n_elements,
        g_off,
        u_off,
        d_off,
    };
    if n == 0 {
        return Ok(());
    }
    let groups = groups_1d(caps, shader, n)?;
    rec.dispatch(
        shader,
        &[],
        &[rg, ru, rd],
        bytemuck::bytes_of(&push),
        groups,
    )
}
