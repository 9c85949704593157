//! Device memory: a gpu-allocator `Allocator` shared by all buffers of one device.
//!
//! Invariants:
//! - [`Memory`] owns the allocator and holds an `Arc<Device>`; buffers hold an
//!   `Arc<Memory>`. Fields drop in declaration order, so the allocator (which frees its
//!   memory blocks) always goes before the device.
//! - Allocation requests are checked against `maxMemoryAllocationSize` and
//!   `maxStorageBufferRange` before Vulkan sees them, with an error naming the sizes.

use std::sync::{Arc, Mutex};

use gpu_allocator::vulkan::{Allocation, AllocationCreateDesc, AllocationScheme, Allocator};

use super::device::Device;
use crate::{Error, Result};

/// Where a buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryLocation {
    /// Device-local (weights, activations, KV cache).
    Device,
    /// Host-visible, written by the host and read by the device (staging uploads).
    Upload,
    /// Host-visible and cached, written by the device and read by the host.
    Readback,
}

impl MemoryLocation {
    fn to_gpu_allocator(self) -> gpu_allocator::MemoryLocation {
        match self {
            MemoryLocation::Device => gpu_allocator::MemoryLocation::GpuOnly,
            MemoryLocation::Upload => gpu_allocator::MemoryLocation::CpuToGpu,
            MemoryLocation::Readback => gpu_allocator::MemoryLocation::GpuToCpu,
        }
    }
}

/// The allocator of one device.
pub struct Memory {
    allocator: Mutex<Allocator>,
    pub(crate) device: Arc<Device>,
}

impl Memory {
    pub(crate) fn new(device: Arc<Device>) -> Result<Arc<Memory>> {
        let allocator = Allocator::new(&gpu_allocator::vulkan::AllocatorCreateDesc {
            instance: device.instance.raw.clone(),
            device: device.raw.clone(),
            physical_device: device.physical,
            debug_settings: Default::default(),
            buffer_device_address: false,
            allocation_sizes: Default::default(),
        })
        .map_err(|e| Error::Vulkan(format!("creating the memory allocator: {e}")))?;
        Ok(Arc::new(Memory {
            allocator: Mutex::new(allocator),
            device,
        }))
    }

    /// Rejects sizes the device cannot allocate or bind as one storage buffer.
    pub(crate) fn check_size(&self, size: u64, name: &str) -> Result<()> {
        let caps = self.device.caps();
        if size == 0 {
            return Err(Error::Usage(format!("buffer `{name}`: size 0")));
        }
        if size > caps.max_memory_allocation_size {
            return Err(Error::Unsupported(format!(
                "buffer `{name}` of {size} bytes exceeds maxMemoryAllocationSize ({} bytes) \
                 of {}",
                caps.max_memory_allocation_size, caps.name
            )));
        }
        if size > caps.max_storage_buffer_range {
            return Err(Error::Unsupported(format!(
                "buffer `{name}` of {size} bytes exceeds maxStorageBufferRange ({} bytes) \
                 of {}; split the tensor across buffers",
                caps.max_storage_buffer_range, caps.name
            )));
        }
        Ok(())
    }

    /// Allocates memory for `requirements`.
    pub(crate) fn allocate(
        &self,
        name: &str,
        requirements: ash::vk::MemoryRequirements,
        location: MemoryLocation,
    ) -> Result<Allocation> {
        let mut a = self
            .allocator
            .lock()
            .map_err(|_| Error::Vulkan("allocator mutex poisoned".into()))?;
        a.allocate(&AllocationCreateDesc {
            name,
            requirements,
            location: location.to_gpu_allocator(),
            linear: true,
            allocation_scheme: AllocationScheme::GpuAllocatorManaged,
        })
        .map_err(|e| match e {
            gpu_allocator::AllocationError::OutOfMemory => Error::OutOfDeviceMemory(format!(
                "buffer `{name}` of {} bytes ({location:?}) on {}",
                requirements.size,
                self.device.caps().name
            )),
            e => Error::Vulkan(format!("allocating buffer `{name}`: {e}")),
        })
    }

    /// Returns an allocation to the allocator.
    pub(crate) fn free(&self, allocation: Allocation) {
        match self.allocator.lock() {
            Ok(mut a) => {
                if let Err(e) = a.free(allocation) {
                    log::error!("freeing device memory: {e}");
                }
            }
            Err(_) => log::error!("allocator mutex poisoned; leaking an allocation"),
        }
    }
}
