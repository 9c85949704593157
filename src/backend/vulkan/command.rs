//! The command recorder: dispatches, barriers, copies and timestamps into one command
//! buffer, submitted to the compute queue and waited on with a fence.
//!
//! Invariants:
//! - A [`Recorder`] owns its command pool/buffer, fence, timestamp query pool and (when
//!   push descriptors are unavailable) descriptor pools, and destroys them in `Drop`
//!   after waiting for any submission still in flight.
//! - Until a submission completes, the recorder holds a handle of every buffer and
//!   pipeline it referenced, so nothing it uses can be destroyed under the GPU.
//! - Barriers are explicit: [`Recorder::barrier`] is the only ordering *inside* one
//!   recording. Each recording starts with a barrier against earlier submissions and
//!   ends with a device→host barrier, so consecutive submissions and host reads after
//!   [`Recorder::wait`] are always ordered.
//! - Lifecycle: `begin` → record … → `submit` → `wait` (or `submit_and_wait`) → `begin` …

use std::sync::Arc;

use ash::vk;

use super::buffer::{Buffer, BufferRange};
use super::caps::Caps;
use super::device::{vk_error, Device};
use super::pipeline::{Pipeline, PipelineCache};
use super::shaders::ShaderId;
use super::sync::{cmd_barrier, cmd_host_barrier, Fence};
use crate::{Error, Result};

/// Timestamps a recorder can hold per submission.
pub const MAX_TIMESTAMPS: u32 = 1024;
/// Descriptor sets per fallback descriptor pool.
const SETS_PER_POOL: u32 = 1024;
/// Storage-buffer descriptors per fallback descriptor pool.
const DESCRIPTORS_PER_POOL: u32 = 8 * SETS_PER_POOL;

/// One timestamp read back after a submission.
#[derive(Clone, Debug)]
pub struct Timestamp {
    pub label: String,
    /// Nanoseconds since the first timestamp of the submission.
    pub ns: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Recording,
    InFlight,
}

/// Records and submits compute work (see the module docs for the lifecycle).
pub struct Recorder {
    device: Arc<Device>,
    cache: Arc<PipelineCache>,
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    /// `ManuallyDrop` so a submission that never finished (a fence timeout) can leave its
    /// fence, pools and buffers alive instead of destroying what the GPU may still use.
    fence: std::mem::ManuallyDrop<Fence>,
    query_pool: Option<vk::QueryPool>,
    labels: Vec<String>,
    timestamps: Vec<Timestamp>,
    desc_pools: Vec<vk::DescriptorPool>,
    desc_pool_current: usize,
    keep_buffers: Vec<Buffer>,
    keep_pipelines: Vec<Arc<Pipeline>>,
    bound: vk::Pipeline,
    state: State,
    dispatches: u32,
    barriers: u32,
    /// Record without ONE_TIME_SUBMIT so [`Recorder::resubmit`] can replay it.
    reusable: bool,
    /// A finished recording exists (submitted at least once since `begin`).
    ended: bool,
}

