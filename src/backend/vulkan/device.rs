//! Physical-device selection and the logical device with its one compute queue.
//!
//! Invariants:
//! - [`Device`] owns the `VkDevice`; every child object (allocator, buffers, pipelines,
//!   recorders) holds an `Arc<Device>`, so the device is destroyed last among them, and
//!   the device itself holds the `Arc<Instance>` it came from.
//! - Contexts open devices through [`Device::shared`]: one logical device per physical
//!   device and settings for the life of the process (see there why).
//! - The queue is externally synchronised (Vulkan rule), so submissions go through
//!   [`Device::submit`], which holds a mutex.
//! - The features enabled are exactly the supported ones in [`Caps::features`].

use std::sync::{Arc, Mutex};

use ash::vk;

use super::caps::Caps;
use super::instance::Instance;
use crate::{Error, Result};

/// Maps a Vulkan error to the crate error, naming the operation.
pub(crate) fn vk_error(what: &str, e: vk::Result) -> Error {
    match e {
        vk::Result::ERROR_OUT_OF_DEVICE_MEMORY | vk::Result::ERROR_OUT_OF_HOST_MEMORY => {
            Error::OutOfDeviceMemory(format!("{what}: {e}"))
        }
        vk::Result::ERROR_DEVICE_LOST => Error::DeviceLost(what.to_string()),
        e => Error::Vulkan(format!("{what}: {e}")),
    }
}

/// Every physical device with its probed capabilities, in enumeration order.
pub(crate) fn enumerate(instance: &Instance) -> Result<Vec<(vk::PhysicalDevice, Caps)>> {
    // SAFETY: plain enumeration on a live instance.
    let pds = unsafe { instance.raw.enumerate_physical_devices() }
        .map_err(|e| vk_error("vkEnumeratePhysicalDevices", e))?;
    pds.into_iter()
        .enumerate()
        .map(|(i, pd)| Caps::probe(&instance.entry, &instance.raw, pd, i).map(|c| (pd, c)))
        .collect()
}

/// The logical device and its compute queue.
pub struct Device {
    pub(crate) raw: ash::Device,
    pub(crate) physical: vk::PhysicalDevice,
    queue: Mutex<vk::Queue>,
    caps: Caps,
    /// `VK_KHR_push_descriptor` functions, when enabled.
    pub(crate) push_descriptor: Option<ash::khr::push_descriptor::Device>,
    pub(crate) instance: Arc<Instance>,
    /// How long a fence wait may block (`None`: forever); see `ContextOptions`.
    pub(crate) fence_timeout: Option<std::time::Duration>,
    /// How long a fence wait polls before it blocks (`None`: it blocks at once).
    pub(crate) fence_spin: Option<std::time::Duration>,
}

