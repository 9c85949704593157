//! Vulkan entry + instance, and the optional validation layer with its debug messenger.
//!
//! Invariants:
//! - [`Instance`] owns the `VkInstance` and the messenger; `Drop` destroys the messenger
//!   first, then the instance. Devices hold an `Arc<Instance>`, so the instance outlives them.
//!   Contexts take the process-wide instance of their validation setting
//!   ([`Instance::shared`]), which lives until exit; its validation log is shared too.
//! - Validation is enabled only when requested *and* `VK_LAYER_KHRONOS_validation` is
//!   installed; synchronization validation is switched on through `VK_EXT_validation_features`
//!   when the layer offers it (it works with any loader), else `VK_EXT_layer_settings`.
//! - The messenger counts warnings and errors (and keeps their text) so tests can assert
//!   that a run produced none.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ash::vk;

use crate::{Error, Result};

const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// Counters and messages collected by the debug messenger.
#[derive(Default)]
pub struct ValidationLog {
    errors: AtomicU32,
    warnings: AtomicU32,
    messages: Mutex<Vec<String>>,
    /// Dispatches submitted while the layer watched (replays count each time).
    dispatches: std::sync::atomic::AtomicU64,
}

impl ValidationLog {
    /// Number of error-severity messages so far.
    pub fn errors(&self) -> u32 {
        self.errors.load(Ordering::Relaxed)
    }
    /// Number of warning-severity messages so far.
    pub fn warnings(&self) -> u32 {
        self.warnings.load(Ordering::Relaxed)
    }
    /// Dispatches submitted under validation so far (recordings and their replays).
    pub fn dispatches(&self) -> u64 {
        self.dispatches.load(Ordering::Relaxed)
    }
    pub(crate) fn count_dispatches(&self, n: u32) {
        self.dispatches.fetch_add(u64::from(n), Ordering::Relaxed);
    }
    /// The text of every warning and error so far.
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// How validation ended up configured (requested and available).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidationState {
    /// Not requested.
    Off,
    /// Requested, but `VK_LAYER_KHRONOS_validation` is not installed.
    LayerMissing,
    /// The layer is on; `sync` says whether synchronization validation is too.
    On { sync: bool },
}

/// The Vulkan instance (and the loader it came from).
pub struct Instance {
    pub(crate) entry: ash::Entry,
    pub(crate) raw: ash::Instance,
    messenger: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    log: Arc<ValidationLog>,
    validation: ValidationState,
    /// The loader's instance version (`vkEnumerateInstanceVersion`).
    pub(crate) loader_version: u32,
}

/// The process-wide Vulkan loader, loaded once and never unloaded.
///
/// Driver workaround (NVIDIA 580, seen on the H200): when the last `VkInstance` of a
/// process is destroyed, the loader unloads the ICD, and loading it again later
/// segfaults or fails with `VK_ERROR_INCOMPATIBLE_DRIVER`. Programs that open and close
/// contexts repeatedly (tests, benchmarks over several models) hit it. So the first
/// call also creates one bare instance that lives until the process exits, which keeps
/// the ICD loaded. It owns no device and no memory.
fn loader() -> Result<ash::Entry> {
    static ENTRY: std::sync::OnceLock<std::result::Result<ash::Entry, String>> =
        std::sync::OnceLock::new();
    ENTRY
        .get_or_init(|| {
            // SAFETY: loading the system Vulkan loader runs its initialisers; we rely on
            // the loader being a well-behaved shared library, as every Vulkan program does.
            let entry = unsafe { ash::Entry::load() }.map_err(|e| {
                format!(
                    "cannot load the Vulkan loader (libvulkan.so.1): {e}; install libvulkan1 \
                     and a driver (e.g. mesa-vulkan-drivers for lavapipe)"
                )
            })?;
            let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
            let info = vk::InstanceCreateInfo::default().application_info(&app);
            // SAFETY: a valid create info; the handle is deliberately never destroyed
            // (see above). Failure (no driver) is reported by the real instance later.
            let _keep_alive = unsafe { entry.create_instance(&info, None) };
            Ok(entry)
        })
        .clone()
        .map_err(Error::Vulkan)
}

impl Instance {
    /// The process's instance with or without validation, created on first use and kept
    /// until exit (one per setting, as ggml-vulkan keeps one). Devices come and go; the
    /// instance does not: tearing instances down while other threads created and used
    /// devices deadlocked the NVIDIA driver (docs/RELIABILITY.md). A failed creation is not
    /// cached, so a later call tries again.
    pub fn shared(validation: bool) -> Result<Arc<Instance>> {
        static SHARED: Mutex<[Option<Arc<Instance>>; 2]> = Mutex::new([None, None]);
        let mut slots = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut slots[usize::from(validation)];
        if let Some(i) = slot {
            return Ok(i.clone());
        }
        let i = Instance::new(validation)?;
        *slot = Some(i.clone());
        Ok(i)
    }

