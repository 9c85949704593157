//! Device capabilities: probed once per physical device, then read-only.
//!
//! Invariants:
//! - [`Caps`] is plain data; kernels choose paths from it, never from the vendor name.
//! - [`Features`] holds one `Option<vk::…Features>` per extension/feature group: `Some`
//!   means "supported, and these are the supported bits". The same structs build the
//!   device-creation `p_next` chain (wgpu-hal style), so what we report is what we enable.
//!   Structs are stored with `p_next` null; the chain is rebuilt on copies.
//! - Only structs of supported versions/extensions are ever chained into a query.

use std::ffi::CStr;
use std::fmt;

use ash::vk;

use super::instance::version_string;
use crate::{Error, Result};

/// Oldest Vulkan version vkgraph drives (8/16-bit storage and fp16 are core there).
pub const MIN_API_VERSION: u32 = vk::API_VERSION_1_2;

/// Supported feature structs, one per extension or feature group.
#[derive(Clone, Default)]
pub struct Features {
    /// Vulkan 1.0 features we may enable (int16/int64 arithmetic).
    pub core: vk::PhysicalDeviceFeatures,
    /// 16-bit storage (core 1.1).
    pub storage_16bit: Option<vk::PhysicalDevice16BitStorageFeatures<'static>>,
    /// 8-bit storage (core 1.2).
    pub storage_8bit: Option<vk::PhysicalDevice8BitStorageFeatures<'static>>,
    /// fp16 / int8 arithmetic (core 1.2).
    pub float16_int8: Option<vk::PhysicalDeviceShaderFloat16Int8Features<'static>>,
    /// Subgroup size control (core 1.3, else `VK_EXT_subgroup_size_control`).
    pub subgroup_size_control: Option<vk::PhysicalDeviceSubgroupSizeControlFeatures<'static>>,
    /// Integer dot product (core 1.3, else `VK_KHR_shader_integer_dot_product`).
    pub integer_dot_product: Option<vk::PhysicalDeviceShaderIntegerDotProductFeatures<'static>>,
    /// `VK_KHR_cooperative_matrix`.
    pub cooperative_matrix: Option<vk::PhysicalDeviceCooperativeMatrixFeaturesKHR<'static>>,
    /// `vulkanMemoryModel` (core 1.2), enabled only with cooperative matrices: glslang
    /// compiles cooperative-matrix shaders to the Vulkan memory model.
    pub vulkan_memory_model: Option<vk::PhysicalDeviceVulkanMemoryModelFeatures<'static>>,
    /// `VK_KHR_pipeline_executable_properties` (`pipelineExecutableInfo`): compiled-pipeline
    /// statistics (registers, spills) for `VKGRAPH_PIPELINE_STATS`.
    pub pipeline_executable_info:
        Option<vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR<'static>>,
}

/// One cooperative-matrix configuration the device lists (`M×N×K`, types, scope).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoopMatShape {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub a: vk::ComponentTypeKHR,
    pub b: vk::ComponentTypeKHR,
    pub c: vk::ComponentTypeKHR,
    pub result: vk::ComponentTypeKHR,
    pub saturating: bool,
    pub scope: vk::ScopeKHR,
}

/// Everything kernels and the runtime need to know about one device.
#[derive(Clone)]
pub struct Caps {
    /// Index in `vkEnumeratePhysicalDevices` order (what `--device I` means).
    pub index: usize,
    pub name: String,
    pub device_type: vk::PhysicalDeviceType,
    pub vendor_id: u32,
    pub device_id: u32,
    /// Device API version (packed).
    pub api_version: u32,
    pub driver_name: String,
    pub driver_info: String,
    pub driver_version: u32,

    /// `shaderFloat16`.
    pub fp16: bool,
    /// `shaderInt8`.
    pub int8: bool,
    /// `shaderInt16`.
    pub int16: bool,
    /// `storageBuffer16BitAccess`.
    pub storage_16bit: bool,
    /// `storageBuffer8BitAccess`.
    pub storage_8bit: bool,

