//! Compute pipelines, created lazily and cached by (shader, specialization constants).
//!
//! Invariants:
//! - One [`ShaderLayout`] per [`ShaderId`]: set 0 holds `binding_count` storage buffers
//!   (bindings 0..n), plus one push-constant range of `push_size` bytes. The set layout is
//!   a push-descriptor layout when `VK_KHR_push_descriptor` is enabled and the binding
//!   count fits `maxPushDescriptors`; otherwise recorders allocate descriptor sets.
//! - Specialization constant `i` of the `spec` slice is `constant_id = i` (4 bytes each).
//! - Each Vulkan object is owned by one value (`ShaderLayout`, `Pipeline`) that holds an
//!   `Arc<Device>` and destroys the object in `Drop`; the shader module lives only for the
//!   duration of pipeline creation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ash::vk;

use super::device::{vk_error, Device};
use super::shaders::{spirv, ShaderId};
use crate::{Error, Result};

/// Descriptor-set layout + pipeline layout of one shader.
pub(crate) struct ShaderLayout {
    device: Arc<Device>,
    pub(crate) set_layout: vk::DescriptorSetLayout,
    pub(crate) raw: vk::PipelineLayout,
    /// Whether descriptors are pushed (`vkCmdPushDescriptorSetKHR`) rather than allocated.
    pub(crate) push_descriptor: bool,
}

impl Drop for ShaderLayout {
    fn drop(&mut self) {
        // SAFETY: pipelines using this layout hold an Arc of it, so none is alive;
        // recorders keep pipelines alive until their work completes.
        unsafe {
            self.device.raw.destroy_pipeline_layout(self.raw, None);
            self.device
                .raw
                .destroy_descriptor_set_layout(self.set_layout, None);
        }
    }
}

/// One compute pipeline.
pub(crate) struct Pipeline {
    device: Arc<Device>,
    pub(crate) raw: vk::Pipeline,
    pub(crate) layout: Arc<ShaderLayout>,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // SAFETY: recorders hold an Arc of every pipeline they bound until the submission
        // completes, so the device no longer uses it.
        unsafe { self.device.raw.destroy_pipeline(self.raw, None) };
    }
}

type SpecPipelines = Vec<(Vec<u32>, Arc<Pipeline>)>;

/// The lazily filled pipeline cache of one device.
pub(crate) struct PipelineCache {
    device: Arc<Device>,
    layouts: Mutex<HashMap<ShaderId, Arc<ShaderLayout>>>,
    /// Per shader, a short list of (specialization constants, pipeline).
    pipelines: Mutex<HashMap<ShaderId, SpecPipelines>>,
    /// `VK_KHR_pipeline_executable_properties` loader when statistics are captured
    /// (`ContextOptions::pipeline_stats` on a device that has the extension).
    stats_loader: Option<ash::khr::pipeline_executable_properties::Device>,
    /// One line per created pipeline: `shader [spec]: name=value, ...`.
    stats: Mutex<Vec<String>>,
}

impl PipelineCache {
    /// `capture_stats`: record the driver's statistics of every pipeline (where the device
    /// has `VK_KHR_pipeline_executable_properties`; ignored elsewhere).
    pub(crate) fn new(device: Arc<Device>, capture_stats: bool) -> Arc<PipelineCache> {
        let stats_loader = (capture_stats
            && device.caps().features.pipeline_executable_info.is_some())
        .then(|| {
            ash::khr::pipeline_executable_properties::Device::new(&device.instance.raw, &device.raw)
        });
        Arc::new(PipelineCache {
            device,
            layouts: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            stats_loader,
            stats: Mutex::new(Vec::new()),
        })
    }

