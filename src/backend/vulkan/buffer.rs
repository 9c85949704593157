//! Storage buffers and byte ranges of them.
//!
//! Invariants:
//! - [`Buffer`] is a cheap handle (`Arc`) to one `VkBuffer` + its allocation; the last
//!   handle's drop destroys the buffer, then frees its memory. Recorders keep handles of
//!   every buffer they reference until their submission completes, so a buffer can never
//!   be destroyed while the GPU uses it.
//! - Every buffer is usable as a storage buffer and as a copy source/destination, and is
//!   no larger than `maxStorageBufferRange`, so binding a whole buffer is always legal.
//! - [`BufferRange`] is plain data (buffer, byte offset, byte size); it is validated where
//!   it is used (dispatch, copy, upload), not where it is made.

use std::sync::Arc;

use ash::vk;
use gpu_allocator::vulkan::Allocation;

use super::device::vk_error;
use super::memory::{Memory, MemoryLocation};
use crate::{Error, Result};

pub(crate) struct BufferInner {
    pub(crate) raw: vk::Buffer,
    allocation: Option<Allocation>,
    size: u64,
    name: String,
    location: MemoryLocation,
    memory: Arc<Memory>,
}

/// A device buffer (shared handle; cloning does not copy data).
#[derive(Clone)]
pub struct Buffer {
    pub(crate) inner: Arc<BufferInner>,
}

/// `size` bytes of `buffer` starting at byte `offset`.
#[derive(Clone, Copy)]
pub struct BufferRange<'a> {
    pub buffer: &'a Buffer,
    pub offset: u64,
    pub size: u64,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer(`{}`, {} bytes)", self.name(), self.size())
    }
}