    /// Default subgroup size.
    pub subgroup_size: u32,
    /// Subgroup operations available in compute shaders.
    pub subgroup_ops: vk::SubgroupFeatureFlags,
    /// `(min, max)` subgroup size when compute shaders may request one.
    pub subgroup_size_control: Option<(u32, u32)>,
    /// `computeFullSubgroups`.
    pub compute_full_subgroups: bool,

    /// Shapes from `vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR` (empty: none).
    pub cooperative_matrix: Vec<CoopMatShape>,
    /// `shaderIntegerDotProduct`.
    pub integer_dot_product: bool,
    /// `integerDotProduct4x8BitPackedSignedAccelerated`.
    pub integer_dot_4x8_signed_accelerated: bool,
    /// `VK_KHR_push_descriptor` (`maxPushDescriptors`), when available.
    pub max_push_descriptors: Option<u32>,

    pub max_storage_buffer_range: u64,
    pub max_memory_allocation_size: u64,
    pub min_storage_buffer_offset_alignment: u64,
    pub max_compute_shared_memory_size: u32,
    /// `maxPerStageDescriptorStorageBuffers`: the most storage buffers a shader binds.
    pub max_storage_buffers_per_stage: u32,
    pub max_compute_work_group_count: [u32; 3],
    pub max_compute_work_group_size: [u32; 3],
    pub max_compute_work_group_invocations: u32,
    pub max_push_constants_size: u32,
    /// Nanoseconds per timestamp tick, when the compute queue supports timestamps.
    pub timestamp_period: Option<f32>,
    pub timestamp_valid_bits: u32,

    /// Queue family used for compute.
    pub compute_queue_family: u32,
    /// `(size, device_local)` per memory heap.
    pub memory_heaps: Vec<(u64, bool)>,
    /// Supported feature structs (also the device-creation chain).
    pub features: Features,
    /// Device extensions to enable.
    pub(crate) extensions: Vec<&'static CStr>,
}

impl Caps {
    /// The largest device-local memory heap, in bytes (`None` without one).
    pub fn device_local_bytes(&self) -> Option<u64> {
        self.memory_heaps.iter().filter(|h| h.1).map(|h| h.0).max()
    }

    /// Probes `pd`. Errors only if the device cannot compute at all.
    pub(crate) fn probe(
        entry: &ash::Entry,
        instance: &ash::Instance,
        pd: vk::PhysicalDevice,
        index: usize,
    ) -> Result<Caps> {
        // SAFETY: `pd` came from this instance's enumeration; queries have no side effects.
        let (props, exts, families, mem) = unsafe {
            (
                instance.get_physical_device_properties(pd),
                instance
                    .enumerate_device_extension_properties(pd)
                    .map_err(|e| Error::Vulkan(format!("device {index}: extensions: {e}")))?,
                instance.get_physical_device_queue_family_properties(pd),
                instance.get_physical_device_memory_properties(pd),
            )
        };
        let name = props
            .device_name_as_c_str()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|_| format!("device {index}"));
        // The instance asks for 1.3, so that is the most we may use.
        let api = props.api_version.min(vk::API_VERSION_1_3);
        let has_ext = |n: &CStr| {
            exts.iter()
                .any(|e| e.extension_name_as_c_str().ok() == Some(n))
        };
        let v11 = api >= vk::API_VERSION_1_1;
        let v12 = api >= vk::API_VERSION_1_2;
        let v13 = api >= vk::API_VERSION_1_3;
        let ext_ssc = !v13 && has_ext(ash::ext::subgroup_size_control::NAME);
        let ext_idp = !v13 && has_ext(ash::khr::shader_integer_dot_product::NAME);
        let ext_coop = has_ext(ash::khr::cooperative_matrix::NAME);
        let ext_push = has_ext(ash::khr::push_descriptor::NAME);
        let ext_pep = has_ext(ash::khr::pipeline_executable_properties::NAME);

