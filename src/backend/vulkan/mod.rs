//! Vulkan backend runtime: instance, device + capabilities, memory, buffers, pipelines,
//! command recording, and per-op-family dispatch helpers.
//!
//! Files follow object lifecycles (see docs/shaders.md for kernels):
//! [`instance`] → [`device`] (+ [`caps`]) → [`memory`] → [`buffer`] → [`pipeline`] →
//! [`command`] (+ `sync`), with [`shaders`] the build-generated registry and [`dispatch`]
//! the typed helpers that pack push constants for each kernel.
//!
//! Invariants:
//! - Every Vulkan object is owned by exactly one Rust value whose `Drop` frees it; children
//!   hold an `Arc` of the device (or of the allocator, which holds the device), so teardown
//!   order is right by construction and the allocator always drops before the device.
//! - Nothing here panics on a missing loader or device: those are `Error::Vulkan`.
//!
//! Typical use:
//! ```no_run
//! # use vkgraph::backend::vulkan::*;
//! # fn main() -> vkgraph::Result<()> {
//! let ctx = VulkanContext::new(&ContextOptions::default())?;
//! let a = ctx.create_buffer(1024, MemoryLocation::Device, "a")?;
//! ctx.upload(&a, 0, &[0u8; 1024])?;
//! let mut rec = ctx.recorder()?;
//! rec.begin()?;
//! dispatch::scale::scale(&mut rec, a.whole(), a.whole(), 256, 2.0, 0.0)?;
//! rec.submit_and_wait()?;
//! # Ok(()) }
//! ```

pub mod buffer;
pub mod caps;
pub mod command;
pub mod device;
pub mod dispatch;
pub mod executor;
pub mod instance;
pub mod memory;
mod pipeline;
pub mod shaders;
mod sync;

use std::sync::{Arc, Mutex};

pub use buffer::{Buffer, BufferRange};
pub use caps::{Caps, CoopMatShape};
pub use command::{Recorder, Timestamp};
pub use device::live_device_count;
pub use executor::{MatVecPath, VulkanBackend};
pub use instance::{ValidationLog, ValidationState};
pub use memory::MemoryLocation;
pub use shaders::ShaderId;

use device::Device;
use instance::Instance;
use memory::Memory;
use pipeline::PipelineCache;

use crate::{Error, Result};

/// Largest staging buffer used by [`VulkanContext::upload`] / [`VulkanContext::download`].
const STAGING_CHUNK: u64 = 16 << 20;
/// Staging buffers uploads rotate through: the host fills one while the device copies
/// the others.
const UPLOAD_RING: usize = 3;

/// How to open a device.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Index in enumeration order (as listed by `vkgraph devices`); `None` picks the best
    /// device (discrete GPU first).
    pub device_index: Option<usize>,
    /// Enable `VK_LAYER_KHRONOS_validation` with synchronization validation when installed.
    pub validation: bool,
    /// Testing aid: use descriptor pools even when `VK_KHR_push_descriptor` exists.
    pub disable_push_descriptors: bool,
    /// Testing aid: always go through staging buffers in upload/download, even when the
    /// buffer memory is host-visible.
    pub force_staging: bool,
    /// Seconds a fence wait may take before it fails with [`crate::Error::Timeout`]
    /// (`VKGRAPH_FENCE_TIMEOUT`): `None` = [`DEFAULT_FENCE_TIMEOUT_S`], `Some(0)` = no limit.
    pub fence_timeout_s: Option<u32>,
    /// Microseconds a fence wait polls the fence before it blocks (`VKGRAPH_FENCE_SPIN`):
    /// `None` = [`DEFAULT_FENCE_SPIN_US`] on a GPU and 0 on a CPU driver (whose threads the
    /// polling core would slow), `Some(0)` = block at once.
    pub fence_spin_us: Option<u32>,
    /// Record the driver's statistics of every pipeline (`VKGRAPH_PIPELINE_STATS`; where
    /// the device has `VK_KHR_pipeline_executable_properties`): [`VulkanContext::pipeline_stats`].
    pub pipeline_stats: bool,
}

/// Fence timeout when none is given: generous for a CPU driver running a whole prompt in
/// one submission, short enough that a hang ends as an error rather than a stuck process.
pub const DEFAULT_FENCE_TIMEOUT_S: u32 = 300;

/// Fence polling on a GPU when none is given (µs): longer than a decode step, so a
/// decode loop never sleeps in the driver; a long prompt's submission polls this long and
/// then blocks. H100, one command (docs/BENCHMARKS.md, twenty-first session): tg128
/// qwen3-0.6b q4_0 840 → 895 t/s, llama-8b q4_0 328 → 344 with it — a blocked wait's
/// wake-up had cost each step ~50–150 µs. CUDA's default synchronisation spins too.
pub const DEFAULT_FENCE_SPIN_US: u32 = 20_000;

/// Staging state for host transfers (one at a time).
struct Transfer {
    rec: Recorder,
    /// The upload ring: each slot's recorder copies out of its staging buffer.
    upload: Vec<(Recorder, Option<Buffer>)>,
    readback: Option<Buffer>,
}

