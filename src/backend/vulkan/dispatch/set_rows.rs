//! `set_rows.comp`: scatter f32 rows into an f16 table at row indices read from a
//! buffer (the KV-cache write of `Op::SetRows`).

use bytemuck::{Pod, Zeroable};

use super::{bind, count_u32, groups_1d};
use crate::backend::vulkan::{BufferRange, Recorder, ShaderId};
use crate::{Error, Result};

/// Push constants of `shaders/set_rows.comp` (must match its `Push` block).
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    n: u32,
    ne0: u32,
    n_rows: u32,
    src_off: u32,
    idx_off: u32,
    dst_off: u32,
    pad: [u32; 2],
}

/// `dst[idx[i]] = f16(src[i])` for the `n` rows of `ne0` values of `src`; `dst` has
/// `n_rows` rows (indices outside are skipped).
pub fn set_rows_f16(
    rec: &mut Recorder,
    src: BufferRange<'_>,
    idx: BufferRange<'_>,
    dst: BufferRange<'_>,
    ne0: u32,
    n: u32,
    n_rows: u32,
) -> Result<()> {
    let shader = ShaderId::set_rows_f16;
    if !rec.caps().storage_16bit {
        return Err(Error::Unsupported(format!(
            "set_rows_f16 needs storageBuffer16BitAccess, which {} lacks",
            rec.caps().name
        )));
    }
    let elems = u64::from(ne0) * u64::from(n);
    let caps = rec.caps();
    let (rs, src_off) = bind(caps, &src, 4, elems, "set_rows src")?;
    let (ri, idx_off) = bind(caps, &idx, 4, u64::from(n), "set_rows idx")?;
    let (rd, dst_off) = bind(
        caps,
        &dst,
        2,
        u64::from(ne0) * u64::from(n_rows),
        "set_rows dst",
    )?;
    let push = Push {
        n: count_u32(elems, shader.name())?,
        ne0,
        n_rows,
        src_off,
        idx_off,
        dst_off,
        pad: [0; 2],
    };
    if elems == 0 {
        return Ok(());
    }
    let groups = groups_1d(caps, shader, elems)?;
    rec.dispatch(
        shader,
        &[],
        &[rs, ri, rd],
        bytemuck::bytes_of(&push),
        groups,
    )
}