    /// Loads libvulkan and creates an instance; `validation` asks for the Khronos layer.
    /// Prefer [`Instance::shared`]; this one is destroyed with its last `Arc`.
    pub fn new(validation: bool) -> Result<Arc<Instance>> {
        let entry = loader()?;
        // SAFETY: entry is a loaded loader; the call has no preconditions.
        let loader_version = unsafe { entry.try_enumerate_instance_version() }
            .ok()
            .flatten()
            .unwrap_or(vk::API_VERSION_1_0);
        if loader_version < vk::API_VERSION_1_1 {
            return Err(Error::Vulkan(format!(
                "the Vulkan loader only supports {}; vkgraph needs 1.1 or newer",
                version_string(loader_version)
            )));
        }

        // SAFETY: plain enumeration on a loaded entry.
        let layers = unsafe { entry.enumerate_instance_layer_properties() }.unwrap_or_default();
        let have_layer = layers
            .iter()
            .any(|l| l.layer_name_as_c_str().ok() == Some(VALIDATION_LAYER));
        let (use_layer, mut validation) = match (validation, have_layer) {
            (false, _) => (false, ValidationState::Off),
            (true, false) => {
                log::warn!(
                    "Vulkan validation requested but VK_LAYER_KHRONOS_validation is not \
                     installed (apt install vulkan-validationlayers); running without it"
                );
                (false, ValidationState::LayerMissing)
            }
            (true, true) => (true, ValidationState::On { sync: false }),
        };

        // SAFETY: plain enumeration on a loaded entry.
        let instance_exts =
            unsafe { entry.enumerate_instance_extension_properties(None) }.unwrap_or_default();
        let layer_exts = if use_layer {
            // SAFETY: the layer name is a valid, installed layer.
            unsafe { entry.enumerate_instance_extension_properties(Some(VALIDATION_LAYER)) }
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let has = |list: &[vk::ExtensionProperties], name: &CStr| {
            list.iter()
                .any(|e| e.extension_name_as_c_str().ok() == Some(name))
        };
        let debug_utils = use_layer
            && (has(&instance_exts, ash::ext::debug_utils::NAME)
                || has(&layer_exts, ash::ext::debug_utils::NAME));
        // VK_EXT_validation_features first: every layer version offers it, and a loader
        // older than the layer (Debian 12's 1.3.239 loader with a 1.4 layer) rejects
        // VK_EXT_layer_settings as an unknown instance extension.
        let validation_features =
            use_layer && has(&layer_exts, ash::ext::validation_features::NAME);
        let layer_settings =
            use_layer && !validation_features && has(&layer_exts, ash::ext::layer_settings::NAME);

        let mut ext_names: Vec<*const std::ffi::c_char> = Vec::new();
        if debug_utils {
            ext_names.push(ash::ext::debug_utils::NAME.as_ptr());
        }
        if layer_settings {
            ext_names.push(ash::ext::layer_settings::NAME.as_ptr());
        }
        if validation_features {
            ext_names.push(ash::ext::validation_features::NAME.as_ptr());
        }
        let layer_names = [VALIDATION_LAYER.as_ptr()];

        let app = vk::ApplicationInfo::default()
            .application_name(c"vkgraph")
            .engine_name(c"vkgraph")
            .api_version(vk::API_VERSION_1_3);
        let mut info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_extension_names(&ext_names);
        if use_layer {
            info = info.enabled_layer_names(&layer_names);
        }

        let log = Arc::new(ValidationLog::default());
        let messenger_info = || {
            vk::DebugUtilsMessengerCreateInfoEXT::default()
                .message_severity(
                    vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
                        | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
                )
                .message_type(
                    vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                        | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                        | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
                )
                .pfn_user_callback(Some(debug_callback))
                .user_data(Arc::as_ptr(&log) as *mut c_void)
        };
        let mut chained_messenger = messenger_info();
        // Chained into instance creation too, so creation/destruction messages count.
        if debug_utils {
            info = info.push_next(&mut chained_messenger);
        }

        let sync_true: vk::Bool32 = vk::TRUE;
        let settings = [vk::LayerSettingEXT {
            p_layer_name: VALIDATION_LAYER.as_ptr(),
            p_setting_name: c"validate_sync".as_ptr(),
            ty: vk::LayerSettingTypeEXT::BOOL32,
            value_count: 1,
            p_values: &sync_true as *const vk::Bool32 as *const c_void,
            ..Default::default()
        }];
        let mut settings_info = vk::LayerSettingsCreateInfoEXT::default().settings(&settings);
        let enables = [vk::ValidationFeatureEnableEXT::SYNCHRONIZATION_VALIDATION];
        let mut features_info =
            vk::ValidationFeaturesEXT::default().enabled_validation_features(&enables);
        if validation_features {
            info = info.push_next(&mut features_info);
            validation = ValidationState::On { sync: true };
        } else if layer_settings {
            info = info.push_next(&mut settings_info);
            validation = ValidationState::On { sync: true };
        } else if use_layer {
            log::warn!("validation layer offers no way to enable synchronization validation");
        }

        let lifecycle = lifecycle_lock();
        // SAFETY: every pointer in `info` refers to locals that live until this returns.
        let raw = unsafe { entry.create_instance(&info, None) }.map_err(|e| match e {
            vk::Result::ERROR_INCOMPATIBLE_DRIVER => Error::Vulkan(
                "no Vulkan driver found (vkCreateInstance: ERROR_INCOMPATIBLE_DRIVER); \
                     install one, e.g. mesa-vulkan-drivers for lavapipe, or check \
                     VK_DRIVER_FILES / VK_ICD_FILENAMES"
                    .into(),
            ),
            e => Error::Vulkan(format!("vkCreateInstance failed: {e}")),
        })?;

        let messenger = if debug_utils {
            let loader = ash::ext::debug_utils::Instance::new(&entry, &raw);
            // SAFETY: the user-data pointer targets `log`, which the instance keeps alive
            // (Arc field) until after the messenger is destroyed in Drop.
            match unsafe { loader.create_debug_utils_messenger(&messenger_info(), None) } {
                Ok(m) => Some((loader, m)),
                Err(e) => {
                    // SAFETY: nothing else was created from `raw` yet.
                    unsafe { raw.destroy_instance(None) };
                    return Err(Error::Vulkan(format!(
                        "vkCreateDebugUtilsMessengerEXT failed: {e}"
                    )));
                }
            }
        } else {
            None
        };
        drop(lifecycle);
        if let ValidationState::On { sync } = validation {
            log::info!("Vulkan validation layer on (synchronization validation: {sync})");
        }
        Ok(Arc::new(Instance {
            entry,
            raw,
            messenger,
            log,
            validation,
            loader_version,
        }))
    }

    /// The validation configuration this instance ended up with.
    pub fn validation(&self) -> ValidationState {
        self.validation
    }

    /// What the debug messenger has seen (empty when validation is off).
    pub fn validation_log(&self) -> &ValidationLog {
        &self.log
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _lifecycle = lifecycle_lock();
        // SAFETY: all children (devices) hold an Arc of this instance, so none is alive;
        // the messenger is destroyed before the instance it belongs to.
        unsafe {
            if let Some((loader, m)) = self.messenger.take() {
                loader.destroy_debug_utils_messenger(m, None);
            }
            self.raw.destroy_instance(None);
        }
    }
}

/// Serialises creating and destroying instances and devices across the process. On the
/// NVIDIA 580 driver, `vkDestroyDevice` racing other threads' device creation and use
/// deadlocked in ~20 % of parallel test runs (every thread blocked on one driver mutex,
/// the destroying thread joining a driver worker that spun; stacks in docs/RELIABILITY.md).
/// Creation and teardown are rare, so one lock costs nothing measurable.
pub(crate) fn lifecycle_lock() -> std::sync::MutexGuard<'static, ()> {
    static LIFECYCLE: Mutex<()> = Mutex::new(());
    LIFECYCLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// "1.3.230" from a packed Vulkan version.
pub fn version_string(v: u32) -> String {
    format!(
        "{}.{}.{}",
        vk::api_version_major(v),
        vk::api_version_minor(v),
        vk::api_version_patch(v)
    )
}

unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    kind: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut c_void,
) -> vk::Bool32 {
    // SAFETY: the layer passes a valid callback-data struct (or null) for the duration of
    // the call, and `user` is the `ValidationLog` the instance keeps alive.
    let (message, log) = unsafe {
        let message = if data.is_null() || (*data).p_message.is_null() {
            String::from("(no message)")
        } else {
            CStr::from_ptr((*data).p_message)
                .to_string_lossy()
                .into_owned()
        };
        (message, (user as *const ValidationLog).as_ref())
    };
    let text = format!("[{severity:?} {kind:?}] {message}");
    if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR) {
        log::error!("vulkan: {text}");
        if let Some(l) = log {
            l.errors.fetch_add(1, Ordering::Relaxed);
        }
    } else {
        log::warn!("vulkan: {text}");
        if let Some(l) = log {
            l.warnings.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Some(Ok(mut m)) = log.map(|l| l.messages.lock()) {
        m.push(text);
    }
    vk::FALSE
}
