//! Typed dispatch helpers, one file per op family (`binary.rs` ↔ `shaders/binary.comp`).
//!
//! Invariants:
//! - Helpers bind each operand's range rounded down to `minStorageBufferOffsetAlignment`
//!   ([`bind`]) and pass the remaining element offset and the counts in push constants,
//!   so callers may use any element-aligned sub-range of a buffer. Tensors sharing a
//!   buffer should start at aligned offsets so their bindings do not overlap (what the
//!   barrier plan and synchronization validation reason about).
//! - Helpers validate sizes and alignment and return `Error::Usage` / `Error::Unsupported`
//!   instead of recording a dispatch that would read or write out of range.
//! - 1-D kernels run on a 2-D grid ([`groups_1d`]) so element counts above
//!   `maxComputeWorkGroupCount[0] × WG_X` still work; shaders use `flat_index()`
//!   from `shaders/common/index.glsl`.

pub mod attention;
pub mod attention_coopmat;
pub mod binary;
pub mod copy;
pub mod debug;
pub mod get_rows;
pub mod glu;
pub mod moe;
pub mod mul_mat;
pub mod mul_mat_group;
pub mod mul_mat_tiled;
pub mod mul_mat_vecq;
pub mod mul_mat_vecq_layer;
pub mod norm;
pub mod rope;
pub mod scale;
pub mod set_rows;
pub mod top_k;

use super::buffer::BufferRange;
use super::caps::Caps;
use super::shaders::ShaderId;
use crate::{Error, Result};

/// Workgroups covering `n` invocations of a 1-D kernel with `WG_X` = `shader`'s width,
/// laid out as `[x, y, 1]` with `x ≤ maxComputeWorkGroupCount[0]`.
pub fn groups_1d(caps: &Caps, shader: ShaderId, n: u64) -> Result<[u32; 3]> {
    let wg = u64::from(shader.workgroup()[0]);
    let groups = n.div_ceil(wg);
    let max_x = u64::from(caps.max_compute_work_group_count[0]);
    let max_y = u64::from(caps.max_compute_work_group_count[1]);
    let x = groups.min(max_x);
    let y = if x == 0 { 0 } else { groups.div_ceil(x) };
    if y > max_y {
        return Err(Error::Unsupported(format!(
            "`{shader}` over {n} elements needs {groups} workgroups, more than {} allows",
            caps.name
        )));
    }
    Ok([x as u32, y as u32, 1])
}

/// The binding for the first `n` elements (of `elem` bytes) of `r`, and the element
/// offset the shader must add. The bound range starts at `r.offset` rounded down to
/// `minStorageBufferOffsetAlignment` and ends at the last element used, so the
/// descriptor covers (nearly) only the bytes the kernel touches: synchronization
/// validation then sees disjoint slices of one buffer as disjoint.
pub(crate) fn bind<'a>(
    caps: &Caps,
    r: &BufferRange<'a>,
    elem: u64,
    n: u64,
    what: &str,
) -> Result<(BufferRange<'a>, u32)> {
    r.check(what)?;
    if r.offset % elem != 0 {
        return Err(Error::Usage(format!(
            "{what}: range {r:?} does not start at a multiple of {elem} bytes"
        )));
    }
    let bytes = n
        .checked_mul(elem)
        .filter(|&b| b <= r.size)
        .ok_or_else(|| {
            Error::Usage(format!(
                "{what}: range {r:?} is smaller than {n} elements of {elem} bytes"
            ))
        })?;
    let start = r.offset - r.offset % caps.min_storage_buffer_offset_alignment;
    let end = r.offset + bytes.max(elem);
    let off = u32::try_from((r.offset - start) / elem)
        .map_err(|_| Error::Unsupported(format!("{what}: offset of {r:?} exceeds 32 bits")))?;
    // An empty range is legal for n = 0 only; keep one element so the descriptor is valid.
    let end = end.min(r.buffer.size()).max(start + 1);
    Ok((r.buffer.range(start, end - start), off))
}

/// `n` as a u32 element count, or an error naming `what`.
pub(crate) fn count_u32(n: u64, what: &str) -> Result<u32> {
    u32::try_from(n)
        .map_err(|_| Error::Unsupported(format!("{what}: {n} elements exceed 32-bit indexing")))
}