        // ---- properties -----------------------------------------------------
        let mut subgroup = vk::PhysicalDeviceSubgroupProperties::default();
        let mut maint3 = vk::PhysicalDeviceMaintenance3Properties::default();
        let mut driver = vk::PhysicalDeviceDriverProperties::default();
        let mut ssc = vk::PhysicalDeviceSubgroupSizeControlProperties::default();
        let mut idp = vk::PhysicalDeviceShaderIntegerDotProductProperties::default();
        let mut push = vk::PhysicalDevicePushDescriptorPropertiesKHR::default();
        if v11 {
            let mut p2 = vk::PhysicalDeviceProperties2::default()
                .push_next(&mut subgroup)
                .push_next(&mut maint3);
            if v12 {
                p2 = p2.push_next(&mut driver);
            }
            if v13 || ext_ssc {
                p2 = p2.push_next(&mut ssc);
            }
            if v13 || ext_idp {
                p2 = p2.push_next(&mut idp);
            }
            if ext_push {
                p2 = p2.push_next(&mut push);
            }
            // SAFETY: only structs of supported versions/extensions are chained.
            unsafe { instance.get_physical_device_properties2(pd, &mut p2) };
        }

        // ---- features -------------------------------------------------------
        let mut f16s = vk::PhysicalDevice16BitStorageFeatures::default();
        let mut f8s = vk::PhysicalDevice8BitStorageFeatures::default();
        let mut fp16 = vk::PhysicalDeviceShaderFloat16Int8Features::default();
        let mut fssc = vk::PhysicalDeviceSubgroupSizeControlFeatures::default();
        let mut fidp = vk::PhysicalDeviceShaderIntegerDotProductFeatures::default();
        let mut fcoop = vk::PhysicalDeviceCooperativeMatrixFeaturesKHR::default();
        let mut fvmm = vk::PhysicalDeviceVulkanMemoryModelFeatures::default();
        let mut fpep = vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default();
        let mut core = vk::PhysicalDeviceFeatures::default();
        if v11 {
            let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut f16s);
            if v12 {
                f2 = f2.push_next(&mut f8s).push_next(&mut fp16);
            }
            if v13 || ext_ssc {
                f2 = f2.push_next(&mut fssc);
            }
            if v13 || ext_idp {
                f2 = f2.push_next(&mut fidp);
            }
            if ext_coop {
                f2 = f2.push_next(&mut fcoop);
                if v12 {
                    f2 = f2.push_next(&mut fvmm);
                }
            }
            if ext_pep {
                f2 = f2.push_next(&mut fpep);
            }
            // SAFETY: only structs of supported versions/extensions are chained.
            unsafe { instance.get_physical_device_features2(pd, &mut f2) };
            core = f2.features;
        }
        // The query wrote chain pointers into the structs; they must not escape.
        f16s.p_next = std::ptr::null_mut();
        f8s.p_next = std::ptr::null_mut();
        fp16.p_next = std::ptr::null_mut();
        fssc.p_next = std::ptr::null_mut();
        fidp.p_next = std::ptr::null_mut();
        fpep.p_next = std::ptr::null_mut();
        let features = Features {
            core: vk::PhysicalDeviceFeatures {
                shader_int16: core.shader_int16,
                shader_int64: core.shader_int64,
                ..Default::default()
            },
            storage_16bit: v11.then_some(f16s),
            storage_8bit: v12.then_some(f8s),
            float16_int8: v12.then_some(fp16),
            subgroup_size_control: (v13 || ext_ssc).then_some(fssc),
            integer_dot_product: (v13 || ext_idp).then_some(fidp),
            vulkan_memory_model: (ext_coop
                && v12
                && fcoop.cooperative_matrix == vk::TRUE
                && fvmm.vulkan_memory_model == vk::TRUE)
                .then_some(vk::PhysicalDeviceVulkanMemoryModelFeatures {
                    vulkan_memory_model: vk::TRUE,
                    // With the memory model on, Device-scope atomics and barriers (split
                    // attention's counters) need this too where the device has it.
                    vulkan_memory_model_device_scope: fvmm.vulkan_memory_model_device_scope,
                    ..Default::default()
                }),
            cooperative_matrix: (ext_coop && fcoop.cooperative_matrix == vk::TRUE).then_some(
                vk::PhysicalDeviceCooperativeMatrixFeaturesKHR {
                    cooperative_matrix: vk::TRUE,
                    // Robust access costs speed and kernels bounds-check themselves.
                    cooperative_matrix_robust_buffer_access: vk::FALSE,
                    ..Default::default()
                },
            ),
            pipeline_executable_info: (ext_pep && fpep.pipeline_executable_info == vk::TRUE)
                .then_some(fpep),
        };
        let mut extensions: Vec<&'static CStr> = Vec::new();
        if ext_ssc {
            extensions.push(ash::ext::subgroup_size_control::NAME);
        }
        if ext_idp {
            extensions.push(ash::khr::shader_integer_dot_product::NAME);
        }
        if features.cooperative_matrix.is_some() {
            extensions.push(ash::khr::cooperative_matrix::NAME);
        }
        if ext_push {
            extensions.push(ash::khr::push_descriptor::NAME);
        }
        if features.pipeline_executable_info.is_some() {
            extensions.push(ash::khr::pipeline_executable_properties::NAME);
        }

        let cooperative_matrix = if features.cooperative_matrix.is_some() {
            let loader = ash::khr::cooperative_matrix::Instance::new(entry, instance);
            // SAFETY: the extension is supported by `pd`.
            unsafe { loader.get_physical_device_cooperative_matrix_properties(pd) }
                .unwrap_or_default()
                .iter()
                .map(|p| CoopMatShape {
                    m: p.m_size,
                    n: p.n_size,
                    k: p.k_size,
                    a: p.a_type,
                    b: p.b_type,
                    c: p.c_type,
                    result: p.result_type,
                    saturating: p.saturating_accumulation == vk::TRUE,
                    scope: p.scope,
                })
                .collect()
        } else {
            Vec::new()
        };

        let compute_queue_family = families
            .iter()
            .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
            .ok_or_else(|| Error::Vulkan(format!("device {index} ({name}) has no compute queue")))?
            as u32;
        let timestamp_valid_bits = families[compute_queue_family as usize].timestamp_valid_bits;
        let limits = &props.limits;
        let compute_stage = subgroup
            .supported_stages
            .contains(vk::ShaderStageFlags::COMPUTE);
        let ssc_on = features
            .subgroup_size_control
            .is_some_and(|f| f.subgroup_size_control == vk::TRUE)
            && ssc
                .required_subgroup_size_stages
                .contains(vk::ShaderStageFlags::COMPUTE);
        let bool_of = |b: vk::Bool32| b == vk::TRUE;

        Ok(Caps {
            index,
            name,
            device_type: props.device_type,
            vendor_id: props.vendor_id,
            device_id: props.device_id,
            api_version: props.api_version,
            driver_name: c_chars(&driver.driver_name),
            driver_info: c_chars(&driver.driver_info),
            driver_version: props.driver_version,
            fp16: features
                .float16_int8
                .is_some_and(|f| bool_of(f.shader_float16)),
            int8: features
                .float16_int8
                .is_some_and(|f| bool_of(f.shader_int8)),
            int16: bool_of(core.shader_int16),
            storage_16bit: features
                .storage_16bit
                .is_some_and(|f| bool_of(f.storage_buffer16_bit_access)),
            storage_8bit: features
                .storage_8bit
                .is_some_and(|f| bool_of(f.storage_buffer8_bit_access)),
            subgroup_size: subgroup.subgroup_size,
            subgroup_ops: if compute_stage {
                subgroup.supported_operations
            } else {
                vk::SubgroupFeatureFlags::empty()
            },
            subgroup_size_control: ssc_on.then_some((ssc.min_subgroup_size, ssc.max_subgroup_size)),
            compute_full_subgroups: features
                .subgroup_size_control
                .is_some_and(|f| bool_of(f.compute_full_subgroups)),
            cooperative_matrix,
            integer_dot_product: features
                .integer_dot_product
                .is_some_and(|f| bool_of(f.shader_integer_dot_product)),
            integer_dot_4x8_signed_accelerated: bool_of(
                idp.integer_dot_product4x8_bit_packed_signed_accelerated,
            ),
            max_push_descriptors: ext_push.then_some(push.max_push_descriptors),
            max_storage_buffer_range: u64::from(limits.max_storage_buffer_range),
            max_memory_allocation_size: if v11 {
                maint3.max_memory_allocation_size
            } else {
                u64::from(u32::MAX)
            },
            min_storage_buffer_offset_alignment: limits.min_storage_buffer_offset_alignment,
            max_compute_shared_memory_size: limits.max_compute_shared_memory_size,
            max_storage_buffers_per_stage: limits.max_per_stage_descriptor_storage_buffers,
            max_compute_work_group_count: limits.max_compute_work_group_count,
            max_compute_work_group_size: limits.max_compute_work_group_size,
            max_compute_work_group_invocations: limits.max_compute_work_group_invocations,
            max_push_constants_size: limits.max_push_constants_size,
            timestamp_period: (timestamp_valid_bits > 0 && limits.timestamp_period > 0.0)
                .then_some(limits.timestamp_period),
            timestamp_valid_bits,
            compute_queue_family,
            memory_heaps: mem.memory_heaps[..mem.memory_heap_count as usize]
                .iter()
                .map(|h| (h.size, h.flags.contains(vk::MemoryHeapFlags::DEVICE_LOCAL)))
                .collect(),
            features,
            extensions,
        })
    }

    /// The name up to the first " (" — `llvmpipe`, `NVIDIA H200` — for test labels.
    pub fn short_name(&self) -> &str {
        self.name.split(" (").next().unwrap_or(&self.name)
    }

    /// Whether the device meets vkgraph's minimum requirements.
    pub fn usable(&self) -> Result<()> {
        if self.api_version < MIN_API_VERSION {
            return Err(Error::Unsupported(format!(
                "device {} ({}) supports Vulkan {}; vkgraph needs {}",
                self.index,
                self.name,
                version_string(self.api_version),
                version_string(MIN_API_VERSION)
            )));
        }
        Ok(())
    }

    /// Preference when no device is named: discrete, integrated, virtual, CPU, other.
    pub(crate) fn type_rank(&self) -> u32 {
        match self.device_type {
            vk::PhysicalDeviceType::DISCRETE_GPU => 0,
            vk::PhysicalDeviceType::INTEGRATED_GPU => 1,
            vk::PhysicalDeviceType::VIRTUAL_GPU => 2,
            vk::PhysicalDeviceType::CPU => 3,
            _ => 4,
        }
    }
}

