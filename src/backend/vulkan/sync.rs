//! Synchronisation primitives: fences and the memory barriers recorders emit.
//!
//! Invariants:
//! - [`Fence`] owns one `VkFence` (holding an `Arc<Device>`) and destroys it in `Drop`.
//! - The barrier helpers cover compute *and* transfer on both sides, so one kind of
//!   barrier orders dispatches, copies and fills in any combination; the host barrier
//!   makes device writes visible to host reads after the fence wait.

use std::sync::Arc;

use ash::vk;

use super::device::{vk_error, Device};
use crate::{Error, Result};

/// A fence on one device.
pub(crate) struct Fence {
    device: Arc<Device>,
    pub(crate) raw: vk::Fence,
}

impl Fence {
    pub(crate) fn new(device: Arc<Device>) -> Result<Fence> {
        // SAFETY: valid create info on a live device.
        let raw = unsafe {
            device
                .raw
                .create_fence(&vk::FenceCreateInfo::default(), None)
        }
        .map_err(|e| vk_error("vkCreateFence", e))?;
        Ok(Fence { device, raw })
    }

    /// Blocks until the fence is signalled, or fails with [`Error::Timeout`] after the
    /// device's fence timeout (the submission may then still be running). With the
    /// device's `fence_spin` set, it first polls the fence for up to that long (a busy
    /// core, as CUDA's default synchronisation spins): a decode step's submission ends
    /// within milliseconds, and a blocked thread's wake-up adds to every step.
    pub(crate) fn wait(&self) -> Result<()> {
        if let Some(spin) = self.device.fence_spin {
            let t = std::time::Instant::now();
            loop {
                // SAFETY: the fence belongs to this device.
                match unsafe { self.device.raw.get_fence_status(self.raw) } {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => return Err(vk_error("vkGetFenceStatus", e)),
                }
                if t.elapsed() >= spin {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        let limit = self.device.fence_timeout;
        let ns = limit.map_or(u64::MAX, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64);
        // SAFETY: the fence belongs to this device.
        match unsafe { self.device.raw.wait_for_fences(&[self.raw], true, ns) } {
            Ok(()) => Ok(()),
            Err(vk::Result::TIMEOUT) => Err(Error::Timeout(format!(
                "vkWaitForFences: the submission did not finish within {:.1} s \
                 (VKGRAPH_FENCE_TIMEOUT; 0 = no limit): a kernel that does not end, or a hung \
                 driver",
                limit.map_or(f64::INFINITY, |d| d.as_secs_f64())
            ))),
            Err(e) => Err(vk_error("vkWaitForFences", e)),
        }
    }

    /// Returns the fence to the unsignalled state.
    pub(crate) fn reset(&self) -> Result<()> {
        // SAFETY: the fence belongs to this device and no pending submission uses it
        // (callers wait before resetting).
        unsafe { self.device.raw.reset_fences(&[self.raw]) }
            .map_err(|e| vk_error("vkResetFences", e))
    }
}

impl Drop for Fence {
    fn drop(&mut self) {
        // SAFETY: owners wait for pending submissions before dropping the fence.
        unsafe { self.device.raw.destroy_fence(self.raw, None) };
    }
}

const STAGES: vk::PipelineStageFlags = vk::PipelineStageFlags::from_raw(
    vk::PipelineStageFlags::COMPUTE_SHADER.as_raw() | vk::PipelineStageFlags::TRANSFER.as_raw(),
);
const WRITES: vk::AccessFlags = vk::AccessFlags::from_raw(
    vk::AccessFlags::SHADER_WRITE.as_raw() | vk::AccessFlags::TRANSFER_WRITE.as_raw(),
);
const READS_WRITES: vk::AccessFlags = vk::AccessFlags::from_raw(
    vk::AccessFlags::SHADER_READ.as_raw()
        | vk::AccessFlags::SHADER_WRITE.as_raw()
        | vk::AccessFlags::TRANSFER_READ.as_raw()
        | vk::AccessFlags::TRANSFER_WRITE.as_raw(),
);

/// Records a global memory barrier: earlier compute/transfer writes happen before, and
/// are visible to, later compute/transfer reads and writes.
pub(crate) fn cmd_barrier(device: &Device, cmd: vk::CommandBuffer) {
    let barrier = vk::MemoryBarrier::default()
        .src_access_mask(WRITES)
        .dst_access_mask(READS_WRITES);
    // SAFETY: `cmd` is in the recording state (callers check).
    unsafe {
        device.raw.cmd_pipeline_barrier(
            cmd,
            STAGES,
            STAGES,
            vk::DependencyFlags::empty(),
            &[barrier],
            &[],
            &[],
        )
    };
}

/// Records a barrier making compute/transfer writes visible to host reads.
pub(crate) fn cmd_host_barrier(device: &Device, cmd: vk::CommandBuffer) {
    let barrier = vk::MemoryBarrier::default()
        .src_access_mask(WRITES)
        .dst_access_mask(vk::AccessFlags::HOST_READ);
    // SAFETY: `cmd` is in the recording state (callers check).
    unsafe {
        device.raw.cmd_pipeline_barrier(
            cmd,
            STAGES,
            vk::PipelineStageFlags::HOST,
            vk::DependencyFlags::empty(),
            &[barrier],
            &[],
            &[],
        )
    };
}
