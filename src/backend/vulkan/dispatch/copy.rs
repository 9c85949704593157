//! `copy.comp`: element-wise type conversion, `copy_f32_f32` and `copy_f32_f16`, and
//! `copy_vec4` (16 bytes per invocation, the kernel benches' reference copy).
//!
//! f32 → f16 rounds as the device's `OpFConvert` does (round-to-nearest-even on the
//! drivers we know; Vulkan leaves it implementation-defined).

use bytemuck::{Pod, Zeroable};

use super::{bind, count_u32, groups_1d};
use crate::backend::vulkan::{BufferRange, Recorder, ShaderId};
use crate::{Error, Result};

/// Push constants of `shaders/copy.comp` (must match its `Push` block).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    n: u32,
    src_off: u32,
    dst_off: u32,
    pad: u32,
}

/// `dst[i] = src[i]` for `n` f32 elements.
pub fn copy_f32_f32(
    rec: &mut Recorder,
    src: BufferRange<'_>,
    dst: BufferRange<'_>,
    n: u64,
) -> Result<()> {
    copy(rec, ShaderId::copy_f32_f32, src, dst, n, 4, 4)
}

/// `dst[i] = src[i]` for `n` 16-byte elements (both ranges 16-byte aligned): the kernel
/// benches' reference copy at 16 bytes per invocation.
pub fn copy_vec4(
    rec: &mut Recorder,
    src: BufferRange<'_>,
    dst: BufferRange<'_>,
    n: u64,
) -> Result<()> {
    copy(rec, ShaderId::copy_vec4, src, dst, n, 16, 16)
}

/// `dst[i] = f16(src[i])` for `n` elements (needs 16-bit storage).
pub fn copy_f32_f16(
    rec: &mut Recorder,
    src: BufferRange<'_>,
    dst: BufferRange<'_>,
    n: u64,
) -> Result<()> {
    if !rec.caps().storage_16bit {
        return Err(Error::Unsupported(format!(
            "copy_f32_f16 needs storageBuffer16BitAccess, which {} lacks",
            rec.caps().name
        )));
    }
    copy(rec, ShaderId::copy_f32_f16, src, dst, n, 4, 2)
}

fn copy(
    rec: &mut Recorder,
    shader: ShaderId,
    src: BufferRange<'_>,
    dst: BufferRange<'_>,
    n: u64,
    src_elem: u64,
    dst_elem: u64,
) -> Result<()> {
    let caps = rec.caps();
    let (rs, src_off) = bind(caps, &src, src_elem, n, &format!("{shader} src"))?;
    let (rd, dst_off) = bind(caps, &dst, dst_elem, n, &format!("{shader} dst"))?;
    let push = Push {
        n: count_u32(n, shader.name())?,
        src_off,
        dst_off,
        pad: 0,
    };
    if n == 0 {
        return Ok(());
    }
    let groups = groups_1d(caps, shader, n)?;
    rec.dispatch(shader, &[], &[rs, rd], bytemuck::bytes_of(&push), groups)
}
