//! The Vulkan compute backend: device and queue ([`Gpu`]), a block allocator ([`Buffer`]),
//! pipelines with push constants and a specialization constant for the workgroup size, and a
//! command [`Recorder`]. The shaders are GLSL next to the CPU op each mirrors
//! (`ops/rmsnorm.comp` beside `ops/rmsnorm.rs`, `quant/matvec_q4_k.comp` beside the Q4_K dot),
//! compiled to the SPIR-V committed under `spirv/`.
//!
//! Activations are f32 throughout and quantized weights are dequantized in the shader (unlike
//! the CPU path, which quantizes activations to Q8 like llama.cpp's CPU backend), so results
//! agree with the CPU within the tolerances of `tests/vulkan_ops.rs`, not to the bit.

mod command;
mod device;
mod error;
mod memory;
mod pipeline;
mod shaders;

pub use command::{Recorder, WORKGROUP};
pub use device::{DeviceInfo, DeviceOptions, Gpu};
pub use error::VulkanError;
pub use memory::{Buffer, MemKind, MemoryStats};
pub use shaders::Shader;
