//! Where the forward pass runs: the CPU (the reference, always available) or a Vulkan device
//! (feature `vulkan`), optionally only for the first layers.

#[cfg(feature = "vulkan")]
pub mod vulkan;
#[cfg(feature = "vulkan")]
mod vulkan_window;

/// The compute backend of a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    #[default]
    Cpu,
    /// The first `gpu_layers` layers (all when `None`, and then the output projection too) on
    /// the Vulkan device chosen by [`fovea_kernels`]' device selection; the rest on the CPU.
    Vulkan { gpu_layers: Option<usize> },
}

impl Backend {
    /// Parses a `--backend` name; `gpu_layers` applies to `vulkan` only.
    pub fn from_name(name: &str, gpu_layers: Option<usize>) -> Option<Backend> {
        match name {
            "cpu" => Some(Backend::Cpu),
            "vulkan" => Some(Backend::Vulkan { gpu_layers }),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Vulkan { .. } => "vulkan",
        }
    }
}