impl Recorder {
    pub(crate) fn new(device: Arc<Device>, cache: Arc<PipelineCache>) -> Result<Recorder> {
        let raw = &device.raw;
        let info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(device.caps().compute_queue_family)
            .flags(vk::CommandPoolCreateFlags::TRANSIENT);
        // SAFETY: valid create info on a live device.
        let pool = unsafe { raw.create_command_pool(&info, None) }
            .map_err(|e| vk_error("vkCreateCommandPool", e))?;
        // Build the value now so Drop cleans up whatever the remaining steps create.
        let fence = match Fence::new(device.clone()) {
            Ok(f) => f,
            Err(e) => {
                // SAFETY: the pool is unused.
                unsafe { raw.destroy_command_pool(pool, None) };
                return Err(e);
            }
        };
        let mut rec = Recorder {
            device: device.clone(),
            cache,
            pool,
            cmd: vk::CommandBuffer::null(),
            fence: std::mem::ManuallyDrop::new(fence),
            query_pool: None,
            labels: Vec::new(),
            timestamps: Vec::new(),
            desc_pools: Vec::new(),
            desc_pool_current: 0,
            keep_buffers: Vec::new(),
            keep_pipelines: Vec::new(),
            bound: vk::Pipeline::null(),
            state: State::Idle,
            dispatches: 0,
            barriers: 0,
            reusable: false,
            ended: false,
        };
        let alloc = vk::CommandBufferAllocateInfo::default()
            .command_pool(pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        // SAFETY: `pool` is live; the buffer is freed with the pool.
        rec.cmd = unsafe { raw.allocate_command_buffers(&alloc) }
            .map_err(|e| vk_error("vkAllocateCommandBuffers", e))?[0];
        if device.caps().timestamp_period.is_some() {
            let info = vk::QueryPoolCreateInfo::default()
                .query_type(vk::QueryType::TIMESTAMP)
                .query_count(MAX_TIMESTAMPS);
            // SAFETY: valid create info; timestamps are supported on this queue family.
            rec.query_pool = Some(
                unsafe { raw.create_query_pool(&info, None) }
                    .map_err(|e| vk_error("vkCreateQueryPool", e))?,
            );
        }
        Ok(rec)
    }

    /// The device's capabilities (for dispatch helpers choosing a path).
    pub fn caps(&self) -> &Caps {
        self.device.caps()
    }

    /// Dispatches recorded since `begin`.
    pub fn dispatch_count(&self) -> u32 {
        self.dispatches
    }

    /// Explicit barriers recorded since `begin`.
    pub fn barrier_count(&self) -> u32 {
        self.barriers
    }

    /// Starts a new recording, waiting for the previous submission if still in flight and
    /// discarding an unfinished recording.
    pub fn begin(&mut self) -> Result<()> {
        // A recording left unfinished (e.g. after an error) is simply discarded.
        if self.state == State::InFlight {
            self.wait()?;
        }
        self.keep_buffers.clear();
        self.keep_pipelines.clear();
        let raw = &self.device.raw;
        // SAFETY: no submission using the pool's command buffer or the descriptor pools
        // is pending (state is Idle).
        unsafe {
            raw.reset_command_pool(self.pool, vk::CommandPoolResetFlags::empty())
                .map_err(|e| vk_error("vkResetCommandPool", e))?;
            for &p in &self.desc_pools {
                raw.reset_descriptor_pool(p, vk::DescriptorPoolResetFlags::empty())
                    .map_err(|e| vk_error("vkResetDescriptorPool", e))?;
            }
            raw.begin_command_buffer(
                self.cmd,
                &vk::CommandBufferBeginInfo::default().flags(if self.reusable {
                    vk::CommandBufferUsageFlags::empty()
                } else {
                    vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT
                }),
            )
            .map_err(|e| vk_error("vkBeginCommandBuffer", e))?;
            if let Some(q) = self.query_pool {
                raw.cmd_reset_query_pool(self.cmd, q, 0, MAX_TIMESTAMPS);
            }
        }
        self.desc_pool_current = 0;
        self.labels.clear();
        self.timestamps.clear();
        self.bound = vk::Pipeline::null();
        self.dispatches = 0;
        self.barriers = 0;
        self.ended = false;
        self.state = State::Recording;
        // Order this recording after every earlier submission's writes.
        cmd_barrier(&self.device, self.cmd);
        Ok(())
    }

    fn recording(&self, what: &str) -> Result<()> {
        if self.state != State::Recording {
            return Err(Error::Usage(format!(
                "Recorder::{what} called outside begin()..submit()"
            )));
        }
        Ok(())
    }

    /// Records one compute dispatch of `shader` with specialization constants `spec`,
    /// storage buffers `bindings` (binding i = `bindings[i]`), push constants `push`
    /// and `groups` workgroups.
    pub fn dispatch(
        &mut self,
        shader: ShaderId,
        spec: &[u32],
        bindings: &[BufferRange<'_>],
        push: &[u8],
        groups: [u32; 3],
    ) -> Result<()> {
        self.recording("dispatch")?;
        let caps = self.device.caps();
        if bindings.len() != shader.binding_count() as usize {
            return Err(Error::Usage(format!(
                "dispatch `{shader}`: {} bindings given, the shader declares {}",
                bindings.len(),
                shader.binding_count()
            )));
        }
        if push.len() != shader.push_size() as usize {
            return Err(Error::Usage(format!(
                "dispatch `{shader}`: {} push-constant bytes given, the shader declares {}",
                push.len(),
                shader.push_size()
            )));
        }
        for (i, b) in bindings.iter().enumerate() {
            let what = format!("dispatch `{shader}` binding {i}");
            b.check(&what)?;
            if b.size == 0 || b.offset % caps.min_storage_buffer_offset_alignment != 0 {
                return Err(Error::Usage(format!(
                    "{what}: range {b:?} must be non-empty and start at a multiple of \
                     minStorageBufferOffsetAlignment ({})",
                    caps.min_storage_buffer_offset_alignment
                )));
            }
        }
        for (axis, (&g, &max)) in groups
            .iter()
            .zip(&caps.max_compute_work_group_count)
            .enumerate()
        {
            if g > max {
                return Err(Error::Usage(format!(
                    "dispatch `{shader}`: {g} workgroups on axis {axis} exceed \
                     maxComputeWorkGroupCount ({max})"
                )));
            }
        }

        let pipeline = self.cache.get(shader, spec)?;
        let layout = &pipeline.layout;
        let device = self.device.clone();
        let raw = &device.raw;
        if self.bound != pipeline.raw {
            // SAFETY: recording state checked; pipeline is live and kept until completion.
            unsafe {
                raw.cmd_bind_pipeline(self.cmd, vk::PipelineBindPoint::COMPUTE, pipeline.raw)
            };
            self.bound = pipeline.raw;
        }
        if !bindings.is_empty() {
            let infos: Vec<[vk::DescriptorBufferInfo; 1]> = bindings
                .iter()
                .map(|b| {
                    [vk::DescriptorBufferInfo {
                        buffer: b.buffer.raw(),
                        offset: b.offset,
                        range: b.size,
                    }]
                })
                .collect();
            let mut writes: Vec<vk::WriteDescriptorSet> = infos
                .iter()
                .enumerate()
                .map(|(i, info)| {
                    vk::WriteDescriptorSet::default()
                        .dst_binding(i as u32)
                        .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                        .buffer_info(info)
                })
                .collect();
            match (&device.push_descriptor, layout.push_descriptor) {
                (Some(pd), true) => {
                    // SAFETY: the layout is a push-descriptor layout and the writes match
                    // its bindings (count checked above).
                    unsafe {
                        pd.cmd_push_descriptor_set(
                            self.cmd,
                            vk::PipelineBindPoint::COMPUTE,
                            layout.raw,
                            0,
                            &writes,
                        )
                    };
                }
                _ => {
                    let set = self.allocate_set(layout.set_layout)?;
                    for w in &mut writes {
                        w.dst_set = set;
                    }
                    // SAFETY: `set` is freshly allocated and not in use by the GPU;
                    // writes match its layout.
                    unsafe {
                        raw.update_descriptor_sets(&writes, &[]);
                        raw.cmd_bind_descriptor_sets(
                            self.cmd,
                            vk::PipelineBindPoint::COMPUTE,
                            layout.raw,
                            0,
                            &[set],
                            &[],
                        );
                    }
                }
            }
        }
        // SAFETY: recording state; push size equals the layout's range (checked above).
        unsafe {
            if !push.is_empty() {
                raw.cmd_push_constants(
                    self.cmd,
                    layout.raw,
                    vk::ShaderStageFlags::COMPUTE,
                    0,
                    push,
                );
            }
            raw.cmd_dispatch(self.cmd, groups[0], groups[1], groups[2]);
        }
        self.keep_buffers
            .extend(bindings.iter().map(|b| b.buffer.clone()));
        self.keep_pipelines.push(pipeline);
        self.dispatches += 1;
        Ok(())
    }

    /// Allocates a descriptor set for `layout` from the fallback pools (growing them).
    fn allocate_set(&mut self, layout: vk::DescriptorSetLayout) -> Result<vk::DescriptorSet> {
        let raw = &self.device.raw;
        loop {
            let fresh = self.desc_pool_current == self.desc_pools.len();
            if fresh {
                let sizes = [vk::DescriptorPoolSize {
                    ty: vk::DescriptorType::STORAGE_BUFFER,
                    descriptor_count: DESCRIPTORS_PER_POOL,
                }];
                let info = vk::DescriptorPoolCreateInfo::default()
                    .max_sets(SETS_PER_POOL)
                    .pool_sizes(&sizes);
                // SAFETY: valid create info on a live device.
                let pool = unsafe { raw.create_descriptor_pool(&info, None) }
                    .map_err(|e| vk_error("vkCreateDescriptorPool", e))?;
                self.desc_pools.push(pool);
            }
            let layouts = [layout];
            let info = vk::DescriptorSetAllocateInfo::default()
                .descriptor_pool(self.desc_pools[self.desc_pool_current])
                .set_layouts(&layouts);
            // SAFETY: pool and layout are live.
            match unsafe { raw.allocate_descriptor_sets(&info) } {
                Ok(sets) => return Ok(sets[0]),
                // Full: move on to the next pool (a fresh pool failing is a real error).
                Err(vk::Result::ERROR_OUT_OF_POOL_MEMORY | vk::Result::ERROR_FRAGMENTED_POOL)
                    if !fresh =>
                {
                    self.desc_pool_current += 1;
                }
                Err(e) => return Err(vk_error("vkAllocateDescriptorSets", e)),
            }
        }
    }

    /// Records a memory barrier: all earlier dispatches/copies finish their writes before
    /// later dispatches/copies read or write (compute and transfer stages).
    pub fn barrier(&mut self) -> Result<()> {
        self.recording("barrier")?;
        cmd_barrier(&self.device, self.cmd);
        self.barriers += 1;
        Ok(())
    }

    /// Records a copy of `src` into `dst` (equal sizes; any byte offsets).
    pub fn copy_buffer(&mut self, src: BufferRange<'_>, dst: BufferRange<'_>) -> Result<()> {
        self.recording("copy_buffer")?;
        src.check("copy_buffer source")?;
        dst.check("copy_buffer destination")?;
        if src.size != dst.size {
            return Err(Error::Usage(format!(
                "copy_buffer: source {src:?} and destination {dst:?} differ in size"
            )));
        }
        if src.size == 0 {
            return Ok(());
        }
        let region = vk::BufferCopy {
            src_offset: src.offset,
            dst_offset: dst.offset,
            size: src.size,
        };
        // SAFETY: recording state; both ranges were checked against their buffers.
        unsafe {
            self.device
                .raw
                .cmd_copy_buffer(self.cmd, src.buffer.raw(), dst.buffer.raw(), &[region])
        };
        self.keep_buffers.push(src.buffer.clone());
        self.keep_buffers.push(dst.buffer.clone());
        Ok(())
    }

    /// Records filling `dst` with the 32-bit `value` (offset and size multiples of 4).
    pub fn fill(&mut self, dst: BufferRange<'_>, value: u32) -> Result<()> {
        self.recording("fill")?;
        dst.check("fill")?;
        if dst.offset % 4 != 0 || dst.size % 4 != 0 {
            return Err(Error::Usage(format!(
                "fill: range {dst:?} must have offset and size multiples of 4"
            )));
        }
        if dst.size == 0 {
            return Ok(());
        }
        // SAFETY: recording state; range checked and aligned.
        unsafe {
            self.device
                .raw
                .cmd_fill_buffer(self.cmd, dst.buffer.raw(), dst.offset, dst.size, value)
        };
        self.keep_buffers.push(dst.buffer.clone());
        Ok(())
    }

    /// Records a timestamp after all earlier commands complete. A no-op when the device
    /// has no timestamps (then [`Recorder::timestamps`] is empty).
    pub fn timestamp(&mut self, label: &str) -> Result<()> {
        self.recording("timestamp")?;
        let Some(q) = self.query_pool else {
            return Ok(());
        };
        let i = self.labels.len() as u32;
        if i >= MAX_TIMESTAMPS {
            return Err(Error::Usage(format!(
                "timestamp `{label}`: more than {MAX_TIMESTAMPS} timestamps in one submission"
            )));
        }
        // SAFETY: recording state; query `i` was reset at begin and is written once.
        unsafe {
            self.device.raw.cmd_write_timestamp(
                self.cmd,
                vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                q,
                i,
            )
        };
        self.labels.push(label.to_string());
        Ok(())
    }

    /// Submits the recorded command buffer with the fence (counting its dispatches when
    /// validation watches).
    fn queue_submit(&mut self) -> Result<()> {
        self.fence.reset()?;
        let cmds = [self.cmd];
        let submit = vk::SubmitInfo::default().command_buffers(&cmds);
        self.device.submit(&[submit], self.fence.raw)?;
        if matches!(
            self.device.instance.validation(),
            super::ValidationState::On { .. }
        ) {
            self.device
                .instance
                .validation_log()
                .count_dispatches(self.dispatches);
        }
        self.state = State::InFlight;
        Ok(())
    }

    /// Ends the recording and submits it (returns without waiting).
    pub fn submit(&mut self) -> Result<()> {
        self.recording("submit")?;
        cmd_host_barrier(&self.device, self.cmd);
        // SAFETY: recording state.
        unsafe { self.device.raw.end_command_buffer(self.cmd) }
            .map_err(|e| vk_error("vkEndCommandBuffer", e))?;
        self.queue_submit()?;
        self.ended = true;
        Ok(())
    }

    /// Makes the next recordings replayable with [`Recorder::resubmit`] (no
    /// ONE_TIME_SUBMIT). The recording keeps every buffer and pipeline it binds alive until it
    /// is begun again or dropped.
    pub fn set_reusable(&mut self, yes: bool) {
        self.reusable = yes;
    }

    /// Submits the last finished recording again, unchanged: a graph whose command
    /// buffer does not change between passes is recorded once and replayed.
    pub fn resubmit(&mut self) -> Result<()> {
        if !self.reusable || !self.ended || self.state != State::Idle {
            return Err(Error::Usage(
                "Recorder::resubmit needs a finished, reusable, idle recording".into(),
            ));
        }
        self.queue_submit()?;
        Ok(())
    }

    /// Waits for the submission, reads timestamps back and (one-time recordings only)
    /// releases the resources it held. A no-op when nothing is in flight.
    pub fn wait(&mut self) -> Result<()> {
        if self.state != State::InFlight {
            return Ok(());
        }
        self.fence.wait()?;
        self.state = State::Idle;
        // A reusable recording may be submitted again: what it binds stays owned by it
        // until the next begin() or its drop (which waits for any submission in flight),
        // so a replay never touches a buffer its other owners have let go.
        if !self.reusable {
            self.keep_buffers.clear();
            self.keep_pipelines.clear();
        }
        self.read_timestamps()
    }

    /// `submit` then `wait`.
    pub fn submit_and_wait(&mut self) -> Result<()> {
        self.submit()?;
        self.wait()
    }

    /// Timestamps of the last completed submission, in recording order.
    pub fn timestamps(&self) -> &[Timestamp] {
        &self.timestamps
    }

    fn read_timestamps(&mut self) -> Result<()> {
        let (Some(q), Some(period)) = (self.query_pool, self.device.caps().timestamp_period) else {
            return Ok(());
        };
        if self.labels.is_empty() {
            return Ok(());
        }
        let mut ticks = vec![0u64; self.labels.len()];
        // SAFETY: queries 0..n were written by the completed submission.
        unsafe {
            self.device.raw.get_query_pool_results(
                q,
                0,
                &mut ticks,
                vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WAIT,
            )
        }
        .map_err(|e| vk_error("vkGetQueryPoolResults", e))?;
        let bits = self.device.caps().timestamp_valid_bits;
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let t0 = ticks[0] & mask;
        self.timestamps = self
            .labels
            .iter()
            .zip(&ticks)
            .map(|(label, &t)| Timestamp {
                label: label.clone(),
                ns: ((t & mask).wrapping_sub(t0) & mask) as f64 * f64::from(period),
            })
            .collect();
        Ok(())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.state == State::InFlight {
            match self.fence.wait() {
                Ok(()) => {}
                Err(e @ Error::Timeout(_)) => {
                    // The GPU may still run this work: leak what it uses (fence, pools,
                    // bound buffers and pipelines) rather than free it under its feet.
                    log::error!("recorder dropped with work in flight ({e}); leaking its objects");
                    std::mem::forget(std::mem::take(&mut self.keep_buffers));
                    std::mem::forget(std::mem::take(&mut self.keep_pipelines));
                    return;
                }
                Err(e) => {
                    log::error!("waiting for a recorder's submission on drop: {e}");
                    // SAFETY: last resort so nothing below is destroyed while in use.
                    let _ = self.device.wait_idle();
                }
            }
        }
        let raw = &self.device.raw;
        // SAFETY: no submission is pending (waited above); every object was created on
        // this device and is destroyed exactly once.
        unsafe {
            for &p in &self.desc_pools {
                raw.destroy_descriptor_pool(p, None);
            }
            if let Some(q) = self.query_pool {
                raw.destroy_query_pool(q, None);
            }
            raw.destroy_command_pool(self.pool, None);
            // SAFETY: dropped exactly once, here, after its last wait.
            std::mem::ManuallyDrop::drop(&mut self.fence);
        }
    }
}