/// One opened Vulkan device with its allocator, pipeline cache and transfer queue state.
pub struct VulkanContext {
    // Declaration order = drop order: the transfer recorder and staging buffers first,
    // then pipelines, the allocator, and the device (all Arc-held by their children too).
    transfer: Mutex<Transfer>,
    pipelines: Arc<PipelineCache>,
    memory: Arc<Memory>,
    device: Arc<Device>,
    force_staging: bool,
}

impl VulkanContext {
    /// Loads Vulkan, picks a device and creates the logical device and allocator.
    pub fn new(opts: &ContextOptions) -> Result<VulkanContext> {
        let instance = Instance::shared(opts.validation)?;
        let timeout = match opts.fence_timeout_s.unwrap_or(DEFAULT_FENCE_TIMEOUT_S) {
            0 => None,
            s => Some(std::time::Duration::from_secs(u64::from(s))),
        };
        let device = Device::shared(
            instance,
            opts.device_index,
            !opts.disable_push_descriptors,
            timeout,
            opts.fence_spin_us,
        )?;
        let memory = Memory::new(device.clone())?;
        let pipelines = PipelineCache::new(device.clone(), opts.pipeline_stats);
        let rec = Recorder::new(device.clone(), pipelines.clone())?;
        let upload = (0..UPLOAD_RING)
            .map(|_| Ok((Recorder::new(device.clone(), pipelines.clone())?, None)))
            .collect::<Result<Vec<_>>>()?;
        Ok(VulkanContext {
            transfer: Mutex::new(Transfer {
                rec,
                upload,
                readback: None,
            }),
            pipelines,
            memory,
            device,
            force_staging: opts.force_staging,
        })
    }

    /// The device's capabilities.
    pub fn caps(&self) -> &Caps {
        self.device.caps()
    }

    /// How validation ended up configured.
    pub fn validation(&self) -> ValidationState {
        self.device.instance.validation()
    }

    /// Validation messages counted so far (zero when validation is off).
    pub fn validation_log(&self) -> &ValidationLog {
        self.device.instance.validation_log()
    }

    /// Creates a storage buffer of `size` bytes (also a copy source and destination).
    /// Sizes above `maxStorageBufferRange` or `maxMemoryAllocationSize` are rejected.
    pub fn create_buffer(&self, size: u64, location: MemoryLocation, name: &str) -> Result<Buffer> {
        Buffer::new(&self.memory, size, location, name)
    }

    /// A new command recorder for this device.
    pub fn recorder(&self) -> Result<Recorder> {
        Recorder::new(self.device.clone(), self.pipelines.clone())
    }

    /// The driver's statistics (registers, spills, ...) of each pipeline created so far,
    /// one line each: empty unless [`ContextOptions::pipeline_stats`] and the device has
    /// `VK_KHR_pipeline_executable_properties`.
    pub fn pipeline_stats(&self) -> Vec<String> {
        self.pipelines.stats()
    }

    /// Number of compute pipelines created so far (the cache is keyed by shader + spec).
    pub fn pipeline_count(&self) -> usize {
        self.pipelines.len()
    }

    /// Waits until the device is idle (also for other contexts sharing it).
    pub fn wait_idle(&self) -> Result<()> {
        self.device.wait_idle()
    }

