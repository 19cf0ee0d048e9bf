//! Instance, device and queue: [`Gpu`] is the one handle the rest of the backend works through.
//!
//! Device choice: a discrete GPU over an integrated one over a virtual one over a CPU device
//! (lavapipe), among devices with Vulkan 1.2 and a compute queue; `FOVEA_VK_DEVICE=N` picks
//! the N-th device the loader lists instead. With validation on, a debug-utils messenger
//! records every warning and error of the validation layer; tests fail when any was recorded.

// A `no_std` crate: the std prelude is imported explicitly.
#[allow(unused_imports)]
use std::prelude::rust_2021::*;
#[allow(unused_imports)]
use std::{format, vec};

use std::ffi::{c_void, CStr};
use std::sync::Mutex;

use ash::vk;

use super::error::{VkCall, VulkanError};
use super::memory::Allocator;
use super::pipeline::Pipelines;

const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// How to open the device.
#[derive(Clone, Debug, Default)]
pub struct DeviceOptions {
    /// Enable `VK_LAYER_KHRONOS_validation` and record its messages.
    pub validation: bool,
    /// The loader's device index to use (`None`: the preferred kind).
    pub device_index: Option<usize>,
}

impl DeviceOptions {
    /// Options from the environment: `FOVEA_VK_DEVICE=N`, `FOVEA_VK_VALIDATION=1`.
    pub fn from_env() -> Result<DeviceOptions, VulkanError> {
        let device_index = match std::env::var("FOVEA_VK_DEVICE") {
            Ok(s) => Some(
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| VulkanError::BadDeviceIndex { requested: s.clone(), available: 0 })?,
            ),
            Err(_) => None,
        };
        let validation = std::env::var("FOVEA_VK_VALIDATION").is_ok_and(|v| v != "0" && !v.is_empty());
        Ok(DeviceOptions { validation, device_index })
    }
}

/// What the chosen device is and the limits the backend works within.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub name: String,
    pub kind: vk::PhysicalDeviceType,
    /// maxStorageBufferRange: the largest binding (128 MiB on lavapipe).
    pub max_binding_bytes: u64,
    pub min_storage_align: u64,
    pub subgroup_size: u32,
    /// `shaderIntegerDotProduct` (VK_KHR_shader_integer_dot_product), enabled when the device
    /// has it: the quantized matvecs' packed-dot variants may run.
    pub integer_dot: bool,
}

/// The records of the validation messenger (boxed so its address stays fixed).
type Messages = Mutex<Vec<String>>;

pub struct Gpu {
    _entry: ash::Entry,
    instance: ash::Instance,
    debug: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    messages: Box<Messages>,
    pub(crate) device: ash::Device,
    pub(crate) queue: Mutex<vk::Queue>,
    pub(crate) queue_family: u32,
    pub(crate) mem_props: vk::PhysicalDeviceMemoryProperties,
    pub info: DeviceInfo,
    pub(crate) alloc: Mutex<Allocator>,
    pub(crate) pipelines: Mutex<Pipelines>,
}

unsafe extern "system" fn record_message(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    _types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut c_void,
) -> vk::Bool32 {
    // SAFETY: `user` is the `Box<Messages>` owned by the Gpu, which outlives the messenger;
    // `data` and its message string are valid for the duration of the callback.
    unsafe {
        let messages = &*(user as *const Messages);
        let text = if data.is_null() || (*data).p_message.is_null() {
            String::from("(no message)")
        } else {
            CStr::from_ptr((*data).p_message).to_string_lossy().into_owned()
        };
        if let Ok(mut m) = messages.lock() {
            m.push(format!("{severity:?}: {text}"));
        }
    }
    vk::FALSE
}

fn kind_rank(kind: vk::PhysicalDeviceType) -> u32 {
    match kind {
        vk::PhysicalDeviceType::DISCRETE_GPU => 0,
        vk::PhysicalDeviceType::INTEGRATED_GPU => 1,
        vk::PhysicalDeviceType::VIRTUAL_GPU => 2,
        vk::PhysicalDeviceType::CPU => 3,
        _ => 4,
    }
}