impl std::fmt::Debug for BufferRange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}`[{}..{}]",
            self.buffer.name(),
            self.offset,
            self.offset + self.size
        )
    }
}

impl Buffer {
    pub(crate) fn new(
        memory: &Arc<Memory>,
        size: u64,
        location: MemoryLocation,
        name: &str,
    ) -> Result<Buffer> {
        memory.check_size(size, name)?;
        let device = &memory.device.raw;
        let info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(
                vk::BufferUsageFlags::STORAGE_BUFFER
                    | vk::BufferUsageFlags::TRANSFER_SRC
                    | vk::BufferUsageFlags::TRANSFER_DST,
            )
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        // SAFETY: valid create info on a live device.
        let raw = unsafe { device.create_buffer(&info, None) }
            .map_err(|e| vk_error(&format!("creating buffer `{name}` ({size} bytes)"), e))?;
        // SAFETY: `raw` was just created on `device`.
        let requirements = unsafe { device.get_buffer_memory_requirements(raw) };
        let allocation = match memory.allocate(name, requirements, location) {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: the buffer is unused and unbound.
                unsafe { device.destroy_buffer(raw, None) };
                return Err(e);
            }
        };
        // SAFETY: the allocation satisfies `requirements` (gpu-allocator contract) and
        // neither object is bound yet.
        if let Err(e) =
            unsafe { device.bind_buffer_memory(raw, allocation.memory(), allocation.offset()) }
        {
            // SAFETY: the buffer is unused.
            unsafe { device.destroy_buffer(raw, None) };
            memory.free(allocation);
            return Err(vk_error(&format!("binding buffer `{name}`"), e));
        }
        Ok(Buffer {
            inner: Arc::new(BufferInner {
                raw,
                allocation: Some(allocation),
                size,
                name: name.to_string(),
                location,
                memory: memory.clone(),
            }),
        })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.inner.size
    }

    /// The debug name given at creation.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where the buffer lives.
    pub fn location(&self) -> MemoryLocation {
        self.inner.location
    }

    /// The raw handle (for code that records its own Vulkan commands).
    pub fn raw(&self) -> vk::Buffer {
        self.inner.raw
    }

    /// The whole buffer as a range.
    pub fn whole(&self) -> BufferRange<'_> {
        BufferRange {
            buffer: self,
            offset: 0,
            size: self.inner.size,
        }
    }

    /// `size` bytes from `offset` (checked where used).
    pub fn range(&self, offset: u64, size: u64) -> BufferRange<'_> {
        BufferRange {
            buffer: self,
            offset,
            size,
        }
    }

    /// Host pointer when the memory is mapped and coherent (no flush/invalidate needed);
    /// `cached` additionally requires host-cached memory (fast reads).
    fn mapped(&self, cached: bool) -> Option<*mut u8> {
        let a = self.inner.allocation.as_ref()?;
        let flags = a.memory_properties();
        let mut need =
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        if cached {
            need |= vk::MemoryPropertyFlags::HOST_CACHED;
        }
        if !flags.contains(need) {
            return None;
        }
        a.mapped_ptr().map(|p| p.as_ptr() as *mut u8)
    }

    /// Copies `data` into the buffer at `offset` through the host mapping. Returns false
    /// (doing nothing) when the memory is not host-visible and coherent.
    /// The caller guarantees no GPU work in flight touches this range.
    pub(crate) fn write_mapped(&self, offset: u64, data: &[u8]) -> Result<bool> {
        self.check_host_range(offset, data.len() as u64)?;
        let Some(p) = self.mapped(false) else {
            return Ok(false);
        };
        // SAFETY: the mapping covers the whole allocation (>= size), the range was checked
        // above, and the caller guarantees the device is not accessing it.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p.add(offset as usize), data.len()) };
        Ok(true)
    }

    /// Copies from the buffer at `offset` into `out` through the host mapping. Returns
    /// false when the memory is not host-visible, coherent and cached.
    pub(crate) fn read_mapped(&self, offset: u64, out: &mut [u8]) -> Result<bool> {
        self.check_host_range(offset, out.len() as u64)?;
        let Some(p) = self.mapped(true) else {
            return Ok(false);
        };
        // SAFETY: as in `write_mapped`; the device wrote this memory before a completed
        // submission ended with a host-read barrier.
        unsafe {
            std::ptr::copy_nonoverlapping(p.add(offset as usize), out.as_mut_ptr(), out.len())
        };
        Ok(true)
    }

    /// `len` bytes at `offset` borrowed from the host mapping, when the memory is mapped,
    /// coherent and cached (else, or out of range, `None`). The caller guarantees no GPU
    /// work in flight writes the range while the slice lives (the executor lends it only
    /// through `&self`; every submission needs `&mut`).
    pub(crate) fn view_mapped(&self, offset: u64, len: u64) -> Option<&[u8]> {
        self.check_host_range(offset, len).ok()?;
        let p = self.mapped(true)?;
        // SAFETY: the mapping covers the whole allocation (>= size) and lives as long as
        // `self`; the range was checked; the device wrote this memory before a completed
        // submission ended with a host-read barrier, and nothing writes it meanwhile (above).
        Some(unsafe { std::slice::from_raw_parts(p.add(offset as usize), len as usize) })
    }

    fn check_host_range(&self, offset: u64, len: u64) -> Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.size()) {
            return Err(Error::Usage(format!(
                "buffer `{}`: host access of {len} bytes at offset {offset} exceeds its {} bytes",
                self.name(),
                self.size()
            )));
        }
        Ok(())
    }
}

impl BufferRange<'_> {
    /// Checks the range lies inside its buffer.
    pub fn check(&self, what: &str) -> Result<()> {
        if self
            .offset
            .checked_add(self.size)
            .is_none_or(|end| end > self.buffer.size())
        {
            return Err(Error::Usage(format!(
                "{what}: range {self:?} exceeds buffer of {} bytes",
                self.buffer.size()
            )));
        }
        Ok(())
    }
}

impl Drop for BufferInner {
    fn drop(&mut self) {
        // SAFETY: this is the last handle; recorders keep handles until their work
        // completes, so the device no longer uses the buffer. Destroy, then free.
        unsafe { self.memory.device.raw.destroy_buffer(self.raw, None) };
        if let Some(a) = self.allocation.take() {
            self.memory.free(a);
        }
    }
}
