//! `spin.comp`: a test aid that keeps a submission running until the host releases it,
//! so tests can provoke a fence timeout (`Error::Timeout`) and then end the work cleanly.

use bytemuck::{Pod, Zeroable};

use super::bind;
use crate::backend::vulkan::{BufferRange, Recorder, ShaderId};
use crate::Result;

/// Push constants of `shaders/spin.comp`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Push {
    max_iters: u32,
    pad: [u32; 3],
}

/// `groups` workgroups whose invocations poll the u32 at `flag` (host-visible, coherent
/// memory) until it is non-zero or `max_iters` polls pass; the next u32 is raised to the
/// most polls one invocation made.
pub fn spin(rec: &mut Recorder, flag: BufferRange<'_>, max_iters: u32, groups: u32) -> Result<()> {
    let (rf, off) = bind(rec.caps(), &flag, 4, 2, "spin flag")?;
    if off != 0 {
        return Err(crate::Error::Usage(
            "spin: the flag must start at an aligned offset".into(),
        ));
    }
    let push = Push {
        max_iters,
        pad: [0; 3],
    };
    rec.dispatch(
        ShaderId::spin,
        &[],
        &[rf],
        bytemuck::bytes_of(&push),
        [groups, 1, 1],
    )
}