impl Gpu {
    /// Opens the loader, picks a device and creates one compute queue.
    pub fn new(opts: &DeviceOptions) -> Result<Gpu, VulkanError> {
        // SAFETY: loading the system's Vulkan loader library; ash resolves its entry points.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| VulkanError::NoLoader(e.to_string()))?;
        // SAFETY: plain queries and object creation through the loaded entry points, with
        // create-info structs that live until the calls return.
        unsafe {
            let layers =
                entry.enumerate_instance_layer_properties().call("vkEnumerateInstanceLayerProperties")?;
            let exts = entry
                .enumerate_instance_extension_properties(None)
                .call("vkEnumerateInstanceExtensionProperties")?;
            let has_ext = |name: &CStr| exts.iter().any(|e| e.extension_name_as_c_str() == Ok(name));
            let mut layer_names = Vec::new();
            let mut ext_names = Vec::new();
            if opts.validation {
                if !layers.iter().any(|l| l.layer_name_as_c_str() == Ok(VALIDATION_LAYER)) {
                    return Err(VulkanError::NoValidationLayer);
                }
                layer_names.push(VALIDATION_LAYER.as_ptr());
                ext_names.push(ash::ext::debug_utils::NAME.as_ptr());
            }
            let mut flags = vk::InstanceCreateFlags::empty();
            if has_ext(ash::khr::portability_enumeration::NAME) {
                // MoltenVK devices are listed only with this extension.
                ext_names.push(ash::khr::portability_enumeration::NAME.as_ptr());
                flags |= vk::InstanceCreateFlags::ENUMERATE_PORTABILITY_KHR;
            }
            let app = vk::ApplicationInfo::default()
                .application_name(c"fovea")
                .engine_name(c"fovea")
                .api_version(vk::API_VERSION_1_2);
            let info = vk::InstanceCreateInfo::default()
                .application_info(&app)
                .enabled_layer_names(&layer_names)
                .enabled_extension_names(&ext_names)
                .flags(flags);
            let instance = match entry.create_instance(&info, None) {
                // The loader's answer when it has no driver (ICD) at all.
                Err(vk::Result::ERROR_INCOMPATIBLE_DRIVER) => return Err(VulkanError::NoDevice),
                r => r.call("vkCreateInstance")?,
            };
            let messages: Box<Messages> = Box::new(Mutex::new(Vec::new()));
            let debug = if opts.validation {
                let du = ash::ext::debug_utils::Instance::new(&entry, &instance);
                let info = vk::DebugUtilsMessengerCreateInfoEXT::default()
                    .message_severity(
                        vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
                            | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
                    )
                    .message_type(
                        vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                            | vk::DebugUtilsMessageTypeFlagsEXT::GENERAL,
                    )
                    .pfn_user_callback(Some(record_message))
                    .user_data(&*messages as *const Messages as *mut c_void);
                match du.create_debug_utils_messenger(&info, None) {
                    Ok(m) => Some((du, m)),
                    Err(result) => {
                        instance.destroy_instance(None);
                        return Err(VulkanError::Call { call: "vkCreateDebugUtilsMessengerEXT", result });
                    }
                }
            } else {
                None
            };
            let destroy = |debug: &Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>| {
                if let Some((du, m)) = debug {
                    du.destroy_debug_utils_messenger(*m, None);
                }
                instance.destroy_instance(None);
            };
            match Self::open_device(&instance, opts) {
                Ok((device, queue, queue_family, mem_props, info)) => Ok(Gpu {
                    _entry: entry,
                    instance,
                    debug,
                    messages,
                    device,
                    queue: Mutex::new(queue),
                    queue_family,
                    mem_props,
                    info,
                    alloc: Mutex::new(Allocator::default()),
                    pipelines: Mutex::new(Pipelines::default()),
                }),
                Err(e) => {
                    destroy(&debug);
                    Err(e)
                }
            }
        }
    }

