//! The Vulkan compute backend: device and queue ([`Gpu`]), a block allocator ([`Buffer`]),
//! pipelines with push constants and a specialization constant for the workgroup size, and a
//! command [`Recorder`]. The shaders are GLSL next to the CPU op each mirrors
//! (`ops/rmsnorm.comp` beside `ops/rmsnorm.rs`, `quant/matvec_q4_k.comp` beside the Q4_K dot),
//! compiled to the SPIR-V committed under `spirv/`.
//!
//! Activations are f32 between ops. Before a matvec with quantized weights they are quantized
//! on the device to the weight type's partner (Q8_0, Q8_1, Q8_K: `quant/quantize_q8.comp`,
//! byte-identical with the CPU's quantizers), and the matvec forms the same integer block dots
//! and per-block f32 expressions as the CPU path (which is bit-exact with llama.cpp's CPU
//! backend); only the f32 sum over blocks runs in another order. F32/F16 weights multiply f32
//! activations, as on the CPU.

mod command;
mod device;
mod error;
mod memory;
mod pipeline;
mod shaders;

pub use command::{Recorder, Recording, WORKGROUP};
pub use device::{DeviceInfo, DeviceOptions, Gpu};
pub use error::VulkanError;
pub use memory::{Buffer, MemKind, MemoryStats};
pub use shaders::{
    attention_groups, attention_heads_per_workgroup, ActQuant, Shader, ATTENTION_HEADS_PER_GROUP,
};
