//! `swiglu.comp`: gated linear units of the FFN, `dst = silu(g) · u` over
//! `n_elements` f32 values (see `Op::SwiGlu`).
//!
//! `g` and `u` may be sub-ranges of one buffer (the two halves written by a fused
//! gate/up matmul); `dst` may equal `g` or `u` (element-wise, in place).

use bytemuck::{Pod, Zeroable};

use super::mul_mat_vecq::XQ;
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
    q_off: u32,
    ds_off: u32,
    pad: [u32; 2],
}

/// `dst = silu(g) * u`, `silu(v) = v / (1 + e^-v)`.
pub fn swiglu(
    rec: &mut Recorder,
    g: BufferRange<'_>,
    u: BufferRange<'_>,
    dst: BufferRange<'_>,
    n_elements: u32,
) -> Result<()> {
    swiglu_with(rec, g, u, dst, None, n_elements)
}

/// [`swiglu`], also writing the result as q8_1 blocks into `q8` when given (the input of
/// ffn_down's integer-dot mat-vec); needs `n_elements % 32 == 0` then.
pub fn swiglu_with(
    rec: &mut Recorder,
    g: BufferRange<'_>,
    u: BufferRange<'_>,
    dst: BufferRange<'_>,
    q8: Option<XQ<'_>>,
    n_elements: u32,
) -> Result<()> {
    let shader = if q8.is_some() {
        ShaderId::swiglu_q8
    } else {
        ShaderId::swiglu
    };
    let n = u64::from(n_elements);
    count_u32(n, shader.name())?;
    let caps = rec.caps();
    let (rg, g_off) = bind(caps, &g, 4, n, "swiglu g")?;
    let (ru, u_off) = bind(caps, &u, 4, n, "swiglu u")?;
    let (rd, d_off) = bind(caps, &dst, 4, n, "swiglu dst")?;
    let (rq, q_off, rs, ds_off) = super::norm::bind_q8(caps, q8, rd, n_elements, n, shader)?;
    let push = Push {
        n_elements,
        g_off,
        u_off,
        d_off,
        q_off,
        ds_off,
        pad: [0; 2],
    };
    if n == 0 {
        return Ok(());
    }
    // The q8 variant runs one invocation per 4 values.
    let groups = groups_1d(caps, shader, if q8.is_some() { n / 4 } else { n })?;
    rec.dispatch(
        shader,
        &[],
        &[rg, ru, rd, rq, rs],
        bytemuck::bytes_of(&push),
        groups,
    )
}