    /// Picks the physical device and creates the logical device with one compute queue.
    ///
    /// # Safety
    /// `instance` must be a live instance.
    #[allow(clippy::type_complexity)]
    unsafe fn open_device(
        instance: &ash::Instance,
        opts: &DeviceOptions,
    ) -> Result<(ash::Device, vk::Queue, u32, vk::PhysicalDeviceMemoryProperties, DeviceInfo), VulkanError>
    {
        // SAFETY: queries on a live instance; the create info outlives the call.
        unsafe {
            let all = instance.enumerate_physical_devices().call("vkEnumeratePhysicalDevices")?;
            let compute_family = |pd: vk::PhysicalDevice| {
                instance
                    .get_physical_device_queue_family_properties(pd)
                    .iter()
                    .position(|q| q.queue_flags.contains(vk::QueueFlags::COMPUTE))
                    .map(|i| i as u32)
            };
            let usable = |pd: vk::PhysicalDevice| {
                let p = instance.get_physical_device_properties(pd);
                p.api_version >= vk::API_VERSION_1_2 && compute_family(pd).is_some()
            };
            let chosen = match opts.device_index {
                Some(i) => match all.get(i) {
                    Some(&pd) if usable(pd) => pd,
                    _ => {
                        return Err(VulkanError::BadDeviceIndex {
                            requested: i.to_string(),
                            available: all.len(),
                        })
                    }
                },
                None => *all
                    .iter()
                    .filter(|&&pd| usable(pd))
                    .min_by_key(|&&pd| kind_rank(instance.get_physical_device_properties(pd).device_type))
                    .ok_or(VulkanError::NoDevice)?,
            };
            let family = compute_family(chosen).ok_or(VulkanError::NoDevice)?;
            let mut subgroup = vk::PhysicalDeviceSubgroupProperties::default();
            let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut subgroup);
            instance.get_physical_device_properties2(chosen, &mut props2);
            let p = props2.properties;
            // Packed integer dot products: the extension and its feature, enabled when present.
            let dev_exts = instance
                .enumerate_device_extension_properties(chosen)
                .call("vkEnumerateDeviceExtensionProperties")?;
            let dot_ext = ash::khr::shader_integer_dot_product::NAME;
            let integer_dot = dev_exts.iter().any(|e| e.extension_name_as_c_str() == Ok(dot_ext)) && {
                let mut dot = vk::PhysicalDeviceShaderIntegerDotProductFeatures::default();
                let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut dot);
                instance.get_physical_device_features2(chosen, &mut f2);
                dot.shader_integer_dot_product == vk::TRUE
            };
            let info = DeviceInfo {
                name: p.device_name_as_c_str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                kind: p.device_type,
                max_binding_bytes: p.limits.max_storage_buffer_range as u64,
                min_storage_align: p.limits.min_storage_buffer_offset_alignment,
                subgroup_size: subgroup.subgroup_size,
                integer_dot,
            };
            let priorities = [1.0f32];
            let queues = [vk::DeviceQueueCreateInfo::default()
                .queue_family_index(family)
                .queue_priorities(&priorities)];
            let mut dot =
                vk::PhysicalDeviceShaderIntegerDotProductFeatures::default().shader_integer_dot_product(true);
            let dev_ext_names = [dot_ext.as_ptr()];
            let mut dinfo = vk::DeviceCreateInfo::default().queue_create_infos(&queues);
            if integer_dot {
                dinfo = dinfo.enabled_extension_names(&dev_ext_names).push_next(&mut dot);
            }
            let device = instance.create_device(chosen, &dinfo, None).call("vkCreateDevice")?;
            let queue = device.get_device_queue(family, 0);
            let mem_props = instance.get_physical_device_memory_properties(chosen);
            Ok((device, queue, family, mem_props, info))
        }
    }

    /// Validation messages recorded since the last call (empty without validation).
    pub fn take_messages(&self) -> Vec<String> {
        self.messages.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
    }

    pub fn validation_enabled(&self) -> bool {
        self.debug.is_some()
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // SAFETY: every buffer holds an Arc<Gpu>, so none is alive here; we wait for the queue,
        // then destroy children before parents.
        unsafe {
            let _ = self.device.device_wait_idle();
            if let Ok(p) = self.pipelines.get_mut() {
                p.destroy(&self.device);
            }
            if let Ok(a) = self.alloc.get_mut() {
                a.destroy_all(&self.device);
            }
            self.device.destroy_device(None);
            if let Some((du, m)) = &self.debug {
                du.destroy_debug_utils_messenger(*m, None);
            }
            self.instance.destroy_instance(None);
        }
    }
}