impl Device {
    /// The process's logical device for these settings, opened on first use and kept until
    /// exit; contexts share it (the queue is behind a mutex, allocators and pipelines are
    /// per context). Never destroying devices while the process runs is deliberate: on the
    /// NVIDIA 580 driver, `vkDestroyDevice` racing other threads' device work deadlocked
    /// inside the driver in ~20 % of parallel test runs (docs/RELIABILITY.md), and it bounds
    /// the devices a long run can create (a leak once exhausted that driver).
    pub fn shared(
        instance: Arc<Instance>,
        index: Option<usize>,
        push_descriptors: bool,
        fence_timeout: Option<std::time::Duration>,
        fence_spin_us: Option<u32>,
    ) -> Result<Arc<Device>> {
        type Key = (
            usize,
            Option<usize>,
            bool,
            Option<std::time::Duration>,
            Option<u32>,
        );
        static SHARED: Mutex<Vec<(Key, Arc<Device>)>> = Mutex::new(Vec::new());
        let key = (
            Arc::as_ptr(&instance) as usize,
            index,
            push_descriptors,
            fence_timeout,
            fence_spin_us,
        );
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, d)) = shared.iter().find(|(k, _)| *k == key) {
            return Ok(d.clone());
        }
        let d = Device::new(
            instance,
            index,
            push_descriptors,
            fence_timeout,
            fence_spin_us,
        )?;
        shared.push((key, d.clone()));
        Ok(d)
    }

    /// Opens device `index` (enumeration order), or the best one: discrete first.
    /// `push_descriptors = false` forces the descriptor-pool path (for tests).
    /// `fence_spin_us`: see `ContextOptions::fence_spin_us` (`None`: the default for the
    /// device's type). Prefer
    /// [`Device::shared`]; this one is destroyed with its last `Arc`.
    pub fn new(
        instance: Arc<Instance>,
        index: Option<usize>,
        push_descriptors: bool,
        fence_timeout: Option<std::time::Duration>,
        fence_spin_us: Option<u32>,
    ) -> Result<Arc<Device>> {
        let devices = enumerate(&instance)?;
        if devices.is_empty() {
            return Err(Error::Vulkan(
                "no Vulkan device found (install a driver, e.g. mesa-vulkan-drivers for \
                 lavapipe, or check VK_DRIVER_FILES / VK_ICD_FILENAMES)"
                    .into(),
            ));
        }
        let (pd, caps) = match index {
            Some(i) => {
                let d = devices.get(i).ok_or_else(|| {
                    Error::Usage(format!(
                        "Vulkan device {i} does not exist ({} device(s): 0..{})",
                        devices.len(),
                        devices.len() - 1
                    ))
                })?;
                d.1.usable()?;
                d.clone()
            }
            None => {
                let mut usable: Vec<_> = devices.iter().filter(|d| d.1.usable().is_ok()).collect();
                usable.sort_by_key(|d| (d.1.type_rank(), d.1.index));
                match usable.first() {
                    Some(d) => (*d).clone(),
                    None => return Err(devices[0].1.usable().unwrap_err()),
                }
            }
        };
        let mut caps = caps;
        if !push_descriptors {
            caps.max_push_descriptors = None;
            caps.extensions
                .retain(|e| *e != ash::khr::push_descriptor::NAME);
        }

        let priorities = [1.0f32];
        let queues = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(caps.compute_queue_family)
            .queue_priorities(&priorities)];
        let ext_names: Vec<_> = caps.extensions.iter().map(|e| e.as_ptr()).collect();
        let f = &caps.features;
        // Local copies: chaining writes their p_next fields.
        let mut pep = f.pipeline_executable_info;
        let (mut s16, mut s8, mut fp16, mut ssc, mut idp, mut coop, mut vmm) = (
            f.storage_16bit,
            f.storage_8bit,
            f.float16_int8,
            f.subgroup_size_control,
            f.integer_dot_product,
            f.cooperative_matrix,
            f.vulkan_memory_model,
        );
        let mut info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queues)
            .enabled_extension_names(&ext_names)
            .enabled_features(&f.core);
        if let Some(s) = s16.as_mut() {
            info = info.push_next(s);
        }
        if let Some(s) = s8.as_mut() {
            info = info.push_next(s);
        }
        if let Some(s) = fp16.as_mut() {
            info = info.push_next(s);
        }
        if let Some(s) = ssc.as_mut() {
            info = info.push_next(s);
        }
        if let Some(s) = idp.as_mut() {
            info = info.push_next(s);
        }
        if let Some(s) = coop.as_mut() {
            info = info.push_next(s);
        }
        if let Some(s) = vmm.as_mut() {
            info = info.push_next(s);
        }
        if let Some(s) = pep.as_mut() {
            info = info.push_next(s);
        }
        let raw = {
            let _lifecycle = super::instance::lifecycle_lock();
            // SAFETY: `pd` belongs to `instance`; the chain only holds supported structs of
            // supported extensions (Caps::probe), all alive for the call.
            unsafe { instance.raw.create_device(pd, &info, None) }
        }
        .map_err(|e| vk_error(&format!("vkCreateDevice ({})", caps.name), e))?;
        // SAFETY: family/queue index were requested in `queues`.
        let queue = unsafe { raw.get_device_queue(caps.compute_queue_family, 0) };
        let push_descriptor = caps
            .max_push_descriptors
            .map(|_| ash::khr::push_descriptor::Device::new(&instance.raw, &raw));
        log::info!(
            "Vulkan device {}: {} (push descriptors: {})",
            caps.index,
            caps.name,
            push_descriptor.is_some()
        );
        let spin_us = fence_spin_us.unwrap_or(if caps.device_type == vk::PhysicalDeviceType::CPU {
            0
        } else {
            super::DEFAULT_FENCE_SPIN_US
        });
        let fence_spin = (spin_us > 0).then(|| std::time::Duration::from_micros(spin_us.into()));
        LIVE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Arc::new(Device {
            raw,
            physical: pd,
            queue: Mutex::new(queue),
            caps,
            push_descriptor,
            instance,
            fence_timeout,
            fence_spin,
        }))
    }

    /// The capabilities probed for this device.
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// Waits until the device is idle. `vkDeviceWaitIdle` uses every queue, so it holds the
    /// queue mutex like a submission (contexts share devices: see [`Device::shared`]).
    pub(crate) fn wait_idle(&self) -> Result<()> {
        let _queue = self
            .queue
            .lock()
            .map_err(|_| Error::Vulkan("queue mutex poisoned".into()))?;
        // SAFETY: the device is live and its queue is locked.
        unsafe { self.raw.device_wait_idle() }.map_err(|e| vk_error("vkDeviceWaitIdle", e))
    }

    /// Submits to the compute queue (serialised, as Vulkan requires).
    pub(crate) fn submit(&self, submits: &[vk::SubmitInfo<'_>], fence: vk::Fence) -> Result<()> {
        let queue = self
            .queue
            .lock()
            .map_err(|_| Error::Vulkan("queue mutex poisoned".into()))?;
        // SAFETY: the queue belongs to this device and is locked; the caller guarantees
        // the command buffers are recorded and the fence unsignalled.
        unsafe { self.raw.queue_submit(*queue, submits, fence) }
            .map_err(|e| vk_error("vkQueueSubmit", e))
    }
}

/// Logical devices alive in this process (tests check that teardown really happens).
static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Number of logical devices currently alive in this process.
pub fn live_device_count() -> usize {
    LIVE.load(std::sync::atomic::Ordering::SeqCst)
}

impl Drop for Device {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        // Waiting idle outside the lock: a long wait must not stall other devices' setup.
        let _ = self.wait_idle();
        let _lifecycle = super::instance::lifecycle_lock();
        // SAFETY: every child holds an Arc of this device, so none is alive; waiting idle
        // first means no queue work still references the device.
        unsafe { self.raw.destroy_device(None) };
    }
}