fn c_chars(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn bytes(n: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    const KIB: u64 = 1 << 10;
    if n >= GIB && n % MIB == 0 || n >= 4 * GIB {
        format!("{:.2} GiB", n as f64 / GIB as f64)
    } else if n >= MIB && n % KIB == 0 {
        format!("{:.2} MiB", n as f64 / MIB as f64)
    } else if n >= KIB && n % KIB == 0 {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} B")
    }
}

fn component(t: vk::ComponentTypeKHR) -> String {
    match t {
        vk::ComponentTypeKHR::FLOAT16 => "f16".into(),
        vk::ComponentTypeKHR::FLOAT32 => "f32".into(),
        vk::ComponentTypeKHR::FLOAT64 => "f64".into(),
        vk::ComponentTypeKHR::SINT8 => "i8".into(),
        vk::ComponentTypeKHR::SINT16 => "i16".into(),
        vk::ComponentTypeKHR::SINT32 => "i32".into(),
        vk::ComponentTypeKHR::UINT8 => "u8".into(),
        vk::ComponentTypeKHR::UINT16 => "u16".into(),
        vk::ComponentTypeKHR::UINT32 => "u32".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

impl fmt::Display for CoopMatShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{}x{} {}*{}+{}->{}",
            self.m,
            self.n,
            self.k,
            component(self.a),
            component(self.b),
            component(self.c),
            component(self.result)
        )?;
        if self.saturating {
            write!(f, " sat")?;
        }
        if self.scope != vk::ScopeKHR::SUBGROUP {
            write!(f, " ({:?})", self.scope)?;
        }
        Ok(())
    }
}

