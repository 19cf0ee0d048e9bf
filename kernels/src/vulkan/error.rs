//! The Vulkan backend's error type: what failed, in words a user can act on.

// A `no_std` crate: the std prelude is imported explicitly.
#[allow(unused_imports)]
use std::prelude::rust_2021::*;
#[allow(unused_imports)]
use std::{format, vec};

use core::fmt;

use ash::vk;

#[derive(Debug)]
pub enum VulkanError {
    /// The Vulkan loader (libvulkan.so.1 / vulkan-1.dll) could not be opened.
    NoLoader(String),
    /// The loader works but no device offers Vulkan 1.2 and a compute queue.
    NoDevice,
    /// `FOVEA_VK_DEVICE` is not an index of an available device.
    BadDeviceIndex { requested: String, available: usize },
    /// Validation was asked for but `VK_LAYER_KHRONOS_validation` is not installed.
    NoValidationLayer,
    /// A Vulkan call returned an error.
    Call { call: &'static str, result: vk::Result },
    /// The device has no memory type of the kind needed.
    NoMemoryType(&'static str),
    /// A storage-buffer binding larger than the device allows (lavapipe: 128 MiB).
    BindingTooLarge { bytes: u64, limit: u64 },
    /// Shapes the shaders cannot handle (e.g. a head wider than the attention shader's limit).
    Unsupported(String),
}

impl fmt::Display for VulkanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VulkanError::NoLoader(e) => write!(
                f,
                "no Vulkan loader ({e}); install the Vulkan runtime and a driver (Linux: libvulkan1 and \
                 mesa-vulkan-drivers)"
            ),
            VulkanError::NoDevice => {
                write!(
                    f,
                    "no Vulkan device with Vulkan 1.2 and a compute queue was found (is a Vulkan driver \
                     installed? Linux: mesa-vulkan-drivers)"
                )
            }
            VulkanError::BadDeviceIndex { requested, available } => write!(
                f,
                "FOVEA_VK_DEVICE={requested} does not name a device (there are {available}: 0..{available})"
            ),
            VulkanError::NoValidationLayer => {
                write!(f, "Vulkan validation requested but VK_LAYER_KHRONOS_validation is not installed")
            }
            VulkanError::Call { call, result } => write!(f, "Vulkan call {call} failed: {result}"),
            VulkanError::NoMemoryType(kind) => write!(f, "the Vulkan device has no {kind} memory"),
            VulkanError::BindingTooLarge { bytes, limit } => write!(
                f,
                "a Vulkan buffer binding of {bytes} bytes exceeds the device's limit of {limit} bytes"
            ),
            VulkanError::Unsupported(what) => write!(f, "Vulkan backend: {what}"),
        }
    }
}

impl std::error::Error for VulkanError {}

/// Maps a failed `vk::Result` to [`VulkanError::Call`] naming the call.
pub(crate) trait VkCall<T> {
    fn call(self, name: &'static str) -> Result<T, VulkanError>;
}

impl<T> VkCall<T> for Result<T, vk::Result> {
    fn call(self, name: &'static str) -> Result<T, VulkanError> {
        self.map_err(|result| VulkanError::Call { call: name, result })
    }
}