    /// Statistics of the pipelines created so far, one line each (empty unless captured).
    pub(crate) fn stats(&self) -> Vec<String> {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The driver's statistics of `raw` (every executable), as `name=value` pairs.
    fn capture(
        loader: &ash::khr::pipeline_executable_properties::Device,
        raw: vk::Pipeline,
    ) -> Result<String> {
        let info = vk::PipelineInfoKHR::default().pipeline(raw);
        // SAFETY: `raw` is a live pipeline created with CAPTURE_STATISTICS.
        let execs = unsafe { loader.get_pipeline_executable_properties(&info) }
            .map_err(|e| vk_error("vkGetPipelineExecutablePropertiesKHR", e))?;
        let mut out = Vec::new();
        for (i, exec) in execs.iter().enumerate() {
            let ei = vk::PipelineExecutableInfoKHR::default()
                .pipeline(raw)
                .executable_index(i as u32);
            // SAFETY: as above; `i` is in range.
            let stats = unsafe { loader.get_pipeline_executable_statistics(&ei) }
                .map_err(|e| vk_error("vkGetPipelineExecutableStatisticsKHR", e))?;
            if execs.len() > 1 {
                out.push(format!(
                    "[{}]",
                    exec.name_as_c_str().unwrap_or_default().to_string_lossy()
                ));
            }
            for st in &stats {
                let name = st.name_as_c_str().unwrap_or_default().to_string_lossy();
                // SAFETY: the union member read is the one `format` names.
                let value = unsafe {
                    match st.format {
                        vk::PipelineExecutableStatisticFormatKHR::BOOL32 => {
                            st.value.b32.to_string()
                        }
                        vk::PipelineExecutableStatisticFormatKHR::INT64 => st.value.i64.to_string(),
                        vk::PipelineExecutableStatisticFormatKHR::UINT64 => {
                            st.value.u64.to_string()
                        }
                        _ => st.value.f64.to_string(),
                    }
                };
                out.push(format!("{name}={value}"));
            }
        }
        Ok(out.join(", "))
    }

    /// Number of pipelines created so far.
    pub(crate) fn len(&self) -> usize {
        self.pipelines
            .lock()
            .map(|p| p.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    /// The pipeline for (`id`, `spec`), created on first use.
    pub(crate) fn get(&self, id: ShaderId, spec: &[u32]) -> Result<Arc<Pipeline>> {
        let mut map = self
            .pipelines
            .lock()
            .map_err(|_| Error::Vulkan("pipeline cache mutex poisoned".into()))?;
        let list = map.entry(id).or_default();
        if let Some((_, p)) = list.iter().find(|(s, _)| s == spec) {
            return Ok(p.clone());
        }
        let layout = self.layout(id)?;
        let p = Arc::new(self.create(id, spec, layout)?);
        list.push((spec.to_vec(), p.clone()));
        Ok(p)
    }

    fn layout(&self, id: ShaderId) -> Result<Arc<ShaderLayout>> {
        let mut map = self
            .layouts
            .lock()
            .map_err(|_| Error::Vulkan("pipeline cache mutex poisoned".into()))?;
        if let Some(l) = map.get(&id) {
            return Ok(l.clone());
        }
        let caps = self.device.caps();
        let push_size = id.push_size();
        if push_size > caps.max_push_constants_size {
            return Err(Error::Unsupported(format!(
                "shader `{id}` needs {push_size} bytes of push constants; {} allows {}",
                caps.name, caps.max_push_constants_size
            )));
        }
        let n = id.binding_count();
        let push_descriptor = self.device.push_descriptor.is_some()
            && caps.max_push_descriptors.is_some_and(|max| n <= max);
        let bindings: Vec<_> = (0..n)
            .map(|i| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(i)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            })
            .collect();
        let flags = if push_descriptor {
            vk::DescriptorSetLayoutCreateFlags::PUSH_DESCRIPTOR_KHR
        } else {
            vk::DescriptorSetLayoutCreateFlags::empty()
        };
        let info = vk::DescriptorSetLayoutCreateInfo::default()
            .flags(flags)
            .bindings(&bindings);
        let raw_dev = &self.device.raw;
        // SAFETY: valid create info on a live device.
        let set_layout = unsafe { raw_dev.create_descriptor_set_layout(&info, None) }
            .map_err(|e| vk_error(&format!("descriptor set layout for `{id}`"), e))?;
        let ranges = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::COMPUTE)
            .offset(0)
            .size(push_size)];
        let set_layouts = [set_layout];
        let mut info = vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts);
        if push_size > 0 {
            info = info.push_constant_ranges(&ranges);
        }
        // SAFETY: valid create info; `set_layout` is live.
        let raw = match unsafe { raw_dev.create_pipeline_layout(&info, None) } {
            Ok(l) => l,
            Err(e) => {
                // SAFETY: unused layout.
                unsafe { raw_dev.destroy_descriptor_set_layout(set_layout, None) };
                return Err(vk_error(&format!("pipeline layout for `{id}`"), e));
            }
        };
        let l = Arc::new(ShaderLayout {
            device: self.device.clone(),
            set_layout,
            raw,
            push_descriptor,
        });
        map.insert(id, l.clone());
        Ok(l)
    }

    fn create(&self, id: ShaderId, spec: &[u32], layout: Arc<ShaderLayout>) -> Result<Pipeline> {
        let raw_dev = &self.device.raw;
        let code = spirv(id);
        let module_info = vk::ShaderModuleCreateInfo::default().code(code);
        // SAFETY: `code` is SPIR-V produced by shaderc at build time.
        let module = unsafe { raw_dev.create_shader_module(&module_info, None) }
            .map_err(|e| vk_error(&format!("shader module `{id}`"), e))?;
        let entries: Vec<_> = (0..spec.len() as u32)
            .map(|i| vk::SpecializationMapEntry {
                constant_id: i,
                offset: i * 4,
                size: 4,
            })
            .collect();
        let spec_data: &[u8] = bytemuck::cast_slice(spec);
        let spec_info = vk::SpecializationInfo::default()
            .map_entries(&entries)
            .data(spec_data);
        let mut stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(module)
            .name(c"main");
        if !spec.is_empty() {
            stage = stage.specialization_info(&spec_info);
        }
        let flags = if self.stats_loader.is_some() {
            vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR
        } else {
            vk::PipelineCreateFlags::empty()
        };
        let info = vk::ComputePipelineCreateInfo::default()
            .flags(flags)
            .stage(stage)
            .layout(layout.raw);
        // SAFETY: module and layout are live; the shader's interface matches the layout
        // by construction (binding count and push size come from its header).
        let result =
            unsafe { raw_dev.create_compute_pipelines(vk::PipelineCache::null(), &[info], None) };
        // SAFETY: the module is no longer needed once the pipeline exists (or failed).
        unsafe { raw_dev.destroy_shader_module(module, None) };
        let raw = result
            .map_err(|(_, e)| vk_error(&format!("compute pipeline `{id}` (spec {spec:?})"), e))?[0];
        log::debug!("created pipeline `{id}` spec {spec:?}");
        if let Some(loader) = &self.stats_loader {
            let line = match Self::capture(loader, raw) {
                Ok(s) => format!("{id} {spec:?}: {s}"),
                Err(e) => format!("{id} {spec:?}: no statistics ({e})"),
            };
            log::info!("pipeline {line}");
            if let Ok(mut v) = self.stats.lock() {
                v.push(line);
            }
        }
        Ok(Pipeline {
            device: self.device.clone(),
            raw,
            layout,
        })
    }
}