impl fmt::Display for Caps {
    /// A multi-line human-readable description (used by `vkgraph devices`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.device_type {
            vk::PhysicalDeviceType::DISCRETE_GPU => "discrete GPU",
            vk::PhysicalDeviceType::INTEGRATED_GPU => "integrated GPU",
            vk::PhysicalDeviceType::VIRTUAL_GPU => "virtual GPU",
            vk::PhysicalDeviceType::CPU => "CPU",
            _ => "other",
        };
        writeln!(
            f,
            "[{}] {} ({kind}, vendor 0x{:04x}, device 0x{:04x})",
            self.index, self.name, self.vendor_id, self.device_id
        )?;
        writeln!(
            f,
            "    Vulkan {}, driver {} ({})",
            version_string(self.api_version),
            self.driver_name,
            self.driver_info
        )?;
        writeln!(
            f,
            "    fp16: {}  int8: {}  int16: {}  storage 8-bit: {}  16-bit: {}",
            yes(self.fp16),
            yes(self.int8),
            yes(self.int16),
            yes(self.storage_8bit),
            yes(self.storage_16bit)
        )?;
        use vk::SubgroupFeatureFlags as S;
        let ops: Vec<&str> = [
            (S::BASIC, "basic"),
            (S::VOTE, "vote"),
            (S::ARITHMETIC, "arithmetic"),
            (S::BALLOT, "ballot"),
            (S::SHUFFLE, "shuffle"),
            (S::SHUFFLE_RELATIVE, "shuffle_relative"),
            (S::CLUSTERED, "clustered"),
            (S::QUAD, "quad"),
        ]
        .iter()
        .filter(|(flag, _)| self.subgroup_ops.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
        write!(f, "    subgroup: {}", self.subgroup_size)?;
        match self.subgroup_size_control {
            Some((lo, hi)) => write!(f, " (size control {lo}..{hi}")?,
            None => write!(f, " (no size control")?,
        }
        writeln!(
            f,
            ", full subgroups: {}); ops: {}",
            yes(self.compute_full_subgroups),
            ops.join(" ")
        )?;
        if self.cooperative_matrix.is_empty() {
            writeln!(f, "    cooperative matrix (KHR): no")?;
        } else {
            let shapes: Vec<String> = self
                .cooperative_matrix
                .iter()
                .map(|s| s.to_string())
                .collect();
            writeln!(f, "    cooperative matrix (KHR): {}", shapes.join(", "))?;
        }
        writeln!(
            f,
            "    integer dot product: {} (4x8 packed signed accelerated: {})",
            yes(self.integer_dot_product),
            yes(self.integer_dot_4x8_signed_accelerated)
        )?;
        match self.max_push_descriptors {
            Some(n) => writeln!(f, "    push descriptors: yes (max {n})")?,
            None => writeln!(f, "    push descriptors: no")?,
        }
        writeln!(
            f,
            "    storage buffer range: {}  max allocation: {}  offset alignment: {}",
            bytes(self.max_storage_buffer_range),
            bytes(self.max_memory_allocation_size),
            self.min_storage_buffer_offset_alignment
        )?;
        writeln!(
            f,
            "    shared memory: {}  push constants: {} B  workgroup count: {:?}  size: {:?} \
             (invocations {})",
            bytes(u64::from(self.max_compute_shared_memory_size)),
            self.max_push_constants_size,
            self.max_compute_work_group_count,
            self.max_compute_work_group_size,
            self.max_compute_work_group_invocations
        )?;
        match self.timestamp_period {
            Some(p) => writeln!(
                f,
                "    timestamps: yes ({p} ns/tick, {} bits)",
                self.timestamp_valid_bits
            )?,
            None => writeln!(f, "    timestamps: no")?,
        }
        let heaps: Vec<String> = self
            .memory_heaps
            .iter()
            .map(|(size, local)| {
                format!(
                    "{}{}",
                    bytes(*size),
                    if *local { " device-local" } else { "" }
                )
            })
            .collect();
        write!(f, "    memory heaps: {}", heaps.join(", "))
    }
}