    fn transfer(&self) -> Result<std::sync::MutexGuard<'_, Transfer>> {
        self.transfer
            .lock()
            .map_err(|_| Error::Vulkan("transfer mutex poisoned".into()))
    }

    /// Copies `data` into `buf` at byte `offset` and waits until it is there (one
    /// [`VulkanContext::upload_many`] job).
    pub fn upload(&self, buf: &Buffer, offset: u64, data: &[u8]) -> Result<()> {
        self.upload_many(&[(buf, offset, data)], |_| {})
    }

    /// Copies each job's bytes into its buffer at its byte offset and waits until all
    /// are there; `done(bytes)` is called as each job's last byte is handed to the
    /// device. Writes through the mapping when the memory is host-visible and coherent,
    /// else streams every job's chunks through one ring of [`UPLOAD_RING`] staging
    /// buffers: the host copies the next chunk (from the mmap: page faults included)
    /// while the device copies the previous ones, across jobs — a tensor's upload does
    /// not wait for the one before it. No GPU work touching those ranges may be in
    /// flight. A job outside its buffer fails the call before any byte moves; after
    /// another error no copy is left running, and the jobs' ranges may hold part of their
    /// bytes.
    pub fn upload_many(
        &self,
        jobs: &[(&Buffer, u64, &[u8])],
        mut done: impl FnMut(u64),
    ) -> Result<()> {
        // Every range is checked before any byte moves.
        for &(buf, offset, data) in jobs {
            buf.range(offset, data.len() as u64)
                .check(&format!("upload to `{}`", buf.name()))?;
        }
        let mut staged: Vec<(&Buffer, u64, &[u8])> = Vec::new();
        for &(buf, offset, data) in jobs {
            if data.is_empty() || (!self.force_staging && buf.write_mapped(offset, data)?) {
                done(data.len() as u64);
            } else {
                staged.push((buf, offset, data));
            }
        }
        if staged.is_empty() {
            return Ok(());
        }
        let mut t = self.transfer()?;
        let chunk = staged
            .iter()
            .map(|j| j.2.len() as u64)
            .max()
            .unwrap_or(1)
            .min(STAGING_CHUNK);
        let mut slot = 0usize;
        let result = (|| {
            for &(buf, offset, data) in &staged {
                for (i, piece) in data.chunks(chunk as usize).enumerate() {
                    let (rec, staging) = &mut t.upload[slot % UPLOAD_RING];
                    slot += 1;
                    // The slot's previous copy must be done before its buffer is rewritten.
                    rec.wait()?;
                    if staging.as_ref().is_none_or(|s| s.size() < chunk) {
                        *staging = None; // free the old one first
                        *staging = Some(self.create_buffer(
                            chunk,
                            MemoryLocation::Upload,
                            "staging upload",
                        )?);
                    }
                    let staging = staging.as_ref().expect("created above");
                    let len = piece.len() as u64;
                    // Staging memory is always host-visible; if a driver ever says
                    // otherwise we must not silently drop data.
                    if !staging.write_mapped(0, piece)? {
                        return Err(Error::Vulkan(
                            "staging upload buffer is not host-visible".into(),
                        ));
                    }
                    rec.begin()?;
                    rec.copy_buffer(
                        staging.range(0, len),
                        buf.range(offset + i as u64 * chunk, len),
                    )?;
                    rec.submit()?;
                }
                done(data.len() as u64);
            }
            Ok(())
        })();
        // Every chunk is in place (or, after an error, no copy is left running) before
        // the caller goes on.
        let mut waited = Ok(());
        for (rec, _) in &mut t.upload {
            let w = rec.wait();
            if waited.is_ok() {
                waited = w;
            }
        }
        result.and(waited)
    }

    /// `len` bytes of `buf` at byte `offset` lent from its host mapping without a copy,
    /// where `download` would read them from there (mapped, coherent, cached memory; not
    /// with `force_staging`); the caller guarantees the work that wrote them completed
    /// and nothing writes them while the slice lives.
    pub fn view<'a>(&self, buf: &'a Buffer, offset: u64, len: u64) -> Option<&'a [u8]> {
        if self.force_staging {
            return None;
        }
        buf.view_mapped(offset, len)
    }

    /// Copies `out.len()` bytes from `buf` at byte `offset` into `out`, after all work
    /// submitted so far that writes it has completed (the caller waits for it).
    pub fn download(&self, buf: &Buffer, offset: u64, out: &mut [u8]) -> Result<()> {
        buf.range(offset, out.len() as u64)
            .check(&format!("download from `{}`", buf.name()))?;
        if out.is_empty() || (!self.force_staging && buf.read_mapped(offset, out)?) {
            return Ok(());
        }
        let mut t = self.transfer()?;
        let chunk = STAGING_CHUNK.min(out.len() as u64);
        if t.readback.as_ref().is_none_or(|s| s.size() < chunk) {
            t.readback = None;
            t.readback =
                Some(self.create_buffer(chunk, MemoryLocation::Readback, "staging readback")?);
        }
        let Transfer { rec, readback, .. } = &mut *t;
        let staging = readback.as_ref().expect("created above");
        for (i, piece) in out.chunks_mut(chunk as usize).enumerate() {
            let len = piece.len() as u64;
            rec.begin()?;
            rec.copy_buffer(
                buf.range(offset + i as u64 * chunk, len),
                staging.range(0, len),
            )?;
            rec.submit_and_wait()?;
            if !staging.read_mapped(0, piece)? {
                return Err(Error::Vulkan(
                    "staging readback buffer is not host-visible and cached".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Capabilities of every Vulkan device, in enumeration order (no validation).
pub fn enumerate_devices() -> Result<Vec<Caps>> {
    let instance = Instance::shared(false)?;
    Ok(device::enumerate(&instance)?
        .into_iter()
        .map(|(_, c)| c)
        .collect())
}

/// Every Vulkan device with its capabilities, as readable text (`vkgraph devices`).
pub fn describe_devices() -> Result<String> {
    let instance = Instance::shared(false)?;
    let devices = device::enumerate(&instance)?;
    if devices.is_empty() {
        return Err(Error::Vulkan(
            "no Vulkan device found (install a driver, e.g. mesa-vulkan-drivers for lavapipe)"
                .into(),
        ));
    }
    let mut s = format!(
        "Vulkan loader {}, {} device(s)\n",
        instance::version_string(instance.loader_version),
        devices.len()
    );
    for (_, caps) in &devices {
        s.push_str(&caps.to_string());
        if let Err(e) = caps.usable() {
            s.push_str(&format!("\n    not usable: {e}"));
        }
        s.push('\n');
    }
    Ok(s)
}
